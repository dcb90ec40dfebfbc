#include "vigil/train/results_csv.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"

namespace vigil::train {
namespace {

constexpr int kCellWidth = 23;  // Ultralytics' '%23s' / '%23.5g'

std::string trim(const std::string& s) {
  const auto begin = s.find_first_not_of(" \t\r\n");
  if (begin == std::string::npos) return "";
  const auto end = s.find_last_not_of(" \t\r\n");
  return s.substr(begin, end - begin + 1);
}

std::vector<std::string> split_header(const std::string& line) {
  std::vector<std::string> cells;
  size_t start = 0;
  while (true) {
    const size_t comma = line.find(',', start);
    cells.push_back(trim(line.substr(start, comma == std::string::npos ? std::string::npos : comma - start)));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return cells;
}

std::string format_header(const std::vector<std::string>& columns) {
  std::string line;
  for (size_t i = 0; i < columns.size(); ++i) {
    if (i > 0) line += ',';
    line += fmt::format("{:>{}}", columns[i], kCellWidth);
  }
  return line + "\n";
}

std::string format_number(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%*.5g", kCellWidth, v);
  return buf;
}

std::string join(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += (out.empty() ? "" : ", ") + s;
  return out;
}

}  // namespace

ResultsCsv::ResultsCsv(std::filesystem::path file, std::vector<std::string> columns)
    : file_(std::move(file)), columns_(std::move(columns)) {
  VIGIL_CHECK(!columns_.empty(), "expected at least one results.csv column, got none");
  std::set<std::string> seen;
  for (const auto& c : columns_) {
    VIGIL_CHECK(!c.empty() && c.find_first_of(",\n\"") == std::string::npos && trim(c) == c,
                "expected results.csv column names without commas, quotes or padding, got '{}'", c);
    VIGIL_CHECK(seen.insert(c).second, "expected distinct results.csv columns, got '{}' twice", c);
  }
  std::error_code ec;
  std::string existing = std::filesystem::exists(file_, ec) ? read_file(file_) : std::string();
  if (existing.empty()) {
    write_file_atomic(file_, format_header(columns_));
    return;
  }
  const std::string first_line = existing.substr(0, existing.find('\n'));
  const auto found = split_header(first_line);
  if (found != columns_) {
    throw InvalidArgument(
        fmt::format("{}: expected results.csv columns [{}], got [{}]; resume with the same "
                    "metrics or start a new run",
                    to_utf8(file_), join(columns_), join(found)));
  }
  // A kill in the middle of append() can leave half a row; drop it rather than glue the next row onto it.
  if (existing.back() != '\n') {
    const size_t last_newline = existing.rfind('\n');
    existing =
        last_newline == std::string::npos ? format_header(columns_) : existing.substr(0, last_newline + 1);
    write_file_atomic(file_, existing);
  }
}

void ResultsCsv::append(const std::map<std::string, double>& row) {
  std::set<std::string> known(columns_.begin(), columns_.end());
  for (const auto& [key, value] : row) {
    VIGIL_CHECK(known.count(key) != 0, "expected a results.csv column ({}), got '{}'", join(columns_), key);
  }
  std::string line;
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (i > 0) line += ',';
    auto it = row.find(columns_[i]);
    if (it != row.end()) line += format_number(it->second);
  }
  line += '\n';
  std::ofstream out(file_, std::ios::binary | std::ios::app);
  if (!out) throw IoError(fmt::format("cannot open {} for appending", to_utf8(file_)));
  out << line;
  out.flush();
  if (!out) throw IoError(fmt::format("write failed: {}", to_utf8(file_)));
}

void ResultsCsv::truncate_after(double epoch) {
  const auto it = std::find(columns_.begin(), columns_.end(), "epoch");
  VIGIL_CHECK(it != columns_.end(), "expected an 'epoch' column in {} to truncate by, got none",
              to_utf8(file_));
  const size_t column = static_cast<size_t>(it - columns_.begin());
  const std::string text = read_file(file_);
  std::string kept;
  size_t start = 0;
  for (size_t line_no = 0; start < text.size(); ++line_no) {
    const size_t end = text.find('\n', start);
    const std::string line =
        text.substr(start, end == std::string::npos ? std::string::npos : end - start + 1);
    start = end == std::string::npos ? text.size() : end + 1;
    const auto cells = split_header(line);
    // Keep the header and any row whose epoch cell is not a number above the limit.
    const double row_epoch =
        line_no == 0 || column >= cells.size() ? epoch : std::strtod(cells[column].c_str(), nullptr);
    if (!(row_epoch > epoch)) kept += line;
  }
  if (kept != text) write_file_atomic(file_, kept);
}

}  // namespace vigil::train

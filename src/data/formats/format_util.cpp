#include "format_util.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"
#include "vigil/image/decode.h"

namespace vigil::data::formats {

namespace {
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

std::string read_prefix(const fs::path& path, size_t max_bytes) {
  std::ifstream in(path, std::ios::binary);
  std::string data(max_bytes, '\0');
  in.read(data.data(), static_cast<std::streamsize>(max_bytes));
  data.resize(static_cast<size_t>(in.gcount()));
  return data;
}
}  // namespace

bool has_image_extension(const fs::path& p) {
  static const std::array<std::string_view, 9> kExts = {".jpg",  ".jpeg", ".png",  ".bmp", ".gif",
                                                        ".webp", ".tif",  ".tiff", ".jpe"};
  const std::string ext = lower_extension(p);
  return std::find(kExts.begin(), kExts.end(), ext) != kExts.end();
}

bool is_hidden(const fs::path& p) {
  const std::string name = p.filename().string();
  return !name.empty() && name[0] == '.';
}

bool natural_less(std::string_view a, std::string_view b) {
  size_t i = 0, j = 0;
  while (i < a.size() && j < b.size()) {
    if (is_digit(a[i]) && is_digit(b[j])) {
      size_t i0 = i, j0 = j;
      while (i0 < a.size() && a[i0] == '0') ++i0;
      while (j0 < b.size() && b[j0] == '0') ++j0;
      size_t i1 = i0, j1 = j0;
      while (i1 < a.size() && is_digit(a[i1])) ++i1;
      while (j1 < b.size() && is_digit(b[j1])) ++j1;
      // Longer significant digit run = larger number; equal lengths compare lexicographically.
      if (i1 - i0 != j1 - j0) return i1 - i0 < j1 - j0;
      if (int c = a.substr(i0, i1 - i0).compare(b.substr(j0, j1 - j0)); c != 0) return c < 0;
      // Same value: fewer leading zeros first, so "1" and "01" still get a strict order.
      if (i0 - i != j0 - j) return i0 - i < j0 - j;
      i = i1;
      j = j1;
      continue;
    }
    if (a[i] != b[j]) return static_cast<unsigned char>(a[i]) < static_cast<unsigned char>(b[j]);
    ++i;
    ++j;
  }
  return a.size() - i < b.size() - j;
}

void sort_samples(Dataset& ds) {
  std::stable_sort(ds.samples.begin(), ds.samples.end(),
                   [](const Sample& x, const Sample& y) { return natural_less(x.file, y.file); });
}

std::vector<fs::path> list_dir_files(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, fs::directory_options::skip_permission_denied, ec)) {
    if (e.is_regular_file(ec) && !is_hidden(e.path())) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end(),
            [](const fs::path& x, const fs::path& y) { return natural_less(to_utf8(x), to_utf8(y)); });
  return out;
}

std::vector<fs::path> list_subdirs(const fs::path& dir) {
  std::vector<fs::path> out;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return out;
  for (const auto& e : fs::directory_iterator(dir, fs::directory_options::skip_permission_denied, ec)) {
    if (e.is_directory(ec) && !is_hidden(e.path())) out.push_back(e.path());
  }
  std::sort(out.begin(), out.end(),
            [](const fs::path& x, const fs::path& y) { return natural_less(to_utf8(x), to_utf8(y)); });
  return out;
}

std::optional<fs::path> find_child_dir(const fs::path& dir, std::string_view name) {
  std::error_code ec;
  if (fs::is_directory(dir / std::string(name), ec)) return dir / std::string(name);
  const std::string want = to_lower(name);
  for (const auto& sub : list_subdirs(dir)) {
    if (to_lower(sub.filename().string()) == want) return sub;
  }
  return std::nullopt;
}

fs::path from_utf8(std::string_view s) {
  return fs::path(std::u8string(s.begin(), s.end()));
}

std::string rel_utf8(const fs::path& root, const fs::path& p) {
  return to_utf8(p.lexically_relative(root));
}

int64_t file_size_or_zero(const fs::path& p) {
  std::error_code ec;
  auto n = fs::file_size(p, ec);
  return ec ? 0 : static_cast<int64_t>(n);
}

std::vector<std::string> split_lines(std::string_view text) {
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.emplace_back(line);
    start = end + 1;
  }
  return lines;
}

NumberStatus parse_numbers(const std::vector<std::string>& tokens, std::vector<double>& out,
                           size_t& bad_index) {
  out.clear();
  for (size_t i = 0; i < tokens.size(); ++i) {
    auto v = parse_double(tokens[i]);
    bad_index = i;
    if (!v) return NumberStatus::kUnparsable;
    if (!std::isfinite(*v)) return NumberStatus::kNonFinite;
    out.push_back(*v);
  }
  return NumberStatus::kOk;
}

ImageSize read_image_size(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return {0, 0, "file not found"};
  // Headers sit near the start; 512 KiB covers JPEGs with large EXIF/ICC blocks before the frame marker.
  constexpr size_t kPrefix = 512 * 1024;
  std::string bytes = read_prefix(path, kPrefix);
  if (bytes.empty()) return {0, 0, "empty file"};
  auto header = image::probe_header(bytes);
  if (header.width > 0 && header.height > 0) return {header.width, header.height, ""};
  if (bytes.size() == kPrefix) bytes = read_prefix(path, static_cast<size_t>(fs::file_size(path, ec)));
  auto decoded = image::decode(bytes);
  if (!decoded.ok()) return {0, 0, decoded.error.kind_name() + ": " + decoded.error.detail};
  return {decoded.bgr.cols, decoded.bgr.rows, ""};
}

void copy_image(const fs::path& from, const fs::path& to) {
  ensure_dir(to.parent_path());
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) {
    throw IoError(fmt::format("cannot copy {} to {}: {}", to_utf8(from), to_utf8(to), ec.message()));
  }
}

}  // namespace vigil::data::formats

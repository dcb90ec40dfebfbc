// guns: Images/N.jpeg + Labels/N.txt; a label file is a box count line, then "x1 y1 x2 y2" pixel lines.

#include <map>

#include "builtin.h"
#include "format_util.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"

namespace vigil::data {

namespace {

using formats::NumberStatus;

/// Parses one box line; on failure records the issue and returns false.
bool parse_box_line(const std::string& line, const std::string& file, int line_no, Dataset& ds, Box& box) {
  auto fields = split_ws(line);
  if (fields.size() != 4) {
    ds.add_issue("parse_error", Severity::kError, file, line_no,
                 fmt::format("expected 4 numbers 'x1 y1 x2 y2', got {} fields: '{}'", fields.size(), line));
    return false;
  }
  std::vector<double> v;
  size_t bad = 0;
  switch (formats::parse_numbers(fields, v, bad)) {
    case NumberStatus::kUnparsable:
      ds.add_issue("parse_error", Severity::kError, file, line_no,
                   fmt::format("expected a number, got '{}'", fields[bad]));
      return false;
    case NumberStatus::kNonFinite:
      ds.add_issue("bad_number", Severity::kError, file, line_no,
                   fmt::format("expected a finite coordinate, got '{}'", fields[bad]));
      return false;
    case NumberStatus::kOk:
      break;
  }
  // Inverted or empty boxes are kept as written: validation reports them with the image size at hand.
  box = Box{static_cast<float>(v[0]), static_cast<float>(v[1]), static_cast<float>(v[2]),
            static_cast<float>(v[3])};
  return true;
}

/// Reads one label file into `sample.boxes`; returns false when the file cannot stand for the image at all.
bool read_label_file(const fs::path& path, const std::string& rel, Dataset& ds, Sample& sample) {
  std::vector<std::string> lines;
  try {
    lines = formats::split_lines(read_file(path));
  } catch (const Error& e) {
    ds.add_issue("unreadable", Severity::kError, rel, 0, e.what());
    return false;
  }
  size_t first = 0;
  while (first < lines.size() && trim(lines[first]).empty()) ++first;
  if (first == lines.size()) {
    // An empty file is more likely a failed write than a statement that the image has no guns ("0" says
    // that).
    ds.add_issue("parse_error", Severity::kError, rel, 0, "empty label file: expected a box count line");
    return false;
  }
  auto count = parse_int(lines[first]);
  if (!count || *count < 0) {
    ds.add_issue("parse_error", Severity::kError, rel, static_cast<int>(first) + 1,
                 fmt::format("expected a box count, got '{}'", lines[first]));
  }
  long long present = 0;
  for (size_t i = first + 1; i < lines.size(); ++i) {
    if (trim(lines[i]).empty()) continue;
    ++present;
    Box box;
    if (parse_box_line(lines[i], rel, static_cast<int>(i) + 1, ds, box)) sample.boxes.push_back(box);
  }
  if (count && *count >= 0 && *count != present) {
    ds.add_issue("count_mismatch", Severity::kWarning, rel, static_cast<int>(first) + 1,
                 fmt::format("count line says {} boxes, {} box lines present; keeping the lines present",
                             *count, present));
  }
  return true;
}

/// Images by stem; a second image with the same stem cannot be told apart by its label file, so it is
/// skipped.
std::map<std::string, fs::path> images_by_stem(const fs::path& root, const fs::path& dir, Dataset& ds) {
  std::map<std::string, fs::path> out;
  for (const auto& f : formats::list_dir_files(dir)) {
    const std::string rel = formats::rel_utf8(root, f);
    if (!formats::has_image_extension(f)) {
      ds.add_issue("ignored_file", Severity::kInfo, rel, 0, "not an image file name; ignored");
      continue;
    }
    auto [it, inserted] = out.emplace(to_utf8(f.stem()), f);
    if (!inserted) {
      ds.add_issue(
          "duplicate_image", Severity::kWarning, rel, 0,
          fmt::format("another image has the same stem ({}); skipped", to_utf8(it->second.filename())));
    }
  }
  return out;
}

Dataset read_guns(const fs::path& root, const ReadOptions& options) {
  auto images_dir = formats::find_child_dir(root, "Images");
  auto labels_dir = formats::find_child_dir(root, "Labels");
  if (!images_dir || !labels_dir) {
    throw NotFound(fmt::format("expected Images/ and Labels/ folders in {}, got {}", to_utf8(root),
                               images_dir ? "no Labels/" : "no Images/"));
  }
  Dataset ds;
  ds.task = Task::kDetection;
  ds.root = root;
  ds.classes = options.classes.empty() ? std::vector<std::string>{"gun"} : options.classes;
  auto images = images_by_stem(root, *images_dir, ds);
  std::map<std::string, fs::path> labels;
  for (const auto& f : formats::list_dir_files(*labels_dir)) {
    if (lower_extension(f) == ".txt") {
      labels.emplace(to_utf8(f.stem()), f);
    } else {
      ds.add_issue("ignored_file", Severity::kInfo, formats::rel_utf8(root, f), 0,
                   "not a .txt label file; ignored");
    }
  }
  for (const auto& [stem, label] : labels) {
    const std::string rel = formats::rel_utf8(root, label);
    auto img = images.find(stem);
    if (img == images.end()) {
      ds.add_issue("missing_image", Severity::kWarning, rel, 0,
                   "no image with this name in Images/; skipped");
      continue;
    }
    Sample s;
    s.file = formats::rel_utf8(root, img->second);
    s.label_file = rel;
    s.bytes = formats::file_size_or_zero(img->second);
    if (read_label_file(label, rel, ds, s)) ds.samples.push_back(std::move(s));
  }
  for (const auto& [stem, img] : images) {
    if (labels.count(stem)) continue;
    ds.add_issue("missing_label", Severity::kWarning, formats::rel_utf8(root, img), 0,
                 "no label file in Labels/; skipped (an unlabelled image is not known to be empty)");
  }
  formats::sort_samples(ds);
  return ds;
}

}  // namespace

FormatInfo make_guns_format() {
  FormatInfo info;
  info.name = "guns";
  info.description = "Images/N.jpeg + Labels/N.txt (box count line, then x1 y1 x2 y2 pixels per line)";
  info.read = read_guns;
  return info;
}

}  // namespace vigil::data

#pragma once
/// The one dataset model every format reads into and writes from: an image plus boxes with class ids
/// (detection), or an image plus a class label (classification).

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "vigil/data/task.h"

namespace vigil::data {

/// Pixel box, top-left origin, x2/y2 exclusive edges as in torchvision (x1 < x2, y1 < y2 when valid).
struct Box {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;
  int class_id = 0;        ///< index into Dataset::classes
  bool difficult = false;  ///< Pascal VOC flag
  bool truncated = false;  ///< Pascal VOC flag
  bool crowd = false;      ///< COCO iscrowd
  float width() const { return x2 - x1; }
  float height() const { return y2 - y1; }
  float area() const { return width() * height(); }
};

/// What decoding the image bytes found (filled by inspect_images or at ingest).
struct ImageCheck {
  bool inspected = false;
  std::string problem_kind;  ///< "" when the image decodes; else an Issue kind (unreadable, truncated, ...)
  std::string problem;       ///< human-readable detail
  std::string type;          ///< detected by magic bytes: jpeg, png, bmp, ...
  uint64_t phash = 0;        ///< 64-bit perceptual hash (DCT)
};

struct Sample {
  std::string file;  ///< path relative to the dataset root, UTF-8 with '/' separators; unique
  std::string hash;  ///< sha256 of the image bytes ("" until hashed)
  int64_t bytes = 0;
  int width = 0, height = 0;  ///< 0 until known (from annotations or decoding)
  int label = -1;             ///< classification: index into Dataset::classes
  std::vector<Box> boxes;     ///< detection
  std::string split;          ///< "" or the split folder it came from: train, val, test
  std::string label_file;     ///< detection formats with one label file per image (guns, yolo, voc)
  ImageCheck check;
};

enum class Severity { kInfo, kWarning, kError };
const char* severity_name(Severity s);

/// One problem found while reading or validating. `kind` is a stable snake_case identifier.
struct Issue {
  std::string kind;
  Severity severity = Severity::kError;
  std::string file;  ///< the file the problem is in (relative to the dataset root)
  int line = 0;      ///< 1-based line in `file`, 0 when not applicable
  std::string message;
};

struct Dataset {
  Task task = Task::kDetection;
  std::string format;                ///< the format it was read from
  std::filesystem::path root;        ///< where the files are (source folder, or empty once in the store)
  std::vector<std::string> classes;  ///< detection: object classes without background; classification: labels
  std::vector<Sample> samples;
  std::vector<Issue> issues;  ///< problems met while reading; each skipped item is listed here

  /// -1 when absent.
  int class_index(const std::string& name) const;
  size_t box_count() const;
  void add_issue(std::string kind, Severity sev, std::string file, int line, std::string message);
};

}  // namespace vigil::data

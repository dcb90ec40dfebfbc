#include "vigil/data/formats.h"

#include <map>
#include <mutex>

#include "formats/builtin.h"
#include "formats/format_util.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"

namespace vigil::data {

namespace {

struct Registry {
  std::mutex mutex;
  // std::map nodes never move, so references handed out by find_format stay valid as formats are added.
  std::map<std::string, FormatInfo> formats;
};

Registry& registry() {
  static Registry r;
  return r;
}

std::vector<std::string> names_locked(const Registry& r) {
  std::vector<std::string> names;
  for (const auto& [name, info] : r.formats) names.push_back(name);
  return names;
}

bool has_json(const fs::path& dir) {
  for (const auto& f : formats::list_dir_files(dir)) {
    const std::string name = f.filename().string();
    if (name == "annotations.json" || (starts_with(name, "instances_") && lower_extension(f) == ".json")) {
      return true;
    }
  }
  return false;
}

bool has_ext(const fs::path& dir, const std::string& ext) {
  for (const auto& f : formats::list_dir_files(dir)) {
    if (lower_extension(f) == ext) return true;
  }
  return false;
}

/// guns and yolo share the images/ + labels/ shape; the first label line tells them apart (a count vs 5
/// fields).
std::string guess_from_labels(const fs::path& labels) {
  for (const auto& f : formats::list_dir_files(labels)) {
    if (lower_extension(f) != ".txt" || f.filename() == "classes.txt") continue;
    for (const auto& line : formats::split_lines(read_file(f))) {
      auto fields = split_ws(line);
      if (fields.empty()) continue;
      return fields.size() == 1 ? "guns" : "yolo";
    }
  }
  return "";
}

std::string detect_pairs(const fs::path& root) {
  auto images = formats::find_child_dir(root, "images");
  auto labels = formats::find_child_dir(root, "labels");
  if (!images || !labels) return "";
  const bool capitalised = images->filename() == "Images" && labels->filename() == "Labels";
  for (const char* yaml : {"data.yaml", "data.yml", "dataset.yaml", "classes.txt"}) {
    if (fs::exists(root / yaml)) return "yolo";
  }
  if (auto guess = guess_from_labels(*labels); !guess.empty()) return guess;
  if (!formats::list_subdirs(*labels).empty()) return "yolo";  // labels/train, labels/val
  return capitalised ? "guns" : "yolo";
}

/// Roboflow's YOLO export: train/images + train/labels (would otherwise look like classes "images",
/// "labels").
bool has_split_pairs(const fs::path& root) {
  for (const auto& sub : formats::list_subdirs(root)) {
    if (formats::find_child_dir(sub, "images") && formats::find_child_dir(sub, "labels")) return true;
  }
  return false;
}

bool looks_like_imagefolder(const fs::path& root) {
  for (const auto& sub : formats::list_subdirs(root)) {
    for (const auto& f : formats::list_dir_files(sub)) {
      if (formats::has_image_extension(f)) return true;
    }
    for (const auto& cls : formats::list_subdirs(sub)) {
      for (const auto& f : formats::list_dir_files(cls)) {
        if (formats::has_image_extension(f)) return true;
      }
    }
  }
  return false;
}

}  // namespace

void register_format(FormatInfo info) {
  VIGIL_CHECK(!info.name.empty(), "expected a format name, got an empty string");
  VIGIL_CHECK(static_cast<bool>(info.read), "expected a reader for format '{}', got none", info.name);
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  r.formats[info.name] = std::move(info);
}

const FormatInfo& find_format(const std::string& name) {
  register_builtin_formats();
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  auto it = r.formats.find(name);
  if (it == r.formats.end()) {
    throw InvalidArgument(
        fmt::format("expected a dataset format ({}), got '{}'", join(names_locked(r), ", "), name));
  }
  return it->second;
}

std::vector<std::string> format_names() {
  register_builtin_formats();
  auto& r = registry();
  std::lock_guard lock(r.mutex);
  return names_locked(r);
}

void register_builtin_formats() {
  static std::once_flag once;
  std::call_once(once, [] {
    register_format(make_guns_format());
    register_format(make_voc_format());
    register_format(make_yolo_format());
    register_format(make_coco_format());
    register_format(make_imagefolder_format());
  });
}

std::string detect_format(const fs::path& root) {
  std::error_code ec;
  if (fs::is_regular_file(root, ec)) {
    if (lower_extension(root) == ".json") return "coco";
    throw InvalidArgument(
        fmt::format("expected a dataset folder or a COCO .json file, got {}", to_utf8(root)));
  }
  if (!fs::is_directory(root, ec)) throw NotFound(fmt::format("dataset not found: {}", to_utf8(root)));
  if (auto pairs = detect_pairs(root); !pairs.empty()) return pairs;
  if (has_split_pairs(root)) return "yolo";
  if (auto ann = formats::find_child_dir(root, "annotations")) {
    if (has_ext(*ann, ".xml")) return "voc";
    // The Oxford-IIIT Pet layout (annotations/xmls/*.xml + images/), which would else read as image folders.
    if (auto xmls = formats::find_child_dir(*ann, "xmls"); xmls && has_ext(*xmls, ".xml")) return "voc";
  }
  if (has_json(root) || (fs::is_directory(root / "annotations") && has_json(root / "annotations")))
    return "coco";
  if (has_ext(root, ".xml")) return "voc";
  if (looks_like_imagefolder(root)) return "imagefolder";
  throw InvalidArgument(
      fmt::format("cannot guess the format of {}: expected Images/+Labels/ (guns), Annotations/*.xml or "
                  "annotations/xmls/*.xml (voc), images/+labels/ (yolo), annotations.json (coco) or <class>/ "
                  "image folders (imagefolder); pass one of: {}",
                  to_utf8(root), join(format_names(), ", ")));
}

Dataset read_dataset(const fs::path& root, const std::string& format, const ReadOptions& options) {
  std::error_code ec;
  if (!fs::exists(root, ec)) throw NotFound(fmt::format("dataset not found: {}", to_utf8(root)));
  const std::string name = format == "auto" ? detect_format(root) : format;
  const FormatInfo& info = find_format(name);
  Dataset ds = info.read(root, options);
  ds.format = name;
  if (ds.root.empty()) ds.root = root;
  formats::sort_samples(ds);
  return ds;
}

void write_dataset(const Dataset& ds, const ImageSource& images, const fs::path& out,
                   const std::string& format, const WriteOptions& options) {
  const FormatInfo& info = find_format(format);
  if (!info.write) {
    std::vector<std::string> writable;
    for (const auto& n : format_names()) {
      if (find_format(n).write) writable.push_back(n);
    }
    throw InvalidArgument(fmt::format("expected a writable format ({}), got '{}' which is read-only",
                                      join(writable, ", "), format));
  }
  VIGIL_CHECK(static_cast<bool>(images) || !options.copy_images,
              "expected an image source when copying images, got none");
  info.write(ds, images, out, options);
}

}  // namespace vigil::data

// COCO detection: one JSON with images (id, file_name, width, height), annotations (image_id, category_id,
// bbox [x, y, w, h], iscrowd) and categories (id, name). Category ids may have gaps (COCO's own skip 12, 26,
// ...): they map to 0..K-1 in sorted-id order.

#include <nlohmann/json.hpp>

#include <map>
#include <optional>
#include <set>

#include "builtin.h"
#include "format_util.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"

namespace vigil::data {

namespace {

using nlohmann::json;

/// annotations.json, or the single instances_*.json, in the folder or its annotations/ subfolder.
fs::path find_json(const fs::path& root) {
  std::error_code ec;
  if (fs::is_regular_file(root, ec)) return root;
  if (!fs::is_directory(root, ec)) throw NotFound(fmt::format("COCO dataset not found: {}", to_utf8(root)));
  for (const fs::path& dir : {root, root / "annotations"}) {
    if (fs::is_regular_file(dir / "annotations.json", ec)) return dir / "annotations.json";
    std::vector<fs::path> found;
    for (const auto& f : formats::list_dir_files(dir)) {
      if (starts_with(f.filename().string(), "instances_") && lower_extension(f) == ".json")
        found.push_back(f);
    }
    if (found.size() == 1) return found[0];
    if (found.size() > 1) {
      std::vector<std::string> names;
      for (const auto& f : found) names.push_back(to_utf8(f.filename()));
      throw InvalidArgument(
          fmt::format("expected one COCO JSON in {}, got {} ({}); pass the .json file itself", to_utf8(dir),
                      found.size(), join(names, ", ")));
    }
  }
  throw NotFound(fmt::format("expected annotations.json or instances_*.json in {}", to_utf8(root)));
}

/// The folder image file_names are relative to: beside the JSON, its images/ subfolder, or (for a JSON in
/// annotations/) the dataset's images/. The candidate that finds the most files wins.
fs::path image_base(const fs::path& json_dir, const json& images) {
  std::vector<fs::path> bases = {json_dir, json_dir / "images"};
  if (json_dir.filename() == "annotations") {
    bases.push_back(json_dir.parent_path());
    bases.push_back(json_dir.parent_path() / "images");
  }
  fs::path best = json_dir;
  size_t best_found = 0;
  for (const auto& base : bases) {
    size_t found = 0;
    for (const auto& img : images) {
      if (img.is_object() && img.contains("file_name") && img["file_name"].is_string() &&
          fs::is_regular_file(base / formats::from_utf8(img["file_name"].get<std::string>()))) {
        ++found;
      }
    }
    if (found > best_found) {
      best = base;
      best_found = found;
    }
  }
  return best;
}

struct CocoContext {
  Dataset& ds;
  std::string json_rel;
  std::map<long long, int> category_index;  ///< category id -> class index (or -1 for classes not wanted)
  std::map<long long, size_t> image_index;  ///< image id -> sample index
  std::set<std::string> files;              ///< Sample::file must be unique
};

void read_categories(const json& cats, const ReadOptions& options, CocoContext& c) {
  std::map<long long, std::string> by_id;
  for (size_t i = 0; i < cats.size(); ++i) {
    const auto& cat = cats[i];
    if (!cat.is_object() || !cat.contains("id") || !cat["id"].is_number_integer() || !cat.contains("name") ||
        !cat["name"].is_string()) {
      c.ds.add_issue("parse_error", Severity::kError, c.json_rel, 0,
                     fmt::format("categories[{}]: expected an integer id and a string name; skipped", i));
      continue;
    }
    if (!by_id.emplace(cat["id"].get<long long>(), cat["name"].get<std::string>()).second) {
      c.ds.add_issue(
          "duplicate_category", Severity::kError, c.json_rel, 0,
          fmt::format("categories[{}]: id {} already used; skipped", i, cat["id"].get<long long>()));
    }
  }
  if (!options.classes.empty()) c.ds.classes = options.classes;
  for (const auto& [id, name] : by_id) {
    if (options.classes.empty()) {
      c.category_index[id] = static_cast<int>(c.ds.classes.size());
      c.ds.classes.push_back(name);
    } else {
      c.category_index[id] = c.ds.class_index(name);
    }
  }
}

/// width/height when present and sane; otherwise 0 ("unknown"), which validation fills from the image.
int dimension(const json& img, const char* key) {
  if (!img.contains(key) || !img[key].is_number()) return 0;
  const double v = img[key].get<double>();
  return v >= 0 && v < 1e9 ? static_cast<int>(v) : 0;
}

void read_image_entry(const json& img, size_t i, const fs::path& base, CocoContext& c) {
  if (!img.is_object() || !img.contains("id") || !img["id"].is_number_integer() ||
      !img.contains("file_name") || !img["file_name"].is_string()) {
    c.ds.add_issue("parse_error", Severity::kError, c.json_rel, 0,
                   fmt::format("images[{}]: expected an integer id and a string file_name; skipped", i));
    return;
  }
  const long long id = img["id"].get<long long>();
  const std::string name = img["file_name"].get<std::string>();
  const fs::path path = base / formats::from_utf8(name);
  if (c.image_index.count(id)) {
    c.ds.add_issue("duplicate_image", Severity::kError, c.json_rel, 0,
                   fmt::format("images[{}]: id {} already used; skipped", i, id));
    return;
  }
  if (!fs::is_regular_file(path)) {
    c.image_index[id] = SIZE_MAX;  // known id, so its annotations are not also reported as orphans
    c.ds.add_issue(
        "missing_image", Severity::kWarning, formats::rel_utf8(c.ds.root, path), 0,
        fmt::format("images[{}] (id {}) is not on disk; it and its annotations are skipped", i, id));
    return;
  }
  Sample s;
  s.file = formats::rel_utf8(c.ds.root, path);
  if (!c.files.insert(s.file).second) {
    c.image_index[id] = SIZE_MAX;
    c.ds.add_issue(
        "duplicate_image", Severity::kError, c.json_rel, 0,
        fmt::format("images[{}] (id {}): '{}' is listed twice; skipped with its annotations", i, id, name));
    return;
  }
  s.bytes = formats::file_size_or_zero(path);
  s.width = dimension(img, "width");
  s.height = dimension(img, "height");
  c.image_index[id] = c.ds.samples.size();
  c.ds.samples.push_back(std::move(s));
}

/// bbox [x, y, w, h]; null (how JSON writers spell NaN) is a bad number, anything else non-numeric a parse
/// error.
bool parse_bbox(const json& ann, size_t i, CocoContext& c, Box& box) {
  if (!ann.contains("bbox") || !ann["bbox"].is_array() || ann["bbox"].size() != 4) {
    c.ds.add_issue("parse_error", Severity::kError, c.json_rel, 0,
                   fmt::format("annotations[{}]: expected bbox [x, y, w, h]; skipped", i));
    return false;
  }
  double v[4];
  for (int k = 0; k < 4; ++k) {
    const auto& x = ann["bbox"][k];
    if (!x.is_number()) {
      const bool null = x.is_null();
      c.ds.add_issue(null ? "bad_number" : "parse_error", Severity::kError, c.json_rel, 0,
                     fmt::format("annotations[{}]: expected a {}number in bbox, got {}; skipped", i,
                                 null ? "finite " : "", x.dump()));
      return false;
    }
    v[k] = x.get<double>();
  }
  // Negative widths/heights are kept as inverted boxes: validation reports them.
  box = Box{static_cast<float>(v[0]), static_cast<float>(v[1]), static_cast<float>(v[0] + v[2]),
            static_cast<float>(v[1] + v[3])};
  box.crowd = ann.contains("iscrowd") && ann["iscrowd"].is_number() && ann["iscrowd"].get<double>() != 0;
  return true;
}

std::optional<long long> int_field(const json& obj, const char* key) {
  if (!obj.is_object() || !obj.contains(key) || !obj[key].is_number_integer()) return std::nullopt;
  return obj[key].get<long long>();
}

void read_annotation(const json& ann, size_t i, CocoContext& c) {
  auto image_id = int_field(ann, "image_id");
  auto category_id = int_field(ann, "category_id");
  if (!image_id || !category_id) {
    c.ds.add_issue("parse_error", Severity::kError, c.json_rel, 0,
                   fmt::format("annotations[{}]: expected integer image_id and category_id; skipped", i));
    return;
  }
  auto img = c.image_index.find(*image_id);
  if (img == c.image_index.end()) {
    c.ds.add_issue("unknown_image", Severity::kError, c.json_rel, 0,
                   fmt::format("annotations[{}]: image_id {} is not in images; skipped", i, *image_id));
    return;
  }
  if (img->second == SIZE_MAX) return;  // image missing on disk, already reported
  auto cat = c.category_index.find(*category_id);
  if (cat == c.category_index.end() || cat->second < 0) {
    c.ds.add_issue(
        "unknown_class", Severity::kError, c.json_rel, 0,
        fmt::format("annotations[{}]: category_id {} is not a known class; skipped", i, *category_id));
    return;
  }
  Box box;
  if (!parse_bbox(ann, i, c, box)) return;
  box.class_id = cat->second;
  c.ds.samples[img->second].boxes.push_back(box);
}

const json& array_or_empty(const json& doc, const char* key, CocoContext& c) {
  static const json kEmpty = json::array();
  if (doc.is_object() && doc.contains(key) && doc[key].is_array()) return doc[key];
  c.ds.add_issue("parse_error", Severity::kError, c.json_rel, 0, fmt::format("expected a '{}' array", key));
  return kEmpty;
}

Dataset read_coco(const fs::path& root, const ReadOptions& options) {
  const fs::path json_path = find_json(root);
  const std::string text = read_file(json_path);
  json doc;
  try {
    doc = json::parse(text);
  } catch (const json::parse_error& e) {
    // The one unrecoverable case: without the JSON nothing of the dataset is known.
    throw DataError(fmt::format("parse_error: {} is not valid JSON at byte {}: {}", to_utf8(json_path),
                                e.byte, e.what()));
  }
  Dataset ds;
  ds.task = Task::kDetection;
  CocoContext c{ds, "", {}, {}, {}};
  const json& images = array_or_empty(doc, "images", c);
  ds.root = image_base(json_path.parent_path(), images);
  c.json_rel = formats::rel_utf8(ds.root, json_path);
  for (auto& issue : ds.issues) issue.file = c.json_rel;
  read_categories(array_or_empty(doc, "categories", c), options, c);
  for (size_t i = 0; i < images.size(); ++i) read_image_entry(images[i], i, ds.root, c);
  const json& anns = array_or_empty(doc, "annotations", c);
  for (size_t i = 0; i < anns.size(); ++i) read_annotation(anns[i], i, c);
  formats::sort_samples(ds);
  return ds;
}

// ---- writer ----

json image_entry(const Sample& s, size_t id, const ImageSource& images) {
  int w = s.width, h = s.height;
  if (w <= 0 || h <= 0) {
    if (!images) throw DataError(fmt::format("{}: image size unknown and no image source", s.file));
    auto size = formats::read_image_size(images(s));
    if (!size.ok()) throw DataError(fmt::format("{}: cannot read the image size: {}", s.file, size.problem));
    w = size.width;
    h = size.height;
  }
  return json{{"id", id}, {"file_name", s.file}, {"width", w}, {"height", h}};
}

json annotation_entry(const Box& b, size_t id, size_t image_id) {
  const double w = double(b.x2) - b.x1, h = double(b.y2) - b.y1;
  return json{{"id", id},
              {"image_id", image_id},
              {"category_id", b.class_id + 1},
              {"bbox", {b.x1, b.y1, w, h}},
              {"area", w * h},
              {"iscrowd", b.crowd ? 1 : 0}};
}

void write_coco(const Dataset& ds, const ImageSource& images, const fs::path& out,
                const WriteOptions& options) {
  VIGIL_CHECK(ds.task == Task::kDetection, "expected a detection dataset for the coco writer, got {}",
              task_name(ds.task));
  json doc{{"info", {{"description", "written by vigil"}}},
           {"images", json::array()},
           {"annotations", json::array()},
           {"categories", json::array()}};
  for (size_t k = 0; k < ds.classes.size(); ++k) {
    doc["categories"].push_back({{"id", k + 1}, {"name", ds.classes[k]}, {"supercategory", ""}});
  }
  size_t ann_id = 1;
  for (size_t i = 0; i < ds.samples.size(); ++i) {
    const Sample& s = ds.samples[i];
    doc["images"].push_back(image_entry(s, i + 1, images));
    for (const auto& b : s.boxes) doc["annotations"].push_back(annotation_entry(b, ann_id++, i + 1));
    if (options.copy_images) formats::copy_image(images(s), out / "images" / formats::from_utf8(s.file));
  }
  // file_name stays the sample's relative path, so reading back (root = out/images) gives the same files.
  write_file_atomic(out / "annotations.json", doc.dump(1) + "\n");
}

}  // namespace

FormatInfo make_coco_format() {
  FormatInfo info;
  info.name = "coco";
  info.description =
      "COCO detection JSON (annotations.json or instances_*.json) with images beside it or in images/";
  info.read = read_coco;
  info.write = write_coco;
  return info;
}

}  // namespace vigil::data

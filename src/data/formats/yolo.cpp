// YOLO: images/ + labels/ with one "class cx cy w h" (normalised 0..1) line per box, flat, in the Ultralytics
// split layout images/{train,val,test}/ + labels/{train,val,test}/, or as Roboflow exports it,
// {train,valid,test}/images + {train,valid,test}/labels. Class names come from data.yaml, classes.txt
// or ReadOptions::classes. An empty label file is an image without objects (a negative, kept); a polygon line
// "class x1 y1 x2 y2 x3 y3 ..." (segmentation exports) is read as its bounding box and reported as info.

#include <yaml-cpp/yaml.h>

#include <algorithm>
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

using formats::NumberStatus;

/// Normalises the split folder names people use to the three Sample::split values.
std::string split_of(const fs::path& rel_in_images) {
  auto it = rel_in_images.begin();
  if (std::distance(rel_in_images.begin(), rel_in_images.end()) < 2) return "";
  const std::string first = to_lower(it->string());
  if (first == "train" || first == "training") return "train";
  if (first == "val" || first == "valid" || first == "validation") return "val";
  if (first == "test" || first == "testing") return "test";
  return "";
}

/// `names:` as a list or as an {id: name} map; gaps in a map are reported and filled with the id.
std::vector<std::string> names_from_yaml(const YAML::Node& names, const std::string& rel, Dataset& ds) {
  std::vector<std::string> out;
  if (names.IsSequence()) {
    for (const auto& n : names) out.push_back(n.as<std::string>());
    return out;
  }
  std::map<long long, std::string> by_id;
  for (const auto& kv : names) {
    auto id = parse_int(kv.first.as<std::string>());
    if (!id || *id < 0) {
      ds.add_issue("parse_error", Severity::kError, rel, kv.first.Mark().line + 1,
                   fmt::format("expected a class id >= 0 in names, got '{}'", kv.first.as<std::string>()));
      continue;
    }
    by_id[*id] = kv.second.as<std::string>();
  }
  for (const auto& [id, name] : by_id) {
    while (static_cast<long long>(out.size()) < id) {
      ds.add_issue("parse_error", Severity::kWarning, rel, 0,
                   fmt::format("class id {} missing from names; named '{}'", out.size(), out.size()));
      out.push_back(std::to_string(out.size()));
    }
    out.push_back(name);
  }
  return out;
}

/// Ultralytics refuses a data.yaml whose `nc` differs from the number of names; the names are what labels
/// index, so they win here and the mismatch is a warning.
void check_nc(const YAML::Node& nc, size_t names, const std::string& rel, Dataset& ds) {
  if (!nc || !nc.IsScalar()) return;
  auto n = parse_int(nc.as<std::string>());
  if (n && *n == static_cast<long long>(names)) return;
  ds.add_issue("parse_error", Severity::kWarning, rel, nc.Mark().line + 1,
               fmt::format("expected nc to equal the {} names, got '{}'; the names are used", names,
                           nc.as<std::string>()));
}

std::optional<std::vector<std::string>> classes_from_yaml(const fs::path& root, Dataset& ds) {
  for (const char* name : {"data.yaml", "data.yml", "dataset.yaml"}) {
    const fs::path path = root / name;
    if (!fs::is_regular_file(path)) continue;
    try {
      YAML::Node doc = YAML::LoadFile(path.string());
      YAML::Node names = doc["names"];
      if (names && (names.IsSequence() || names.IsMap())) {
        auto out = names_from_yaml(names, name, ds);
        check_nc(doc["nc"], out.size(), name, ds);
        return out;
      }
      ds.add_issue("parse_error", Severity::kWarning, name, 0, "no 'names' list or map; ignored");
    } catch (const YAML::Exception& e) {
      ds.add_issue("parse_error", Severity::kError, name, e.mark.line + 1,
                   fmt::format("cannot read class names: {}", e.msg));
    }
  }
  return std::nullopt;
}

std::optional<std::vector<std::string>> classes_from_txt(const fs::path& root, const fs::path& labels) {
  for (const fs::path& path : {root / "classes.txt", labels / "classes.txt"}) {
    if (!fs::is_regular_file(path)) continue;
    std::vector<std::string> out;
    for (const auto& line : formats::split_lines(read_file(path))) {
      if (!trim(line).empty()) out.emplace_back(trim(line));
    }
    return out;
  }
  return std::nullopt;
}

/// An explicit list wins (the caller asked for it); then data.yaml, then classes.txt.
std::optional<std::vector<std::string>> resolve_classes(const fs::path& root, const fs::path& labels,
                                                        const ReadOptions& options, Dataset& ds) {
  if (!options.classes.empty()) return options.classes;
  if (auto c = classes_from_yaml(root, ds)) return c;
  return classes_from_txt(root, labels);
}

struct LabelContext {
  const std::string& rel;
  const std::optional<std::vector<std::string>>& classes;
  int width, height;
};

/// A polygon line needs at least three points: "class x1 y1 x2 y2 x3 y3 ..." (7 or more fields, odd count).
bool is_polygon_shape(size_t fields) {
  return fields >= 7 && fields % 2 == 1;
}

/// Parses one "class cx cy w h" line, or a polygon "class x1 y1 x2 y2 x3 y3 ..." as Roboflow and Ultralytics
/// write segmentation exports, read as the polygon's bounding box (Ultralytics' segments2boxes). On failure
/// records the issue and returns false.
bool parse_yolo_line(const std::string& line, int line_no, const LabelContext& ctx, Dataset& ds, Box& box) {
  auto fields = split_ws(line);
  const bool polygon = is_polygon_shape(fields.size());
  if (fields.size() != 5 && !polygon) {
    ds.add_issue("parse_error", Severity::kError, ctx.rel, line_no,
                 fmt::format("expected 5 fields 'class cx cy w h' or a polygon 'class x1 y1 x2 y2 x3 y3 ...' "
                             "(an odd count of at least 7), got {}: '{}'",
                             fields.size(), line));
    return false;
  }
  auto cls = parse_int(fields[0]);
  if (!cls) {
    ds.add_issue("parse_error", Severity::kError, ctx.rel, line_no,
                 fmt::format("expected an integer class id, got '{}'", fields[0]));
    return false;
  }
  std::vector<double> v;
  size_t bad = 0;
  auto status = formats::parse_numbers({fields.begin() + 1, fields.end()}, v, bad);
  if (status != NumberStatus::kOk) {
    const bool nonfinite = status == NumberStatus::kNonFinite;
    ds.add_issue(nonfinite ? "bad_number" : "parse_error", Severity::kError, ctx.rel, line_no,
                 fmt::format("expected a {}number, got '{}'", nonfinite ? "finite " : "", fields[bad + 1]));
    return false;
  }
  const long long n_classes = ctx.classes ? static_cast<long long>(ctx.classes->size()) : (1LL << 30);
  if (*cls < 0 || *cls >= n_classes) {
    ds.add_issue("unknown_class", Severity::kError, ctx.rel, line_no,
                 fmt::format("expected a class id in [0, {}), got {}; box dropped", n_classes, *cls));
    return false;
  }
  double x1 = v[0] - v[2] / 2, y1 = v[1] - v[3] / 2, x2 = v[0] + v[2] / 2, y2 = v[1] + v[3] / 2;
  if (polygon) {
    // Line by line, unlike Ultralytics, which reads every line of a file as a polygon once one is: a file
    // mixing boxes and polygons (Roboflow writes them) would lose its boxes there.
    x1 = x2 = v[0];
    y1 = y2 = v[1];
    for (size_t i = 2; i + 1 < v.size(); i += 2) {
      x1 = std::min(x1, v[i]);
      x2 = std::max(x2, v[i]);
      y1 = std::min(y1, v[i + 1]);
      y2 = std::max(y2, v[i + 1]);
    }
    ds.add_issue(
        "polygon_label", Severity::kInfo, ctx.rel, line_no,
        fmt::format("polygon of {} points (a segmentation export) read as its bounding box", v.size() / 2));
  }
  // Values outside [0, 1] are kept: validation reports boxes outside the image with the image at hand.
  const double W = ctx.width, H = ctx.height;
  box = Box{static_cast<float>(x1 * W), static_cast<float>(y1 * H), static_cast<float>(x2 * W),
            static_cast<float>(y2 * H)};
  box.class_id = static_cast<int>(*cls);
  return true;
}

void read_labels(const fs::path& path, const LabelContext& ctx, Dataset& ds, Sample& s) {
  std::vector<std::string> lines;
  try {
    lines = formats::split_lines(read_file(path));
  } catch (const Error& e) {
    ds.add_issue("unreadable", Severity::kError, ctx.rel, 0, e.what());
    return;
  }
  for (size_t i = 0; i < lines.size(); ++i) {
    if (trim(lines[i]).empty()) continue;
    Box box;
    if (parse_yolo_line(lines[i], static_cast<int>(i) + 1, ctx, ds, box)) s.boxes.push_back(box);
  }
}

/// One images/ + labels/ pair. `split` is fixed for the Roboflow layout (<split>/images), else taken from the
/// first folder under images/ (Ultralytics: images/<split>/).
struct YoloLayout {
  fs::path root, images, labels;
  std::string split;
};

/// images/ + labels/ at the root; else every <split>/images + <split>/labels pair (Roboflow exports).
std::vector<YoloLayout> find_layouts(const fs::path& root) {
  auto images = formats::find_child_dir(root, "images");
  auto labels = formats::find_child_dir(root, "labels");
  if (images && labels) return {YoloLayout{root, *images, *labels, ""}};
  std::vector<YoloLayout> out;
  for (const auto& sub : formats::list_subdirs(root)) {
    auto si = formats::find_child_dir(sub, "images");
    auto sl = formats::find_child_dir(sub, "labels");
    const std::string split = split_of(fs::path(sub.filename()) / "x");
    if (si && sl && !split.empty()) out.push_back(YoloLayout{root, *si, *sl, split});
  }
  if (out.empty()) {
    throw NotFound(fmt::format(
        "expected images/ and labels/ folders (or <split>/images and <split>/labels) in {}", to_utf8(root)));
  }
  return out;
}

/// One image: pairs it with its label file and converts the boxes to pixels. Returns false when skipped.
bool read_one(const YoloLayout& l, const fs::path& rel_img,
              const std::optional<std::vector<std::string>>& classes, Dataset& ds, Sample& s) {
  const fs::path img = l.images / rel_img;
  const fs::path label = (l.labels / rel_img).replace_extension(".txt");
  s.file = formats::rel_utf8(l.root, img);
  if (!fs::is_regular_file(label)) {
    // Ultralytics treats a missing label file as background; we do not, because a forgotten label file looks
    // the same. An empty .txt states "no objects" (and is what the yolo writer produces).
    ds.add_issue("missing_label", Severity::kWarning, s.file, 0,
                 "no label file; skipped (write an empty .txt to mark a background image)");
    return false;
  }
  s.label_file = formats::rel_utf8(l.root, label);
  s.split = l.split.empty() ? split_of(rel_img) : l.split;
  s.bytes = formats::file_size_or_zero(img);
  auto size = formats::read_image_size(img);
  s.width = size.width;
  s.height = size.height;
  LabelContext ctx{s.label_file, classes, size.width, size.height};
  read_labels(label, ctx, ds, s);
  if (!size.ok()) {
    ds.add_issue("unreadable", Severity::kError, s.file, 0,
                 fmt::format("cannot read the image size ({}); its {} boxes are skipped because normalised "
                             "coordinates need it",
                             size.problem, s.boxes.size()));
    s.boxes.clear();
  }
  return true;
}

void report_orphan_labels(const YoloLayout& l, const std::set<fs::path>& used, Dataset& ds) {
  for (const auto& rel : list_files_recursive(l.labels)) {
    if (lower_extension(rel) != ".txt" || rel.filename() == "classes.txt" || formats::is_hidden(rel))
      continue;
    if (used.count(fs::path(rel).replace_extension())) continue;
    ds.add_issue("missing_image", Severity::kWarning, formats::rel_utf8(l.root, l.labels / rel), 0,
                 "no image with this name under images/; skipped");
  }
}

void read_layout(const YoloLayout& l, const std::optional<std::vector<std::string>>& classes, Dataset& ds) {
  std::set<fs::path> used;  // image paths without extension: the label file each one claims
  for (const auto& rel : list_files_recursive(l.images)) {
    const std::string file = formats::rel_utf8(l.root, l.images / rel);
    if (formats::is_hidden(rel) || !formats::has_image_extension(rel)) {
      ds.add_issue("ignored_file", formats::is_hidden(rel) ? Severity::kInfo : Severity::kWarning, file, 0,
                   "not an image file name; ignored");
      continue;
    }
    if (!used.insert(fs::path(rel).replace_extension()).second) {
      ds.add_issue("duplicate_image", Severity::kWarning, file, 0,
                   "another image has the same name and so the same label file; skipped");
      continue;
    }
    Sample s;
    if (read_one(l, rel, classes, ds, s)) ds.samples.push_back(std::move(s));
  }
  report_orphan_labels(l, used, ds);
}

Dataset read_yolo(const fs::path& root, const ReadOptions& options) {
  const auto layouts = find_layouts(root);
  Dataset ds;
  ds.task = Task::kDetection;
  ds.root = root;
  auto classes = resolve_classes(root, layouts[0].labels, options, ds);
  for (const auto& l : layouts) read_layout(l, classes, ds);
  if (classes) {
    ds.classes = *classes;
  } else {
    int max_id = -1;
    for (const auto& s : ds.samples) {
      for (const auto& b : s.boxes) max_id = std::max(max_id, b.class_id);
    }
    for (int i = 0; i <= max_id; ++i) ds.classes.push_back(std::to_string(i));
    ds.add_issue("no_class_names", Severity::kInfo, "", 0,
                 "no data.yaml or classes.txt; classes are named by their ids");
  }
  formats::sort_samples(ds);
  return ds;
}

// ---- writer ----

/// Flattens sample paths to a file name per split; full paths (with '_') only where names would collide.
std::vector<std::string> output_names(const Dataset& ds) {
  std::map<std::pair<std::string, std::string>, int> count;
  for (const auto& s : ds.samples) ++count[{s.split, to_utf8(formats::from_utf8(s.file).filename())}];
  std::vector<std::string> names;
  std::set<std::pair<std::string, std::string>> taken;
  for (size_t i = 0; i < ds.samples.size(); ++i) {
    const auto& s = ds.samples[i];
    std::string name = to_utf8(formats::from_utf8(s.file).filename());
    if (count[{s.split, name}] > 1) {
      name = s.file;
      std::replace(name.begin(), name.end(), '/', '_');
    }
    if (!taken.insert({s.split, name}).second) name = fmt::format("{}_{}", i, name);
    taken.insert({s.split, name});
    names.push_back(name);
  }
  return names;
}

std::string label_text(const Sample& s, int width, int height) {
  std::string out;
  for (const auto& b : s.boxes) {
    const double cx = (double(b.x1) + b.x2) / 2 / width, cy = (double(b.y1) + b.y2) / 2 / height;
    const double w = (double(b.x2) - b.x1) / width, h = (double(b.y2) - b.y1) / height;
    out += fmt::format("{} {:.8f} {:.8f} {:.8f} {:.8f}\n", b.class_id, cx, cy, w, h);
  }
  return out;
}

void write_data_yaml(const Dataset& ds, const fs::path& out) {
  std::set<std::string> splits;
  for (const auto& s : ds.samples) splits.insert(s.split);
  YAML::Emitter y;
  y << YAML::BeginMap << YAML::Key << "path" << YAML::Value << to_utf8(fs::absolute(out).lexically_normal());
  const std::string train = splits.count("train") ? "images/train" : "images";
  y << YAML::Key << "train" << YAML::Value << train;
  // Ultralytics requires val; without a val split, validating on the training images is the honest fallback.
  y << YAML::Key << "val" << YAML::Value << (splits.count("val") ? "images/val" : train);
  if (splits.count("test")) y << YAML::Key << "test" << YAML::Value << "images/test";
  y << YAML::Key << "nc" << YAML::Value << ds.classes.size();
  y << YAML::Key << "names" << YAML::Value << YAML::BeginMap;
  for (size_t i = 0; i < ds.classes.size(); ++i) y << YAML::Key << i << YAML::Value << ds.classes[i];
  y << YAML::EndMap << YAML::EndMap;
  write_file_atomic(out / "data.yaml", std::string(y.c_str()) + "\n");
  write_file_atomic(out / "classes.txt", join(ds.classes, "\n") + "\n");
}

void write_yolo(const Dataset& ds, const ImageSource& images, const fs::path& out,
                const WriteOptions& options) {
  VIGIL_CHECK(ds.task == Task::kDetection, "expected a detection dataset for the yolo writer, got {}",
              task_name(ds.task));
  const auto names = output_names(ds);
  for (size_t i = 0; i < ds.samples.size(); ++i) {
    const Sample& s = ds.samples[i];
    const fs::path sub = s.split.empty() ? fs::path() : fs::path(s.split);
    int w = s.width, h = s.height;
    if (w <= 0 || h <= 0) {
      if (!images) throw DataError(fmt::format("{}: image size unknown and no image source", s.file));
      auto size = formats::read_image_size(images(s));
      if (!size.ok())
        throw DataError(fmt::format("{}: cannot read the image size: {}", s.file, size.problem));
      w = size.width;
      h = size.height;
    }
    const fs::path name = formats::from_utf8(names[i]);
    write_file_atomic((out / "labels" / sub / name).replace_extension(".txt"), label_text(s, w, h));
    if (options.copy_images) formats::copy_image(images(s), out / "images" / sub / name);
  }
  write_data_yaml(ds, out);
}

}  // namespace

FormatInfo make_yolo_format() {
  FormatInfo info;
  info.name = "yolo";
  info.description =
      "YOLO: images/ + labels/ (class cx cy w h normalised), optional train/val/test, data.yaml";
  info.read = read_yolo;
  info.write = write_yolo;
  return info;
}

}  // namespace vigil::data

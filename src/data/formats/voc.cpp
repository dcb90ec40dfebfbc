// Pascal VOC: one XML per image (Annotations/*.xml, annotations/xmls/*.xml, or *.xml at the root) naming its
// image in <filename>, found in JPEGImages/, images/ or Images/ (or beside the XML).
//
// Coordinates: VOC stores 1-based inclusive pixel indices. We keep xmin/ymin/xmax/ymax exactly as written
// (no -1 shift) so that reading and writing VOC is lossless and boxes match what annotation tools display;
// the half-pixel difference to the exclusive-edge convention is below labelling noise.

#include <pugixml.hpp>

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

/// A box whose class is still a name: classes are only known once every file has been read.
struct NamedBox {
  Box box;
  std::string name;
  int line = 0;
};

struct Parsed {
  Sample sample;
  std::vector<NamedBox> boxes;
};

int line_of(const std::string& text, ptrdiff_t offset) {
  if (offset < 0) return 0;
  auto end = text.begin() + std::min<ptrdiff_t>(offset, static_cast<ptrdiff_t>(text.size()));
  return 1 + static_cast<int>(std::count(text.begin(), end, '\n'));
}

bool flag(const pugi::xml_node& obj, const char* name) {
  return trim(obj.child_value(name)) == "1";
}

/// Reads <bndbox>; on failure records the issue and returns false.
bool parse_bndbox(const pugi::xml_node& obj, const std::string& rel, int line, Dataset& ds, Box& box) {
  auto bb = obj.child("bndbox");
  std::vector<std::string> fields;
  for (const char* k : {"xmin", "ymin", "xmax", "ymax"}) {
    if (!bb || !bb.child(k)) {
      ds.add_issue("parse_error", Severity::kError, rel, line, fmt::format("object without bndbox/{}", k));
      return false;
    }
    fields.emplace_back(trim(bb.child_value(k)));
  }
  std::vector<double> v;
  size_t bad = 0;
  auto status = formats::parse_numbers(fields, v, bad);
  if (status != NumberStatus::kOk) {
    const bool nonfinite = status == NumberStatus::kNonFinite;
    ds.add_issue(
        nonfinite ? "bad_number" : "parse_error", Severity::kError, rel, line,
        fmt::format("expected a {}number in bndbox, got '{}'", nonfinite ? "finite " : "", fields[bad]));
    return false;
  }
  box = Box{static_cast<float>(v[0]), static_cast<float>(v[1]), static_cast<float>(v[2]),
            static_cast<float>(v[3])};
  box.difficult = flag(obj, "difficult");
  box.truncated = flag(obj, "truncated");
  return true;
}

/// Where the image named by <filename> lives: the usual VOC folders, then beside the XML.
std::optional<fs::path> find_image(const fs::path& root, const fs::path& xml, const std::string& filename) {
  std::vector<fs::path> dirs = {root / "JPEGImages", root / "images", root / "Images", xml.parent_path(),
                                root};
  std::error_code ec;
  for (const auto& d : dirs) {
    if (!filename.empty()) {
      if (fs::is_regular_file(d / formats::from_utf8(filename), ec)) return d / formats::from_utf8(filename);
      continue;
    }
    for (const auto& f : formats::list_dir_files(d)) {
      if (f.stem() == xml.stem() && formats::has_image_extension(f)) return f;
    }
  }
  return std::nullopt;
}

void read_size(const pugi::xml_node& ann, const std::string& rel, const std::string& text, Dataset& ds,
               Sample& s) {
  auto size = ann.child("size");
  if (!size) return;
  auto w = parse_int(size.child_value("width"));
  auto h = parse_int(size.child_value("height"));
  if (w && h && *w >= 0 && *h >= 0) {
    s.width = static_cast<int>(*w);
    s.height = static_cast<int>(*h);
  } else {
    ds.add_issue("parse_error", Severity::kWarning, rel, line_of(text, size.offset_debug()),
                 "expected integer <size> width and height; image size left unknown");
  }
}

std::optional<Parsed> parse_xml(const fs::path& root, const fs::path& xml, Dataset& ds) {
  const std::string rel = formats::rel_utf8(root, xml);
  std::string text;
  try {
    text = read_file(xml);
  } catch (const Error& e) {
    ds.add_issue("unreadable", Severity::kError, rel, 0, e.what());
    return std::nullopt;
  }
  pugi::xml_document doc;
  auto result = doc.load_buffer(text.data(), text.size());
  if (!result) {
    ds.add_issue("parse_error", Severity::kError, rel, line_of(text, result.offset),
                 fmt::format("malformed XML at byte {}: {}; skipped", result.offset, result.description()));
    return std::nullopt;
  }
  auto ann = doc.child("annotation");
  if (!ann) {
    ds.add_issue("parse_error", Severity::kError, rel, 0, "expected an <annotation> root element; skipped");
    return std::nullopt;
  }
  const std::string filename(trim(ann.child_value("filename")));
  auto image = find_image(root, xml, filename);
  if (!image) {
    ds.add_issue(
        "missing_image", Severity::kWarning, rel, 0,
        fmt::format("image '{}' not found; skipped", filename.empty() ? to_utf8(xml.stem()) : filename));
    return std::nullopt;
  }
  Parsed p;
  p.sample.file = formats::rel_utf8(root, *image);
  p.sample.label_file = rel;
  p.sample.bytes = formats::file_size_or_zero(*image);
  read_size(ann, rel, text, ds, p.sample);
  for (auto obj : ann.children("object")) {
    const int line = line_of(text, obj.offset_debug());
    NamedBox nb{{}, std::string(trim(obj.child_value("name"))), line};
    if (parse_bndbox(obj, rel, line, ds, nb.box)) p.boxes.push_back(std::move(nb));
  }
  return p;
}

std::vector<fs::path> xmls_in(const fs::path& dir) {
  std::vector<fs::path> out;
  for (const auto& f : formats::list_dir_files(dir)) {
    if (lower_extension(f) == ".xml") out.push_back(f);
  }
  return out;
}

/// The folder holding the XML files: Annotations/ (VOC), annotations/xmls/ (the Oxford-IIIT Pet layout, which
/// the weapons seed's dataset uses: annotations/ also holds trimaps/ and list files there), else the root.
fs::path xml_dir(const fs::path& root) {
  auto ann = formats::find_child_dir(root, "Annotations");
  if (!ann) return root;
  if (auto xmls = formats::find_child_dir(*ann, "xmls"); xmls && xmls_in(*ann).empty()) return *xmls;
  return *ann;
}

/// Images in the VOC image folders (or beside root-level XMLs) that no XML refers to: unlabelled, so not
/// known to be empty.
void report_unlabelled(const fs::path& root, const std::set<std::string>& used, Dataset& ds) {
  std::vector<fs::path> dirs = {root / "JPEGImages", root / "images", root / "Images"};
  if (!formats::find_child_dir(root, "Annotations")) dirs.push_back(root);
  for (const auto& dir : dirs) {
    for (const auto& f : formats::list_dir_files(dir)) {
      const std::string rel = formats::rel_utf8(root, f);
      if (formats::has_image_extension(f) && !used.count(rel)) {
        ds.add_issue("missing_label", Severity::kWarning, rel, 0,
                     "no annotation XML refers to this image; skipped");
      }
    }
  }
}

Dataset read_voc(const fs::path& root, const ReadOptions& options) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw NotFound(fmt::format("VOC folder not found: {}", to_utf8(root)));
  Dataset ds;
  ds.task = Task::kDetection;
  ds.root = root;
  std::vector<Parsed> parsed;
  std::set<std::string> names, used;
  for (const auto& xml : xmls_in(xml_dir(root))) {
    auto p = parse_xml(root, xml, ds);
    if (!p) continue;
    if (!used.insert(p->sample.file).second) {
      ds.add_issue("duplicate_image", Severity::kWarning, p->sample.label_file, 0,
                   fmt::format("'{}' is already annotated by another XML; skipped", p->sample.file));
      continue;
    }
    for (const auto& nb : p->boxes) names.insert(nb.name);
    parsed.push_back(std::move(*p));
  }
  report_unlabelled(root, used, ds);
  ds.classes =
      options.classes.empty() ? std::vector<std::string>(names.begin(), names.end()) : options.classes;
  for (auto& p : parsed) {
    for (auto& nb : p.boxes) {
      nb.box.class_id = ds.class_index(nb.name);
      if (nb.box.class_id < 0) {
        ds.add_issue(
            "unknown_class", Severity::kError, p.sample.label_file, nb.line,
            fmt::format("expected a class in ({}), got '{}'; box dropped", join(ds.classes, ", "), nb.name));
        continue;
      }
      p.sample.boxes.push_back(nb.box);
    }
    ds.samples.push_back(std::move(p.sample));
  }
  formats::sort_samples(ds);
  return ds;
}

}  // namespace

FormatInfo make_voc_format() {
  FormatInfo info;
  info.name = "voc";
  info.description =
      "Pascal VOC: Annotations/*.xml (or annotations/xmls/*.xml) + JPEGImages/ or images/ (xmin ymin xmax "
      "ymax, difficult, truncated)";
  info.read = read_voc;
  return info;
}

}  // namespace vigil::data

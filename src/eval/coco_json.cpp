// COCO ground truth and results as JSON. Reading checks every element and names it on failure, because a
// results file that silently loses entries (pycocotools drops unknown categories) gives a wrong mAP that
// looks right.

#include "vigil/eval/coco_json.h"

#include <algorithm>
#include <array>
#include <cmath>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"

namespace vigil::eval {

namespace {

using nlohmann::json;

/// Context for messages: "<source>: <array>[<index>]".
struct Where {
  const std::string& source;
  const char* array;
  size_t index;
  std::string str() const { return fmt::format("{}: {}[{}]", source, array, index); }
};

std::string shown(const json& v) {
  std::string s = v.dump();
  return s.size() > 80 ? s.substr(0, 77) + "..." : s;
}

/// An integer field; an integral float (1.0) is accepted since some writers emit those.
int64_t int_field(const json& obj, const char* key, const Where& w) {
  VIGIL_CHECK(obj.is_object(), "{}: expected an object, got {}", w.str(), shown(obj));
  auto it = obj.find(key);
  VIGIL_CHECK(it != obj.end(), "{}: expected an integer '{}', got no such field", w.str(), key);
  if (it->is_number_integer()) return it->get<int64_t>();
  const bool integral = it->is_number_float() && std::isfinite(it->get<double>()) &&
                        std::trunc(it->get<double>()) == it->get<double>() &&
                        std::fabs(it->get<double>()) < 9e15;
  VIGIL_CHECK(integral, "{}: expected an integer '{}', got {}", w.str(), key, shown(*it));
  return static_cast<int64_t>(it->get<double>());
}

double number_field(const json& obj, const char* key, const Where& w) {
  auto it = obj.find(key);
  VIGIL_CHECK(it != obj.end(), "{}: expected a number '{}', got no such field", w.str(), key);
  VIGIL_CHECK(it->is_number() && std::isfinite(it->get<double>()),
              "{}: expected a finite number '{}', got {}", w.str(), key, shown(*it));
  return it->get<double>();
}

std::array<double, 4> bbox_field(const json& obj, const Where& w) {
  auto it = obj.find("bbox");
  VIGIL_CHECK(it != obj.end() && it->is_array() && it->size() == 4,
              "{}: expected 'bbox' [x, y, w, h], got {}", w.str(),
              it == obj.end() ? "no such field" : shown(*it));
  std::array<double, 4> v{};
  for (size_t k = 0; k < 4; ++k) {
    const json& x = (*it)[k];
    VIGIL_CHECK(x.is_number() && std::isfinite(x.get<double>()),
                "{}: expected finite numbers in 'bbox', got {}", w.str(), shown(*it));
    v[k] = x.get<double>();
  }
  VIGIL_CHECK(v[2] >= 0 && v[3] >= 0, "{}: expected 'bbox' width and height >= 0, got {}", w.str(),
              shown(*it));
  return v;
}

const json& array_field(const json& doc, const char* key, const std::string& source) {
  VIGIL_CHECK(doc.is_object(), "{}: expected a COCO object with images, categories and annotations, got {}",
              source, shown(doc));
  auto it = doc.find(key);
  VIGIL_CHECK(it != doc.end() && it->is_array(), "{}: expected a '{}' array, got {}", source, key,
              it == doc.end() ? "no such field" : shown(*it));
  return *it;
}

json parse_text(const std::string& text, const std::string& source) {
  try {
    return json::parse(text);
  } catch (const json::parse_error& e) {
    throw InvalidArgument(
        fmt::format("{}: expected JSON, got a parse error at byte {}: {}", source, e.byte, e.what()));
  }
}

bool crowd_flag(const json& ann, const Where& w) {
  auto it = ann.find("iscrowd");
  if (it == ann.end() || it->is_null()) return false;
  if (it->is_boolean()) return it->get<bool>();
  VIGIL_CHECK(it->is_number(), "{}: expected 'iscrowd' 0 or 1, got {}", w.str(), shown(*it));
  return it->get<double>() != 0;
}

void read_categories(const json& cats, const std::string& source, DetectionData& out) {
  for (size_t i = 0; i < cats.size(); ++i) {
    const Where w{source, "categories", i};
    Category c;
    c.id = int_field(cats[i], "id", w);
    auto name = cats[i].find("name");
    VIGIL_CHECK(name != cats[i].end() && name->is_string(), "{}: expected a string 'name', got {}", w.str(),
                name == cats[i].end() ? "no such field" : shown(*name));
    c.name = name->get<std::string>();
    for (const auto& seen : out.categories) {
      VIGIL_CHECK(seen.id != c.id, "{}: expected a new category id, got {} again", w.str(), c.id);
    }
    out.categories.push_back(std::move(c));
  }
}

/// The ids boxes may refer to, sorted, and how messages say where they should come from.
struct KnownIds {
  std::vector<int64_t> images, categories;
  const char* image_origin;     ///< "listed in images", "of the ground truth"
  const char* category_origin;  ///< "listed in categories", "of the ground truth"
};

KnownIds known_ids(const DetectionData& d, const char* image_origin, const char* category_origin) {
  KnownIds ids{d.image_ids, {}, image_origin, category_origin};
  for (const auto& c : d.categories) ids.categories.push_back(c.id);
  std::sort(ids.images.begin(), ids.images.end());
  std::sort(ids.categories.begin(), ids.categories.end());
  return ids;
}

/// image_id and category_id (both checked against `ids`) and bbox of an annotation or a results entry.
template <class Box>
void read_box(const json& obj, const Where& w, const KnownIds& ids, Box& b) {
  b.image_id = int_field(obj, "image_id", w);
  VIGIL_CHECK(std::binary_search(ids.images.begin(), ids.images.end(), b.image_id),
              "{}: expected an image id {}, got image_id {}", w.str(), ids.image_origin, b.image_id);
  b.category_id = int_field(obj, "category_id", w);
  VIGIL_CHECK(std::binary_search(ids.categories.begin(), ids.categories.end(), b.category_id),
              "{}: expected a category id {}, got category_id {}", w.str(), ids.category_origin,
              b.category_id);
  const auto box = bbox_field(obj, w);
  b.x = box[0];
  b.y = box[1];
  b.w = box[2];
  b.h = box[3];
}

}  // namespace

DetectionData parse_coco_ground_truth(const json& doc, const std::string& source) {
  DetectionData out;
  const json& images = array_field(doc, "images", source);
  const json& cats = array_field(doc, "categories", source);
  const json& anns = array_field(doc, "annotations", source);
  for (size_t i = 0; i < images.size(); ++i) {
    out.image_ids.push_back(int_field(images[i], "id", {source, "images", i}));
  }
  std::vector<std::pair<int64_t, size_t>> by_id;  // (id, index): a repeated id sorts next to its first use
  for (size_t i = 0; i < out.image_ids.size(); ++i) by_id.emplace_back(out.image_ids[i], i);
  std::sort(by_id.begin(), by_id.end());
  for (size_t i = 0; i + 1 < by_id.size(); ++i) {
    VIGIL_CHECK(by_id[i].first != by_id[i + 1].first, "{}: images[{}]: expected a new image id, got {} again",
                source, by_id[i + 1].second, by_id[i].first);
  }
  read_categories(cats, source, out);
  const KnownIds ids = known_ids(out, "listed in images", "listed in categories");
  out.ground_truth.reserve(anns.size());
  for (size_t i = 0; i < anns.size(); ++i) {
    const Where w{source, "annotations", i};
    const json& a = anns[i];
    GtBox g;
    read_box(a, w, ids, g);
    g.area = a.contains("area") ? number_field(a, "area", w) : g.w * g.h;
    VIGIL_CHECK(g.area >= 0, "{}: expected 'area' >= 0, got {}", w.str(), g.area);
    g.iscrowd = crowd_flag(a, w);
    out.ground_truth.push_back(g);
  }
  return out;
}

DetectionData read_coco_ground_truth(const std::filesystem::path& path) {
  const std::string source = to_utf8(path);
  return parse_coco_ground_truth(parse_text(read_file(path), source), source);
}

std::vector<DetBox> parse_coco_results(const json& doc, const DetectionData& gt, const std::string& source) {
  VIGIL_CHECK(doc.is_array(),
              "{}: expected a COCO results array of {{image_id, category_id, bbox, score}}, got {}", source,
              shown(doc));
  const KnownIds ids = known_ids(gt, "of the ground truth", "of the ground truth");
  std::vector<DetBox> out;
  out.reserve(doc.size());
  for (size_t i = 0; i < doc.size(); ++i) {
    const Where w{source, "results", i};
    const json& r = doc[i];
    DetBox d;
    read_box(r, w, ids, d);
    d.score = number_field(r, "score", w);
    out.push_back(d);
  }
  return out;
}

std::vector<DetBox> read_coco_results(const std::filesystem::path& path, const DetectionData& gt) {
  const std::string source = to_utf8(path);
  return parse_coco_results(parse_text(read_file(path), source), gt, source);
}

json coco_results_json(const std::vector<DetBox>& dets) {
  json out = json::array();
  for (const DetBox& d : dets) {
    out.push_back({{"image_id", d.image_id},
                   {"category_id", d.category_id},
                   {"bbox", {d.x, d.y, d.w, d.h}},
                   {"score", d.score}});
  }
  return out;
}

void write_coco_results(const std::filesystem::path& path, const std::vector<DetBox>& dets) {
  write_file_atomic(path, coco_results_json(dets).dump());
}

json coco_ground_truth_json(const DetectionData& data) {
  json images = json::array(), cats = json::array(), anns = json::array();
  for (int64_t id : data.image_ids) images.push_back({{"id", id}});
  for (const Category& c : data.categories) cats.push_back({{"id", c.id}, {"name", c.name}});
  int64_t next_id = 1;  // pycocotools treats annotation id 0 as "no match", so ids start at 1
  for (const GtBox& g : data.ground_truth) {
    anns.push_back({{"id", next_id++},
                    {"image_id", g.image_id},
                    {"category_id", g.category_id},
                    {"bbox", {g.x, g.y, g.w, g.h}},
                    {"area", g.area},
                    {"iscrowd", g.iscrowd ? 1 : 0}});
  }
  return {{"images", images}, {"categories", cats}, {"annotations", anns}};
}

void write_coco_ground_truth(const std::filesystem::path& path, const DetectionData& data) {
  write_file_atomic(path, coco_ground_truth_json(data).dump());
}

json metrics_json(const CocoEvalResult& coco) {
  json out = json::object();
  const auto& names = coco_stat_names();
  for (size_t i = 0; i < names.size(); ++i) out[fmt::format("coco/{}", names[i])] = coco.stats[i];
  for (size_t k = 0; k < coco.K(); ++k) {
    out[fmt::format("coco/AP/{}", coco.category_names[k])] = coco.ap_per_class[k];
    out[fmt::format("coco/AP50/{}", coco.category_names[k])] = coco.ap50_per_class[k];
  }
  return out;
}

json metrics_json(const CocoEvalResult& coco, const UltralyticsMetrics& ultralytics) {
  json out = metrics_json(coco);
  out["metrics/precision(B)"] = ultralytics.mp;
  out["metrics/recall(B)"] = ultralytics.mr;
  out["metrics/mAP50(B)"] = ultralytics.map50;
  out["metrics/mAP50-95(B)"] = ultralytics.map;
  return out;
}

}  // namespace vigil::eval

#include "manifest_io.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <limits>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"

namespace vigil::data {

using json = nlohmann::json;

namespace {

constexpr int kManifestSchema = 1;
enum BoxFlags { kDifficult = 1, kTruncated = 2, kCrowd = 4 };

/// JSON has no NaN: it is written as null and read back as NaN, so bad boxes survive a round trip.
json coord(float v) {
  return std::isfinite(v) ? json(static_cast<double>(v)) : json(nullptr);
}
float coord_from(const json& j) {
  return j.is_null() ? std::numeric_limits<float>::quiet_NaN() : j.get<float>();
}

json sample_json(const Sample& s) {
  json boxes = json::array();
  for (const auto& b : s.boxes) {
    int flags = (b.difficult ? kDifficult : 0) | (b.truncated ? kTruncated : 0) | (b.crowd ? kCrowd : 0);
    boxes.push_back({coord(b.x1), coord(b.y1), coord(b.x2), coord(b.y2), b.class_id, flags});
  }
  json j = {{"file", s.file}, {"hash", s.hash}, {"bytes", s.bytes}, {"boxes", boxes}};
  if (s.label >= 0) j["label"] = s.label;
  if (!s.split.empty()) j["split"] = s.split;
  if (!s.label_file.empty()) j["label_file"] = s.label_file;
  return j;
}

json issue_json(const Issue& i) {
  return {{"kind", i.kind},
          {"severity", severity_name(i.severity)},
          {"file", i.file},
          {"line", i.line},
          {"message", i.message}};
}

Severity parse_severity(const std::string& s) {
  if (s == "info") return Severity::kInfo;
  if (s == "warning") return Severity::kWarning;
  return Severity::kError;
}

json load_json(const fs::path& p) {
  try {
    return json::parse(read_file(p));
  } catch (const json::exception& e) {
    throw DataError(fmt::format("{}: corrupt dataset metadata ({})", to_utf8(p), e.what()));
  }
}

}  // namespace

std::string manifest_text(const Dataset& ds, const std::vector<std::pair<std::string, std::string>>& files) {
  json jfiles = json::array();
  for (const auto& [path, hash] : files) jfiles.push_back({path, hash});
  json samples = json::array();
  for (const auto& s : ds.samples) samples.push_back(sample_json(s));
  json m = {{"schema", kManifestSchema},
            {"task", task_name(ds.task)},
            {"classes", ds.classes},
            {"files", jfiles},
            {"samples", samples}};
  return m.dump(1) + "\n";  // keys sorted (std::map), so the text and its hash are canonical
}

std::string info_text(const Dataset& ds, const std::string& format, const std::string& source,
                      const std::string& created) {
  json issues = json::array();
  for (const auto& i : ds.issues) issues.push_back(issue_json(i));
  json images = json::object();
  for (const auto& s : ds.samples) {
    const auto& c = s.check;
    images[s.file] = {{"width", s.width},
                      {"height", s.height},
                      {"type", c.type},
                      {"inspected", c.inspected},
                      {"problem_kind", c.problem_kind},
                      {"problem", c.problem},
                      {"phash", fmt::format("{:016x}", c.phash)}};
  }
  json info = {
      {"format", format},        {"source", source}, {"created", created},  {"images", ds.samples.size()},
      {"boxes", ds.box_count()}, {"issues", issues}, {"inspection", images}};
  return info.dump(1) + "\n";
}

Dataset read_manifest(const fs::path& dir) {
  json m = load_json(dir / "manifest.json");
  json info = load_json(dir / "info.json");
  Dataset ds;
  try {
    VIGIL_CHECK(m.value("schema", 0) == kManifestSchema, "expected manifest schema {}, got {} in {}",
                kManifestSchema, m.value("schema", 0), to_utf8(dir));
    ds.task = parse_task(m.at("task").get<std::string>());
    ds.classes = m.at("classes").get<std::vector<std::string>>();
    ds.format = info.value("format", "");
    const json& inspection = info.at("inspection");
    for (const auto& j : m.at("samples")) {
      Sample s;
      s.file = j.at("file").get<std::string>();
      s.hash = j.at("hash").get<std::string>();
      s.bytes = j.value("bytes", int64_t{0});
      s.label = j.value("label", -1);
      s.split = j.value("split", "");
      s.label_file = j.value("label_file", "");
      for (const auto& b : j.at("boxes")) {
        int flags = b.at(5).get<int>();
        s.boxes.push_back(Box{coord_from(b.at(0)), coord_from(b.at(1)), coord_from(b.at(2)),
                              coord_from(b.at(3)), b.at(4).get<int>(), (flags & kDifficult) != 0,
                              (flags & kTruncated) != 0, (flags & kCrowd) != 0});
      }
      if (auto it = inspection.find(s.file); it != inspection.end()) {
        s.width = it->value("width", 0);
        s.height = it->value("height", 0);
        s.check.inspected = it->value("inspected", false);
        s.check.type = it->value("type", "");
        s.check.problem_kind = it->value("problem_kind", "");
        s.check.problem = it->value("problem", "");
        s.check.phash = std::stoull(it->value("phash", "0"), nullptr, 16);
      }
      ds.samples.push_back(std::move(s));
    }
    for (const auto& i : info.at("issues")) {
      ds.issues.push_back(
          Issue{i.at("kind"), parse_severity(i.at("severity")), i.at("file"), i.at("line"), i.at("message")});
    }
  } catch (const json::exception& e) {
    throw DataError(fmt::format("{}: corrupt dataset manifest ({})", to_utf8(dir), e.what()));
  }
  return ds;
}

DatasetVersion read_version_summary(const fs::path& dir) {
  json m = load_json(dir / "manifest.json");
  json info = load_json(dir / "info.json");
  DatasetVersion v;
  v.id = dir.filename().string();
  v.format = info.value("format", "");
  v.source = info.value("source", "");
  v.created = info.value("created", "");
  v.task = parse_task(m.value("task", "detection"));
  v.images = info.value("images", size_t{0});
  v.boxes = info.value("boxes", size_t{0});
  v.classes = m.value("classes", json::array()).size();
  v.files = m.value("files", json::array()).size();
  return v;
}

}  // namespace vigil::data

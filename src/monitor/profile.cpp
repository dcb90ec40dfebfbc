#include "vigil/monitor/profile.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <algorithm>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/data/formats.h"
#include "vigil/data/task.h"
#include "vigil/image/decode.h"

namespace vigil::monitor {

namespace fs = std::filesystem;
using nlohmann::json;

Profile profile_dataset(const fs::path& root, const std::string& format, size_t max_images,
                        const std::function<void(size_t, size_t)>& progress, const ProfilePredict& predict) {
  data::register_builtin_formats();
  const data::Dataset ds = data::read_dataset(root, format);
  std::vector<size_t> all(ds.samples.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  const fs::path folder = ds.root;
  return profile_samples(
      ds, all, [&folder](const data::Sample& s) { return folder / s.file; }, root.string(), max_images,
      progress, predict);
}

Profile profile_samples(const data::Dataset& ds, const std::vector<size_t>& indices,
                        const data::ImageSource& images, const std::string& source, size_t max_images,
                        const std::function<void(size_t, size_t)>& progress, const ProfilePredict& predict) {
  Profile p;
  p.source = source;
  p.task = data::task_name(ds.task);
  p.classes = ds.classes;
  const size_t n = indices.size();
  const size_t take = max_images == 0 ? n : std::min(n, max_images);
  for (size_t k = 0; k < take; ++k) {
    // Evenly spread over the dataset, so a capped profile still covers every class folder.
    const data::Sample& s = ds.samples.at(indices[take == n ? k : k * n / take]);
    const image::Decoded d = image::decode_file(images(s).string());
    if (!d.ok()) {
      ++p.skipped;
      spdlog::warn("profile: skipping {}: {}: {}", s.file, d.error.kind_name(), d.error.detail);
    } else {
      ProfileRow row;
      row.stats = image_stats(d.bgr);
      if (ds.task == data::Task::kClassification && s.label >= 0 &&
          s.label < static_cast<int>(ds.classes.size()))
        row.labels.push_back(ds.classes[static_cast<size_t>(s.label)]);
      for (const auto& b : s.boxes)
        if (b.class_id >= 0 && b.class_id < static_cast<int>(ds.classes.size()))
          row.labels.push_back(ds.classes[static_cast<size_t>(b.class_id)]);
      if (predict) row.output = predict(d.bgr);
      p.rows.push_back(std::move(row));
    }
    if (progress) progress(k + 1, take);
  }
  VIGIL_CHECK(!p.rows.empty(), "no image of {} could be profiled ({} skipped)", source, p.skipped);
  return p;
}

json to_json(const Profile& p) {
  json rows = json::array();
  for (const auto& r : p.rows) {
    json row = {{"stats", to_json(r.stats)}, {"labels", r.labels}};
    if (r.output) {
      row["output"] = {{"labels", r.output->labels}, {"scores", r.output->scores}};
      if (!r.output->embedding.empty()) row["output"]["embedding"] = r.output->embedding;
    }
    rows.push_back(std::move(row));
  }
  return {{"kind", "vigil.monitor.profile"},
          {"version", 1},
          {"source", p.source},
          {"model", p.model},
          {"task", p.task},
          {"classes", p.classes},
          {"skipped", p.skipped},
          {"rows", std::move(rows)}};
}

Profile profile_from_json(const json& j) {
  VIGIL_CHECK(j.is_object() && j.value("kind", "") == "vigil.monitor.profile",
              "expected a vigil monitor profile (kind: vigil.monitor.profile)");
  VIGIL_CHECK(j.contains("rows") && j["rows"].is_array(), "profile: rows: expected an array");
  Profile p;
  p.source = j.value("source", "");
  p.model = j.value("model", "");
  p.task = j.value("task", "");
  if (j.contains("classes")) p.classes = j["classes"].get<std::vector<std::string>>();
  p.skipped = j.value("skipped", 0);
  for (size_t i = 0; i < j["rows"].size(); ++i) {
    const json& r = j["rows"][i];
    VIGIL_CHECK(r.is_object() && r.contains("stats") && r["stats"].is_object(),
                "profile: rows[{}]: expected {{\"stats\": {{...}}, \"labels\": [...]}}", i);
    ProfileRow row;
    row.stats = image_stats_from_json(r["stats"]);
    if (r.contains("labels")) row.labels = r["labels"].get<std::vector<std::string>>();
    if (r.contains("output")) {
      const json& o = r["output"];
      VIGIL_CHECK(o.is_object() && o.contains("labels") && o["labels"].is_array() && o.contains("scores") &&
                      o["scores"].is_array(),
                  "profile: rows[{}].output: expected {{\"labels\": [...], \"scores\": [...]}}", i);
      row.output = ModelOutput{
          o["labels"].get<std::vector<std::string>>(), o["scores"].get<std::vector<double>>(), {}};
      if (o.contains("embedding")) {
        VIGIL_CHECK(o["embedding"].is_array() && std::all_of(o["embedding"].begin(), o["embedding"].end(),
                                                             [](const json& v) { return v.is_number(); }),
                    "profile: rows[{}].output.embedding: expected an array of numbers", i);
        row.output->embedding = o["embedding"].get<std::vector<double>>();
      }
    }
    p.rows.push_back(std::move(row));
  }
  VIGIL_CHECK(!p.rows.empty(), "profile: rows: expected at least one image");
  return p;
}

fs::path profile_path_for(const fs::path& model_file) {
  return model_file.parent_path() / (model_file.stem().string() + ".profile.json");
}

Profile load_reference(const fs::path& path, size_t max_images) {
  if (fs::is_directory(path)) return profile_dataset(path, "auto", max_images);
  if (!fs::exists(path))
    throw NotFound(fmt::format("no reference {} (a profile .json or a dataset folder)", path.string()));
  const json j = json::parse(read_file(path), nullptr, false);
  VIGIL_CHECK(!j.is_discarded(), "{}: expected a profile (JSON) or a dataset folder", path.string());
  try {
    return profile_from_json(j);
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(fmt::format("{}: {}", path.string(), e.what()));
  }
}

}  // namespace vigil::monitor

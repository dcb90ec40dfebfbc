#include "vigil/model/predict_io.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/hash.h"
#include "vigil/core/strings.h"

namespace vigil::model {
namespace {

/// A float as the shortest decimal that reads back to the same float, so JSON shows 0.25, not
/// 0.25000000372529.
double tidy(float value) {
  return std::strtod(fmt::format("{}", value).c_str(), nullptr);
}

void add_path(const std::string& path, bool from_list, std::vector<std::string>& out) {
  const std::filesystem::path p(path);
  std::error_code ec;
  if (std::filesystem::is_directory(p, ec)) {
    for (const auto& rel : list_files_recursive(p))
      if (is_image_extension(rel)) out.push_back(to_utf8(p / rel));
    return;
  }
  if (!from_list && !std::filesystem::exists(p, ec))
    throw NotFound(fmt::format("{}: no such file or directory", path));
  out.push_back(path);
}

void add_list_file(const std::string& list_file, std::vector<std::string>& out) {
  const std::string text = read_file(list_file);
  for (const auto& line : split(text, '\n')) {
    const std::string entry(trim(line));
    if (entry.empty() || entry[0] == '#') continue;
    add_path(entry, true, out);
  }
}

}  // namespace

bool is_image_extension(const std::filesystem::path& path) {
  static const std::set<std::string> kExtensions = {".jpg",  ".jpeg", ".png", ".bmp",
                                                    ".webp", ".tif",  ".tiff"};
  return kExtensions.count(lower_extension(path)) > 0;
}

std::vector<PredictInput> collect_inputs(const std::vector<std::string>& paths,
                                         const std::vector<std::string>& list_files) {
  std::vector<std::string> found;
  for (const auto& p : paths) {
    if (!p.empty() && p[0] == '@') {
      add_list_file(p.substr(1), found);
    } else {
      add_path(p, false, found);
    }
  }
  for (const auto& l : list_files) add_list_file(l, found);
  std::sort(found.begin(), found.end());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  if (found.empty()) {
    std::vector<std::string> named = paths;
    named.insert(named.end(), list_files.begin(), list_files.end());
    throw DataError(
        fmt::format("expected images to predict, got none in {} (folders are searched for .jpg, "
                    ".jpeg, .png, .bmp, .webp, .tif, .tiff)",
                    named.empty() ? std::string("(no paths)") : join(named, ", ")));
  }
  std::vector<PredictInput> inputs(found.size());
  for (size_t i = 0; i < found.size(); ++i) inputs[i] = {found[i], i};
  return inputs;
}

std::pair<int, int> parse_shard(const std::string& text) {
  const auto parts = split(text, '/');
  std::optional<long long> i, n;
  if (parts.size() == 2) {
    i = parse_int(trim(parts[0]));
    n = parse_int(trim(parts[1]));
  }
  VIGIL_CHECK(i && n && *n >= 1 && *i >= 0 && *i < *n && *n <= 1'000'000,
              "expected --shard i/n with 0 <= i < n (e.g. 0/4), got '{}'", text);
  return {static_cast<int>(*i), static_cast<int>(*n)};
}

std::vector<PredictInput> shard_inputs(const std::vector<PredictInput>& inputs, int index, int count) {
  VIGIL_CHECK(count >= 1 && index >= 0 && index < count, "expected shard 0 <= i < n, got {}/{}", index,
              count);
  std::vector<PredictInput> out;
  for (size_t k = static_cast<size_t>(index); k < inputs.size(); k += static_cast<size_t>(count))
    out.push_back(inputs[k]);
  return out;
}

nlohmann::ordered_json prediction_json(const Prediction& p, const ModelInfo& info) {
  nlohmann::ordered_json j;
  j["image"] = p.image;
  j["width"] = p.width;
  j["height"] = p.height;
  if (info.task == data::Task::kClassification) {
    j["label"] = p.label;
    j["class_id"] = p.class_id;
    j["score"] = tidy(p.score);
    nlohmann::ordered_json probs = nlohmann::ordered_json::object();
    for (size_t k = 0; k < p.probs.size(); ++k) {
      const std::string name = k < info.class_names.size() ? info.class_names[k] : fmt::format("class_{}", k);
      probs[name] = tidy(p.probs[k]);
    }
    j["probs"] = std::move(probs);
    return j;
  }
  nlohmann::ordered_json detections = nlohmann::ordered_json::array();
  for (const auto& b : p.boxes) {
    nlohmann::ordered_json d;
    d["box"] = {tidy(b.x1), tidy(b.y1), tidy(b.x2), tidy(b.y2)};
    d["score"] = tidy(b.score);
    d["label"] = b.label;
    d["class_id"] = b.class_id;
    detections.push_back(std::move(d));
  }
  j["detections"] = std::move(detections);
  return j;
}

std::vector<nlohmann::ordered_json> coco_results(const Prediction& p, int64_t image_id) {
  std::vector<nlohmann::ordered_json> out;
  for (const auto& b : p.boxes) {
    nlohmann::ordered_json r;
    r["image_id"] = image_id;
    r["category_id"] = b.class_id;
    r["bbox"] = {tidy(b.x1), tidy(b.y1), tidy(b.x2 - b.x1), tidy(b.y2 - b.y1)};
    r["score"] = tidy(b.score);
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<int64_t> coco_image_ids(const std::vector<PredictInput>& inputs) {
  std::vector<int64_t> ids;
  std::set<int64_t> seen;
  for (const auto& in : inputs) {
    const std::string stem = std::filesystem::path(in.path).stem().string();
    const auto id = parse_int(stem);
    const bool digits =
        !stem.empty() && std::all_of(stem.begin(), stem.end(), [](char c) { return c >= '0' && c <= '9'; });
    if (!id || !digits || !seen.insert(*id).second) {
      ids.clear();
      break;
    }
    ids.push_back(*id);
  }
  if (!ids.empty()) return ids;
  for (const auto& in : inputs) ids.push_back(static_cast<int64_t>(in.index));
  return ids;
}

std::vector<std::string> drawn_file_names(const std::vector<PredictInput>& inputs) {
  std::map<std::string, int> uses;
  std::vector<std::string> names;
  for (const auto& in : inputs) ++uses[std::filesystem::path(in.path).filename().string()];
  for (const auto& in : inputs) {
    const std::filesystem::path p(in.path);
    std::string ext = lower_extension(p);
    if (ext != ".jpg" && ext != ".jpeg" && ext != ".png") ext = ".png";
    std::string stem = p.stem().string();
    if (uses[p.filename().string()] > 1) stem += "-" + hash_bytes(in.path).substr(0, 8);
    names.push_back(stem + ext);
  }
  return names;
}

}  // namespace vigil::model

#include "vigil/train/run_profile.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>

#include "trainer_data.h"
#include "vigil/core/fs.h"
#include "vigil/model/clip_predict.h"
#include "vigil/model/embedding.h"
#include "vigil/model/model_file.h"

namespace vigil::train {

namespace fs = std::filesystem;

monitor::ProfilePredict profile_predictor(std::shared_ptr<model::Predictor> predictor) {
  return [predictor = std::move(predictor)](const cv::Mat& bgr) {
    model::Prediction p;
    p.width = bgr.cols;
    p.height = bgr.rows;
    predictor->predict({predictor->preprocess(bgr)}, {&p});
    monitor::ModelOutput o;
    if (predictor->is_detector()) {
      for (const auto& b : p.boxes) {
        o.labels.push_back(b.label);
        o.scores.push_back(b.score);
      }
    } else {
      o.labels.push_back(p.label);
      o.scores.push_back(p.score);
    }
    o.embedding = model::stored_embedding(p.embedding);  // as the server logs it
    return o;
  };
}

fs::path write_model_profile(const fs::path& weights, const data::Dataset& ds,
                             const std::vector<size_t>& indices, const data::ImageSource& images,
                             const std::string& source, size_t max_images) {
  model::LoadedModel loaded = model::load_model(weights);
  if (model::is_clip_model(loaded.info)) return {};
  model::PredictOptions options;
  options.embed = true;
  auto predictor = std::make_shared<model::Predictor>(std::move(loaded), options);
  monitor::Profile p =
      monitor::profile_samples(ds, indices, images, source, max_images, {}, profile_predictor(predictor));
  p.model = weights.string();
  const fs::path out = monitor::profile_path_for(weights);
  write_file_atomic(out, monitor::to_json(p).dump() + "\n");
  return out;
}

namespace detail {

void write_run_profile(const fs::path& weights, const RunData& run) {
  if (weights.empty() || !fs::exists(weights)) return;
  try {
    const std::vector<int>& split = run.val.empty() ? run.train : run.val;
    const std::vector<size_t> indices(split.begin(), split.end());
    const auto t0 = std::chrono::steady_clock::now();
    const fs::path out =
        write_model_profile(weights, run.ds, indices, run.images,
                            fmt::format("{}@{} ({} split)", run.version.name, run.version.short_id(),
                                        run.val.empty() ? "train" : "val"));
    if (!out.empty())
      spdlog::info("train: reference profile for drift monitoring: {} ({} images, {:.1f} s)", out.string(),
                   std::min(indices.size(), kRunProfileImages),
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  } catch (const std::exception& e) {
    spdlog::warn("train: no reference profile for drift monitoring: {}", e.what());
  }
}

}  // namespace detail

}  // namespace vigil::train

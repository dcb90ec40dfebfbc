#include "vigil/train/run_profile.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <cmath>

#include "vigil/core/fs.h"
#include "vigil/model/clip_predict.h"
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
    // Rounded as the server logs it, so a profile row and a log row of one image are equal.
    for (float v : p.embedding) o.embedding.push_back(std::round(static_cast<double>(v) * 1e5) / 1e5);
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

}  // namespace vigil::train

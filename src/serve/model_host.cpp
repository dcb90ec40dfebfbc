#include "vigil/serve/model_host.h"

#include <fmt/format.h>
#include <malloc.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/hash.h"
#include "vigil/serve/prediction_stats.h"
#include "vigil/store/model_ref.h"

namespace vigil::serve {

std::vector<std::string> ServedModel::classes() const {
  std::vector<std::string> names = info.class_names;
  if (is_detector() && !names.empty() && names.front() == "__background__") names.erase(names.begin());
  return names;
}

ModelHost::ModelHost(ModelSource source, model::PredictOptions options, int instances)
    : source_(std::move(source)), options_(std::move(options)), instances_(instances) {
  VIGIL_CHECK(instances >= 1 && instances <= 64, "expected instances in 1..64, got {}", instances);
  options_.validate();
  VIGIL_CHECK(!source_.path.empty(), "expected a model file (--model), got nothing");
}

std::shared_ptr<ServedModel> ModelHost::load(const std::string& path) {
  std::lock_guard load_lock(load_mutex_);
  const auto t0 = std::chrono::steady_clock::now();
  ++loads_;
  const store::ResolvedModel resolved =
      store::resolve_model_spec(path.empty() ? source_.path : path, source_.workspace);
  const std::string& file = resolved.file;
  model::LoadModelOptions lo;
  lo.arch = source_.arch;
  lo.num_classes = source_.num_classes;
  lo.class_names = source_.class_names;
  model::LoadedModel loaded = model::load_model(file, lo);

  // The name is fixed by the first load: loading another file keeps serving under the same name.
  if (source_.name.empty())
    source_.name = resolved.name.empty() ? std::filesystem::path(file).stem().string() : resolved.name;
  auto model = std::make_shared<ServedModel>();
  model->name = source_.name;
  // A registered model's version is its registry number; a file's is its hash (same bytes, same version).
  model->version = resolved.version.empty() ? hash_file(file).substr(0, 12) : resolved.version;
  model->source = to_utf8(std::filesystem::absolute(file));
  model->parameters = model::parameter_count(*loaded.module);
  model->predictor = std::make_unique<model::Predictor>(std::move(loaded), options_);
  for (int i = 1; i < instances_; ++i)
    model->replicas.push_back(std::make_unique<model::Predictor>(model::load_model(file, lo), options_));
  model->info = model->predictor->info();
  model->defaults = model->predictor->postprocess();

  // One inference before publishing: oneDNN builds its kernels on first use, and a model that cannot run
  // must fail here, while the old one still serves.
  const bool detector = model->is_detector();
  const int w = detector ? 640 : std::max(1, model->info.preprocess.width);
  const int h = detector ? 480 : std::max(1, model->info.preprocess.height);
  cv::Mat gray(h, w, CV_8UC3, cv::Scalar(114, 114, 114));
  for (int i = 0; i < instances_; ++i) {
    model::Prediction warm;
    warm.width = w;
    warm.height = h;
    model->instance(i).predict({model->predictor->preprocess(gray)}, {&warm});
  }

  model->load_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
  model->loaded_at = iso_utc(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  std::shared_ptr<ServedModel> previous;
  {
    std::lock_guard lock(current_mutex_);
    previous = std::exchange(current_, model);
  }
  if (!path.empty()) source_.path = path;
  spdlog::info("serve: loaded {} version {} ({}, {} classes) from {} in {:.0f} ms", model->name,
               model->version, model->info.arch, model->classes().size(), model->source, model->load_ms);
  previous.reset();
  malloc_trim(0);  // give the old model's pages back now if no request holds it any more
  return model;
}

std::shared_ptr<ServedModel> ModelHost::current() const {
  std::lock_guard lock(current_mutex_);
  return current_;
}

}  // namespace vigil::serve

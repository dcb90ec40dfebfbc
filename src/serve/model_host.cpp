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

ModelHost::ModelHost(ModelSource source, model::PredictOptions options, int instances, int blas_threads)
    : source_(std::move(source)),
      options_(std::move(options)),
      instances_(instances),
      blas_threads_(blas_threads) {
  VIGIL_CHECK(instances >= 1 && instances <= 64, "expected instances in 1..64, got {}", instances);
  VIGIL_CHECK(blas_threads >= 0, "expected blas_threads >= 0 (0 = choose by timing), got {}", blas_threads);
  options_.validate();
  VIGIL_CHECK(!source_.path.empty(), "expected a model file (--model), got nothing");
}

void ModelHost::choose_blas(ServedModel& model, const torch::Tensor& input, int width, int height,
                            double warm_ms) {
  if (blas_threads_ > 0) {
    set_blas_threads(blas_threads_);
    model.blas.threads = blas_threads_;
    return;
  }
  // A batch of 4: served under load, images come batched, and what wins at batch 1 can lose at 8 (Faster
  // R-CNN's box head).
  std::vector<model::Prediction> outputs(4);
  std::vector<model::Prediction*> out;
  for (auto& o : outputs) {
    o.width = width;
    o.height = height;
    out.push_back(&o);
  }
  const std::vector<torch::Tensor> batch(4, input);
  model.blas = choose_model_blas_threads(warm_ms, [&] { model.predictor->predict(batch, out); });
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
  const torch::Tensor input = model->predictor->preprocess(gray);
  double warm_ms = 0;
  for (int i = 0; i < instances_; ++i) {
    model::Prediction warm;
    warm.width = w;
    warm.height = h;
    const auto w0 = std::chrono::steady_clock::now();
    model->instance(i).predict({input}, {&warm});
    if (i == 0)
      warm_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - w0).count();
  }
  choose_blas(*model, input, w, h, warm_ms);

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
  if (model->blas.timed)
    spdlog::info("serve: OpenBLAS threads {} for {} (batch of 4: {:.1f} ms with 1, {:.1f} ms with {})",
                 model->blas.threads, model->name, model->blas.ms_one, model->blas.ms_many,
                 initial_blas_threads());
  previous.reset();
  malloc_trim(0);  // give the old model's pages back now if no request holds it any more
  return model;
}

std::shared_ptr<ServedModel> ModelHost::current() const {
  std::lock_guard lock(current_mutex_);
  return current_;
}

}  // namespace vigil::serve

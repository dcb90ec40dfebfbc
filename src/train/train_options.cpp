#include "vigil/train/train_options.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <regex>

#include "vigil/core/error.h"
#include "vigil/core/strings.h"
#include "vigil/nn/detection/faster_rcnn.h"
#include "vigil/nn/zoo.h"

namespace vigil::train {
namespace {

bool one_of(const std::string& value, const std::vector<std::string>& valid) {
  return std::find(valid.begin(), valid.end(), value) != valid.end();
}

void check_one_of(const char* key, const std::string& value, const std::vector<std::string>& valid) {
  VIGIL_CHECK(one_of(value, valid), "expected {} to be one of {}, got '{}'", key, join(valid, ", "), value);
}

bool valid_device(const std::string& device) {
  static const std::regex kDevice("cpu|cuda(:[0-9]+)?");
  return std::regex_match(device, kDevice);
}

}  // namespace

void ModelSection::validate() const {
  VIGIL_CHECK(!arch.empty(), "expected model.arch, one of: {}; got none", join(nn::model_names(), ", "));
  nn::find_model(arch);  // unknown names list the valid ones
  VIGIL_CHECK(dropout < 1.0, "expected model.dropout < 1 (or < 0 for the architecture's default), got {}",
              dropout);
  check_one_of("model.weights_scope", weights_scope, {"auto", "full", "backbone"});
  VIGIL_CHECK(trainable_stages >= -1, "expected model.trainable_stages >= -1, got {}", trainable_stages);
  check_one_of("model.batch_norm", batch_norm, {"train", "frozen"});
  if (!detector.empty() || fit_anchors) {
    VIGIL_CHECK(nn::is_faster_rcnn(arch),
                "expected model.detector and model.fit_anchors only with a Faster R-CNN ({}), got them with "
                "'{}'",
                join(nn::faster_rcnn_names(), ", "), arch);
    detector.validate();
    VIGIL_CHECK(!fit_anchors || (detector.anchor_sizes.empty() && detector.aspect_ratios.empty()),
                "expected either model.fit_anchors or model.detector.anchor_sizes / aspect_ratios, got both");
  }
}

void DataSection::validate() const {
  VIGIL_CHECK(!dataset.empty(), "expected data.dataset (a dataset name, name@id or id), got none");
  VIGIL_CHECK(!split.empty(), "expected data.split (a split name from `vigil data split`), got none");
  check_one_of("data.train", train, {"train", "val", "test"});
  check_one_of("data.val", val, {"train", "val", "test"});
  VIGIL_CHECK(batch_size >= 1, "expected data.batch_size >= 1, got {}", batch_size);
  VIGIL_CHECK(val_batch_size >= 0, "expected data.val_batch_size >= 0, got {}", val_batch_size);
  VIGIL_CHECK(image_size >= 0 && image_size <= 4096, "expected data.image_size in [0, 4096], got {}",
              image_size);
  VIGIL_CHECK(min_size >= 0 && max_size >= 0, "expected data.min_size and data.max_size >= 0, got {} and {}",
              min_size, max_size);
  check_one_of("data.balance", balance, {"none", "weights", "resample"});
  VIGIL_CHECK(threads >= 0 && threads <= 1024, "expected data.threads in [0, 1024], got {}", threads);
  VIGIL_CHECK(prefetch_batches >= 1, "expected data.prefetch_batches >= 1, got {}", prefetch_batches);
  check_one_of("data.cache", cache, {"auto", "none"});
  VIGIL_CHECK(cache_mb >= 0, "expected data.cache_mb >= 0, got {}", cache_mb);
  detection_augment.validate();
  classification_augment.validate();
  clips.validate();
  VIGIL_CHECK(clip_cache_mb >= 0, "expected data.clip_cache_mb >= 0 (0 = no cache), got {}", clip_cache_mb);
}

void EarlyStoppingOptions::validate() const {
  check_one_of("early_stopping.metric", metric,
               {"auto", "val_loss", "val_accuracy", "fitness", "mAP50", "mAP50-95"});
  check_one_of("early_stopping.mode", mode, {"auto", "min", "max"});
  VIGIL_CHECK(patience >= 0, "expected early_stopping.patience >= 0, got {}", patience);
  VIGIL_CHECK(std::isfinite(min_delta) && min_delta >= 0, "expected early_stopping.min_delta >= 0, got {}",
              min_delta);
}

void TrainOptions::validate() const {
  static const std::regex kName("[A-Za-z0-9._-]*");
  VIGIL_CHECK(std::regex_match(name, kName) && name != "." && name != "..",
              "expected name made of letters, digits, '.', '_' and '-', got '{}'", name);
  VIGIL_CHECK(epochs >= 1, "expected epochs >= 1, got {}", epochs);
  VIGIL_CHECK(valid_device(device), "expected device cpu, cuda or cuda:N, got '{}'", device);
  VIGIL_CHECK(threads >= 0 && threads <= 1024, "expected threads in [0, 1024], got {}", threads);
  VIGIL_CHECK(std::isfinite(grad_clip_norm) && grad_clip_norm >= 0,
              "expected grad_clip_norm >= 0 (0 = no clipping), got {}", grad_clip_norm);
  VIGIL_CHECK(std::isfinite(label_smoothing) && label_smoothing >= 0 && label_smoothing < 1,
              "expected label_smoothing in [0, 1) (0 = off), got {}", label_smoothing);
  VIGIL_CHECK(std::isfinite(mixup) && mixup >= 0, "expected mixup >= 0 (Beta alpha; 0 = off), got {}", mixup);
  model.validate();
  data.validate();
  optimizer.validate();
  schedule.validate();
  early_stopping.validate();
  ema.validate();
  (void)time_budget_seconds(time);
  check_one_of("best_metric", best_metric,
               {"auto", "val_loss", "val_accuracy", "fitness", "mAP50", "mAP50-95"});
  if (!schedule.metric.empty()) {
    const bool detector = task_of(*this) == data::Task::kDetection;
    const std::vector<std::string> allowed =
        detector ? std::vector<std::string>{"fitness", "mAP50", "mAP50-95", "val_loss"}
                 : std::vector<std::string>{"val_accuracy", "val_loss"};
    VIGIL_CHECK(std::find(allowed.begin(), allowed.end(), schedule.metric) != allowed.end(),
                "expected schedule.metric {} or '' for {} '{}', got '{}'", join(allowed, ", "),
                detector ? "detector" : "classifier", model.arch, schedule.metric);
  }
  if (task_of(*this) == data::Task::kDetection) {
    VIGIL_CHECK(early_stopping.metric != "val_accuracy",
                "expected early_stopping.metric fitness, mAP50, mAP50-95, val_loss or auto for detector "
                "'{}', got val_accuracy",
                model.arch);
    VIGIL_CHECK(best_metric != "val_accuracy" && best_metric != "val_loss",
                "expected best_metric fitness, mAP50, mAP50-95 or auto for detector '{}' (its best weights "
                "are chosen by detection quality, never by a loss), got {}",
                model.arch, best_metric);
    VIGIL_CHECK(data.balance != "weights",
                "expected data.balance none or resample for detector '{}' (its losses take no class "
                "weights), got 'weights'",
                model.arch);
    VIGIL_CHECK(label_smoothing == 0,
                "expected label_smoothing 0 for detector '{}' (torchvision's detection losses take no "
                "smoothing; it applies to classifiers), got {}",
                model.arch, label_smoothing);
    VIGIL_CHECK(
        mixup == 0,
        "expected mixup 0 for detector '{}' (it blends class labels; it applies to classifiers), got {}",
        model.arch, mixup);
  } else {
    VIGIL_CHECK(nn::find_model(model.arch).clip_length == 0 || data.balance != "resample",
                "expected data.balance none or weights for clip model '{}' (windows are not resampled), got "
                "'resample'",
                model.arch);
    VIGIL_CHECK(early_stopping.metric == "auto" || early_stopping.metric == "val_accuracy" ||
                    early_stopping.metric == "val_loss",
                "expected early_stopping.metric val_accuracy, val_loss or auto for classifier '{}', got {}",
                model.arch, early_stopping.metric);
    VIGIL_CHECK(best_metric == "auto" || best_metric == "val_accuracy" || best_metric == "val_loss",
                "expected best_metric val_accuracy, val_loss or auto for classifier '{}', got {}", model.arch,
                best_metric);
  }
}

data::Task task_of(const TrainOptions& options) {
  return nn::find_model(options.model.arch).task;
}

std::string resolved_metric(const TrainOptions& options) {
  if (options.best_metric != "auto") return options.best_metric;
  return task_of(options) == data::Task::kClassification ? "val_accuracy" : "fitness";
}

bool metric_maximize(const TrainOptions& options) {
  return resolved_metric(options) != "val_loss";
}

std::string resolved_stop_metric(const TrainOptions& options) {
  if (options.early_stopping.metric != "auto") return options.early_stopping.metric;
  return resolved_metric(options);
}

bool stop_metric_maximize(const TrainOptions& options) {
  if (options.early_stopping.mode != "auto") return options.early_stopping.mode == "max";
  return resolved_stop_metric(options) != "val_loss";
}

std::string plateau_metric(const TrainOptions& options) {
  return options.schedule.metric.empty() ? resolved_stop_metric(options) : options.schedule.metric;
}

bool plateau_metric_maximize(const TrainOptions& options) {
  if (options.schedule.metric.empty()) return stop_metric_maximize(options);
  return options.schedule.metric != "val_loss";
}

double time_budget_seconds(const std::string& time) {
  const std::string t(trim(time));
  if (t.empty()) return 0;
  static const std::regex kDuration(R"(([0-9]*\.?[0-9]+)\s*(s|sec|m|min|h|hr)?)");
  std::smatch m;
  VIGIL_CHECK(std::regex_match(t, m, kDuration),
              "expected time like 45m, 1.5h or 90s (a bare number is hours), got '{}'", time);
  const double value = std::stod(m[1].str());
  const std::string unit = m[2].str();
  const double seconds = unit.empty() || unit[0] == 'h' ? value * 3600 : unit[0] == 'm' ? value * 60 : value;
  VIGIL_CHECK(seconds >= 1 && seconds <= 30 * 24 * 3600, "expected time between 1 s and 30 days, got '{}'",
              time);
  return seconds;
}

std::string metric_column(const std::string& metric) {
  static const std::map<std::string, std::string> kColumns = {{"val_accuracy", "metrics/accuracy_top1"},
                                                              {"val_loss", "val/loss"},
                                                              {"fitness", "fitness"},
                                                              {"mAP50", "metrics/mAP50(B)"},
                                                              {"mAP50-95", "metrics/mAP50-95(B)"}};
  auto it = kColumns.find(metric);
  VIGIL_ASSERT(it != kColumns.end(), "no results column for metric '{}'", metric);
  return it->second;
}

}  // namespace vigil::train

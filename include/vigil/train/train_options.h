#pragma once
/// Everything `vigil train` is configured by: one Options struct with nested sections, filled by the YAML
/// file, `--set section.key=value` and the command's flags (core/config.h), and written back fully resolved
/// as the run's config.yaml.
///
///   name: masks-cnn            # run folder <workspace>/runs/<name>/ (default <arch>-<n>)
///   epochs: 20
///   seed: 0
///   model: {arch: mask_small_cnn, weights: "", trainable_stages: -1}
///   data: {dataset: masks, split: default, batch_size: 32, image_size: 100, balance: none}
///   optimizer: {name: adamw, lr: 0.001}
///   schedule: {name: cosine, warmup_iters: 50}
///   early_stopping: {metric: val_accuracy, patience: 5}

#include <cstdint>
#include <string>

#include "vigil/data/augment.h"
#include "vigil/data/clips.h"
#include "vigil/data/task.h"
#include "vigil/nn/zoo.h"
#include "vigil/train/ema.h"
#include "vigil/train/optim.h"
#include "vigil/train/schedule.h"

namespace vigil::train {

/// Which model to train and what it starts from.
struct ModelSection {
  std::string arch;     ///< model zoo name (required)
  double dropout = -1;  ///< < 0: the architecture's default
  /// Optional starting weights: a vigil model file / checkpoint, or a torchvision `.pth`. Tensors whose shape
  /// differs (a head for another class count) are left at their fresh initialisation.
  std::string weights;
  std::string weights_scope = "auto";  ///< auto | full | backbone: which tensors of `weights` are loaded
  /// Backbone stages left trainable, the rest frozen (torchvision's trainable_backbone_layers; 0 = the whole
  /// backbone frozen, Keras' `base.trainable = False`). -1: every stage (classification) or torchvision's
  /// default (detection).
  int trainable_stages = -1;
  /// train: batch norms normalise with each batch's statistics and update their running ones (PyTorch's
  /// train mode). frozen: every batch norm normalises with its running statistics, which stay as initialised
  /// or loaded, while its scale and shift still train (detectron2's FrozenBN for small per-process batches).
  /// A data-parallel run with `frozen` follows the arithmetic of one process with the same global batch.
  std::string batch_norm = "train";
  /// Faster R-CNN: sizes, anchors and sampling (nn::DetectorArgs), recorded in the model file.
  nn::DetectorArgs detector;
  /// Faster R-CNN: anchor sizes and aspect ratios fitted to the training split's boxes (train/anchor_fit.h)
  /// instead of detector.anchor_sizes / aspect_ratios; the run's config.yaml then records the fitted ones.
  bool fit_anchors = false;

  template <class V>
  void visit(V& v) {
    v("arch", arch, "architecture from the model zoo (vigil weights list-models)");
    v("dropout", dropout, "dropout before the last layer (< 0: the architecture's default)");
    v("weights", weights,
      "starting weights: vigil model file, torchvision .pth, or torchvision:ARCH/WEIGHTS (downloaded once, "
      "cached) ('' = fresh)");
    v("weights_scope", weights_scope,
      "which tensors of `weights` to load: auto, full (every matching one) or backbone");
    v("trainable_stages", trainable_stages,
      "backbone stages left trainable, the rest frozen (-1: all / the detector's default; 0: frozen base)");
    v("batch_norm", batch_norm,
      "train (batch statistics) or frozen (running statistics kept as initialised or loaded; scale and "
      "shift still train)");
    v("detector", detector,
      "Faster R-CNN: multi-scale sizes, anchors and sampling, torchvision's keyword arguments (kept in the "
      "model file)");
    v("fit_anchors", fit_anchors,
      "Faster R-CNN: fit anchor sizes and aspect ratios to the training boxes (config.yaml records them)");
  }
  void validate() const;
};

/// Which data, how it is batched and augmented.
struct DataSection {
  std::string dataset;            ///< name, name@id or id in the workspace store (required)
  std::string split = "default";  ///< split made by `vigil data split --name`
  std::string train = "train";    ///< list of the split trained on: train, val or test
  std::string val = "val";        ///< list of the split validated on
  int batch_size = 16;
  int val_batch_size = 0;          ///< 0: batch_size
  int image_size = 0;              ///< classification: square input side; 0 = the architecture's input size
  int min_size = 0, max_size = 0;  ///< detection: resize in the loader (0: leave it to the model)
  bool augment = true;
  data::DetectionAugmentOptions detection_augment;
  data::ClassificationAugmentOptions classification_augment;
  /// none | weights (classification: loss weighted by inverse class frequency) | resample (every epoch draws
  /// its samples with probability inversely proportional to their class frequency).
  std::string balance = "none";
  int threads = 0;  ///< decode + augment workers; 0 = the run's thread count
  int prefetch_batches = 4;
  std::string cache = "auto";  ///< decode once (data::LoaderOptions::cache): auto | none
  int cache_mb = 0;            ///< its memory budget; 0 = a quarter of the available memory
  /// Clip classifiers (model.arch clip_*): how frames are grouped into clips and cut into windows of
  /// clips.clip_length frames (data/clips.h). The split must keep every clip whole: a clip with frames in
  /// both the train and the val list is refused (`vigil data split --group-clips` makes such a split).
  data::ClipOptions clips;
  /// Clip classifiers: memory for decoded frames kept at the input size (frames are reused by overlapping
  /// windows and every epoch); 0 decodes every frame every time.
  int clip_cache_mb = 1024;

  template <class V>
  void visit(V& v) {
    v("dataset", dataset, "dataset name, name@id or id in the workspace");
    v("split", split, "split name from `vigil data split`");
    v("train", train, "list of the split to train on: train, val or test");
    v("val", val, "list of the split to validate on: train, val or test");
    v("batch_size", batch_size, "training samples per batch");
    v("val_batch_size", val_batch_size, "validation samples per batch (0 = batch_size)");
    v("image_size", image_size, "classification input side in pixels (0 = the architecture's)");
    v("min_size", min_size, "detection: loader resizes the short side to this (0 = leave to the model)");
    v("max_size", max_size, "detection: ... unless the long side would exceed this (0 = no bound)");
    v("augment", augment, "augment training images");
    v("detection_augment", detection_augment, "detection augmentations");
    v("classification_augment", classification_augment, "classification augmentations");
    v("balance", balance, "class balancing: none, weights (loss weights) or resample");
    v("threads", threads, "decode and augment workers (0 = the run's thread count)");
    v("prefetch_batches", prefetch_batches, "batches prepared ahead (bounds memory)");
    v("cache", cache,
      "keep decoded (and, for training, shrunk) images in memory after the first epoch: auto or none");
    v("cache_mb", cache_mb, "memory budget of that cache in MiB (0 = a quarter of the available memory)");
    v("clips", clips, "clip models: frame-name pattern, window length (clip_length) and stride");
    v("clip_cache_mb", clip_cache_mb,
      "clip models: MiB of decoded, resized frames kept in memory (0 = none)");
  }
  void validate() const;
};

/// Stop when a validation metric has not improved for `patience` epochs. best.ckpt does not follow this
/// metric but TrainOptions::best_metric: stopping on a loss may be asked for, handing over the weights of the
/// lowest loss may not (for a detector the lowest validation loss is routinely an early, poor model).
struct EarlyStoppingOptions {
  /// val_loss | val_accuracy | fitness | mAP50 | mAP50-95 | auto (= the run's best_metric)
  std::string metric = "auto";
  std::string mode = "auto";  ///< min | max | auto (from the metric)
  int patience = 0;           ///< epochs without improvement before stopping; 0 disables stopping
  double min_delta = 0.0;     ///< an improvement must exceed this

  template <class V>
  void visit(V& v) {
    v("metric", metric,
      "metric early stopping follows: val_loss, val_accuracy, fitness, mAP50, mAP50-95 or auto (= "
      "best_metric); best.ckpt always follows best_metric");
    v("mode", mode, "min, max or auto (from the metric)");
    v("patience", patience, "epochs without improvement before stopping (0 = never stop early)");
    v("min_delta", min_delta, "smallest change that counts as an improvement");
  }
  void validate() const;
};

struct TrainOptions {
  std::string name;                    ///< run folder name; "" = <arch>-<n>, the first free n
  std::string experiment = "Default";  ///< groups runs in the tracking store (`vigil runs list --experiment`)
  int epochs = 10;
  /// Wall-clock budget: "45m", "1.5h", "90s" (a bare number is hours, as Ultralytics' `time`); "" = none.
  /// With a budget the run trains until the budget is spent (validation and checkpoints count), the
  /// learning-rate schedule is laid over the iterations the budget is measured to allow, and `epochs` is
  /// only the first guess of that count. A resumed run keeps the time already spent.
  std::string time;
  /// The metric that chooses best.ckpt, the weights a run hands over: auto (classifiers val_accuracy;
  /// detectors fitness = 0.1 AP50 + 0.9 AP, Ultralytics' weights on COCO's AP), val_accuracy, fitness, mAP50,
  /// mAP50-95 (Ultralytics'), or val_loss for a classifier. A detector's best weights are never chosen by a
  /// loss.
  std::string best_metric = "auto";
  uint64_t seed = 0;
  std::string device = "cpu";  ///< cpu | cuda | cuda:N
  int threads = 0;             ///< LibTorch intra-op threads; 0 = keep the process setting (every core)
  double grad_clip_norm = 0;   ///< clip the gradients' total L2 norm to this; 0 = no clipping
  /// Classifiers: cross-entropy against (1 - x) one-hot + x uniform targets (PyTorch's label_smoothing,
  /// Ultralytics' label_smoothing); validation loss stays unsmoothed.
  double label_smoothing = 0;
  /// Classifiers: mixup's Beta(alpha, alpha) (train/mixup.h; torchvision's reference uses 0.2); 0 = off.
  double mixup = 0;
  bool channels_last = true;  ///< CPU: NHWC convolution weights and inputs (nn/fuse.h), up to 2x faster
  ModelSection model;
  DataSection data;
  OptimizerOptions optimizer;
  ScheduleOptions schedule;
  EarlyStoppingOptions early_stopping;
  /// Exponential moving average of the weights (train/ema.h): validated, kept in best.ckpt and handed over
  /// instead of the last trained weights when ema.decay > 0.
  EmaOptions ema;

  template <class V>
  void visit(V& v) {
    v("name", name, "run name: folder <workspace>/runs/<name> ('' = <arch>-<n>)");
    v("experiment", experiment, "experiment the run is tracked under");
    v("epochs", epochs, "passes over the training data (with `time`: the first guess only)");
    v("time", time,
      "wall-clock budget like 45m, 1.5h or 90s (bare number = hours); the schedule is fitted to it ('' = "
      "none)");
    v("best_metric", best_metric,
      "metric choosing best.ckpt: auto (val_accuracy / detector fitness), val_accuracy, fitness, mAP50, "
      "mAP50-95, val_loss (classifiers only)");
    v("seed", seed, "seed of weights, data order, augmentation and dropout (same seed, same weights)");
    v("device", device, "cpu, cuda or cuda:N");
    v("threads", threads, "LibTorch threads (0 = every core); bit-identical reruns need the same count");
    v("grad_clip_norm", grad_clip_norm, "clip the gradients' total L2 norm (0 = off)");
    v("label_smoothing", label_smoothing,
      "classifiers: training targets (1 - x) one-hot + x uniform (0 = off; validation loss unsmoothed)");
    v("mixup", mixup,
      "classifiers: blend each batch with itself rolled by one, lam ~ Beta(x, x) (0 = off; torchvision 0.2)");
    v("channels_last", channels_last,
      "CPU: channels-last convolutions (faster; same results up to rounding)");
    v("model", model, "architecture and starting weights");
    v("data", data, "dataset, split, batching and augmentation");
    v("optimizer", optimizer, "optimizer and its hyper-parameters");
    v("schedule", schedule, "learning-rate schedule");
    v("early_stopping", early_stopping, "early stopping and the best-checkpoint metric");
    v("ema", ema, "exponential moving average of the weights, validated and handed over (decay 0 = off)");
  }
  /// Range and name checks of every section; an unknown architecture lists the valid ones, a metric that
  /// does not fit the architecture's task is rejected. Throws InvalidArgument.
  void validate() const;
};

/// The task of options.model.arch, from its zoo entry.
data::Task task_of(const TrainOptions& options);
/// The best-checkpoint metric with "auto" resolved: "val_accuracy" (classifiers) or "fitness" (detectors).
std::string resolved_metric(const TrainOptions& options);
/// True when a larger best-checkpoint metric is better.
bool metric_maximize(const TrainOptions& options);
/// The early-stopping metric with "auto" resolved (to resolved_metric()).
std::string resolved_stop_metric(const TrainOptions& options);
/// True when a larger early-stopping metric is better (early_stopping.mode, or from the metric).
bool stop_metric_maximize(const TrainOptions& options);
/// The metric a plateau schedule watches (schedule.metric, or the early-stopping metric) and its direction.
std::string plateau_metric(const TrainOptions& options);
bool plateau_metric_maximize(const TrainOptions& options);
/// `time` in seconds, 0 when there is no budget. Throws InvalidArgument on a malformed value.
double time_budget_seconds(const std::string& time);
/// The results.csv column of an early-stopping metric ("fitness" -> "fitness", "mAP50" ->
/// "metrics/mAP50(B)", "val_loss" -> "val/loss", ...).
std::string metric_column(const std::string& metric);

}  // namespace vigil::train

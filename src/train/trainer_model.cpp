#include "trainer_model.h"

#include <fmt/ranges.h>
#include <spdlog/spdlog.h>

#include "vigil/core/error.h"
#include "vigil/core/strings.h"
#include "vigil/eval/detection_metrics.h"
#include "vigil/model/model_file.h"
#include "vigil/model/published_weights.h"
#include "vigil/model/weight_import.h"
#include "vigil/nn/classification/clip_classifier.h"
#include "vigil/nn/detection/detector.h"
#include "vigil/nn/detection/faster_rcnn.h"
#include "vigil/nn/fuse.h"
#include "vigil/nn/weights.h"
#include "vigil/train/anchor_fit.h"
#include "vigil/train/mixup.h"

namespace vigil::train::detail {
namespace {

namespace F = torch::nn::functional;

std::string short_list(const std::vector<std::string>& keys, size_t most = 6) {
  std::vector<std::string> head(keys.begin(), keys.begin() + std::min(keys.size(), most));
  return join(head, ", ") + (keys.size() > most ? fmt::format(", ... ({} in all)", keys.size()) : "");
}

class ClassificationModel : public TaskModel {
 public:
  ClassificationModel(std::shared_ptr<nn::Classifier> net, const std::vector<double>& class_weights,
                      torch::Device device, bool channels_last, double label_smoothing, double mixup_alpha)
      : net_(std::move(net)),
        device_(device),
        channels_last_(channels_last),
        label_smoothing_(label_smoothing),
        mixup_(mixup_alpha) {
    if (!class_weights.empty()) weights_ = torch::tensor(class_weights, torch::kFloat32).to(device);
  }
  torch::nn::Module& module() override { return *net_; }
  std::shared_ptr<torch::nn::Module> module_ptr() override { return net_; }

  std::map<std::string, torch::Tensor> train_losses(const data::Batch& batch) override {
    auto options = F::CrossEntropyFuncOptions().label_smoothing(label_smoothing_);
    if (weights_.defined()) options.weight(weights_);
    if (mixup_ > 0) {
      const auto mixed = mixup(batch.images, batch.targets, mixup_);
      auto logits = net_->forward(input(mixed.images));
      auto loss = F::cross_entropy(logits, batch.targets.to(device_), options) * mixed.lam;
      if (mixed.lam < 1)
        loss = loss + F::cross_entropy(logits, mixed.targets_b.to(device_), options) * (1 - mixed.lam);
      return {{"loss", loss}};
    }
    auto logits = net_->forward(input(batch.images));
    return {{"loss", F::cross_entropy(logits, batch.targets.to(device_), options)}};
  }

  void validate_batch(const data::Batch& batch, ValSums& sums) override {
    torch::NoGradGuard no_grad;
    auto logits = net_->forward(input(batch.images));
    auto targets = batch.targets.to(device_);
    // Validation loss is unweighted and unsmoothed: comparable across balancing and smoothing choices.
    auto loss = F::cross_entropy(logits, targets, F::CrossEntropyFuncOptions().reduction(torch::kSum));
    sums.loss_sums["loss"] += loss.item<double>();
    sums.correct += logits.argmax(1).eq(targets).sum().item<double>();
    sums.samples += static_cast<double>(batch.size());
    sums.batches += 1;
  }

  std::map<std::string, double> val_metrics(const ValSums& sums) const override {
    const double n = std::max(sums.samples, 1.0);
    auto it = sums.loss_sums.find("loss");
    return {{"val/loss", it == sums.loss_sums.end() ? 0.0 : it->second / n},
            {"metrics/accuracy_top1", sums.correct / n}};
  }
  std::vector<std::string> loss_names() const override { return {"loss"}; }
  std::vector<std::string> val_names() const override { return {"metrics/accuracy_top1", "val/loss"}; }

 private:
  torch::Tensor input(const torch::Tensor& images) const {
    auto x = images.to(device_);
    if (!channels_last_) return x;
    // Clips [B, T, 3, H, W] (clip models): frames stored channels-last, so the model's flatten to
    // [B*T, 3, H, W] is a channels-last view rather than a copy in the other layout.
    if (x.dim() == 5) return x.permute({0, 1, 3, 4, 2}).contiguous().permute({0, 1, 4, 2, 3});
    return x.contiguous(torch::MemoryFormat::ChannelsLast);
  }

  std::shared_ptr<nn::Classifier> net_;
  torch::Device device_;
  bool channels_last_ = false;
  double label_smoothing_ = 0;
  double mixup_ = 0;  ///< Beta(alpha, alpha) of train/mixup.h; 0 = off
  torch::Tensor weights_;
};

const std::vector<std::string> kDetectionLosses = {"loss_classifier", "loss_box_reg", "loss_objectness",
                                                   "loss_rpn_box_reg"};

class DetectionModel : public TaskModel {
 public:
  DetectionModel(std::shared_ptr<nn::Detector> net, torch::Device device,
                 const std::vector<std::string>& class_names)
      : net_(std::move(net)), device_(device) {
    for (size_t c = 0; c < class_names.size(); ++c) {
      categories_.push_back({static_cast<int64_t>(c) + 1, class_names[c]});
    }
  }
  torch::nn::Module& module() override { return *net_; }
  std::shared_ptr<torch::nn::Module> module_ptr() override { return net_; }

  std::map<std::string, torch::Tensor> train_losses(const data::Batch& batch) override {
    auto out = forward(batch);
    std::map<std::string, torch::Tensor> losses(out.losses.begin(), out.losses.end());
    VIGIL_ASSERT(!losses.empty(), "detector '{}' returned no losses in train mode", net_->name());
    torch::Tensor total;
    for (const auto& [name, value] : losses) total = total.defined() ? total + value : value;
    losses["loss"] = total;
    return losses;
  }

  void validate_batch(const data::Batch& batch, ValSums& sums) override {
    torch::NoGradGuard no_grad;
    // Images of one size per forward pass, as model::Predictor runs them: padding a smaller image to the
    // batch's largest changes its detections, and best.ckpt is chosen by this score, so it should be the one
    // `vigil evaluate` and `predict` reproduce from the same weights (up to their batch-norm folding).
    std::map<std::pair<int64_t, int64_t>, std::vector<size_t>> by_size;
    for (size_t i = 0; i < batch.size(); ++i)
      by_size[{batch.image_list[i].size(1), batch.image_list[i].size(2)}].push_back(i);
    for (const auto& [size, members] : by_size) {
      auto out =
          forward(batch, members);  // eval mode with targets: losses without touching batch-norm statistics
      const double n = static_cast<double>(members.size());
      double total = 0;
      for (const auto& [name, value] : out.losses) {
        const double v = value.item<double>();
        sums.loss_sums[name] += v * n;
        total += v;
      }
      sums.loss_sums["loss"] += total * n;
      for (size_t m = 0; m < members.size(); ++m)
        add_image(batch, members[m], out.detections.at(m), sums.detections);
    }
    sums.samples += static_cast<double>(batch.size());
    sums.batches += 1;
  }

  std::map<std::string, double> val_metrics(const ValSums& sums) const override {
    const double n = std::max(sums.samples, 1.0);
    std::map<std::string, double> out;
    for (const auto& name : loss_names()) {
      auto it = sums.loss_sums.find(name);
      if (it != sums.loss_sums.end()) out["val/" + name] = it->second / n;
    }
    if (!sums.detections.image_ids.empty()) {
      // The same COCO and Ultralytics code as `vigil evaluate`, on this pass's predictions.
      eval::DetectionData data = sums.detections;
      data.categories = categories_;
      const auto coco = eval::coco_evaluate(data);
      const auto ultra = eval::ultralytics_metrics(data);
      out["metrics/precision(B)"] = ultra.mp;
      out["metrics/recall(B)"] = ultra.mr;
      out["metrics/mAP50(B)"] = ultra.map50;
      out["metrics/mAP50-95(B)"] = ultra.map;
      out["metrics/coco_AP"] = coco.stats[eval::kAP];
      out["metrics/coco_AP50"] = coco.stats[eval::kAP50];
      // On COCO's AP, not Ultralytics' mAPs: on the guns data an early epoch with a few good boxes scored
      // mAP50-95 0.22 against COCO AP 0.02, and best.ckpt went to it (eval::detection_fitness).
      out["fitness"] = eval::detection_fitness(coco);
    }
    return out;
  }
  std::vector<std::string> loss_names() const override {
    auto names = kDetectionLosses;
    names.push_back("loss");
    return names;
  }
  std::vector<std::string> val_names() const override {
    std::vector<std::string> out = {
        "metrics/precision(B)", "metrics/recall(B)", "metrics/mAP50(B)", "metrics/mAP50-95(B)",
        "metrics/coco_AP",      "metrics/coco_AP50", "fitness"};
    for (const auto& n : loss_names()) out.push_back("val/" + n);
    return out;
  }

 private:
  nn::DetectorOutput forward(const data::Batch& batch) {
    std::vector<size_t> all(batch.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = i;
    return forward(batch, all);
  }
  /// The images `members` of `batch` with their targets, in that order.
  nn::DetectorOutput forward(const data::Batch& batch, const std::vector<size_t>& members) {
    std::vector<torch::Tensor> images;
    std::vector<nn::DetectionTarget> targets;
    for (const size_t i : members) {
      images.push_back(batch.image_list[i].to(device_));
      targets.push_back({batch.boxes[i].to(device_), batch.labels[i].to(device_)});
    }
    return net_->forward(images, &targets);
  }

  /// Adds image `i` of `batch` (ground truth in the loader's pixels) and its detections (mapped back to the
  /// same pixels by the detector) as the next COCO image id.
  static void add_image(const data::Batch& batch, size_t i, const nn::Detections& d,
                        eval::DetectionData& data) {
    const auto id = static_cast<int64_t>(data.image_ids.size());
    data.image_ids.push_back(id);
    const auto boxes = batch.boxes[i].to(torch::kCPU, torch::kFloat32).contiguous();
    const auto labels = batch.labels[i].to(torch::kCPU, torch::kInt64).contiguous();
    for (int64_t k = 0; k < boxes.size(0); ++k) {
      const float* b = boxes.data_ptr<float>() + 4 * k;
      const double w = b[2] - b[0], h = b[3] - b[1];
      data.ground_truth.push_back({id, labels.data_ptr<int64_t>()[k], b[0], b[1], w, h, w * h, false, false});
    }
    const auto dboxes = d.boxes.to(torch::kCPU, torch::kFloat32).contiguous();
    const auto scores = d.scores.to(torch::kCPU, torch::kFloat32).contiguous();
    const auto dlabels = d.labels.to(torch::kCPU, torch::kInt64).contiguous();
    for (int64_t k = 0; k < dboxes.size(0); ++k) {
      const float* b = dboxes.data_ptr<float>() + 4 * k;
      data.detections.push_back({id, dlabels.data_ptr<int64_t>()[k], b[0], b[1], b[2] - b[0], b[3] - b[1],
                                 scores.data_ptr<float>()[k]});
    }
  }

  std::shared_ptr<nn::Detector> net_;
  torch::Device device_;
  std::vector<eval::Category> categories_;
};

nn::StateDict state_of(const torch::nn::Module& module) {
  nn::StateDict out;
  for (const auto& p : module.named_parameters(true)) out.insert(p.key(), p.value().detach());
  for (const auto& b : module.named_buffers(true)) out.insert(b.key(), b.value());
  return out;
}

/// The tensors of model.weights: a vigil model file (which must be of the same architecture), a torchvision
/// .pth / TorchScript file, or published weights by name or URL (fetched into the cache first).
nn::StateDict read_start_weights(const std::string& weights, const std::string& arch) {
  const std::string file = model::resolve_weights(weights);
  if (model::is_vigil_model_file(file)) {
    model::LoadedModel loaded = model::load_model(file);
    if (loaded.info.arch != arch) {
      throw InvalidArgument(
          fmt::format("model.weights {}: expected weights for model.arch '{}', got a '{}' model", file, arch,
                      loaded.info.arch));
    }
    return state_of(*loaded.module);
  }
  return nn::read_state_dict(file);
}

void load_start_weights(torch::nn::Module& module, data::Task task, const ModelSection& ms) {
  nn::StateDict dict = read_start_weights(ms.weights, ms.arch);
  const bool detector_file = model::has_key_prefix(dict, "backbone.");
  std::string scope = ms.weights_scope;
  if (scope == "auto") scope = task == data::Task::kDetection && !detector_file ? "backbone" : "full";
  nn::LoadOptions lo;
  if (scope == "full") {
    lo.skip_shape_mismatch = true;  // a head for another class count keeps its fresh initialisation
  } else if (task == data::Task::kDetection) {
    // A classifier file has the body only (torchvision's weights_backbone); a detector's also has the FPN.
    if (!detector_file) dict = model::classifier_to_detector_backbone(dict);
    lo.only_prefixes = {detector_file ? "backbone." : "backbone.body."};
  } else {
    lo.skip_prefixes = {"fc.", "classifier."};
  }
  nn::LoadReport report;
  try {
    report = nn::load_state_dict(module, dict, lo);
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(fmt::format("model.weights {} does not fit model.arch '{}' (weights_scope {}): {}",
                                      ms.weights, ms.arch, scope, e.what()));
  }
  if (report.loaded.empty()) {
    throw InvalidArgument(fmt::format(
        "model.weights {}: expected tensors of model.arch '{}', got none that fit", ms.weights, ms.arch));
  }
  spdlog::info("model.weights {}: loaded {} tensors ({} scope)", ms.weights, report.loaded.size(), scope);
  if (!report.shape_mismatches.empty()) {
    spdlog::info("  kept fresh (shape differs, e.g. a head for another class count): {}",
                 short_list(report.shape_mismatches));
  }
}

/// A dry forward pass, so a wrong input size is a clear error now rather than a shape error mid-epoch.
void check_input_size(nn::Classifier& net, const std::string& arch, int size) {
  torch::NoGradGuard no_grad;
  net.eval();
  // A clip model takes [B, T, 3, H, W]: one window of one frame is enough to check the frame size.
  const bool clips = dynamic_cast<nn::ClipClassifierImpl*>(&net) != nullptr;
  try {
    auto out = net.forward(clips ? torch::zeros({1, 1, 3, size, size}) : torch::zeros({1, 3, size, size}));
    VIGIL_ASSERT(out.dim() == 2 && out.size(0) == 1, "classifier '{}' gave logits of shape {}", arch,
                 fmt::format("{}", fmt::join(out.sizes(), "x")));
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    throw InvalidArgument(fmt::format("expected an input size model '{}' accepts, got data.image_size {}: {}",
                                      arch, size, what.substr(0, what.find('\n'))));
  }
}

template <class BatchNorm>
void keep_frozen_norm_in_eval(torch::nn::Module& m) {
  if (auto* bn = dynamic_cast<BatchNorm*>(&m)) {
    if (bn->weight.defined() && !bn->weight.requires_grad()) bn->eval();
  }
}

}  // namespace

void TaskModel::set_train_mode() {
  module().train();
  if (frozen_norm_stats) {
    for (const auto& m : module().modules(/*include_self=*/false)) {
      if (dynamic_cast<torch::nn::BatchNorm1dImpl*>(m.get()) ||
          dynamic_cast<torch::nn::BatchNorm2dImpl*>(m.get()))
        m->eval();
    }
    return;
  }
  if (dynamic_cast<nn::Classifier*>(&module()) == nullptr) return;  // detectors follow torchvision
  for (const auto& m : module().modules(/*include_self=*/false)) {
    keep_frozen_norm_in_eval<torch::nn::BatchNorm1dImpl>(*m);
    keep_frozen_norm_in_eval<torch::nn::BatchNorm2dImpl>(*m);
  }
}

std::vector<torch::Tensor> TaskModel::trainable_parameters() {
  std::vector<torch::Tensor> out;
  for (auto& p : module().parameters()) {
    if (p.requires_grad()) out.push_back(p);
  }
  return out;
}

std::unique_ptr<TaskModel> make_task_model(const TrainOptions& options,
                                           const std::vector<std::string>& class_names, int input_size,
                                           const std::vector<double>& class_weights, torch::Device device,
                                           bool load_weights) {
  const auto& ms = options.model;
  const auto& spec = nn::find_model(ms.arch);
  if (spec.task == data::Task::kClassification) {
    nn::ClassifierOptions co;
    co.arch = ms.arch;
    co.num_classes = static_cast<int>(class_names.size());
    co.dropout = ms.dropout;
    auto net = nn::make_classifier(co);
    if (load_weights && !ms.weights.empty()) load_start_weights(*net, spec.task, ms);
    if (ms.trainable_stages >= 0) {
      VIGIL_CHECK(ms.trainable_stages <= net->num_backbone_stages(),
                  "expected model.trainable_stages in [-1, {}] for '{}', got {}", net->num_backbone_stages(),
                  ms.arch, ms.trainable_stages);
      net->freeze_backbone(ms.trainable_stages);
    }
    check_input_size(*net, ms.arch, input_size);
    net->to(device);
    const bool nhwc = options.channels_last && device.is_cpu();
    if (nhwc) nn::to_channels_last(*net);
    return std::make_unique<ClassificationModel>(net, class_weights, device, nhwc, options.label_smoothing,
                                                 options.mixup);
  }
  nn::ModelArgs args;
  args.num_classes = static_cast<int>(class_names.size()) + 1;  // label 0 is the background
  args.dropout = ms.dropout;
  args.pretrained_backbone = !ms.weights.empty();
  args.trainable_backbone_layers = ms.trainable_stages;
  args.detector = ms.detector;
  auto net = std::dynamic_pointer_cast<nn::Detector>(nn::make_model(ms.arch, args));
  VIGIL_ASSERT(net, "zoo model '{}' (detection) is not an nn::Detector", ms.arch);
  if (load_weights && !ms.weights.empty()) load_start_weights(*net, spec.task, ms);
  net->to(device);
  if (options.channels_last && device.is_cpu()) nn::to_channels_last(*net);
  return std::make_unique<DetectionModel>(net, device, class_names);
}

void fit_detector_anchors(TrainOptions& options, const std::vector<data::Sample>& samples,
                          const std::vector<int>& train) {
  auto& m = options.model;
  if (!m.fit_anchors) return;
  // The architecture's own convention: one size per map (ResNet-50 FPN) or one list on every map
  // (MobileNetV3).
  const auto defaults = nn::faster_rcnn_defaults(m.arch).rpn_anchor_sizes();
  bool one_per_map = defaults.size() > 1;
  for (const auto& sizes : defaults) one_per_map = one_per_map && sizes.size() == 1;
  const int num_sizes = static_cast<int>(one_per_map ? defaults.size() : defaults.front().size());
  const auto pre = nn::model_preprocess(m.arch, m.detector);
  const auto fitted = fit_anchors(samples, train, num_sizes, one_per_map, pre.min_size, pre.max_size);
  m.detector.anchor_sizes = fitted.sizes;
  m.detector.aspect_ratios = fitted.ratios;
  m.fit_anchors = false;
  spdlog::info("anchors fitted to {} training boxes at min_size {}: sizes [{}], aspect ratios (h/w) [{}]",
               fitted.boxes, pre.min_size, fmt::join(fitted.sizes, ", "), fmt::join(fitted.ratios, ", "));
}

}  // namespace vigil::train::detail

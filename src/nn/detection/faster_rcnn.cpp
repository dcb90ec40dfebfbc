#include "vigil/nn/detection/faster_rcnn.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <utility>

#include "nn/detection/trainable_layers.h"
#include "vigil/core/error.h"
#include "vigil/nn/detection/anchor_generator.h"
#include "vigil/nn/ops/poolers.h"
#include "vigil/nn/precision.h"

namespace vigil::nn {

namespace {

constexpr const char* kResNet50 = "fasterrcnn_resnet50_fpn";
constexpr const char* kMobileNet = "fasterrcnn_mobilenet_v3_large_fpn";
constexpr const char* kMobileNet320 = "fasterrcnn_mobilenet_v3_large_320_fpn";

void check_images(const std::vector<torch::Tensor>& images) {
  VIGIL_CHECK(!images.empty(), "expected at least one image, got an empty list");
  for (size_t i = 0; i < images.size(); ++i) {
    const auto& image = images[i];
    VIGIL_CHECK(
        image.defined() && image.dim() == 3 && image.size(0) == 3 && image.size(1) > 0 && image.size(2) > 0,
        "expected image {} of shape [3, H, W] with H, W > 0, got {}", i,
        image.defined() ? c10::str(image.sizes()) : std::string("an undefined tensor"));
    VIGIL_CHECK(image.is_floating_point(), "expected image {} of a floating type (values in [0, 1]), got {}",
                i, c10::toString(image.scalar_type()));
  }
}

// torchvision's degenerate-box check, run on the resized boxes; the message quotes the caller's box.
void check_box_extents(const std::vector<DetectionTarget>& resized,
                       const std::vector<DetectionTarget>& given) {
  for (size_t i = 0; i < resized.size(); ++i) {
    const auto& boxes = resized[i].boxes;
    if (boxes.numel() == 0) continue;
    const auto degenerate = (boxes.index({torch::indexing::Slice(), torch::indexing::Slice(2, 4)}) <=
                             boxes.index({torch::indexing::Slice(), torch::indexing::Slice(0, 2)}))
                                .any(1);
    if (!degenerate.any().item<bool>()) continue;
    const int64_t b = torch::where(degenerate)[0][0].item<int64_t>();
    const auto box = given[i].boxes[b].to(torch::kDouble).contiguous();
    const auto* v = box.data_ptr<double>();
    throw InvalidArgument(fmt::format(
        "expected boxes with positive width and height (x1 < x2, y1 < y2), got [{}, {}, {}, {}] (box {} of "
        "target {})",
        v[0], v[1], v[2], v[3], b, i));
  }
}

}  // namespace

void apply_detector_args(FasterRCNNOptions& options, const DetectorArgs& args) {
  args.validate();
  if (!args.min_size.empty()) options.min_size(args.min_size);
  if (args.max_size > 0) options.max_size(args.max_size);
  const size_t maps = options.rpn_anchor_sizes().size();
  if (!args.anchor_sizes.empty()) {
    // torchvision's two conventions: MobileNetV3 repeats one list on each map, ResNet-50 FPN has one size
    // per map.
    bool per_map = true;
    for (const auto& sizes : options.rpn_anchor_sizes()) per_map = per_map && sizes.size() == 1;
    if (per_map && maps > 1) {
      VIGIL_CHECK(args.anchor_sizes.size() == maps,
                  "expected detector.anchor_sizes to give one size per feature map ({} values, smallest "
                  "first), got {}",
                  maps, args.anchor_sizes.size());
      FasterRCNNOptions::SizeLists sizes;
      for (const double s : args.anchor_sizes) sizes.push_back({s});
      options.rpn_anchor_sizes(sizes);
    } else {
      options.rpn_anchor_sizes(FasterRCNNOptions::SizeLists(maps, args.anchor_sizes));
    }
  }
  if (!args.aspect_ratios.empty())
    options.rpn_aspect_ratios(FasterRCNNOptions::SizeLists(maps, args.aspect_ratios));
  if (args.rpn_pre_nms_top_n_train > 0) options.rpn_pre_nms_top_n_train(args.rpn_pre_nms_top_n_train);
  if (args.rpn_post_nms_top_n_train > 0) options.rpn_post_nms_top_n_train(args.rpn_post_nms_top_n_train);
  if (args.rpn_batch_size_per_image > 0) options.rpn_batch_size_per_image(args.rpn_batch_size_per_image);
  if (args.box_batch_size_per_image > 0) options.box_batch_size_per_image(args.box_batch_size_per_image);
}

// ------------------------------------------------------------------------------------------ options

void FasterRCNNOptions::validate() const {
  VIGIL_CHECK(num_classes_ >= 2, "expected num_classes >= 2 (background included), got {}", num_classes_);
  VIGIL_CHECK(!rpn_anchor_sizes_.empty() && rpn_anchor_sizes_.size() == rpn_aspect_ratios_.size(),
              "expected one anchor size list per aspect ratio list (one per feature map), got {} and {}",
              rpn_anchor_sizes_.size(), rpn_aspect_ratios_.size());
  VIGIL_CHECK(!box_featmap_names_.empty(), "expected at least one box_featmap_names entry, got none");
  VIGIL_CHECK(box_roi_output_size_ >= 1, "expected box_roi_output_size >= 1, got {}", box_roi_output_size_);
  VIGIL_CHECK(representation_size_ >= 1, "expected representation_size >= 1, got {}", representation_size_);
  transform_options().validate();
  rpn_options().validate();
  roi_heads_options().validate();
}

GeneralizedRCNNTransformOptions FasterRCNNOptions::transform_options() const {
  return GeneralizedRCNNTransformOptions()
      .min_size(min_size_)
      .max_size(max_size_)
      .image_mean(image_mean_)
      .image_std(image_std_)
      .size_divisible(size_divisible_)
      .fixed_size(fixed_size_);
}

RegionProposalNetworkOptions FasterRCNNOptions::rpn_options() const {
  return RegionProposalNetworkOptions()
      .pre_nms_top_n_train(rpn_pre_nms_top_n_train_)
      .pre_nms_top_n_test(rpn_pre_nms_top_n_test_)
      .post_nms_top_n_train(rpn_post_nms_top_n_train_)
      .post_nms_top_n_test(rpn_post_nms_top_n_test_)
      .nms_thresh(rpn_nms_thresh_)
      .fg_iou_thresh(rpn_fg_iou_thresh_)
      .bg_iou_thresh(rpn_bg_iou_thresh_)
      .batch_size_per_image(rpn_batch_size_per_image_)
      .positive_fraction(rpn_positive_fraction_)
      .score_thresh(rpn_score_thresh_);
}

RoIHeadsOptions FasterRCNNOptions::roi_heads_options() const {
  return RoIHeadsOptions()
      .fg_iou_thresh(box_fg_iou_thresh_)
      .bg_iou_thresh(box_bg_iou_thresh_)
      .batch_size_per_image(box_batch_size_per_image_)
      .positive_fraction(box_positive_fraction_)
      .bbox_reg_weights(bbox_reg_weights_)
      .score_thresh(box_score_thresh_)
      .nms_thresh(box_nms_thresh_)
      .detections_per_img(box_detections_per_img_);
}

// ------------------------------------------------------------------------------------------ FasterRCNN

FasterRCNNImpl::FasterRCNNImpl(BackboneWithFPN backbone_, const FasterRCNNOptions& options)
    : options_(options) {
  options_.validate();
  VIGIL_CHECK(!backbone_.is_empty(), "expected a backbone, got an empty module holder");
  const size_t num_maps = backbone_->level_names().size() +
                          (backbone_->fpn()->options.extra_block() == ExtraFPNBlock::kNone ? 0 : 1);
  VIGIL_CHECK(options_.rpn_anchor_sizes().size() == num_maps,
              "expected one anchor size list per backbone feature map ({}), got {}", num_maps,
              options_.rpn_anchor_sizes().size());
  const int64_t channels = backbone_->out_channels();

  // Registration order is torchvision's (GeneralizedRCNN: transform, backbone, rpn, roi_heads); so is the
  // order in which fresh layers draw from the global generator.
  transform = register_module("transform", GeneralizedRCNNTransform(options_.transform_options()));
  backbone = register_module("backbone", std::move(backbone_));

  AnchorGenerator anchors(options_.rpn_anchor_sizes(), options_.rpn_aspect_ratios());
  RPNHead head(channels, anchors->num_anchors_per_location().at(0));
  rpn = register_module("rpn", RegionProposalNetwork(anchors, head, options_.rpn_options()));

  const int64_t resolution = options_.box_roi_output_size();
  ops::MultiScaleRoIAlign pool(ops::MultiScaleRoIAlignOptions(
      options_.box_featmap_names(), {resolution, resolution}, options_.box_roi_sampling_ratio()));
  TwoMLPHead box_head(channels * resolution * resolution, options_.representation_size());
  FastRCNNPredictor predictor(options_.representation_size(), options_.num_classes());
  roi_heads = register_module("roi_heads", RoIHeads(pool, box_head, predictor, options_.roi_heads_options()));
}

DetectorOutput FasterRCNNImpl::forward(const std::vector<torch::Tensor>& images,
                                       const std::vector<DetectionTarget>* targets) {
  check_images(images);
  VIGIL_CHECK(targets || !is_training(), "expected targets in training mode, got none");
  std::vector<DetectionTarget> resized;
  if (targets) {
    check_detection_targets(*targets, images.size(), num_classes());
    resized = *targets;
  }
  std::vector<std::array<int64_t, 2>> original_sizes;
  for (const auto& image : images) original_sizes.push_back({image.size(-2), image.size(-1)});

  auto* resized_ptr = targets ? &resized : nullptr;
  const ImageList batch = transform->forward(images, resized_ptr);
  if (targets) check_box_extents(resized, *targets);

  const FeatureMap features = backbone->forward(batch.tensors);
  RPNOutput proposals = rpn->forward(batch, features, resized_ptr);
  auto [detections, losses] =
      roi_heads->forward(features, proposals.proposals, batch.image_sizes, resized_ptr);

  DetectorOutput out;
  out.losses = std::move(losses);
  for (auto& [name, value] : proposals.losses) out.losses[name] = value;
  if (!is_training()) {
    out.detections = transform->postprocess(std::move(detections), batch.image_sizes, original_sizes);
    std::vector<torch::Tensor> maps;
    for (const auto& item : features) maps.push_back(to_float32(item.value()));  // int8: dequantised
    out.embeddings = pooled_embedding(maps);
  }
  return out;
}

void FasterRCNNImpl::replace_predictor(int64_t num_classes) {
  roi_heads->replace_predictor(num_classes);
  options_.num_classes(num_classes);
}

int64_t FasterRCNNImpl::num_classes() const {
  return roi_heads->num_classes();
}

void FasterRCNNImpl::set_postprocess(const PostprocessOptions& options) {
  auto updated = roi_heads->options;
  updated.score_thresh(options.score_threshold)
      .nms_thresh(options.nms_iou)
      .detections_per_img(options.max_detections);
  updated.validate();
  roi_heads->options = updated;
  options_.box_score_thresh(options.score_threshold)
      .box_nms_thresh(options.nms_iou)
      .box_detections_per_img(options.max_detections);
}

PostprocessOptions FasterRCNNImpl::postprocess() const {
  const auto& o = roi_heads->options;
  PostprocessOptions out;
  out.score_threshold = o.score_thresh();
  out.nms_iou = o.nms_thresh();
  out.max_detections = o.detections_per_img();
  return out;
}

void FasterRCNNImpl::freeze_backbone(int trainable_layers) {
  backbone->freeze(trainable_layers);
}

// ------------------------------------------------------------------------------------------ builders

std::vector<std::string> faster_rcnn_names() {
  return {kMobileNet320, kMobileNet, kResNet50};
}

bool is_faster_rcnn(const std::string& name) {
  return name == kMobileNet320 || name == kMobileNet || name == kResNet50;
}

FasterRCNNOptions faster_rcnn_defaults(const std::string& name) {
  FasterRCNNOptions options;
  if (name == kResNet50) return options;
  VIGIL_CHECK(name == kMobileNet || name == kMobileNet320,
              "expected a Faster R-CNN name, one of: {}, {}, {}; got '{}'", kMobileNet320, kMobileNet,
              kResNet50, name);
  // _fasterrcnn_mobilenet_v3_large_fpn: every size on each of the three maps ("0", "1", "pool").
  const std::vector<double> sizes = {32, 64, 128, 256, 512};
  options.rpn_anchor_sizes(FasterRCNNOptions::SizeLists(3, sizes))
      .rpn_aspect_ratios(FasterRCNNOptions::SizeLists(3, std::vector<double>{0.5, 1.0, 2.0}))
      .rpn_score_thresh(0.05);
  if (name == kMobileNet320) {
    options.min_size({320}).max_size(640).rpn_pre_nms_top_n_test(150).rpn_post_nms_top_n_test(150);
  }
  return options;
}

FasterRCNN make_faster_rcnn(const std::string& name, const ModelArgs& args,
                            std::optional<FasterRCNNOptions> options) {
  // faster_rcnn_defaults() also rejects unknown names when options are given.
  FasterRCNNOptions opts = options.value_or(faster_rcnn_defaults(name));
  const bool resnet = name == kResNet50;
  VIGIL_CHECK(args.num_classes >= 0, "expected num_classes >= 2 (or 0 for the default), got {}",
              args.num_classes);
  if (args.num_classes > 0) opts.num_classes(args.num_classes);
  apply_detector_args(opts, args.detector);
  opts.validate();

  const int layers = detail::trainable_layers_for(name, args.pretrained_backbone,
                                                  args.trainable_backbone_layers, resnet ? 5 : 6, 3);
  const auto norm = NormLayerOptions::for_detection(args.pretrained_backbone);
  auto backbone = resnet ? resnet_fpn_backbone(50, norm, layers) : mobilenet_v3_fpn_backbone(norm, layers);
  return FasterRCNN(std::move(backbone), opts);
}

FasterRCNN fasterrcnn_resnet50_fpn(const ModelArgs& args) {
  return make_faster_rcnn(kResNet50, args);
}

FasterRCNN fasterrcnn_mobilenet_v3_large_fpn(const ModelArgs& args) {
  return make_faster_rcnn(kMobileNet, args);
}

FasterRCNN fasterrcnn_mobilenet_v3_large_320_fpn(const ModelArgs& args) {
  return make_faster_rcnn(kMobileNet320, args);
}

}  // namespace vigil::nn

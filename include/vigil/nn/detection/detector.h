#pragma once
/// The interface every detector in the zoo implements (torchvision's GeneralizedRCNN calling convention), so
/// the trainer, `vigil predict`, evaluation and serving work with any of them.

#include <torch/nn/module.h>
#include <torch/types.h>

#include <map>
#include <string>
#include <vector>

namespace vigil::nn {

/// Ground truth of one image, in the pixel coordinates of the image given to forward().
struct DetectionTarget {
  torch::Tensor boxes;   ///< [N, 4] float32 x1 y1 x2 y2
  torch::Tensor labels;  ///< [N] int64, torchvision label index (1..num_classes-1; 0 is background)
};

/// Detections of one image, in the pixel coordinates of the image given to forward().
struct Detections {
  torch::Tensor boxes;   ///< [K, 4] float32 x1 y1 x2 y2
  torch::Tensor scores;  ///< [K] float32, descending
  torch::Tensor labels;  ///< [K] int64, torchvision label index (never 0)
};

/// Loss name -> scalar, torchvision's names: loss_classifier, loss_box_reg, loss_objectness,
/// loss_rpn_box_reg.
using LossMap = std::map<std::string, torch::Tensor>;

struct DetectorOutput {
  std::vector<Detections> detections;  ///< filled in eval mode (one per image)
  LossMap losses;                      ///< filled whenever targets are given
  /// Eval mode: [N, C] per image, the spatial mean of every backbone feature map, concatenated (what drift
  /// monitoring compares between training data and traffic; a few hundred floats, no extra forward pass).
  torch::Tensor embeddings;
};

/// The spatial means of feature maps [N, C_i, H_i, W_i], concatenated: [N, sum C_i].
torch::Tensor pooled_embedding(const std::vector<torch::Tensor>& maps);

/// Post-processing knobs of the ROI heads (torchvision's box_score_thresh, box_nms_thresh,
/// box_detections_per_img).
struct PostprocessOptions {
  double score_threshold = 0.05;
  double nms_iou = 0.5;
  int64_t max_detections = 100;
};

/// A detector takes a list of [3, H, W] float RGB images in 0..1 (any sizes; normalisation and resizing
/// happen inside, like torchvision) and returns detections mapped back to each image's original size.
class Detector : public torch::nn::Module {
 public:
  /// Train mode: `targets` required, returns losses (torchvision's training path, proposals sampled).
  /// Eval mode: returns detections; when `targets` is also given, losses are computed on the same forward
  /// pass with eval-mode normalisation (for validation loss without touching batch-norm statistics).
  virtual DetectorOutput forward(const std::vector<torch::Tensor>& images,
                                 const std::vector<DetectionTarget>* targets = nullptr) = 0;
  /// Swaps the box predictor (cls_score + bbox_pred) for a fresh one with `num_classes` outputs including the
  /// background, the seeds' fine-tuning recipe (torchvision's FastRCNNPredictor).
  virtual void replace_predictor(int64_t num_classes) = 0;
  /// Classes including the background.
  virtual int64_t num_classes() const = 0;
  virtual void set_postprocess(const PostprocessOptions& options) = 0;
  virtual PostprocessOptions postprocess() const = 0;
  /// Keeps only the last `trainable_layers` backbone stages trainable (torchvision's
  /// trainable_backbone_layers).
  virtual void freeze_backbone(int trainable_layers) = 0;
};

}  // namespace vigil::nn

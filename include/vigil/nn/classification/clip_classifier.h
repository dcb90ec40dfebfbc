#pragma once
/// A clip classifier (CNN + LSTM/GRU, the accident seed's model): a zoo image backbone encodes every frame,
/// a recurrent layer runs over the frame features, and a Linear layer classifies the clip.
///
///   clips [B, T, 3, H, W] -> frames [B*T, 3, H, W] -> backbone features [B*T, F] -> [B, T, F]
///   -> LSTM/GRU (batch_first) -> last hidden state [B, D*hidden] (or the mean of the outputs over T)
///   -> dropout -> fc -> logits [B, num_classes]
///
/// The backbone is shared over the frames and runs as one [B*T] batch (so its BatchNorm statistics are those
/// of all the frames). Parameter names are those of a Python module
///   backbone.*  the image classifier's own names without its head (features.N... for MobileNets;
///               conv1/bn1/layer1..4 for ResNets; features.* + classifier.0/classifier.1 for mask_small_cnn,
///               whose 256-wide dense layer is its frame feature)
///   rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0 (+ _l1..., + _reverse) as
///   torch.nn.LSTM
///               and torch.nn.GRU name them
///   fc.weight, fc.bias
/// Frame features: MobileNetV2 1280, MobileNetV3 large 960 / small 576 (the pooled last feature block, before
/// the classifier's hidden Linear), ResNet-18 512 / ResNet-50 2048, mask_small_cnn 256.

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

#include "vigil/nn/backbones/mobilenet_v2.h"
#include "vigil/nn/backbones/mobilenet_v3.h"
#include "vigil/nn/backbones/resnet.h"
#include "vigil/nn/classification/classifier.h"
#include "vigil/nn/classification/small_cnn.h"

namespace vigil::nn {

/// The recurrent layer over the frame features.
enum class RecurrentKind { kLstm, kGru };
/// "lstm" / "gru".
const char* recurrent_kind_name(RecurrentKind kind);
/// "lstm" / "gru"; throws InvalidArgument otherwise.
RecurrentKind parse_recurrent_kind(const std::string& s);

/// What the classifier reads from the recurrent layer: its final hidden state (for a bidirectional layer the
/// forward direction's after frame T and the backward direction's after frame 1, concatenated), or the mean
/// of its outputs over the T frames.
enum class ClipPooling { kLast, kMean };
/// "last" / "mean".
const char* clip_pooling_name(ClipPooling pooling);
/// "last" / "mean"; throws InvalidArgument otherwise.
ClipPooling parse_clip_pooling(const std::string& s);

/// Backbones a clip classifier can use: mobilenet_v2, mobilenet_v3_large, mobilenet_v3_small, resnet18,
/// resnet50, mask_small_cnn.
const std::vector<std::string>& clip_backbone_names();

struct ClipClassifierOptions {
  /* implicit */ ClipClassifierOptions(std::string backbone = "mobilenet_v2")
      : backbone_(std::move(backbone)) {}
  /// One of clip_backbone_names().
  TORCH_ARG(std::string, backbone);
  TORCH_ARG(RecurrentKind, rnn) = RecurrentKind::kLstm;
  TORCH_ARG(int64_t, hidden_size) = 256;
  TORCH_ARG(int64_t, num_layers) = 1;
  TORCH_ARG(bool, bidirectional) = false;
  /// Between stacked recurrent layers (torch.nn.LSTM's `dropout`); only meaningful with num_layers > 1.
  TORCH_ARG(double, rnn_dropout) = 0.0;
  /// Before fc.
  TORCH_ARG(double, dropout) = 0.2;
  TORCH_ARG(ClipPooling, pooling) = ClipPooling::kLast;
  TORCH_ARG(int64_t, num_classes) = 2;
  /// Frames per clip the model is trained on and served with (the data side cuts windows of this length).
  /// forward() itself accepts any T >= 1.
  TORCH_ARG(int64_t, clip_length) = 8;

 public:
  /// Throws InvalidArgument naming the field (unknown backbone, sizes < 1, dropouts outside [0, 1)).
  void validate() const;
};

/// CNN per frame + LSTM/GRU over time (see the file comment for shapes and names). Backbone stages are the
/// backbone's own (freeze_backbone freezes inside the backbone only; rnn and fc stay trainable).
class ClipClassifierImpl : public Classifier {
 public:
  explicit ClipClassifierImpl(const ClipClassifierOptions& options = {});
  /// clips [B, T, 3, H, W] (normalised) -> logits [B, num_classes].
  torch::Tensor forward(const torch::Tensor& clips) override;
  /// clips [B, T, 3, H, W] -> per-frame features [B, T, feature_size()].
  torch::Tensor frame_features(const torch::Tensor& clips);
  /// features [B, T, feature_size()] -> logits [B, num_classes]: the recurrent layer, pooling, dropout, fc.
  torch::Tensor classify_features(const torch::Tensor& features);

  void replace_head(int64_t num_classes, uint64_t seed = 0) override;
  void freeze_backbone(int trainable_stages = 0) override;
  int num_backbone_stages() const override;
  int64_t num_classes() const override { return fc_->options.out_features(); }

  /// Width of one frame's feature vector (the recurrent layer's input size).
  int64_t feature_size() const { return feature_size_; }
  int64_t clip_length() const { return options_.clip_length(); }
  const ClipClassifierOptions& options() const { return options_; }

 private:
  void make_backbone();
  torch::Tensor encode_frames(const torch::Tensor& frames);
  torch::Tensor small_cnn_features(const torch::Tensor& frames);

  ClipClassifierOptions options_;
  int64_t feature_size_ = 0;
  std::shared_ptr<Classifier> backbone_;
  // Exactly one of these holds the backbone (typed access to its feature path).
  MobileNetV2 mobilenet_v2_{nullptr};
  MobileNetV3 mobilenet_v3_{nullptr};
  ResNet resnet_{nullptr};
  SmallCnn small_cnn_{nullptr};
  // Exactly one of these is registered as "rnn".
  torch::nn::LSTM lstm_{nullptr};
  torch::nn::GRU gru_{nullptr};
  torch::nn::Linear fc_{nullptr};
};
TORCH_MODULE(ClipClassifier);

}  // namespace vigil::nn

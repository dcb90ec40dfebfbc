// The Faster R-CNN parts before the RoI heads: transform, FPN backbones, anchors and the RPN (shapes,
// torchvision's state_dict names, the freezing rule, known anchors and bad-input errors).

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <map>
#include <set>
#include <string>

#include "vigil/core/error.h"
#include "vigil/nn/detection/anchor_generator.h"
#include "vigil/nn/detection/fpn.h"
#include "vigil/nn/detection/rpn.h"
#include "vigil/nn/detection/transform.h"

namespace vigil::nn {
namespace {

GeneralizedRCNNTransformOptions small_transform() {
  return GeneralizedRCNNTransformOptions().min_size({320}).max_size(512);
}

std::set<std::string> keys_of(torch::nn::Module& m) {
  std::set<std::string> keys;
  for (const auto& item : m.named_parameters()) keys.insert(item.key());
  for (const auto& item : m.named_buffers()) keys.insert(item.key());
  return keys;
}

// Parameter name -> requires_grad, for parameters under `prefix`.
std::map<std::string, bool> trainable(torch::nn::Module& m, const std::string& prefix) {
  std::map<std::string, bool> out;
  for (const auto& item : m.named_parameters()) {
    if (item.key().rfind(prefix, 0) == 0) out[item.key()] = item.value().requires_grad();
  }
  return out;
}

// ------------------------------------------------------------------------------------------ transform

TEST(DetectionTransform, ResizesToMinSizeCappedByMaxSizeAndPads) {
  GeneralizedRCNNTransform t(small_transform());
  t->eval();
  // 100x200: min(320/100, 512/200) = 2.56, which float32 rounds down, so floor() gives 255x511 as in
  // torchvision. 150x120: 320/120 -> 400x320.
  const auto images = std::vector<torch::Tensor>{torch::rand({3, 100, 200}), torch::rand({3, 150, 120})};
  const auto out = t->forward(images);
  ASSERT_EQ(out.image_sizes.size(), 2u);
  EXPECT_EQ(out.image_sizes[0], (std::array<int64_t, 2>{255, 511}));
  EXPECT_EQ(out.image_sizes[1], (std::array<int64_t, 2>{400, 320}));
  EXPECT_EQ(out.tensors.sizes(), torch::IntArrayRef({2, 3, 416, 512}));
  // Padding is zero, the image area is normalised (not zero).
  EXPECT_EQ(
      out.tensors[0].index({torch::indexing::Slice(), torch::indexing::Slice(255)}).abs().sum().item<float>(),
      0.f);
  EXPECT_GT(
      out.tensors[1]
          .index({torch::indexing::Slice(), torch::indexing::Slice(0, 400), torch::indexing::Slice(0, 320)})
          .abs()
          .sum()
          .item<float>(),
      0.f);
}

TEST(DetectionTransform, NormalizesWithMeanAndStd) {
  GeneralizedRCNNTransform t(small_transform().image_mean({0.5, 0.5, 0.5}).image_std({0.25, 0.5, 1.0}));
  const auto image = torch::full({3, 4, 4}, 1.0);
  const auto n = t->normalize(image);
  EXPECT_FLOAT_EQ(n[0][0][0].item<float>(), 2.0f);
  EXPECT_FLOAT_EQ(n[1][0][0].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(n[2][0][0].item<float>(), 0.5f);
}

TEST(DetectionTransform, RescalesTargetBoxesWithoutTouchingTheCallersTensors) {
  GeneralizedRCNNTransform t(small_transform());
  t->eval();
  const auto boxes = torch::tensor({{10.f, 20.f, 50.f, 80.f}});
  std::vector<DetectionTarget> targets = {{boxes, torch::tensor({1}, torch::kLong)}};
  t->forward({torch::rand({3, 100, 200})}, &targets);
  // Resized to 255x511 (see above): x * 511/200, y * 255/100.
  EXPECT_TRUE(torch::allclose(targets[0].boxes, torch::tensor({{25.55f, 51.f, 127.75f, 204.f}})));
  EXPECT_TRUE(torch::equal(boxes, torch::tensor({{10.f, 20.f, 50.f, 80.f}})));
  EXPECT_TRUE(torch::equal(targets[0].labels, torch::tensor({1}, torch::kLong)));
}

TEST(DetectionTransform, PostprocessMapsBoxesBackToTheOriginalSize) {
  GeneralizedRCNNTransform t(small_transform());
  t->eval();
  std::vector<Detections> dets = {{torch::tensor({{25.6f, 51.2f, 128.f, 204.8f}}), torch::tensor({0.9f}),
                                   torch::tensor({1}, torch::kLong)}};
  const auto out = t->postprocess(dets, {{256, 512}}, {{100, 200}});
  EXPECT_TRUE(torch::allclose(out[0].boxes, torch::tensor({{10.f, 20.f, 50.f, 80.f}})));
  EXPECT_THROW(t->postprocess(dets, {}, {{100, 200}}), InvalidArgument);
}

TEST(DetectionTransform, TrainingPicksOneOfTheMinSizes) {
  GeneralizedRCNNTransform t(GeneralizedRCNNTransformOptions().min_size({64, 96, 128}).max_size(1000));
  t->train();
  std::set<int64_t> seen;
  for (int i = 0; i < 40; ++i) seen.insert(t->forward({torch::rand({3, 32, 40})}).image_sizes[0][0]);
  EXPECT_EQ(seen, (std::set<int64_t>{64, 96, 128}));
  t->eval();
  EXPECT_EQ(t->forward({torch::rand({3, 32, 40})}).image_sizes[0][0], 128);
}

TEST(DetectionTransform, FixedSizeIsWidthThenHeight) {
  GeneralizedRCNNTransform t(small_transform().fixed_size(std::array<int64_t, 2>{64, 48}));
  t->eval();
  const auto out = t->forward({torch::rand({3, 100, 200})});
  EXPECT_EQ(out.image_sizes[0], (std::array<int64_t, 2>{48, 64}));
}

TEST(DetectionTransform, RejectsBadInput) {
  GeneralizedRCNNTransform t(small_transform());
  EXPECT_THROW(t->forward({}), InvalidArgument);
  EXPECT_THROW(t->forward({torch::rand({1, 10, 10})}), InvalidArgument);
  EXPECT_THROW(t->forward({torch::rand({10, 10})}), InvalidArgument);
  EXPECT_THROW(t->forward({torch::ones({3, 10, 10}, torch::kUInt8)}), InvalidArgument);
  std::vector<DetectionTarget> two = {{torch::zeros({0, 4}), torch::zeros({0}, torch::kLong)},
                                      {torch::zeros({0, 4}), torch::zeros({0}, torch::kLong)}};
  EXPECT_THROW(t->forward({torch::rand({3, 10, 10})}, &two), InvalidArgument);
  std::vector<DetectionTarget> bad_boxes = {{torch::zeros({2, 3}), torch::zeros({2}, torch::kLong)}};
  EXPECT_THROW(t->forward({torch::rand({3, 10, 10})}, &bad_boxes), InvalidArgument);
  EXPECT_THROW(GeneralizedRCNNTransform(small_transform().min_size({})), InvalidArgument);
  EXPECT_THROW(GeneralizedRCNNTransform(small_transform().image_std({1.0, 0.0, 1.0})), InvalidArgument);
}

// ------------------------------------------------------------------------------------------------ FPN

TEST(FeaturePyramid, KeepsNamesAndAddsPool) {
  FeaturePyramidNetwork fpn(FeaturePyramidNetworkOptions({8, 16}, 4));
  FeatureMap x;
  x.insert("a", torch::rand({1, 8, 16, 16}));
  x.insert("b", torch::rand({1, 16, 7, 7}));
  const auto out = fpn->forward(x);
  EXPECT_EQ(out.keys(), (std::vector<std::string>{"a", "b", "pool"}));
  EXPECT_EQ(out["a"].sizes(), torch::IntArrayRef({1, 4, 16, 16}));
  EXPECT_EQ(out["b"].sizes(), torch::IntArrayRef({1, 4, 7, 7}));
  EXPECT_EQ(out["pool"].sizes(), torch::IntArrayRef({1, 4, 4, 4}));
  EXPECT_TRUE(torch::equal(
      out["pool"], out["b"].index({torch::indexing::Slice(), torch::indexing::Slice(),
                                   torch::indexing::Slice(0, 7, 2), torch::indexing::Slice(0, 7, 2)})));
  const auto keys = keys_of(*fpn);
  EXPECT_EQ(keys, (std::set<std::string>{"inner_blocks.0.0.weight", "inner_blocks.0.0.bias",
                                         "inner_blocks.1.0.weight", "inner_blocks.1.0.bias",
                                         "layer_blocks.0.0.weight", "layer_blocks.0.0.bias",
                                         "layer_blocks.1.0.weight", "layer_blocks.1.0.bias"}));
  EXPECT_EQ(fpn->named_parameters()["inner_blocks.0.0.bias"].abs().sum().item<float>(), 0.f);
  FeatureMap wrong;
  wrong.insert("a", torch::rand({1, 9, 16, 16}));
  wrong.insert("b", torch::rand({1, 16, 7, 7}));
  EXPECT_THROW(fpn->forward(wrong), InvalidArgument);
}

TEST(FeaturePyramid, ResNet50BackboneHasTorchvisionKeysAndShapes) {
  auto backbone = resnet_fpn_backbone(50, NormLayerOptions::frozen(), 3);
  const auto keys = keys_of(*backbone);
  for (const char* key :
       {"body.conv1.weight", "body.bn1.running_var", "body.layer1.0.conv1.weight", "body.layer4.2.bn3.bias",
        "body.layer2.0.downsample.0.weight", "fpn.inner_blocks.0.0.weight", "fpn.layer_blocks.3.0.bias"}) {
    EXPECT_TRUE(keys.count(key)) << key;
  }
  EXPECT_FALSE(keys.count("body.fc.weight"));
  EXPECT_EQ(backbone->named_parameters()["fpn.inner_blocks.3.0.weight"].sizes(),
            torch::IntArrayRef({256, 2048, 1, 1}));
  EXPECT_EQ(backbone->out_channels(), 256);
  EXPECT_EQ(backbone->level_names(), (std::vector<std::string>{"0", "1", "2", "3"}));
  backbone->eval();
  torch::NoGradGuard no_grad;
  const auto out = backbone->forward(torch::rand({1, 3, 64, 96}));
  EXPECT_EQ(out.keys(), (std::vector<std::string>{"0", "1", "2", "3", "pool"}));
  EXPECT_EQ(out["0"].sizes(), torch::IntArrayRef({1, 256, 16, 24}));
  EXPECT_EQ(out["3"].sizes(), torch::IntArrayRef({1, 256, 2, 3}));
  EXPECT_EQ(out["pool"].sizes(), torch::IntArrayRef({1, 256, 1, 2}));
}

TEST(FeaturePyramid, MobileNetBackboneHasTorchvisionKeysAndShapes) {
  auto backbone = mobilenet_v3_fpn_backbone(NormLayerOptions::for_detection(false), 6);
  const auto keys = keys_of(*backbone);
  for (const char* key : {"body.0.0.weight", "body.0.1.running_mean", "body.1.block.0.0.weight",
                          "body.4.block.2.fc1.weight", "body.16.0.weight", "fpn.inner_blocks.1.0.bias"}) {
    EXPECT_TRUE(keys.count(key)) << key;
  }
  EXPECT_FALSE(keys.count("body.17.0.weight"));
  EXPECT_EQ(backbone->named_parameters()["fpn.inner_blocks.0.0.weight"].sizes(),
            torch::IntArrayRef({256, 160, 1, 1}));
  EXPECT_EQ(backbone->named_parameters()["fpn.inner_blocks.1.0.weight"].sizes(),
            torch::IntArrayRef({256, 960, 1, 1}));
  EXPECT_EQ(backbone->level_names(), (std::vector<std::string>{"0", "1"}));
  EXPECT_EQ(backbone->max_trainable_layers(), 6);
  backbone->eval();
  torch::NoGradGuard no_grad;
  const auto out = backbone->forward(torch::rand({2, 3, 64, 128}));
  EXPECT_EQ(out.keys(), (std::vector<std::string>{"0", "1", "pool"}));
  EXPECT_EQ(out["0"].sizes(), torch::IntArrayRef({2, 256, 2, 4}));
  EXPECT_EQ(out["1"].sizes(), torch::IntArrayRef({2, 256, 2, 4}));
  EXPECT_EQ(out["pool"].sizes(), torch::IntArrayRef({2, 256, 1, 2}));
}

TEST(FeaturePyramid, ResNetFreezeFollowsTorchvisionRule) {
  auto backbone = resnet_fpn_backbone(18, NormLayerOptions::batch_norm(), 3);
  for (const auto& [name, grad] : trainable(*backbone, "body.")) {
    const bool expected = name.rfind("body.layer2", 0) == 0 || name.rfind("body.layer3", 0) == 0 ||
                          name.rfind("body.layer4", 0) == 0;
    EXPECT_EQ(grad, expected) << name;
  }
  for (const auto& [name, grad] : trainable(*backbone, "fpn.")) EXPECT_TRUE(grad) << name;
  backbone->freeze(5);
  for (const auto& [name, grad] : trainable(*backbone, "body.")) EXPECT_TRUE(grad) << name;
  backbone->freeze(4);
  EXPECT_FALSE(trainable(*backbone, "body.bn1.")["body.bn1.weight"]);
  EXPECT_FALSE(trainable(*backbone, "body.conv1.").empty());
  EXPECT_FALSE(trainable(*backbone, "body.conv1.")["body.conv1.weight"]);
  EXPECT_TRUE(trainable(*backbone, "body.layer1.")["body.layer1.0.conv1.weight"]);
  backbone->freeze(0);
  for (const auto& [name, grad] : trainable(*backbone, "body.")) EXPECT_FALSE(grad) << name;
  EXPECT_THROW(backbone->freeze(6), InvalidArgument);
  EXPECT_THROW(backbone->freeze(-1), InvalidArgument);
}

TEST(FeaturePyramid, MobileNetFreezeFollowsTorchvisionRule) {
  // stage_indices = [0, 2, 4, 7, 13, 16]: 3 trainable stages freeze body.0 .. body.6.
  auto backbone = mobilenet_v3_fpn_backbone(NormLayerOptions::frozen(), 3);
  for (const auto& [name, grad] : trainable(*backbone, "body.")) {
    const int block = std::stoi(name.substr(5, name.find('.', 5) - 5));
    EXPECT_EQ(grad, block >= 7) << name;
  }
  backbone->freeze(6);
  for (const auto& [name, grad] : trainable(*backbone, "body.")) EXPECT_TRUE(grad) << name;
  backbone->freeze(0);
  for (const auto& [name, grad] : trainable(*backbone, "body.")) EXPECT_FALSE(grad) << name;
  for (const auto& [name, grad] : trainable(*backbone, "fpn.")) EXPECT_TRUE(grad) << name;
  EXPECT_THROW(backbone->freeze(7), InvalidArgument);
}

// -------------------------------------------------------------------------------------------- anchors

TEST(Anchors, BaseAnchorsAreRoundedLikeTorchvision) {
  const auto a32 = AnchorGeneratorImpl::generate_anchors({32}, {0.5, 1.0, 2.0});
  EXPECT_TRUE(torch::equal(
      a32,
      torch::tensor({{-23.f, -11.f, 23.f, 11.f}, {-16.f, -16.f, 16.f, 16.f}, {-11.f, -23.f, 11.f, 23.f}})));
  const auto multi = AnchorGeneratorImpl::generate_anchors({128, 256, 512}, {0.5, 1.0, 2.0});
  ASSERT_EQ(multi.sizes(), torch::IntArrayRef({9, 4}));
  EXPECT_TRUE(torch::equal(multi[0], torch::tensor({-91.f, -45.f, 91.f, 45.f})));
  EXPECT_TRUE(torch::equal(multi[2], torch::tensor({-362.f, -181.f, 362.f, 181.f})));
  EXPECT_TRUE(torch::equal(multi[7], torch::tensor({-91.f, -181.f, 91.f, 181.f})));
}

TEST(Anchors, TilesEveryLevelWithItsStride) {
  AnchorGenerator gen(std::vector<std::vector<double>>{{32}, {64}},
                      std::vector<std::vector<double>>{{0.5, 1.0, 2.0}, {0.5, 1.0, 2.0}});
  EXPECT_EQ(gen->num_anchors_per_location(), (std::vector<int64_t>{3, 3}));
  EXPECT_TRUE(gen->parameters().empty());
  EXPECT_TRUE(gen->buffers().empty());
  ImageList images{torch::zeros({2, 3, 64, 96}), {{64, 90}, {60, 96}}};
  const auto anchors = gen->forward(images, {torch::zeros({2, 4, 8, 12}), torch::zeros({2, 4, 4, 6})});
  ASSERT_EQ(anchors.size(), 2u);
  EXPECT_EQ(anchors[0].sizes(), torch::IntArrayRef({8 * 12 * 3 + 4 * 6 * 3, 4}));
  EXPECT_TRUE(torch::equal(anchors[0], anchors[1]));
  // Location (y=0, x=1) of level 0 is shifted by the stride 8; level 1 starts after 288 anchors, stride 16.
  EXPECT_TRUE(torch::equal(anchors[0][3], torch::tensor({-15.f, -11.f, 31.f, 11.f})));
  EXPECT_TRUE(torch::equal(anchors[0][12 * 3 + 1], torch::tensor({-16.f, -8.f, 16.f, 24.f})));
  EXPECT_TRUE(torch::equal(anchors[0][288 + 6 * 3 + 1], torch::tensor({-32.f, -16.f, 32.f, 48.f})));
  EXPECT_THROW(gen->forward(images, {torch::zeros({2, 4, 8, 12})}), InvalidArgument);
  EXPECT_THROW(AnchorGenerator(std::vector<std::vector<double>>{{32}}, std::vector<std::vector<double>>{}),
               InvalidArgument);
}

// ------------------------------------------------------------------------------------------------ RPN

RegionProposalNetwork small_rpn(RegionProposalNetworkOptions options = {}) {
  AnchorGenerator gen(std::vector<std::vector<double>>{{16}, {32}},
                      std::vector<std::vector<double>>{{0.5, 1.0, 2.0}, {0.5, 1.0, 2.0}});
  return RegionProposalNetwork(gen, RPNHead(8, 3), options);
}

FeatureMap small_features() {
  FeatureMap f;
  f.insert("0", torch::randn({2, 8, 16, 16}));
  f.insert("1", torch::randn({2, 8, 8, 8}));
  return f;
}

TEST(Rpn, HeadHasTorchvisionKeysAndShapes) {
  RPNHead head(8, 3, 2);
  EXPECT_EQ(keys_of(*head), (std::set<std::string>{"conv.0.0.weight", "conv.0.0.bias", "conv.1.0.weight",
                                                   "conv.1.0.bias", "cls_logits.weight", "cls_logits.bias",
                                                   "bbox_pred.weight", "bbox_pred.bias"}));
  EXPECT_EQ(head->cls_logits->bias.abs().sum().item<float>(), 0.f);
  EXPECT_LT(head->bbox_pred->weight.std().item<float>(), 0.02f);
  const auto [logits, deltas] = head->forward({torch::rand({1, 8, 5, 7})});
  EXPECT_EQ(logits[0].sizes(), torch::IntArrayRef({1, 3, 5, 7}));
  EXPECT_EQ(deltas[0].sizes(), torch::IntArrayRef({1, 12, 5, 7}));
  EXPECT_THROW(RPNHead(8, 0), InvalidArgument);
}

TEST(Rpn, EvalProposalsAreClippedAndCapped) {
  auto rpn = small_rpn(RegionProposalNetworkOptions().post_nms_top_n_test(50));
  rpn->eval();
  EXPECT_EQ(keys_of(*rpn).count("head.conv.0.0.weight"), 1u);
  EXPECT_EQ(keys_of(*rpn->anchor_generator).size(), 0u);
  torch::NoGradGuard no_grad;
  ImageList images{torch::zeros({2, 3, 128, 128}), {{128, 100}, {90, 128}}};
  const auto out = rpn->forward(images, small_features());
  ASSERT_EQ(out.proposals.size(), 2u);
  EXPECT_TRUE(out.losses.empty());
  for (size_t i = 0; i < 2; ++i) {
    const auto& p = out.proposals[i];
    EXPECT_GT(p.size(0), 0);
    EXPECT_LE(p.size(0), 50);
    EXPECT_EQ(out.scores[i].size(0), p.size(0));
    EXPECT_GE(p.min().item<float>(), 0.f);
    EXPECT_LE(p.select(1, 2).max().item<float>(), images.image_sizes[i][1]);
    EXPECT_LE(p.select(1, 3).max().item<float>(), images.image_sizes[i][0]);
    // Sorted by level-wise NMS output, i.e. by descending score.
    EXPECT_TRUE(torch::equal(out.scores[i], std::get<0>(out.scores[i].sort(0, true))));
  }
}

TEST(Rpn, LossesWhenTargetsAreGivenInEvalAndTrain) {
  auto rpn = small_rpn();
  ImageList images{torch::zeros({2, 3, 128, 128}), {{128, 128}, {128, 128}}};
  std::vector<DetectionTarget> targets = {
      {torch::tensor({{10.f, 10.f, 40.f, 50.f}}), torch::tensor({1}, torch::kLong)},
      {torch::zeros({0, 4}), torch::zeros({0}, torch::kLong)}};
  rpn->eval();
  const auto eval_out = rpn->forward(images, small_features(), &targets);
  ASSERT_EQ(eval_out.losses.size(), 2u);
  EXPECT_TRUE(std::isfinite(eval_out.losses.at("loss_objectness").item<float>()));
  EXPECT_TRUE(std::isfinite(eval_out.losses.at("loss_rpn_box_reg").item<float>()));
  rpn->train();
  const auto train_out = rpn->forward(images, small_features(), &targets);
  EXPECT_GT(train_out.losses.at("loss_objectness").item<float>(), 0.f);
  train_out.losses.at("loss_objectness").backward();
  EXPECT_TRUE(rpn->head->cls_logits->weight.grad().defined());
  EXPECT_THROW(rpn->forward(images, small_features()), InvalidArgument);
  std::vector<DetectionTarget> one = {targets[0]};
  EXPECT_THROW(rpn->forward(images, small_features(), &one), InvalidArgument);
}

TEST(Rpn, OptionsAreValidated) {
  EXPECT_THROW(RegionProposalNetworkOptions().nms_thresh(0.0).validate(), InvalidArgument);
  EXPECT_THROW(RegionProposalNetworkOptions().fg_iou_thresh(0.2).validate(), InvalidArgument);
  EXPECT_THROW(RegionProposalNetworkOptions().positive_fraction(1.5).validate(), InvalidArgument);
  EXPECT_THROW(small_rpn(RegionProposalNetworkOptions().pre_nms_top_n_test(0)), InvalidArgument);
  EXPECT_NO_THROW(RegionProposalNetworkOptions().validate());
}

}  // namespace
}  // namespace vigil::nn

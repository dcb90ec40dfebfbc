// Backbones, classifiers and the zoo: shapes, torchvision's parameter counts and names, head replacement,
// freezing, detection helpers, and one training step of the mask seed's CNN.

#include <gtest/gtest.h>

#include <set>

#include "vigil/core/error.h"
#include "vigil/nn/backbones/mobilenet_v2.h"
#include "vigil/nn/backbones/mobilenet_v3.h"
#include "vigil/nn/backbones/resnet.h"
#include "vigil/nn/classification/small_cnn.h"
#include "vigil/nn/frozen_batch_norm.h"
#include "vigil/nn/zoo.h"

namespace vigil::nn {
namespace {

int64_t count_parameters(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

std::set<std::string> trainable_names(torch::nn::Module& m) {
  std::set<std::string> out;
  for (const auto& p : m.named_parameters())
    if (p.value().requires_grad()) out.insert(p.key());
  return out;
}

bool all_start_with_any(const std::set<std::string>& names, const std::vector<std::string>& prefixes) {
  for (const auto& n : names) {
    bool ok = false;
    for (const auto& p : prefixes) ok = ok || n.rfind(p, 0) == 0;
    if (!ok) return false;
  }
  return true;
}

std::set<std::string> state_names(torch::nn::Module& m) {
  std::set<std::string> out;
  for (const auto& p : m.named_parameters()) out.insert(p.key());
  for (const auto& b : m.named_buffers()) out.insert(b.key());
  return out;
}

const std::vector<std::string> kClassifiers = {"mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small",
                                               "resnet18",     "resnet50",           "mask_small_cnn"};

TEST(Zoo, ListsBuiltinClassifiers) {
  auto names = model_names();
  for (const auto& n : kClassifiers) EXPECT_NE(std::find(names.begin(), names.end(), n), names.end()) << n;
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(find_model("mask_small_cnn").preprocess.width, 100);
  EXPECT_EQ(find_model("resnet50").preprocess.height, 224);
  EXPECT_EQ(find_model("resnet50").preprocess.mean.size(), 3u);
  EXPECT_EQ(find_model("resnet50").task, vigil::data::Task::kClassification);
  EXPECT_TRUE(find_model("resnet50").preprocess.normalize);
}

TEST(Zoo, OutputShapes) {
  torch::NoGradGuard no_grad;
  for (const auto& name : kClassifiers) {
    const auto& spec = find_model(name);
    auto model = make_classifier(name, 5);
    model->eval();
    auto out = model->forward(torch::randn({2, 3, spec.preprocess.height, spec.preprocess.width}));
    EXPECT_EQ(out.sizes(), (std::vector<int64_t>{2, 5})) << name;
    EXPECT_EQ(model->num_classes(), 5) << name;
  }
}

TEST(Zoo, ParameterCountsMatchTorchvision) {
  // torchvision 0.14, num_classes=1000 (checked with python3-torchvision).
  const std::map<std::string, int64_t> expected = {{"resnet18", 11689512},
                                                   {"resnet50", 25557032},
                                                   {"mobilenet_v2", 3504872},
                                                   {"mobilenet_v3_large", 5483032},
                                                   {"mobilenet_v3_small", 2542856}};
  for (const auto& [name, count] : expected) {
    auto model = make_classifier(name, 1000);
    EXPECT_EQ(count_parameters(*model), count) << name;
  }
}

TEST(Zoo, UnknownNameListsValidNames) {
  try {
    find_model("resnet1000");
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("resnet1000"), std::string::npos) << msg;
    for (const auto& n : kClassifiers) EXPECT_NE(msg.find(n), std::string::npos) << msg;
  }
  EXPECT_THROW(make_classifier("nope", 2), InvalidArgument);
  EXPECT_THROW(make_classifier("resnet18", 0), InvalidArgument);
}

TEST(Zoo, RegisterModelRejectsDuplicatesAndAcceptsNewOnes) {
  ModelSpec spec;
  spec.name = "resnet18";
  spec.task = vigil::data::Task::kClassification;
  spec.factory = [](const ModelArgs&) { return std::make_shared<torch::nn::Module>(); };
  EXPECT_THROW(register_model(spec), InvalidArgument);
  spec.name = "test_only_detector";
  spec.task = vigil::data::Task::kDetection;
  register_model(spec);
  EXPECT_EQ(find_model("test_only_detector").task, vigil::data::Task::kDetection);
  EXPECT_THROW(make_classifier("test_only_detector", 2), InvalidArgument);
}

TEST(Names, MatchTorchvisionStateDictKeys) {
  auto r50 = make_classifier("resnet50", 1000);
  auto names = state_names(*r50);
  for (const char* k :
       {"conv1.weight", "bn1.num_batches_tracked", "layer1.0.conv3.weight", "layer4.0.downsample.0.weight",
        "layer4.0.downsample.1.running_var", "layer4.2.bn3.bias", "fc.weight", "fc.bias"})
    EXPECT_TRUE(names.count(k)) << k;
  EXPECT_FALSE(names.count("layer4.1.downsample.0.weight"));
  auto v2 = state_names(*make_classifier("mobilenet_v2", 10));
  for (const char* k :
       {"features.0.0.weight", "features.0.1.running_mean", "features.1.conv.0.0.weight",
        "features.1.conv.2.weight", "features.2.conv.3.bias", "features.18.1.weight", "classifier.1.weight"})
    EXPECT_TRUE(v2.count(k)) << k;
  auto v3 = state_names(*make_classifier("mobilenet_v3_large", 10));
  for (const char* k : {"features.4.block.2.fc1.weight", "features.4.block.2.fc2.bias",
                        "features.16.1.running_var", "classifier.0.weight", "classifier.3.bias"})
    EXPECT_TRUE(v3.count(k)) << k;
  auto cnn = state_names(*make_classifier("mask_small_cnn", 2));
  for (const char* k : {"features.0.weight", "features.2.running_mean", "features.10.weight",
                        "classifier.0.weight", "classifier.1.running_var", "classifier.4.bias"})
    EXPECT_TRUE(cnn.count(k)) << k;
}

TEST(Classifier, ReplaceHeadChangesOutputWidth) {
  torch::NoGradGuard no_grad;
  for (const auto& name : kClassifiers) {
    const auto& spec = find_model(name);
    auto model = make_classifier(name, 1000);
    model->replace_head(7, /*seed=*/3);
    model->eval();
    EXPECT_EQ(model->num_classes(), 7) << name;
    EXPECT_EQ(model->forward(torch::randn({1, 3, spec.preprocess.height, spec.preprocess.width})).size(1), 7)
        << name;
  }
  // Seeded: the same seed gives the same head.
  auto a = make_classifier("resnet18", 10), b = make_classifier("resnet18", 10);
  a->replace_head(4, 11);
  b->replace_head(4, 11);
  EXPECT_TRUE(a->named_parameters()["fc.weight"].equal(b->named_parameters()["fc.weight"]));
}

TEST(Classifier, FreezeBackboneLeavesHeadTrainable) {
  auto r18 = make_classifier("resnet18", 3);
  r18->freeze_backbone(0);
  EXPECT_EQ(trainable_names(*r18), (std::set<std::string>{"fc.weight", "fc.bias"}));
  r18->freeze_backbone(2);
  auto t = trainable_names(*r18);
  EXPECT_TRUE(all_start_with_any(t, {"layer4", "layer3", "fc"}));
  EXPECT_TRUE(t.count("layer3.0.conv1.weight") && t.count("layer4.1.bn2.weight"));
  r18->freeze_backbone(5);
  EXPECT_EQ(trainable_names(*r18).size(), r18->parameters().size());

  auto v2 = make_classifier("mobilenet_v2", 3);
  v2->freeze_backbone(0);
  EXPECT_EQ(trainable_names(*v2), (std::set<std::string>{"classifier.1.weight", "classifier.1.bias"}));
  auto v3 = make_classifier("mobilenet_v3_large", 3);
  EXPECT_EQ(v3->num_backbone_stages(), 6);
  v3->freeze_backbone(1);  // only features.16 (the last stage) + the classifier
  EXPECT_TRUE(all_start_with_any(trainable_names(*v3), {"features.16.", "classifier."}));
  EXPECT_TRUE(trainable_names(*v3).count("features.16.0.weight"));
  EXPECT_THROW(v3->freeze_backbone(7), InvalidArgument);

  auto cnn = make_classifier("mask_small_cnn", 2);
  cnn->freeze_backbone(0);
  EXPECT_TRUE(all_start_with_any(trainable_names(*cnn), {"classifier."}));
  EXPECT_EQ(trainable_names(*cnn).size(), 6u);
}

TEST(Backbones, ResNetStagesDilationAndFpnFreezing) {
  torch::NoGradGuard no_grad;
  ResNet body(resnet_options(50).include_top(false).norm(NormLayerOptions::for_detection(true)));
  body->eval();
  EXPECT_EQ(count_parameters(*body), 25557032 - 2048 * 1000 - 1000 - 53120);  // minus fc, minus BN affine
  auto outs = body->forward_stages(torch::randn({1, 3, 224, 224}));
  ASSERT_EQ(outs.size(), 4u);
  const std::vector<int64_t> channels = {256, 512, 1024, 2048}, sides = {56, 28, 14, 7};
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(outs[i].size(1), channels[i]);
    EXPECT_EQ(outs[i].size(2), sides[i]);
  }
  EXPECT_EQ(body->stage_channels(), channels);
  auto names = state_names(*body);
  EXPECT_TRUE(names.count("layer1.0.bn1.running_mean"));
  EXPECT_FALSE(names.count("bn1.num_batches_tracked"));  // FrozenBatchNorm2d
  EXPECT_TRUE(is_ignored_frozen_bn_key(*body, "layer1.0.bn1.num_batches_tracked"));
  EXPECT_FALSE(is_ignored_frozen_bn_key(*body, "layer1.0.conv1.num_batches_tracked"));

  ResNet r18(resnet_options(18));
  r18->freeze_for_fpn(3);
  EXPECT_TRUE(all_start_with_any(trainable_names(*r18), {"layer2", "layer3", "layer4"}));
  ResNet all(resnet_options(18));
  all->freeze_for_fpn(5);
  EXPECT_TRUE(trainable_names(*all).count("bn1.weight"));
  EXPECT_FALSE(trainable_names(*all).count("fc.weight"));

  auto dil = resnet_options(50).include_top(false);
  dil.replace_stride_with_dilation({false, true, true});
  ResNet dilated(dil);
  dilated->eval();
  EXPECT_EQ(dilated->forward_stages(torch::randn({1, 3, 224, 224})).back().size(2), 28);
}

TEST(Backbones, MobileNetStageIndicesAndFeatures) {
  torch::NoGradGuard no_grad;
  MobileNetV2 v2;
  EXPECT_EQ(v2->stages().stage_indices(), (std::vector<int>{0, 2, 4, 7, 14, 18}));
  MobileNetV3 large(MobileNetV3Options("large"));
  EXPECT_EQ(large->stages().stage_indices(), (std::vector<int>{0, 2, 4, 7, 13, 16}));
  MobileNetV3 small(MobileNetV3Options("small"));
  EXPECT_EQ(small->stages().stage_indices(), (std::vector<int>{0, 1, 2, 4, 9, 12}));

  // The detection variant: dilated, reduced tail, frozen norms, no classifier.
  MobileNetV3 det(MobileNetV3Options("large").dilated(true).reduced_tail(true).include_top(false).norm(
      NormLayerOptions::for_detection(true)));
  det->eval();
  EXPECT_EQ(det->stages().out_channels.back(), 480);
  auto feats = forward_feature_blocks(det->features(), torch::randn({1, 3, 224, 224}), {13, 16});
  EXPECT_EQ(feats[0].size(2), 14);  // dilation instead of the last stride: output stride 16
  EXPECT_EQ(feats[1].sizes(), (std::vector<int64_t>{1, 480, 14, 14}));
  freeze_feature_stages(det->features(), det->stages(),
                        3);  // torchvision: freeze features[:stage_indices[3]]
  for (const auto& p : det->named_parameters())
    EXPECT_EQ(p.value().requires_grad(), std::stoi(p.key().substr(9)) >= 7) << p.key();
}

TEST(Norms, FrozenBatchNormMatchesTorchvisionFormula) {
  FrozenBatchNorm2d bn(FrozenBatchNorm2dOptions(4));
  EXPECT_TRUE(bn->parameters().empty());
  auto buffers = state_names(*bn);
  EXPECT_EQ(buffers, (std::set<std::string>{"weight", "bias", "running_mean", "running_var"}));
  bn->weight.uniform_(0.5, 2);
  bn->bias.normal_();
  bn->running_mean.normal_();
  bn->running_var.uniform_(0.1, 3);
  auto x = torch::randn({2, 4, 5, 6});
  auto scale = (bn->weight * (bn->running_var + 1e-5).rsqrt()).view({1, -1, 1, 1});
  auto expected = x * scale + (bn->bias.view({1, -1, 1, 1}) - bn->running_mean.view({1, -1, 1, 1}) * scale);
  EXPECT_TRUE(torch::allclose(bn->forward(x), expected, 1e-5, 1e-6));
  EXPECT_EQ(NormLayerOptions::for_detection(true).kind, NormKind::kFrozenBatchNorm);
  EXPECT_EQ(NormLayerOptions::for_detection(false).kind, NormKind::kBatchNorm);
}

TEST(Norms, MakeDivisibleMatchesTorchvision) {
  EXPECT_EQ(make_divisible(32 * 1.0, 8), 32);
  EXPECT_EQ(make_divisible(32 * 0.75, 8), 24);
  EXPECT_EQ(make_divisible(960 / 4, 8), 240);
  EXPECT_EQ(make_divisible(72 / 4, 8), 24);  // int(18 + 4) // 8 * 8 = 16 < 0.9 * 18, so one more step
  EXPECT_EQ(make_divisible(3, 8), 8);
  EXPECT_EQ(make_divisible(1280 * 1.4, 8), 1792);
}

TEST(MaskSmallCnn, OneTrainingStepReducesLoss) {
  torch::manual_seed(0);
  auto model = make_classifier("mask_small_cnn", 2);
  model->train();
  auto x = torch::rand({8, 3, 100, 100});
  auto y = torch::randint(0, 2, {8}, torch::kLong);
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(1e-3));
  torch::manual_seed(1);  // same dropout mask for both forwards
  auto loss0 = torch::cross_entropy_loss(model->forward(x), y);
  opt.zero_grad();
  loss0.backward();
  opt.step();
  torch::manual_seed(1);
  auto loss1 = torch::cross_entropy_loss(model->forward(x), y);
  EXPECT_LT(loss1.item<double>(), loss0.item<double>());
  EXPECT_EQ(std::dynamic_pointer_cast<SmallCnnImpl>(model)->flat_features(), 12800);
}

}  // namespace
}  // namespace vigil::nn

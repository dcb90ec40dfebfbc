// SSDlite (torchvision's ssdlite320_mobilenet_v3_large) and its SSD pieces: the zoo entry, torchvision's
// names and parameter counts, the builder's ModelArgs rules and freezing, default boxes and SSD matching on
// hand-made cases, training losses, backprop and a few SGD steps that lower the loss, eval outputs, predictor
// replacement, post-processing knobs, batch-norm folding and bad input. (Numerical parity with torchvision is
// in tests/parity/ssdlite_test.cpp.)

#include <gtest/gtest.h>

#include <cmath>
#include <iostream>
#include <set>

#include "vigil/core/error.h"
#include "vigil/nn/detection/ssdlite.h"
#include "vigil/nn/fuse.h"
#include "vigil/nn/zoo.h"

namespace vigil::nn {
namespace {

constexpr const char* kName = "ssdlite320_mobilenet_v3_large";

int64_t count(const std::vector<torch::Tensor>& tensors) {
  int64_t n = 0;
  for (const auto& t : tensors) n += t.numel();
  return n;
}

int64_t count_trainable(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters())
    if (p.requires_grad()) n += p.numel();
  return n;
}

std::set<std::string> state_names(torch::nn::Module& m) {
  std::set<std::string> out;
  for (const auto& p : m.named_parameters()) out.insert(p.key());
  for (const auto& b : m.named_buffers()) out.insert(b.key());
  return out;
}

/// Image-like input: a smooth gradient with a bright rectangle.
torch::Tensor test_image(int64_t h, int64_t w) {
  auto y = torch::linspace(0, 1, h).view({1, h, 1});
  auto x = torch::linspace(0, 1, w).view({1, 1, w});
  auto image = (0.3 * x + 0.5 * y).expand({3, h, w}).clone();
  image.index_put_({torch::indexing::Slice(), torch::indexing::Slice(h / 4, h / 2),
                    torch::indexing::Slice(w / 3, 2 * w / 3)},
                   0.9);
  return image;
}

std::vector<DetectionTarget> test_targets() {
  return {{torch::tensor({{40.f, 30.f, 110.f, 70.f}, {5.f, 5.f, 50.f, 90.f}}), torch::tensor({1, 2})},
          {torch::tensor({{60.f, 10.f, 120.f, 100.f}}), torch::tensor({1})}};
}

std::vector<torch::Tensor> test_images() {
  return {test_image(120, 160), test_image(130, 100)};
}

ModelArgs classes(int n) {
  ModelArgs args;
  args.num_classes = n;
  return args;
}

template <typename F>
void expect_invalid(F&& f, const std::string& fragment) {
  try {
    f();
    ADD_FAILURE() << "expected InvalidArgument mentioning '" << fragment << "'";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

// ------------------------------------------------------------------------------------------------------- zoo

TEST(SSDLiteZoo, RegisteredAsAFixedSizeDetector) {
  const auto names = model_names();
  EXPECT_NE(std::find(names.begin(), names.end(), kName), names.end());
  const auto& spec = find_model(kName);
  EXPECT_EQ(spec.task, vigil::data::Task::kDetection);
  EXPECT_EQ(spec.preprocess.min_size, 320);
  EXPECT_EQ(spec.preprocess.max_size, 320);
  EXPECT_FALSE(spec.preprocess.normalize);
  EXPECT_EQ(spec.preprocess.mean, (std::vector<double>{0.5, 0.5, 0.5}));
  EXPECT_EQ(spec.preprocess.std, (std::vector<double>{0.5, 0.5, 0.5}));
  auto model = make_detector(kName);
  ASSERT_TRUE(std::dynamic_pointer_cast<SSDImpl>(model));
  EXPECT_EQ(model->num_classes(), 91);
  // ssdlite320_mobilenet_v3_large's defaults, not SSD's.
  const auto post = model->postprocess();
  EXPECT_DOUBLE_EQ(post.score_threshold, 0.001);
  EXPECT_DOUBLE_EQ(post.nms_iou, 0.55);
  EXPECT_EQ(post.max_detections, 300);
  EXPECT_EQ(ssdlite_defaults(kName).topk_candidates(), 300);
  EXPECT_THROW(ssdlite_defaults("ssd300_vgg16"), InvalidArgument);
}

// Counts from torchvision 0.14: 3,440,060 parameters (its COCO weights' num_params), 476 state_dict entries;
// the full tail (weights_backbone path) 5,198,540 parameters.
TEST(SSDLiteZoo, MatchesTorchvisionParameterCountsAndNames) {
  auto model = make_detector(kName);
  EXPECT_EQ(count(model->parameters()), 3440060);
  EXPECT_EQ(count_trainable(*model), 3440060) << "every layer trains from scratch";
  const auto names = state_names(*model);
  EXPECT_EQ(names.size(), 476u);
  for (const char* key :
       {"backbone.features.0.0.0.weight", "backbone.features.0.1.block.0.0.weight",
        "backbone.features.0.13.0.weight", "backbone.features.0.13.1.running_var",
        "backbone.features.1.0.1.0.weight", "backbone.features.1.0.2.fc1.weight",
        "backbone.features.1.0.3.1.num_batches_tracked", "backbone.features.1.3.0.weight",
        "backbone.extra.0.0.0.weight", "backbone.extra.3.2.1.bias",
        "head.classification_head.module_list.0.0.0.weight", "head.classification_head.module_list.5.1.bias",
        "head.regression_head.module_list.2.0.1.running_mean", "head.regression_head.module_list.4.1.weight"})
    EXPECT_TRUE(names.count(key)) << key;
  auto ssd = ssdlite320_mobilenet_v3_large();
  EXPECT_EQ(ssd->backbone->out_channels(), (std::vector<int64_t>{672, 480, 512, 256, 256, 128}));
  EXPECT_EQ(ssd->named_parameters()["head.classification_head.module_list.0.1.weight"].sizes(),
            (std::vector<int64_t>{91 * 6, 672, 1, 1}));

  auto full = make_ssdlite(kName, {}, std::nullopt, /*reduced_tail=*/false);
  EXPECT_EQ(count(full->parameters()), 5198540);
  EXPECT_EQ(full->backbone->out_channels(), (std::vector<int64_t>{672, 960, 512, 256, 256, 128}));
}

TEST(SSDLiteZoo, HonoursModelArgsAndFreezesLikeTorchvision) {
  auto model = ssdlite320_mobilenet_v3_large(classes(3));
  EXPECT_EQ(model->num_classes(), 3);
  EXPECT_EQ(model->named_parameters()["head.classification_head.module_list.5.1.weight"].size(0), 3 * 6);
  EXPECT_EQ(model->options().size(), (SSDOptions::Size2{320, 320}));

  // Without a pretrained backbone every layer trains, whatever trainable_backbone_layers says.
  ModelArgs args = classes(3);
  args.trainable_backbone_layers = 2;
  auto scratch = ssdlite320_mobilenet_v3_large(args);
  EXPECT_EQ(count_trainable(*scratch), count(scratch->parameters()));

  // With one, the value is honoured on the original MobileNetV3 blocks: 2 stages = blocks 13.. (C4 on).
  args.pretrained_backbone = true;
  auto frozen = ssdlite320_mobilenet_v3_large(args);
  for (const auto& p : frozen->named_parameters()) {
    const auto& key = p.key();
    const bool trainable =
        key.rfind("backbone.features.0.", 0) != 0 || key.rfind("backbone.features.0.13.", 0) == 0;
    EXPECT_EQ(p.value().requires_grad(), trainable) << key;
  }
  frozen->freeze_backbone(0);
  for (const auto& p : frozen->named_parameters()) {
    EXPECT_EQ(p.value().requires_grad(), p.key().rfind("backbone.features.", 0) != 0) << p.key();
  }
  frozen->freeze_backbone(6);
  EXPECT_EQ(count_trainable(*frozen), count(frozen->parameters()));
  frozen->freeze_backbone(1);  // only the last stage (block 16, features.1.3) of the body
  for (const auto& p : frozen->named_parameters()) {
    const auto& key = p.key();
    const bool body = key.rfind("backbone.features.", 0) == 0;
    EXPECT_EQ(p.value().requires_grad(), !body || key.rfind("backbone.features.1.3.", 0) == 0) << key;
  }
  expect_invalid([&] { frozen->freeze_backbone(7); }, "trainable_backbone_layers in [0, 6]");

  args.trainable_backbone_layers = 7;
  expect_invalid([&] { ssdlite320_mobilenet_v3_large(args); }, "trainable_backbone_layers in [0, 6]");
  args.trainable_backbone_layers = -1;
  args.num_classes = -2;
  EXPECT_THROW(make_detector(kName, args), InvalidArgument);
}

// ------------------------------------------------------------------------------------------------ SSD pieces

TEST(DefaultBoxGenerator, ScalesPairsAndBoxesAsTorchvision) {
  DefaultBoxGenerator gen(DefaultBoxGeneratorOptions(std::vector<std::vector<double>>(6, {2.0, 3.0}))
                              .min_ratio(0.2)
                              .max_ratio(0.95));
  const std::vector<double> scales = {0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 1.0};
  ASSERT_EQ(gen->scales().size(), scales.size());
  for (size_t k = 0; k < scales.size(); ++k) EXPECT_NEAR(gen->scales()[k], scales[k], 1e-12) << k;
  EXPECT_EQ(gen->num_anchors_per_location(), (std::vector<int64_t>(6, 6)));

  ImageList images;
  images.tensors = torch::zeros({2, 3, 320, 320});
  images.image_sizes = {{320, 320}, {320, 320}};
  std::vector<torch::Tensor> maps;
  for (int64_t s : {20, 10, 5, 3, 2, 1}) maps.push_back(torch::zeros({2, 8, s, s}));
  const auto boxes = gen->forward(images, maps);
  ASSERT_EQ(boxes.size(), 2u);
  EXPECT_EQ(boxes[0].sizes(), (std::vector<int64_t>{3234, 4}));
  // Cell (0, 0) of the 20x20 map: centre 8 px, first box 0.2 * 320 = 64 px square, second sqrt(0.2 * 0.35).
  EXPECT_TRUE(torch::allclose(boxes[0][0], torch::tensor({-24.f, -24.f, 40.f, 40.f})));
  const float half = static_cast<float>(std::sqrt(0.2 * 0.35) * 320 / 2);
  EXPECT_TRUE(torch::allclose(boxes[0][1], torch::tensor({8 - half, 8 - half, 8 + half, 8 + half})));
  // The 1x1 map's boxes are centred, the largest clipped to the image in (cx, cy, w, h) form.
  EXPECT_TRUE(torch::allclose(boxes[0][3233].slice(0, 0, 2) + boxes[0][3233].slice(0, 2, 4),
                              torch::tensor({320.f, 320.f})));
  expect_invalid([&] { gen->forward(images, {maps[0]}); }, "expected 6 feature maps");
  EXPECT_THROW(DefaultBoxGenerator(DefaultBoxGeneratorOptions(std::vector<std::vector<double>>{{2.0}})
                                       .steps(std::vector<int64_t>{8, 16})),
               InvalidArgument);
}

TEST(SSDMatcher, EveryGroundTruthClaimsItsBestBox) {
  SSDMatcher matcher(0.5);
  // Two ground truths x three boxes: gt 0 overlaps box 0 well, gt 1 overlaps nothing above 0.5 but box 2
  // best.
  const auto iou = torch::tensor({{0.7f, 0.2f, 0.1f}, {0.1f, 0.3f, 0.4f}});
  EXPECT_TRUE(torch::equal(matcher(iou), torch::tensor({0, -1, 1}, torch::kInt64)));
  EXPECT_THROW(matcher(torch::zeros({0, 3})), InvalidArgument);
}

// ------------------------------------------------------------------------------------------------------- SSD

TEST(SSDLite, TrainingLossesAreFiniteAndBackpropagate) {
  torch::manual_seed(0);
  auto model = ssdlite320_mobilenet_v3_large(classes(3));
  model->train();
  auto targets = test_targets();
  const auto out = model->forward(test_images(), &targets);
  EXPECT_TRUE(out.detections.empty());
  ASSERT_EQ(out.losses.size(), 2u);
  torch::Tensor total = torch::zeros({});
  for (const auto& key : {"bbox_regression", "classification"}) {
    ASSERT_TRUE(out.losses.count(key)) << key;
    const auto& loss = out.losses.at(key);
    EXPECT_EQ(loss.dim(), 0) << key;
    EXPECT_TRUE(std::isfinite(loss.item<double>())) << key;
    EXPECT_GT(loss.item<double>(), 0.0) << key;
    total = total + loss;
  }
  total.backward();
  for (const auto* key :
       {"head.classification_head.module_list.0.1.weight", "head.regression_head.module_list.1.1.weight",
        "backbone.extra.0.0.0.weight", "backbone.features.0.0.0.weight"}) {
    const auto grad = model->named_parameters()[key].grad();
    ASSERT_TRUE(grad.defined()) << key;
    EXPECT_GT(grad.abs().sum().item<double>(), 0.0) << key;
  }
  // The caller's targets are left in their own coordinates.
  EXPECT_TRUE(torch::equal(targets[0].boxes, test_targets()[0].boxes));

  // An image without ground truth: only negatives (classification), no box loss from it.
  std::vector<DetectionTarget> empty = {test_targets()[0],
                                        {torch::zeros({0, 4}), torch::zeros({0}, torch::kInt64)}};
  const auto with_background = model->forward(test_images(), &empty);
  EXPECT_TRUE(std::isfinite(with_background.losses.at("classification").item<double>()));
}

TEST(SSDLite, AFewSgdStepsLowerTheLoss) {
  torch::manual_seed(4);
  auto model = ssdlite320_mobilenet_v3_large(classes(3));
  model->train();
  const auto images = test_images();
  auto targets = test_targets();
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  std::vector<double> losses;
  for (int step = 0; step < 8; ++step) {
    const auto out = model->forward(images, &targets);
    const auto total = out.losses.at("bbox_regression") + out.losses.at("classification");
    losses.push_back(total.item<double>());
    sgd.zero_grad();
    total.backward();
    sgd.step();
  }
  std::cout << "total loss per SGD step:";
  for (double l : losses) std::cout << " " << l;
  std::cout << "\n";
  EXPECT_LT(losses.back(), 0.7 * losses.front()) << "first " << losses.front() << ", last " << losses.back();
}

TEST(SSDLite, EvalReturnsDetectionsInEachImagesCoordinates) {
  torch::manual_seed(1);
  auto model = ssdlite320_mobilenet_v3_large();
  model->eval();
  torch::NoGradGuard no_grad;
  const auto images = test_images();
  const auto out = model->forward(images);
  EXPECT_TRUE(out.losses.empty());
  ASSERT_EQ(out.detections.size(), images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    const auto& d = out.detections[i];
    const int64_t k = d.boxes.size(0);
    EXPECT_GT(k, 0);
    EXPECT_LE(k, 300);
    ASSERT_EQ(d.boxes.sizes(), (std::vector<int64_t>{k, 4}));
    ASSERT_EQ(d.scores.sizes(), (std::vector<int64_t>{k}));
    ASSERT_EQ(d.labels.sizes(), (std::vector<int64_t>{k}));
    EXPECT_EQ(d.labels.scalar_type(), torch::kInt64);
    if (k == 0) continue;
    EXPECT_GE(d.labels.min().item<int64_t>(), 1);
    EXPECT_LT(d.labels.max().item<int64_t>(), 91);
    EXPECT_GT(d.scores.min().item<float>(), 0.001f);
    EXPECT_GE(d.boxes.min().item<float>(), 0.f);
    EXPECT_LE(d.boxes.select(1, 2).max().item<float>(), images[i].size(2));
    EXPECT_LE(d.boxes.select(1, 3).max().item<float>(), images[i].size(1));
    EXPECT_TRUE(torch::all(d.scores.slice(0, 1) <= d.scores.slice(0, 0, k - 1)).item<bool>()) << "descending";
  }
}

TEST(SSDLite, EvalWithTargetsGivesLossesAndDetections) {
  torch::manual_seed(2);
  auto model = ssdlite320_mobilenet_v3_large(classes(3));
  model->eval();
  torch::NoGradGuard no_grad;
  auto targets = test_targets();
  const auto out = model->forward(test_images(), &targets);
  EXPECT_EQ(out.detections.size(), 2u);
  EXPECT_EQ(out.losses.size(), 2u);
  for (const auto& [name, loss] : out.losses) EXPECT_TRUE(std::isfinite(loss.item<double>())) << name;
}

// What the predictor does before inference: batch norms folded into the convolutions, channels-last weights.
TEST(SSDLite, FoldedChannelsLastModelGivesTheSameOutputs) {
  torch::manual_seed(3);
  auto model = ssdlite320_mobilenet_v3_large(classes(3));
  model->eval();
  torch::NoGradGuard no_grad;
  const auto images = test_images();
  const auto head_outputs = [&] {
    const auto batch = model->transform->forward(images);
    return model->head->forward(model->backbone->forward(batch.tensors));
  };
  const auto before = head_outputs();
  EXPECT_GT(fold_batch_norms(*model), 50);
  // Only the stem's 3x3 weights change layout: the depthwise and 1x1 ones are channels-last already.
  EXPECT_GE(to_channels_last(*model), 1);
  const auto after = head_outputs();
  EXPECT_TRUE(torch::allclose(before.cls_logits, after.cls_logits, 1e-3, 1e-4));
  EXPECT_TRUE(torch::allclose(before.bbox_regression, after.bbox_regression, 1e-3, 1e-4));
  const auto out = model->forward(images);
  ASSERT_EQ(out.detections.size(), images.size());
  EXPECT_GT(out.detections[0].boxes.size(0), 0);
}

TEST(SSDLite, ReplacePredictorAndPostprocessKnobs) {
  torch::manual_seed(3);
  auto model = ssdlite320_mobilenet_v3_large();
  const auto regression_before =
      model->named_parameters()["head.regression_head.module_list.0.1.weight"].clone();
  model->replace_predictor(4);
  EXPECT_EQ(model->num_classes(), 4);
  EXPECT_EQ(model->options().num_classes(), 4);
  const auto params = model->named_parameters();
  EXPECT_EQ(params["head.classification_head.module_list.0.1.weight"].sizes(),
            (std::vector<int64_t>{24, 672, 1, 1}));
  EXPECT_TRUE(torch::equal(params["head.regression_head.module_list.0.1.weight"], regression_before));
  EXPECT_TRUE(state_names(*model).count("head.classification_head.module_list.3.0.1.running_var"));
  EXPECT_THROW(model->replace_predictor(1), InvalidArgument);

  model->set_postprocess({0.0, 0.3, 7});
  const auto p = model->postprocess();
  EXPECT_DOUBLE_EQ(p.score_threshold, 0.0);
  EXPECT_DOUBLE_EQ(p.nms_iou, 0.3);
  EXPECT_EQ(p.max_detections, 7);
  EXPECT_THROW(model->set_postprocess({1.5, 0.5, 10}), InvalidArgument);
  EXPECT_THROW(model->set_postprocess({0.1, 0.5, 0}), InvalidArgument);
  EXPECT_EQ(model->postprocess().max_detections, 7) << "a rejected update changes nothing";

  model->eval();
  torch::NoGradGuard no_grad;
  const auto out = model->forward({test_image(100, 140)});
  ASSERT_EQ(out.detections.size(), 1u);
  EXPECT_EQ(out.detections[0].boxes.size(0), 7);
  EXPECT_LT(out.detections[0].labels.max().item<int64_t>(), 4);
}

TEST(SSDLite, RejectsBadInput) {
  auto model = ssdlite320_mobilenet_v3_large(classes(3));
  model->eval();
  torch::NoGradGuard no_grad;
  expect_invalid([&] { model->forward({}); }, "at least one image");
  expect_invalid([&] { model->forward({torch::rand({1, 3, 64, 64})}); }, "[3, H, W]");
  expect_invalid([&] { model->forward({torch::rand({64, 64})}); }, "[3, H, W]");
  expect_invalid([&] { model->forward({torch::zeros({3, 64, 64}, torch::kUInt8)}); }, "floating");

  model->train();
  expect_invalid([&] { model->forward(test_images()); }, "targets in training mode");
  auto targets = test_targets();
  targets.pop_back();
  expect_invalid([&] { model->forward(test_images(), &targets); }, "one target per image");
  targets = test_targets();
  targets[1].boxes = torch::tensor({{60.f, 10.f, 60.f, 100.f}});
  expect_invalid([&] { model->forward(test_images(), &targets); }, "positive width and height");
  targets = test_targets();
  targets[0].labels = torch::tensor({1, 3});
  expect_invalid([&] { model->forward(test_images(), &targets); }, "labels in [0, 3)");
  targets = test_targets();
  targets[0].boxes = torch::rand({2, 5});
  expect_invalid([&] { model->forward(test_images(), &targets); }, "[N, 4]");
  targets = test_targets();
  targets.pop_back();
  expect_invalid([&] { model->forward({test_image(120, 160)}, &targets); },
                 "at least 2 images per training batch");
}

TEST(SSDLite, OptionsValidate) {
  EXPECT_NO_THROW(SSDOptions().validate());
  EXPECT_NO_THROW(ssdlite_defaults(kName).validate());
  EXPECT_THROW(SSDOptions().num_classes(1).validate(), InvalidArgument);
  EXPECT_THROW(SSDOptions().size({0, 320}).validate(), InvalidArgument);
  EXPECT_THROW(SSDOptions().positive_fraction(0).validate(), InvalidArgument);
  EXPECT_THROW(SSDOptions().topk_candidates(0).validate(), InvalidArgument);
  EXPECT_THROW(SSDOptions().image_std({0.5, 0.0, 0.5}).validate(), InvalidArgument);
  EXPECT_DOUBLE_EQ(SSDOptions().neg_to_pos_ratio(), 3.0);
  const auto t = ssdlite_defaults(kName).transform_options();
  ASSERT_TRUE(t.fixed_size().has_value());
  EXPECT_EQ(*t.fixed_size(), (GeneralizedRCNNTransformOptions::Size2{320, 320}));
  EXPECT_EQ(t.size_divisible(), 1);
}

}  // namespace
}  // namespace vigil::nn

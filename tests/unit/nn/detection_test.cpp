// Faster R-CNN and its box branch: the zoo entries, torchvision's names and parameter counts, the builders'
// ModelArgs rules, training losses and backprop, eval outputs, predictor replacement, post-processing knobs,
// bad input, and the RoIHeads pieces on hand-made cases. (Numerical parity with torchvision is in
// tests/parity/detection_test.cpp.)

#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "vigil/core/error.h"
#include "vigil/nn/detection/faster_rcnn.h"
#include "vigil/nn/detection/roi_heads.h"
#include "vigil/nn/frozen_batch_norm.h"
#include "vigil/nn/zoo.h"

namespace vigil::nn {
namespace {

const std::vector<std::string> kDetectors = {"fasterrcnn_mobilenet_v3_large_320_fpn",
                                             "fasterrcnn_mobilenet_v3_large_fpn", "fasterrcnn_resnet50_fpn"};

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

/// The zoo architecture at a small input size, so a forward/backward pass takes about a second.
FasterRCNN small_detector(const std::string& name, const ModelArgs& args = {}) {
  auto options = faster_rcnn_defaults(name).min_size({160}).max_size(224);
  return make_faster_rcnn(name, args, options);
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

template <typename F>
void expect_invalid(F&& f, const std::string& fragment) {
  try {
    f();
    ADD_FAILURE() << "expected InvalidArgument mentioning '" << fragment << "'";
  } catch (const InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(fragment), std::string::npos) << e.what();
  }
}

// ------------------------------------------------------------------------------------------------ zoo

TEST(DetectionZoo, RegistersTheThreeFasterRcnns) {
  const auto names = model_names();
  for (const auto& name : kDetectors) {
    EXPECT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
    const auto& spec = find_model(name);
    EXPECT_EQ(spec.task, vigil::data::Task::kDetection);
    EXPECT_FALSE(spec.preprocess.normalize);
    EXPECT_EQ(spec.preprocess.mean, (std::vector<double>{0.485, 0.456, 0.406}));
    EXPECT_EQ(spec.preprocess.std, (std::vector<double>{0.229, 0.224, 0.225}));
  }
  EXPECT_EQ(find_model("fasterrcnn_resnet50_fpn").preprocess.min_size, 800);
  EXPECT_EQ(find_model("fasterrcnn_resnet50_fpn").preprocess.max_size, 1333);
  EXPECT_EQ(find_model("fasterrcnn_mobilenet_v3_large_320_fpn").preprocess.min_size, 320);
  EXPECT_EQ(find_model("fasterrcnn_mobilenet_v3_large_320_fpn").preprocess.max_size, 640);
}

TEST(DetectionZoo, UnknownOrNonDetectionNamesAreRejected) {
  try {
    make_detector("fasterrcnn_resnet1000_fpn");
    FAIL() << "expected InvalidArgument";
  } catch (const InvalidArgument& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("fasterrcnn_resnet1000_fpn"), std::string::npos) << msg;
    for (const auto& name : kDetectors) EXPECT_NE(msg.find(name), std::string::npos) << msg;
  }
  expect_invalid([] { make_detector("resnet18"); }, "expected a detection model");
  expect_invalid([] { make_faster_rcnn("retinanet_resnet50_fpn"); }, "fasterrcnn_resnet50_fpn");
  EXPECT_THROW(make_classifier("fasterrcnn_resnet50_fpn", 2), InvalidArgument);
}

// Counts from torchvision 0.14 (weights=None; the pretrained-backbone variant via the builder's is_trained
// path).
TEST(DetectionZoo, MatchesTorchvisionParameterCountsAndNames) {
  struct Expected {
    std::string name;
    int64_t params, state_entries, params_frozen, state_entries_frozen, trainable_frozen;
  };
  const std::vector<Expected> expected = {
      {"fasterrcnn_resnet50_fpn", 41808406, 348, 41755286, 295, 41532886},
      {"fasterrcnn_mobilenet_v3_large_fpn", 19410754, 330, 19386354, 284, 19327458},
      {"fasterrcnn_mobilenet_v3_large_320_fpn", 19410754, 330, 19386354, 284, 19327458},
  };
  for (const auto& e : expected) {
    auto model = make_detector(e.name);
    EXPECT_EQ(count(model->parameters()), e.params) << e.name;
    EXPECT_EQ(count_trainable(*model), e.params) << e.name << ": every layer trains from scratch";
    EXPECT_EQ(state_names(*model).size(), static_cast<size_t>(e.state_entries)) << e.name;
    EXPECT_EQ(model->num_classes(), 91) << e.name;

    ModelArgs pretrained;
    pretrained.pretrained_backbone = true;
    auto frozen = make_detector(e.name, pretrained);
    EXPECT_EQ(count(frozen->parameters()), e.params_frozen) << e.name;
    EXPECT_EQ(count_trainable(*frozen), e.trainable_frozen) << e.name << ": 3 trainable layers by default";
    EXPECT_EQ(state_names(*frozen).size(), static_cast<size_t>(e.state_entries_frozen)) << e.name;
  }
  const auto names = state_names(*make_detector("fasterrcnn_resnet50_fpn"));
  for (const char* key :
       {"backbone.body.conv1.weight", "backbone.body.layer4.2.bn3.running_var",
        "backbone.fpn.inner_blocks.0.0.weight", "backbone.fpn.layer_blocks.3.0.bias",
        "rpn.head.conv.0.0.weight", "rpn.head.cls_logits.weight", "rpn.head.bbox_pred.bias",
        "roi_heads.box_head.fc6.weight", "roi_heads.box_head.fc7.bias",
        "roi_heads.box_predictor.cls_score.weight", "roi_heads.box_predictor.bbox_pred.bias"})
    EXPECT_TRUE(names.count(key)) << key;
}

TEST(DetectionZoo, HonoursModelArgs) {
  ModelArgs args;
  args.num_classes = 3;
  auto model = fasterrcnn_mobilenet_v3_large_320_fpn(args);
  EXPECT_EQ(model->num_classes(), 3);
  EXPECT_EQ(model->roi_heads->box_predictor->bbox_pred->weight.size(0), 12);
  EXPECT_EQ(model->options().min_size(), std::vector<int64_t>{320});
  EXPECT_EQ(model->options().rpn_post_nms_top_n_test(), 150);
  EXPECT_DOUBLE_EQ(model->options().rpn_score_thresh(), 0.05);
  EXPECT_EQ(model->options().rpn_anchor_sizes().size(), 3u);

  // torchvision's is_trained rule: pretrained -> FrozenBatchNorm2d and trainable_backbone_layers honoured.
  args.pretrained_backbone = true;
  args.trainable_backbone_layers = 0;
  auto frozen = fasterrcnn_resnet50_fpn(args);
  bool has_frozen_bn = false;
  for (const auto& m : frozen->backbone->modules())
    has_frozen_bn |= m->as<FrozenBatchNorm2dImpl>() != nullptr;
  EXPECT_TRUE(has_frozen_bn);
  for (const auto& p : frozen->named_parameters())
    EXPECT_EQ(p.value().requires_grad(), p.key().rfind("backbone.body.", 0) != 0) << p.key();

  // Without a pretrained backbone every layer trains, whatever trainable_backbone_layers says.
  args.pretrained_backbone = false;
  auto scratch = fasterrcnn_resnet50_fpn(args);
  EXPECT_EQ(count_trainable(*scratch), count(scratch->parameters()));

  args.pretrained_backbone = true;
  args.trainable_backbone_layers = 6;
  expect_invalid([&] { fasterrcnn_resnet50_fpn(args); }, "trainable_backbone_layers in [0, 5]");
  args.trainable_backbone_layers = 7;
  expect_invalid([&] { fasterrcnn_mobilenet_v3_large_fpn(args); }, "trainable_backbone_layers in [0, 6]");
  args.trainable_backbone_layers = -1;
  args.num_classes = -2;
  EXPECT_THROW(make_detector("fasterrcnn_resnet50_fpn", args), InvalidArgument);
}

TEST(DetectionZoo, DetectorArgsReplaceTorchvisionsKeywordArguments) {
  ModelArgs args;
  args.num_classes = 3;
  args.detector.min_size = {224, 256};
  args.detector.max_size = 400;
  args.detector.anchor_sizes = {16, 32, 64};
  args.detector.aspect_ratios = {0.5, 1.0, 2.0, 4.0};
  args.detector.rpn_post_nms_top_n_train = 300;
  args.detector.box_batch_size_per_image = 64;
  auto model = fasterrcnn_mobilenet_v3_large_320_fpn(args);
  const auto& o = model->options();
  EXPECT_EQ(o.min_size(), (std::vector<int64_t>{224, 256}));
  EXPECT_EQ(o.max_size(), 400);
  // MobileNetV3's three maps each carry the whole list.
  EXPECT_EQ(o.rpn_anchor_sizes(), FasterRCNNOptions::SizeLists(3, {16, 32, 64}));
  EXPECT_EQ(o.rpn_aspect_ratios(), FasterRCNNOptions::SizeLists(3, {0.5, 1.0, 2.0, 4.0}));
  EXPECT_EQ(o.rpn_post_nms_top_n_train(), 300);
  EXPECT_EQ(o.rpn_pre_nms_top_n_train(), 2000);  // not given: torchvision's
  EXPECT_EQ(o.box_batch_size_per_image(), 64);
  // 3 sizes x 4 ratios = 12 anchors per location in the RPN head.
  EXPECT_EQ(model->rpn->head->cls_logits->weight.size(0), 12);

  // ResNet-50 FPN has one size per map: five values, or a message saying so.
  ModelArgs r;
  r.num_classes = 2;
  r.detector.anchor_sizes = {16, 32, 64, 128, 256};
  auto resnet = fasterrcnn_resnet50_fpn(r);
  EXPECT_EQ(resnet->options().rpn_anchor_sizes(),
            (FasterRCNNOptions::SizeLists{{16}, {32}, {64}, {128}, {256}}));
  r.detector.anchor_sizes = {16, 32};
  expect_invalid([&] { fasterrcnn_resnet50_fpn(r); }, "one size per feature map (5 values");

  ModelArgs bad;
  bad.detector.min_size = {0};
  expect_invalid([&] { make_detector("fasterrcnn_mobilenet_v3_large_320_fpn", bad); },
                 "detector.min_size values >= 1");
  bad.detector = {};
  bad.detector.box_batch_size_per_image = -1;
  expect_invalid([&] { make_detector("fasterrcnn_mobilenet_v3_large_320_fpn", bad); },
                 "detector.box_batch_size_per_image");
  // Only Faster R-CNN takes them: SSDlite's and a classifier's builders would ignore them silently.
  ModelArgs ssd;
  ssd.detector.min_size = {300};
  expect_invalid([&] { make_detector("ssdlite320_mobilenet_v3_large", ssd); },
                 "detector options only for a Faster R-CNN");
  expect_invalid([&] { make_model("resnet18", ssd); }, "detector options only for a Faster R-CNN");
  // The input the model file records follows the test-time size.
  EXPECT_EQ(model_preprocess("fasterrcnn_mobilenet_v3_large_320_fpn", args.detector).min_size, 256);
  EXPECT_EQ(model_preprocess("fasterrcnn_mobilenet_v3_large_320_fpn", args.detector).max_size, 400);
  EXPECT_EQ(model_preprocess("fasterrcnn_mobilenet_v3_large_320_fpn").min_size, 320);
}

TEST(FasterRCNN, TrainingPicksOneOfTheMinSizesPerImage) {
  // torchvision's multi-scale training: each training image is resized to a random entry of min_size.
  torch::manual_seed(0);
  ModelArgs args;
  args.num_classes = 2;
  args.detector.min_size = {64, 96, 128};
  args.detector.max_size = 1000;
  auto model = fasterrcnn_mobilenet_v3_large_320_fpn(args);
  std::set<int64_t> heights;
  model->transform->train();
  for (int i = 0; i < 30; ++i) {
    std::vector<DetectionTarget> targets(1);
    targets[0].boxes = torch::tensor({{2.0f, 2.0f, 20.0f, 20.0f}});
    targets[0].labels = torch::tensor({1}, torch::kInt64);
    const auto out = model->transform->forward({torch::rand({3, 40, 40})}, &targets);
    heights.insert(out.image_sizes[0][0]);
  }
  EXPECT_EQ(heights, (std::set<int64_t>{64, 96, 128}));
  model->transform->eval();
  EXPECT_EQ(model->transform->forward({torch::rand({3, 40, 40})}).image_sizes[0][0], 128);
}

// ------------------------------------------------------------------------------------------ FasterRCNN

TEST(FasterRCNN, TrainingLossesAreFiniteAndBackpropagate) {
  torch::manual_seed(0);
  for (const auto& name : kDetectors) {
    ModelArgs args;
    args.num_classes = 3;
    auto model = small_detector(name, args);
    model->train();
    auto targets = test_targets();
    const auto out = model->forward(test_images(), &targets);
    EXPECT_TRUE(out.detections.empty()) << name;
    ASSERT_EQ(out.losses.size(), 4u) << name;
    torch::Tensor total = torch::zeros({});
    for (const auto& key : {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}) {
      ASSERT_TRUE(out.losses.count(key)) << name << " " << key;
      const auto& loss = out.losses.at(key);
      EXPECT_EQ(loss.dim(), 0) << name << " " << key;
      EXPECT_TRUE(std::isfinite(loss.item<double>())) << name << " " << key;
      total = total + loss;
    }
    total.backward();
    for (const auto* key : {"roi_heads.box_predictor.cls_score.weight", "roi_heads.box_head.fc6.weight",
                            "rpn.head.cls_logits.weight", "backbone.fpn.layer_blocks.0.0.weight"}) {
      const auto grad = model->named_parameters()[key].grad();
      ASSERT_TRUE(grad.defined()) << name << " " << key;
      EXPECT_GT(grad.abs().sum().item<double>(), 0.0) << name << " " << key;
    }
    // The caller's targets are left in their own coordinates.
    EXPECT_TRUE(torch::equal(targets[0].boxes, test_targets()[0].boxes)) << name;
  }
}

TEST(FasterRCNN, EvalReturnsDetectionsInEachImagesCoordinates) {
  torch::manual_seed(1);
  auto model = small_detector("fasterrcnn_mobilenet_v3_large_320_fpn");
  model->eval();
  model->set_postprocess({0.0, 0.5, 20});
  torch::NoGradGuard no_grad;
  const auto images = test_images();
  const auto out = model->forward(images);
  EXPECT_TRUE(out.losses.empty());
  ASSERT_EQ(out.detections.size(), images.size());
  for (size_t i = 0; i < images.size(); ++i) {
    const auto& d = out.detections[i];
    const int64_t k = d.boxes.size(0);
    EXPECT_LE(k, 20);
    ASSERT_EQ(d.boxes.sizes(), (std::vector<int64_t>{k, 4}));
    ASSERT_EQ(d.scores.sizes(), (std::vector<int64_t>{k}));
    ASSERT_EQ(d.labels.sizes(), (std::vector<int64_t>{k}));
    EXPECT_EQ(d.labels.scalar_type(), torch::kInt64);
    if (k == 0) continue;
    EXPECT_GE(d.labels.min().item<int64_t>(), 1);
    EXPECT_LT(d.labels.max().item<int64_t>(), 91);
    EXPECT_GE(d.boxes.min().item<float>(), 0.f);
    EXPECT_LE(d.boxes.select(1, 2).max().item<float>(), images[i].size(2));
    EXPECT_LE(d.boxes.select(1, 3).max().item<float>(), images[i].size(1));
    EXPECT_TRUE(torch::all(d.scores.slice(0, 1) <= d.scores.slice(0, 0, k - 1)).item<bool>()) << "descending";
  }
}

TEST(FasterRCNN, EvalWithTargetsGivesLossesAndDetections) {
  torch::manual_seed(2);
  auto model = small_detector("fasterrcnn_mobilenet_v3_large_320_fpn");
  model->eval();
  torch::NoGradGuard no_grad;
  auto targets = test_targets();
  const auto out = model->forward(test_images(), &targets);
  EXPECT_EQ(out.detections.size(), 2u);
  EXPECT_EQ(out.losses.size(), 4u);
  for (const auto& [name, loss] : out.losses) EXPECT_TRUE(std::isfinite(loss.item<double>())) << name;
}

TEST(FasterRCNN, ReplacePredictorAndPostprocessKnobs) {
  torch::manual_seed(3);
  auto model = small_detector("fasterrcnn_mobilenet_v3_large_320_fpn");
  model->replace_predictor(4);
  EXPECT_EQ(model->num_classes(), 4);
  EXPECT_EQ(model->roi_heads->box_predictor->cls_score->weight.sizes(), (std::vector<int64_t>{4, 1024}));
  EXPECT_EQ(model->roi_heads->box_predictor->bbox_pred->weight.sizes(), (std::vector<int64_t>{16, 1024}));
  EXPECT_TRUE(state_names(*model).count("roi_heads.box_predictor.cls_score.bias"));
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
  EXPECT_LE(out.detections[0].boxes.size(0), 7);
  if (out.detections[0].labels.numel() > 0) {
    EXPECT_LT(out.detections[0].labels.max().item<int64_t>(), 4);
  }
}

TEST(FasterRCNN, RejectsBadInput) {
  auto model = small_detector("fasterrcnn_mobilenet_v3_large_320_fpn");
  model->eval();
  torch::NoGradGuard no_grad;
  expect_invalid([&] { model->forward({}); }, "at least one image");
  expect_invalid([&] { model->forward({torch::rand({1, 3, 64, 64})}); }, "[3, H, W]");
  expect_invalid([&] { model->forward({torch::rand({64, 64})}); }, "[3, H, W]");
  expect_invalid([&] { model->forward({torch::rand({1, 64, 64})}); }, "[3, H, W]");
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
  targets[0].labels = torch::tensor({1, 91});
  expect_invalid([&] { model->forward(test_images(), &targets); }, "labels in [0, 91)");
  targets = test_targets();
  targets[0].labels = torch::tensor({1, 2}, torch::kInt32);
  expect_invalid([&] { model->forward(test_images(), &targets); }, "int64");
  targets = test_targets();
  targets[0].boxes = torch::rand({2, 5});
  expect_invalid([&] { model->forward(test_images(), &targets); }, "[N, 4]");
}

TEST(FasterRCNN, OptionsValidate) {
  EXPECT_NO_THROW(FasterRCNNOptions().validate());
  EXPECT_THROW(FasterRCNNOptions().num_classes(1).validate(), InvalidArgument);
  EXPECT_THROW(FasterRCNNOptions().min_size({}).validate(), InvalidArgument);
  EXPECT_THROW(FasterRCNNOptions().rpn_aspect_ratios({{1.0}}).validate(), InvalidArgument);
  EXPECT_THROW(FasterRCNNOptions().box_positive_fraction(1.5).validate(), InvalidArgument);
  EXPECT_THROW(FasterRCNNOptions().rpn_nms_thresh(-0.1).validate(), InvalidArgument);
  // Five anchor lists for a MobileNet backbone with three feature maps.
  expect_invalid([] { make_faster_rcnn("fasterrcnn_mobilenet_v3_large_fpn", {}, FasterRCNNOptions()); },
                 "one anchor size list per backbone feature map (3)");
}

// -------------------------------------------------------------------------------------------- RoIHeads

RoIHeads tiny_heads(const RoIHeadsOptions& options = {}) {
  ops::MultiScaleRoIAlign pool(ops::MultiScaleRoIAlignOptions({"0"}, {2, 2}, 2));
  return RoIHeads(pool, TwoMLPHead(4 * 2 * 2, 8), FastRCNNPredictor(8, 3), options);
}

TEST(RoIHeads, FastRcnnLossMatchesHandComputation) {
  // Two samples, 3 classes: one foreground (class 2), one background.
  const auto logits = torch::tensor({{0.0f, 1.0f, 2.0f}, {1.0f, 0.0f, 0.0f}});
  auto deltas = torch::zeros({2, 12});
  deltas.index_put_({0, torch::indexing::Slice(8, 12)}, torch::tensor({0.05f, 0.5f, -0.2f, 0.0f}));
  const auto targets = torch::tensor({{0.0f, 0.0f, 0.0f, 0.0f}, {1.0f, 1.0f, 1.0f, 1.0f}});
  const auto [cls, box] = fastrcnn_loss(logits, deltas, {torch::tensor({2, 0})}, {targets});

  const double lse0 = std::log(1 + std::exp(1.0) + std::exp(2.0));
  const double lse1 = std::log(std::exp(1.0) + 2);
  EXPECT_NEAR(cls.item<double>(), ((lse0 - 2.0) + (lse1 - 1.0)) / 2, 1e-6);
  // Smooth L1 with beta 1/9: 0.5 x^2 / beta below beta, |x| - beta / 2 above; only the foreground counts,
  // divided by all samples.
  const double beta = 1.0 / 9;
  auto sl1 = [&](double x) { return std::abs(x) < beta ? 0.5 * x * x / beta : std::abs(x) - 0.5 * beta; };
  EXPECT_NEAR(box.item<double>(), (sl1(0.05) + sl1(0.5) + sl1(-0.2) + sl1(0.0)) / 2, 1e-6);
}

TEST(RoIHeads, PostprocessDecodesClipsAndDropsBackground) {
  auto heads = tiny_heads(RoIHeadsOptions().score_thresh(0.05));
  // Proposal 0 is class 2 for sure and runs off the image (clipped); proposal 1 is background.
  const auto logits = torch::tensor({{-10.0f, -10.0f, 10.0f}, {10.0f, -10.0f, -10.0f}});
  const auto deltas = torch::zeros({2, 12});
  const std::vector<torch::Tensor> proposals = {
      torch::tensor({{10.f, 20.f, 90.f, 70.f}, {0.f, 0.f, 5.f, 5.f}})};
  const auto dets = heads->postprocess_detections(logits, deltas, proposals, {{50, 80}});
  ASSERT_EQ(dets.size(), 1u);
  ASSERT_EQ(dets[0].boxes.size(0), 1);
  EXPECT_TRUE(torch::allclose(dets[0].boxes, torch::tensor({{10.f, 20.f, 80.f, 50.f}})));
  EXPECT_EQ(dets[0].labels.item<int64_t>(), 2);
  EXPECT_NEAR(dets[0].scores.item<float>(), 1.0, 1e-6);
}

TEST(RoIHeads, TrainingSamplesIncludeTheGroundTruth) {
  auto heads = tiny_heads(RoIHeadsOptions().batch_size_per_image(1000).positive_fraction(1.0));
  const std::vector<torch::Tensor> proposals = {
      torch::tensor({{0.f, 0.f, 10.f, 10.f}, {50.f, 50.f, 60.f, 60.f}})};
  const std::vector<DetectionTarget> targets = {
      {torch::tensor({{0.f, 0.f, 10.f, 11.f}}), torch::tensor({2})}};
  const auto s = heads->select_training_samples(proposals, targets);
  ASSERT_EQ(s.proposals.size(), 1u);
  ASSERT_EQ(s.proposals[0].size(0), 3) << "2 proposals + 1 ground truth box, all sampled";
  EXPECT_TRUE(torch::equal(s.labels[0], torch::tensor({2, 0, 2})));
  EXPECT_TRUE(torch::equal(s.proposals[0][2], targets[0].boxes[0]));
  EXPECT_TRUE(torch::allclose(s.regression_targets[0][2], torch::zeros({4})));

  // An image without objects: every proposal is background.
  const std::vector<DetectionTarget> empty = {{torch::zeros({0, 4}), torch::zeros({0}, torch::kInt64)}};
  const auto b = heads->select_training_samples(proposals, empty);
  EXPECT_TRUE(torch::equal(b.labels[0], torch::zeros({2}, torch::kInt64)));
}

TEST(RoIHeads, ForwardChecksItsArguments) {
  auto heads = tiny_heads();
  FeatureMap features;
  features.insert("0", torch::rand({1, 4, 8, 8}));
  const std::vector<torch::Tensor> proposals = {torch::tensor({{0.f, 0.f, 10.f, 10.f}})};
  heads->train();
  expect_invalid([&] { heads->forward(features, proposals, {{32, 32}}); }, "targets in training mode");
  heads->eval();
  expect_invalid([&] { heads->forward(features, {}, {}); }, "proposals for at least one image");
  expect_invalid([&] { heads->forward(features, proposals, {{32, 32}, {32, 32}}); }, "one image size");
  expect_invalid([&] { heads->forward(features, {torch::rand({3, 5})}, {{32, 32}}); }, "[P, 4]");
  torch::NoGradGuard no_grad;
  const auto [dets, losses] = heads->forward(features, proposals, {{32, 32}});
  EXPECT_EQ(dets.size(), 1u);
  EXPECT_TRUE(losses.empty());
  EXPECT_THROW(RoIHeadsOptions().bg_iou_thresh(0.7).validate(), InvalidArgument);
}

TEST(RoIHeads, ImagesWithoutProposalsGetNoDetections) {
  // rpn_score_thresh can leave an image without proposals; the batch must still go through.
  auto heads = tiny_heads(RoIHeadsOptions().score_thresh(0.0));
  heads->eval();
  torch::NoGradGuard no_grad;
  FeatureMap features;
  features.insert("0", torch::rand({2, 4, 8, 8}));
  const auto [none, l0] =
      heads->forward(features, {torch::zeros({0, 4}), torch::zeros({0, 4})}, {{32, 32}, {32, 32}});
  ASSERT_EQ(none.size(), 2u);
  for (const auto& d : none) {
    EXPECT_EQ(d.boxes.sizes(), (std::vector<int64_t>{0, 4}));
    EXPECT_EQ(d.scores.numel(), 0);
    EXPECT_EQ(d.labels.scalar_type(), torch::kInt64);
  }
  const auto [some, l1] = heads->forward(
      features, {torch::zeros({0, 4}), torch::tensor({{1.f, 1.f, 20.f, 20.f}})}, {{32, 32}, {32, 32}});
  ASSERT_EQ(some.size(), 2u);
  EXPECT_EQ(some[0].boxes.size(0), 0);
  EXPECT_GT(some[1].boxes.size(0), 0) << "score_thresh 0 keeps every foreground class";
}

}  // namespace
}  // namespace vigil::nn

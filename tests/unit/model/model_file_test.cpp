// Model files: ModelInfo JSON round trips and field-naming errors, save/load round trips with identical
// outputs, torchvision-style .pth imports (head size inferred, partial loads), and clear errors for corrupt,
// missing and foreign files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests_util.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/model/model_file.h"
#include "vigil/model/weight_import.h"
#include "vigil/nn/weights.h"
#include "vigil/nn/zoo.h"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using vigil::model::LoadModelOptions;
using vigil::model::ModelInfo;
using vigil::model::PartialLoad;
using vigil::testing::TempDir;

ModelInfo full_info() {
  ModelInfo info;
  info.arch = "fasterrcnn_mobilenet_v3_large_fpn";
  info.task = vigil::data::Task::kDetection;
  info.class_names = {"__background__", "gun", "knife"};
  info.preprocess.min_size = 320;
  info.preprocess.max_size = 640;
  info.preprocess.mean = {0.1, 0.2, 0.3};
  info.preprocess.std = {0.4, 0.5, 0.6};
  info.postprocess.score_threshold = 0.25;
  info.postprocess.nms_iou = 0.4;
  info.postprocess.max_detections = 7;
  info.pretrained_backbone = true;
  info.run_id = "run-1";
  info.dataset_id = "abc";
  info.source = "weights.pth";
  info.code_version = "0.1.0";
  info.created_at = "2024-01-02T03:04:05Z";
  return info;
}

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const vigil::Error& e) {
    return e.what();
  }
  return "<no error>";
}

torch::Tensor sample_input(int size = 64) {
  torch::manual_seed(7);
  return torch::rand({2, 3, size, size});
}

/// A mobilenet_v3_small with 3 classes and non-default weights and batch-norm statistics.
std::shared_ptr<vigil::nn::Classifier> trained_like_classifier(int classes = 3) {
  torch::manual_seed(11);
  auto model = vigil::nn::make_classifier("mobilenet_v3_small", classes);
  model->train();
  torch::NoGradGuard no_grad;
  for (int i = 0; i < 2; ++i) model->forward(torch::rand({4, 3, 64, 64}));
  model->eval();
  return model;
}

TEST(ModelInfo, JsonRoundTripKeepsEveryField) {
  const ModelInfo a = full_info();
  const ModelInfo b = ModelInfo::from_json(a.to_json());
  EXPECT_EQ(b.arch, a.arch);
  EXPECT_EQ(b.task, a.task);
  EXPECT_EQ(b.class_names, a.class_names);
  EXPECT_EQ(b.preprocess.min_size, 320);
  EXPECT_EQ(b.preprocess.max_size, 640);
  EXPECT_EQ(b.preprocess.mean, a.preprocess.mean);
  EXPECT_EQ(b.preprocess.std, a.preprocess.std);
  EXPECT_FALSE(b.preprocess.normalize);  // detectors normalise inside
  EXPECT_EQ(b.postprocess.score_threshold, 0.25);
  EXPECT_EQ(b.postprocess.nms_iou, 0.4);
  EXPECT_EQ(b.postprocess.max_detections, 7);
  EXPECT_TRUE(b.pretrained_backbone);
  EXPECT_EQ(b.run_id, "run-1");
  EXPECT_EQ(b.dataset_id, "abc");
  EXPECT_EQ(b.source, "weights.pth");
  EXPECT_EQ(b.code_version, "0.1.0");
  EXPECT_EQ(b.created_at, "2024-01-02T03:04:05Z");
  EXPECT_EQ(b.to_json(), a.to_json());
}

TEST(ModelInfo, MalformedJsonNamesTheField) {
  EXPECT_THAT(error_of([] { ModelInfo::from_json("{not json"); }), HasSubstr("expected JSON"));
  EXPECT_THAT(error_of([] { ModelInfo::from_json("[1, 2]"); }), HasSubstr("expected a JSON object"));
  EXPECT_THAT(error_of([] { ModelInfo::from_json(R"({"task": "detection", "class_names": []})"); }),
              HasSubstr("'arch'"));
  EXPECT_THAT(
      error_of([] { ModelInfo::from_json(R"({"arch": "a", "task": "detection", "class_names": 3})"); }),
      HasSubstr("'class_names': expected a list"));
  EXPECT_THAT(
      error_of([] { ModelInfo::from_json(R"({"arch": "a", "task": "segmentation", "class_names": []})"); }),
      HasSubstr("'task'"));
  EXPECT_THAT(
      error_of([] {
        ModelInfo::from_json(
            R"({"arch": "a", "task": "detection", "class_names": [], "postprocess": {"nms_iou": "x"}})");
      }),
      HasSubstr("'postprocess.nms_iou': expected a number"));
  EXPECT_THAT(error_of([] {
                ModelInfo::from_json(R"({"arch": "a", "task": "detection", "class_names": [], "mean": [1]})");
              }),
              HasSubstr("'mean': expected 3 values"));
  EXPECT_THROW(ModelInfo::from_json("{}"), vigil::DataError);
}

TEST(ModelInfo, DefaultsComeFromTheZoo) {
  const ModelInfo info = vigil::model::default_model_info("mobilenet_v3_small", {"a", "b"});
  EXPECT_EQ(info.task, vigil::data::Task::kClassification);
  EXPECT_EQ(info.preprocess.width, 224);
  EXPECT_EQ(info.preprocess.height, 224);
  EXPECT_TRUE(info.preprocess.normalize);
  EXPECT_EQ(info.preprocess.mean, (std::vector<double>{0.485, 0.456, 0.406}));
  EXPECT_EQ(info.preprocess.std, (std::vector<double>{0.229, 0.224, 0.225}));
  EXPECT_EQ(info.class_names, (std::vector<std::string>{"a", "b"}));
  const ModelInfo mask = vigil::model::default_model_info("mask_small_cnn", {"mask", "no_mask"});
  EXPECT_EQ(mask.preprocess.width, 100);
  EXPECT_EQ(mask.preprocess.mean, (std::vector<double>{0, 0, 0}));
  EXPECT_THAT(error_of([] { vigil::model::default_model_info("no_such_net", {}); }),
              AllOf(HasSubstr("no_such_net"), HasSubstr("mobilenet_v3_small")));
}

TEST(ModelInfo, DefaultClassNames) {
  const auto& coco = vigil::model::coco_category_names();
  ASSERT_EQ(coco.size(), 91u);
  EXPECT_EQ(coco[0], "__background__");
  EXPECT_EQ(coco[1], "person");
  EXPECT_EQ(coco[12], "N/A");
  EXPECT_EQ(coco[90], "toothbrush");
  EXPECT_EQ(vigil::model::default_class_names(vigil::data::Task::kDetection, 91), coco);
  EXPECT_EQ(vigil::model::default_class_names(vigil::data::Task::kDetection, 3),
            (std::vector<std::string>{"__background__", "class_1", "class_2"}));
  EXPECT_EQ(vigil::model::default_class_names(vigil::data::Task::kClassification, 2),
            (std::vector<std::string>{"class_0", "class_1"}));
  EXPECT_EQ(vigil::model::parse_partial_load("skip-predictor"), PartialLoad::kSkipPredictor);
  EXPECT_THAT(error_of([] { vigil::model::parse_partial_load("head"); }), HasSubstr("skip-predictor"));
}

TEST(ModelFile, SaveLoadGivesTheSameOutputsAndInfo) {
  TempDir tmp;
  auto model = trained_like_classifier();
  auto info = vigil::model::default_model_info("mobilenet_v3_small", {"helmet", "head", "person"});
  info.run_id = "r1";
  const fs::path file = tmp / "models" / "m.vgm";
  vigil::model::save_model(file, info, *model);
  ASSERT_TRUE(fs::exists(file));
  EXPECT_TRUE(vigil::model::is_vigil_model_file(file));

  torch::manual_seed(123);
  const auto before = torch::rand({1});
  torch::manual_seed(123);
  auto loaded = vigil::model::load_model(file);
  EXPECT_TRUE(torch::equal(torch::rand({1}), before)) << "load_model changed the global random stream";
  ASSERT_TRUE(loaded.classifier);
  EXPECT_FALSE(loaded.detector);
  EXPECT_FALSE(loaded.module->is_training());
  EXPECT_EQ(loaded.info.class_names, info.class_names);
  EXPECT_EQ(loaded.info.run_id, "r1");
  EXPECT_EQ(loaded.info.task, vigil::data::Task::kClassification);
  torch::NoGradGuard no_grad;
  const auto x = sample_input();
  EXPECT_TRUE(torch::equal(loaded.classifier->forward(x), model->forward(x)));
  EXPECT_EQ(vigil::model::parameter_count(*loaded.module), vigil::model::parameter_count(*model));
}

TEST(ModelFile, SaveChecksTheClassCount) {
  TempDir tmp;
  auto model = trained_like_classifier();
  auto info = vigil::model::default_model_info("mobilenet_v3_small", {"a", "b"});
  EXPECT_THROW(vigil::model::save_model(tmp / "m.vgm", info, *model), vigil::InvalidArgument);
}

TEST(ModelFile, CorruptTruncatedMissingAndWrongArch) {
  TempDir tmp;
  auto model = trained_like_classifier();
  const fs::path file = tmp / "m.vgm";
  vigil::model::save_model(file, vigil::model::default_model_info("mobilenet_v3_small", {"a", "b", "c"}),
                           *model);
  std::string bytes = vigil::read_file(file);

  std::string flipped = bytes;
  flipped[bytes.size() / 2] ^= 0x5a;
  vigil::write_file_atomic(tmp / "flipped.vgm", flipped);
  EXPECT_THAT(error_of([&] { vigil::model::load_model(tmp / "flipped.vgm"); }), HasSubstr("corrupt"));
  EXPECT_THROW(vigil::model::load_model(tmp / "flipped.vgm"), vigil::DataError);

  vigil::write_file_atomic(tmp / "cut.vgm", bytes.substr(0, bytes.size() - 100));
  EXPECT_THROW(vigil::model::load_model(tmp / "cut.vgm"), vigil::DataError);
  vigil::write_file_atomic(tmp / "text.vgm", "hello");
  EXPECT_THAT(error_of([&] { vigil::model::load_model(tmp / "text.vgm"); }), HasSubstr("--arch"));

  EXPECT_THROW(vigil::model::load_model(tmp / "nope.vgm"), vigil::NotFound);

  LoadModelOptions other;
  other.arch = "resnet18";
  EXPECT_THAT(error_of([&] { vigil::model::load_model(file, other); }),
              AllOf(HasSubstr("resnet18"), HasSubstr("mobilenet_v3_small")));
  EXPECT_THROW(vigil::model::load_model(file, other), vigil::InvalidArgument);
}

TEST(ModelFile, TorchvisionPthImportInfersTheHead) {
  TempDir tmp;
  auto model = trained_like_classifier(5);
  vigil::nn::StateDict dict;
  for (const auto& p : model->named_parameters()) dict.insert(p.key(), p.value());
  for (const auto& b : model->named_buffers()) dict.insert(b.key(), b.value());
  vigil::nn::save_state_dict(dict, tmp / "w.pth");

  LoadModelOptions o;
  o.arch = "mobilenet_v3_small";
  auto loaded = vigil::model::load_model(tmp / "w.pth", o);
  ASSERT_TRUE(loaded.classifier);
  EXPECT_EQ(loaded.classifier->num_classes(), 5);
  EXPECT_EQ(loaded.info.class_names[4], "class_4");
  EXPECT_EQ(loaded.info.source, vigil::to_utf8(tmp / "w.pth"));
  torch::NoGradGuard no_grad;
  const auto x = sample_input();
  EXPECT_TRUE(torch::equal(loaded.classifier->forward(x), model->forward(x)));

  // Wrong architecture: the first mismatching key is named.
  o.arch = "mobilenet_v3_large";
  const std::string err = error_of([&] { vigil::model::load_model(tmp / "w.pth", o); });
  EXPECT_THAT(err, HasSubstr("first mismatching key is 'features."));
  EXPECT_THROW(vigil::model::load_model(tmp / "w.pth", o), vigil::InvalidArgument);
  o.arch = "resnet18";
  EXPECT_THAT(error_of([&] { vigil::model::load_model(tmp / "w.pth", o); }),
              AllOf(HasSubstr("'conv1.weight'"), HasSubstr("another architecture")));

  // Names must fit the head.
  o.arch = "mobilenet_v3_small";
  o.class_names = {"a", "b"};
  EXPECT_THAT(error_of([&] { vigil::model::load_model(tmp / "w.pth", o); }),
              HasSubstr("key is 'classifier.3.weight' (expected shape [2, 1024], got [5, 1024])"));
  o.num_classes = 5;
  EXPECT_THAT(error_of([&] { vigil::model::load_model(tmp / "w.pth", o); }),
              HasSubstr("expected 5 class names"));
  o.num_classes = 0;
  o.class_names = {"a", "b", "c", "d", "e"};
  EXPECT_EQ(vigil::model::load_model(tmp / "w.pth", o).info.class_names[2], "c");

  // A 2-class fine-tuning start: everything but the head is copied, the head stays fresh.
  o.class_names = {"x", "y"};
  EXPECT_THROW(vigil::model::import_weights(tmp / "w.pth", o), vigil::InvalidArgument);
  o.partial = PartialLoad::kSkipPredictor;
  auto imported = vigil::model::import_weights(tmp / "w.pth", o);
  EXPECT_EQ(imported.model.classifier->num_classes(), 2);
  EXPECT_TRUE(imported.report.missing.empty());
  EXPECT_TRUE(imported.report.unexpected.empty());
  EXPECT_EQ(imported.report.skipped.size(), 2u);  // classifier.3.{weight,bias}
  auto params = imported.model.module->named_parameters();
  EXPECT_TRUE(torch::equal(params["features.0.0.weight"], dict["features.0.0.weight"]));
  EXPECT_TRUE(torch::equal(params["classifier.0.weight"], dict["classifier.0.weight"]));
  EXPECT_EQ(params["classifier.3.weight"].size(0), 2);

  o.partial = PartialLoad::kBackbone;
  imported = vigil::model::import_weights(tmp / "w.pth", o);
  params = imported.model.module->named_parameters();
  EXPECT_TRUE(torch::equal(params["features.0.0.weight"], dict["features.0.0.weight"]));
  EXPECT_FALSE(torch::equal(params["classifier.0.weight"], dict["classifier.0.weight"]));
}

TEST(ModelFile, DetectorRoundTripWhenTheZooHasOne) {
  const std::string arch = "fasterrcnn_mobilenet_v3_large_320_fpn";
  const auto names = vigil::nn::model_names();
  if (std::find(names.begin(), names.end(), arch) == names.end())
    GTEST_SKIP() << arch << " is not in the zoo yet";
  TempDir tmp;
  LoadModelOptions o;
  o.arch = arch;
  auto info = vigil::model::default_model_info(arch, {"gun", "knife"});
  ASSERT_EQ(info.class_names.size(), 3u);
  EXPECT_EQ(info.task, vigil::data::Task::kDetection);
  vigil::nn::ModelArgs args;
  args.num_classes = 3;
  torch::manual_seed(3);
  auto module = vigil::nn::make_model(arch, args);
  info.postprocess.score_threshold = 0.0;
  vigil::model::save_model(tmp / "d.vgm", info, *module);
  auto loaded = vigil::model::load_model(tmp / "d.vgm");
  ASSERT_TRUE(loaded.detector);
  EXPECT_EQ(loaded.detector->num_classes(), 3);
  EXPECT_EQ(loaded.detector->postprocess().score_threshold, 0.0);
  EXPECT_EQ(loaded.info.class_names[1], "gun");
  auto a = module->named_parameters(), b = loaded.module->named_parameters();
  for (const auto& p : a) EXPECT_TRUE(torch::equal(p.value(), b[p.key()])) << p.key();

  // As a torchvision .pth: the head size comes from the box predictor; fine-tuning to 4 classes keeps
  // everything but the predictor.
  vigil::nn::StateDict dict;
  for (const auto& p : module->named_parameters()) dict.insert(p.key(), p.value());
  for (const auto& p : module->named_buffers()) dict.insert(p.key(), p.value());
  vigil::nn::save_state_dict(dict, tmp / "d.pth");
  auto from_pth = vigil::model::load_model(tmp / "d.pth", o);
  EXPECT_EQ(from_pth.detector->num_classes(), 3);
  EXPECT_EQ(from_pth.info.class_names, (std::vector<std::string>{"__background__", "class_1", "class_2"}));
  o.class_names = {"a", "b", "c"};
  o.partial = PartialLoad::kSkipPredictor;
  auto tuned = vigil::model::import_weights(tmp / "d.pth", o);
  EXPECT_EQ(tuned.model.detector->num_classes(), 4);
  EXPECT_TRUE(tuned.report.missing.empty());
  EXPECT_EQ(tuned.report.skipped.size(), 4u);  // cls_score and bbox_pred weight + bias
  auto c = tuned.model.module->named_parameters();
  EXPECT_TRUE(torch::equal(c["roi_heads.box_head.fc6.weight"], a["roi_heads.box_head.fc6.weight"]));
}

TEST(ModelFile, DetectorArgsAreKeptAndRebuildTheSameModel) {
  // A detector trained with its own sizes and anchors (train: model.detector) has an RPN head of another
  // shape than the zoo's default: the file must say so, or it could not be loaded again.
  TempDir tmp;
  const std::string arch = "fasterrcnn_mobilenet_v3_large_320_fpn";
  auto info = vigil::model::default_model_info(arch, {"gun"});
  info.detector.min_size = {192, 224};
  info.detector.anchor_sizes = {24, 48};
  info.detector.aspect_ratios = {0.5, 1.0};
  info.detector.box_batch_size_per_image = 128;
  info.preprocess = vigil::nn::model_preprocess(arch, info.detector);
  vigil::nn::ModelArgs args;
  args.num_classes = 2;
  args.detector = info.detector;
  torch::manual_seed(5);
  auto module = vigil::nn::make_model(arch, args);
  vigil::model::save_model(tmp / "d.vgm", info, *module);
  const auto loaded = vigil::model::load_model(tmp / "d.vgm");
  EXPECT_EQ(loaded.info.detector.min_size, (std::vector<int64_t>{192, 224}));
  EXPECT_EQ(loaded.info.detector.anchor_sizes, (std::vector<double>{24, 48}));
  EXPECT_EQ(loaded.info.detector.box_batch_size_per_image, 128);
  EXPECT_EQ(loaded.info.preprocess.min_size, 224);
  auto a = module->named_parameters(), b = loaded.module->named_parameters();
  EXPECT_EQ(b["rpn.head.cls_logits.weight"].size(0), 4);  // 2 sizes x 2 ratios
  for (const auto& p : a) EXPECT_TRUE(torch::equal(p.value(), b[p.key()])) << p.key();
  EXPECT_EQ(ModelInfo::from_json(info.to_json()).to_json(), info.to_json());
  // Without detector options nothing is written, so older readers see the same file.
  EXPECT_EQ(vigil::model::default_model_info(arch, {"gun"}).to_json().find("\"detector\""),
            std::string::npos);
  EXPECT_THAT(
      error_of([] {
        ModelInfo::from_json(
            R"({"arch": "a", "task": "detection", "class_names": [], "detector": {"min_size": [-3]}})");
      }),
      HasSubstr("detector.min_size"));
}

TEST(ModelFile, DetectorBackboneFromAnImageNetClassifier) {
  const std::string arch = "fasterrcnn_mobilenet_v3_large_320_fpn";
  const auto names = vigil::nn::model_names();
  if (std::find(names.begin(), names.end(), arch) == names.end())
    GTEST_SKIP() << arch << " is not in the zoo yet";
  TempDir tmp;
  torch::manual_seed(5);
  auto classifier = vigil::nn::make_classifier("mobilenet_v3_large", 1000);
  vigil::nn::StateDict dict;
  for (const auto& p : classifier->named_parameters()) dict.insert(p.key(), p.value());
  for (const auto& p : classifier->named_buffers()) dict.insert(p.key(), p.value());
  vigil::nn::save_state_dict(dict, tmp / "imagenet.pth");
  LoadModelOptions o;
  o.arch = arch;
  o.class_names = {"gun"};
  o.partial = PartialLoad::kBackbone;
  auto imported = vigil::model::import_weights(tmp / "imagenet.pth", o);
  EXPECT_TRUE(imported.model.info.pretrained_backbone);
  EXPECT_EQ(imported.model.detector->num_classes(), 2);
  EXPECT_TRUE(imported.report.missing.empty()) << imported.report.to_text();
  EXPECT_TRUE(imported.report.unexpected.empty()) << imported.report.to_text();
  EXPECT_GT(imported.report.loaded.size(), 100u);
  auto params = imported.model.module->named_parameters();
  auto buffers = imported.model.module->named_buffers();
  EXPECT_TRUE(torch::equal(params["backbone.body.0.0.weight"], dict["features.0.0.weight"]));
  EXPECT_TRUE(torch::equal(buffers["backbone.body.16.1.running_var"], dict["features.16.1.running_var"]));
}

}  // namespace

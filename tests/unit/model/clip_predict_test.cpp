// Clip models as model files and in inference: the window length travels with the file, ClipPredictor's
// window and single-frame outputs are the module's own, and the image Predictor (predict, serve, watch)
// refuses a clip model with the reason.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests_util.h"
#include "vigil/core/error.h"
#include "vigil/model/clip_predict.h"
#include "vigil/model/model_file.h"
#include "vigil/model/predict.h"
#include "vigil/nn/classification/clip_classifier.h"
#include "vigil/nn/zoo.h"

namespace {

using ::testing::HasSubstr;
using vigil::model::ClipPredictor;
using vigil::model::ModelInfo;
using vigil::testing::TempDir;

constexpr const char* kArch = "clip_mobilenet_v3_small_lstm";
constexpr int kSide = 64;

/// A saved clip model with batch-norm statistics that are not the defaults, trained on windows of `t`.
std::filesystem::path saved_clip_model(const TempDir& dir, int t) {
  torch::manual_seed(5);
  vigil::nn::ModelArgs args;
  args.num_classes = 3;
  auto module = vigil::nn::make_model(kArch, args);
  module->train();
  {
    torch::NoGradGuard no_grad;
    auto& net = dynamic_cast<vigil::nn::ClipClassifierImpl&>(*module);
    for (int i = 0; i < 2; ++i) net.forward(torch::rand({2, t, 3, kSide, kSide}));
  }
  module->eval();
  ModelInfo info = vigil::model::default_model_info(kArch, {"a", "b", "c"});
  info.preprocess.width = info.preprocess.height = kSide;
  info.clip_length = t;
  const auto file = dir / "clip.ckpt";
  vigil::model::save_model(file, info, *module);
  return file;
}

vigil::model::PredictOptions plain_options() {
  vigil::model::PredictOptions o;
  o.fold_batch_norms = false;
  o.channels_last = false;
  return o;
}

TEST(ClipModelFile, KeepsTheWindowLengthItWasTrainedOn) {
  TempDir dir;
  const auto file = saved_clip_model(dir, 5);
  const auto loaded = vigil::model::load_model(file);
  EXPECT_EQ(loaded.info.clip_length, 5);
  EXPECT_TRUE(vigil::model::is_clip_model(loaded.info));
  EXPECT_EQ(dynamic_cast<vigil::nn::ClipClassifierImpl&>(*loaded.module).clip_length(), 5);
  EXPECT_EQ(vigil::model::default_model_info(kArch, {"a", "b"}).clip_length, 8) << "the zoo's default";
  EXPECT_EQ(vigil::model::default_model_info("mobilenet_v3_small", {"a", "b"}).clip_length, 0);
  EXPECT_FALSE(
      vigil::model::is_clip_model(vigil::model::default_model_info("mobilenet_v3_small", {"a", "b"})));
}

TEST(ClipPredictor, WindowAndSingleFrameOutputsAreTheModulesOwn) {
  TempDir dir;
  const auto file = saved_clip_model(dir, 4);
  auto reference = vigil::model::load_model(file);
  auto& net = dynamic_cast<vigil::nn::ClipClassifierImpl&>(*reference.module);
  ClipPredictor predictor(vigil::model::load_model(file), plain_options());
  EXPECT_EQ(predictor.clip_length(), 4);
  torch::manual_seed(9);
  const auto windows = torch::rand({3, 4, 3, kSide, kSide});
  const auto out = predictor.predict(windows, /*per_frame=*/true);
  ASSERT_EQ(out.size(), 3u);
  torch::NoGradGuard no_grad;
  const auto probs = torch::softmax(net.forward(windows), 1);
  const auto features = net.frame_features(windows);
  for (int64_t i = 0; i < 3; ++i) {
    ASSERT_EQ(out[i].probs.size(), 3u);
    for (int64_t c = 0; c < 3; ++c) EXPECT_NEAR(out[i].probs[c], probs[i][c].item<float>(), 1e-5);
    EXPECT_EQ(out[i].class_id, probs[i].argmax().item<int64_t>());
    EXPECT_EQ(out[i].label, std::string(1, static_cast<char>('a' + out[i].class_id)));
    ASSERT_EQ(out[i].frame_probs.size(), 4u);
    for (int64_t t = 0; t < 4; ++t) {
      const auto alone = torch::softmax(net.classify_features(features[i][t].view({1, 1, -1})), 1)[0];
      for (int64_t c = 0; c < 3; ++c) EXPECT_NEAR(out[i].frame_probs[t][c], alone[c].item<float>(), 1e-5);
    }
  }
  // Folded norms and channels-last frames give the same answers up to rounding.
  ClipPredictor fast(vigil::model::load_model(file), vigil::model::PredictOptions{});
  const auto fast_out = fast.predict(windows);
  for (size_t i = 0; i < 3; ++i)
    for (size_t c = 0; c < 3; ++c) EXPECT_NEAR(fast_out[i].probs[c], out[i].probs[c], 1e-4);
}

TEST(ClipPredictor, FeaturesOnceAFrameThenWindowsOfThemEqualTheWholeWindows) {
  // What `vigil watch` does with a stream: each frame through the CNN when it arrives, windows of the kept
  // features through the recurrent layer and head, instead of every window's T frames through the CNN again.
  TempDir dir;
  const auto file = saved_clip_model(dir, 3);
  for (const bool plain : {true, false}) {
    ClipPredictor predictor(vigil::model::load_model(file),
                            plain ? plain_options() : vigil::model::PredictOptions{});
    torch::manual_seed(4);
    const auto stream = torch::rand({6, 3, kSide, kSide});  // six frames of one camera
    const auto features = predictor.frame_features(stream);
    ASSERT_EQ(features.dim(), 2);
    ASSERT_EQ(features.size(0), 6);
    // The four windows of 3 the stream holds, from the features and from the frames.
    std::vector<torch::Tensor> feature_windows, frame_windows;
    for (int64_t end = 3; end <= 6; ++end) {
      feature_windows.push_back(features.slice(0, end - 3, end));
      frame_windows.push_back(stream.slice(0, end - 3, end));
    }
    const auto got = predictor.classify_features(torch::stack(feature_windows));
    const auto want = predictor.predict(torch::stack(frame_windows));
    ASSERT_EQ(got.size(), 4u);
    for (size_t w = 0; w < 4; ++w) {
      EXPECT_EQ(got[w].label, want[w].label) << "window " << w;
      for (size_t c = 0; c < 3; ++c) EXPECT_NEAR(got[w].probs[c], want[w].probs[c], 1e-5) << "window " << w;
    }
  }
  ClipPredictor predictor(vigil::model::load_model(file), plain_options());
  EXPECT_THROW(predictor.frame_features(torch::rand({2, 3, 3, kSide, kSide})), vigil::InvalidArgument);
  EXPECT_THROW(predictor.classify_features(torch::rand({1, 3, 7})), vigil::InvalidArgument);
}

TEST(ClipPredictor, PreprocessesAFrameAsTheClassifierInput) {
  TempDir dir;
  ClipPredictor predictor(vigil::model::load_model(saved_clip_model(dir, 2)), plain_options());
  cv::Mat frame(48, 80, CV_8UC3, cv::Scalar(10, 120, 250));
  const auto x = predictor.preprocess(frame);
  EXPECT_EQ(x.sizes(), (std::vector<int64_t>{3, kSide, kSide}));
  EXPECT_NEAR(x[0][0][0].item<float>(), (250 / 255.0 - 0.485) / 0.229, 1e-5) << "RGB, ImageNet-normalised";
}

TEST(ImagePredictor, RefusesAClipModelNamingWhatItTakes) {
  TempDir dir;
  const auto file = saved_clip_model(dir, 6);
  try {
    vigil::model::Predictor predictor(vigil::model::load_model(file), plain_options());
    FAIL() << "expected InvalidArgument";
  } catch (const vigil::InvalidArgument& e) {
    EXPECT_THAT(e.what(), HasSubstr("clip classifier"));
    EXPECT_THAT(e.what(), HasSubstr("windows of 6 frames"));
    EXPECT_THAT(e.what(), HasSubstr("vigil predict"));
  }
  // ... and the clip predictor refuses an image model.
  torch::manual_seed(1);
  auto image_model = vigil::nn::make_classifier("mobilenet_v3_small", 2);
  image_model->eval();
  ModelInfo info = vigil::model::default_model_info("mobilenet_v3_small", {"x", "y"});
  vigil::model::save_model(dir / "image.ckpt", info, *image_model);
  EXPECT_THROW(ClipPredictor(vigil::model::load_model(dir / "image.ckpt"), plain_options()),
               vigil::InvalidArgument);
}

}  // namespace

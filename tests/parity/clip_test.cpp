// Parity of vigil's clip classifier (CNN per frame + LSTM/GRU over time) with torch.nn.LSTM / torch.nn.GRU
// from python3-torch on the same weights. The reference state_dict is loaded with nn::load_state_dict
// (strict: every name and shape must match both ways), then in eval mode:
//   backbone features [B, T, F]           within 1e-4 (convolutions; the classifier parity's tolerance)
//   recurrent head on the reference's features -> logits  within 1e-5 (the LSTM/GRU path alone)
//   whole model, clips -> logits          within 1e-4
// Reference: tests/parity/gen_clip.py (cases: 1 and 2 layers, uni- and bidirectional, last and mean pooling,
// four backbones).

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <thread>

#include "parity/parity_util.h"
#include "tests_util.h"
#include "vigil/nn/classification/clip_classifier.h"
#include "vigil/nn/weights.h"

namespace vigil::testing {
namespace {

namespace fs = std::filesystem;

constexpr double kFeatureTolerance = 1e-4;
constexpr double kRecurrentTolerance = 1e-5;
constexpr double kLogitTolerance = 1e-4;

nn::ClipClassifierOptions options_from(const fs::path& config_file) {
  std::ifstream in(config_file);
  const auto j = nlohmann::json::parse(in);
  return nn::ClipClassifierOptions(j.at("backbone").get<std::string>())
      .rnn(nn::parse_recurrent_kind(j.at("rnn").get<std::string>()))
      .hidden_size(j.at("hidden_size").get<int64_t>())
      .num_layers(j.at("num_layers").get<int64_t>())
      .bidirectional(j.at("bidirectional").get<bool>())
      .pooling(nn::parse_clip_pooling(j.at("pooling").get<std::string>()))
      .num_classes(j.at("num_classes").get<int64_t>());
}

class ClipParity : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto python = reference_python();
    if (!python) return;
    // The generator runs with one intra-op thread per core; the same split keeps reduction orders comparable.
    torch::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
    dir_ = new TempDir();
    generated_ = run_generator(*python, "gen_clip.py", dir_->path());
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  void check(const std::string& name) {
    VIGIL_REQUIRE_TORCHVISION(python);
    ASSERT_TRUE(generated_) << "gen_clip.py failed";
    const fs::path case_dir = dir_->path() / name;
    nn::ClipClassifier model(options_from(case_dir / "config.json"));
    nn::StateDict state;
    for (const auto& [key, tensor] : load_tensors(case_dir / "state")) state.insert(key, tensor);
    const auto report = nn::load_state_dict(*model, state);  // strict: throws on any name or shape clash
    EXPECT_TRUE(report.missing.empty() && report.unexpected.empty()) << report.to_text();
    model->eval();
    const auto io = load_tensors(case_dir / "io");
    torch::NoGradGuard no_grad;
    const double features = max_abs_diff(model->frame_features(io.at("clips")), io.at("features"));
    const double head = max_abs_diff(model->classify_features(io.at("features")), io.at("logits"));
    const double logits = max_abs_diff(model->forward(io.at("clips")), io.at("logits"));
    std::cout << name << " " << io.at("clips").sizes() << ": max |diff| features " << features << ", head "
              << head << ", logits " << logits << "\n";
    EXPECT_LE(features, kFeatureTolerance) << name;
    EXPECT_LE(head, kRecurrentTolerance) << name;
    EXPECT_LE(logits, kLogitTolerance) << name;
    // The comparison means something: the same architecture with its own random weights is far off.
    torch::manual_seed(99);
    nn::ClipClassifier fresh(options_from(case_dir / "config.json"));
    fresh->eval();
    EXPECT_GT(max_abs_diff(fresh->forward(io.at("clips")), io.at("logits")), 1e-2) << name;
  }

  static TempDir* dir_;
  static bool generated_;
};

TempDir* ClipParity::dir_ = nullptr;
bool ClipParity::generated_ = false;

TEST_F(ClipParity, LstmMatchesTorch) {
  check("mv3s_lstm");
}
TEST_F(ClipParity, TwoLayerBidirectionalLstmMatchesTorch) {
  check("mv3s_lstm_2layer_bidirectional");
}
TEST_F(ClipParity, GruMatchesTorch) {
  check("mv3s_gru");
}
TEST_F(ClipParity, TwoLayerBidirectionalGruWithMeanPoolingMatchesTorch) {
  check("mv3s_gru_2layer_bidirectional_mean");
}
TEST_F(ClipParity, MobileNetV2BidirectionalLstmMatchesTorch) {
  check("mv2_lstm_bidirectional");
}
TEST_F(ClipParity, ResNet18TwoLayerGruWithMeanPoolingMatchesTorch) {
  check("r18_gru_2layer_mean");
}
TEST_F(ClipParity, MaskSmallCnnBidirectionalLstmMatchesTorch) {
  check("mask_lstm_bidirectional");
}

}  // namespace
}  // namespace vigil::testing

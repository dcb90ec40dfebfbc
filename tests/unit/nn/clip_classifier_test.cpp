// The clip classifier (CNN per frame + LSTM/GRU): options, shapes for every backbone, parameter names, one
// training step reaching every parameter, freezing, head replacement, and its zoo entries. Numerical parity
// with torch.nn.LSTM / GRU is tests/parity/clip_test.cpp.

#include "vigil/nn/classification/clip_classifier.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "vigil/core/error.h"
#include "vigil/nn/zoo.h"

namespace vigil::nn {
namespace {

std::set<std::string> parameter_names(torch::nn::Module& m) {
  std::set<std::string> out;
  for (const auto& p : m.named_parameters()) out.insert(p.key());
  return out;
}

std::set<std::string> with_prefix(const std::set<std::string>& names, const std::string& prefix) {
  std::set<std::string> out;
  for (const auto& n : names)
    if (n.rfind(prefix, 0) == 0) out.insert(n);
  return out;
}

torch::Tensor clips(int64_t batch, int64_t frames, int64_t side) {
  torch::manual_seed(3);
  return torch::randn({batch, frames, 3, side, side});
}

TEST(ClipClassifierOptions, RefusesBadValues) {
  EXPECT_NO_THROW(ClipClassifierOptions().validate());
  EXPECT_THROW(ClipClassifierOptions("resnet34").validate(), InvalidArgument);
  EXPECT_THROW(ClipClassifierOptions().hidden_size(0).validate(), InvalidArgument);
  EXPECT_THROW(ClipClassifierOptions().num_layers(0).validate(), InvalidArgument);
  EXPECT_THROW(ClipClassifierOptions().dropout(1.0).validate(), InvalidArgument);
  EXPECT_THROW(ClipClassifierOptions().rnn_dropout(-0.1).validate(), InvalidArgument);
  EXPECT_THROW(ClipClassifierOptions().num_classes(0).validate(), InvalidArgument);
  EXPECT_THROW(ClipClassifierOptions().clip_length(0).validate(), InvalidArgument);
  EXPECT_EQ(parse_recurrent_kind("gru"), RecurrentKind::kGru);
  EXPECT_THROW(parse_recurrent_kind("rnn"), InvalidArgument);
  EXPECT_EQ(parse_clip_pooling("mean"), ClipPooling::kMean);
  EXPECT_THROW(parse_clip_pooling("max"), InvalidArgument);
}

TEST(ClipClassifier, FeatureWidthsAreThoseOfTheBackbones) {
  const std::map<std::string, int64_t> widths = {{"mobilenet_v2", 1280},      {"mobilenet_v3_large", 960},
                                                 {"mobilenet_v3_small", 576}, {"resnet18", 512},
                                                 {"resnet50", 2048},          {"mask_small_cnn", 256}};
  for (const auto& name : clip_backbone_names()) {
    ClipClassifier model(ClipClassifierOptions(name).hidden_size(8));
    EXPECT_EQ(model->feature_size(), widths.at(name)) << name;
    EXPECT_EQ(model->num_classes(), 2) << name;
  }
}

TEST(ClipClassifier, GivesOneRowOfLogitsPerClipForAnyClipLength) {
  for (const auto& [backbone, side] : std::vector<std::pair<std::string, int64_t>>{
           {"mobilenet_v3_small", 64}, {"resnet18", 64}, {"mask_small_cnn", 100}}) {
    for (auto kind : {RecurrentKind::kLstm, RecurrentKind::kGru}) {
      ClipClassifier model(ClipClassifierOptions(backbone).rnn(kind).hidden_size(8).num_classes(3));
      model->eval();
      torch::NoGradGuard no_grad;
      EXPECT_EQ(model->forward(clips(2, 3, side)).sizes(), (std::vector<int64_t>{2, 3})) << backbone;
      EXPECT_EQ(model->forward(clips(1, 1, side)).sizes(), (std::vector<int64_t>{1, 3})) << backbone;
      EXPECT_EQ(model->frame_features(clips(2, 3, side)).sizes(),
                (std::vector<int64_t>{2, 3, model->feature_size()}));
    }
  }
}

TEST(ClipClassifier, RefusesInputThatIsNotABatchOfClips) {
  ClipClassifier model(ClipClassifierOptions("mobilenet_v3_small").hidden_size(8));
  EXPECT_THROW(model->forward(torch::randn({2, 3, 64, 64})), InvalidArgument);
  EXPECT_THROW(model->forward(torch::randn({2, 3, 1, 64, 64})), InvalidArgument);
  EXPECT_THROW(model->classify_features(torch::randn({2, 3, 7})), InvalidArgument);
}

TEST(ClipClassifier, ParametersAreNamedBackboneRnnAndFcAsInPython) {
  ClipClassifier model(ClipClassifierOptions("mobilenet_v3_small").num_layers(2).bidirectional(true));
  const auto names = parameter_names(*model);
  const auto rnn = with_prefix(names, "rnn.");
  std::set<std::string> expected;
  for (const std::string layer : {"l0", "l1"})
    for (const std::string suffix : {"", "_reverse"})
      for (const std::string p : {"weight_ih_", "weight_hh_", "bias_ih_", "bias_hh_"})
        expected.insert("rnn." + p + layer + suffix);
  EXPECT_EQ(rnn, expected);
  EXPECT_EQ(with_prefix(names, "fc."), (std::set<std::string>{"fc.weight", "fc.bias"}));
  EXPECT_EQ(with_prefix(names, "backbone.").size() + rnn.size() + 2, names.size());
  EXPECT_TRUE(with_prefix(names, "backbone.classifier").empty());  // no image head left in the backbone
  ClipClassifier mask(ClipClassifierOptions("mask_small_cnn"));
  EXPECT_EQ(with_prefix(parameter_names(*mask), "backbone.classifier."),
            (std::set<std::string>{"backbone.classifier.0.weight", "backbone.classifier.0.bias",
                                   "backbone.classifier.1.weight", "backbone.classifier.1.bias"}));
}

/// One SGD step on a batch of clips; every parameter must move (the gradient reaches the whole network).
void expect_one_step_moves_every_parameter(ClipClassifier& model, int64_t side) {
  model->train();
  std::vector<torch::Tensor> before;
  for (const auto& p : model->parameters()) before.push_back(p.detach().clone());
  torch::optim::SGD sgd(model->parameters(), torch::optim::SGDOptions(0.1));
  const auto logits = model->forward(clips(2, 3, side));
  const auto loss = torch::nn::functional::cross_entropy(logits, torch::tensor({0, 1}, torch::kLong));
  sgd.zero_grad();
  loss.backward();
  sgd.step();
  size_t k = 0;
  for (const auto& p : model->named_parameters()) {
    EXPECT_TRUE(p.value().grad().defined()) << p.key();
    EXPECT_FALSE(torch::equal(p.value().detach(), before[k++])) << p.key() << " did not change";
  }
}

TEST(ClipClassifier, OneBackwardPassChangesEveryParameter) {
  ClipClassifier lstm(
      ClipClassifierOptions("mobilenet_v3_small").num_layers(2).bidirectional(true).hidden_size(8));
  expect_one_step_moves_every_parameter(lstm, 64);
  ClipClassifier gru(
      ClipClassifierOptions("mask_small_cnn").rnn(RecurrentKind::kGru).pooling(ClipPooling::kMean));
  expect_one_step_moves_every_parameter(gru, 100);
}

TEST(ClipClassifier, FreezingTheBackboneKeepsRnnAndFcTrainable) {
  ClipClassifier model(ClipClassifierOptions("mobilenet_v3_small").hidden_size(8));
  model->freeze_backbone(0);
  for (const auto& p : model->named_parameters()) {
    const bool backbone = p.key().rfind("backbone.", 0) == 0;
    EXPECT_EQ(p.value().requires_grad(), !backbone) << p.key();
  }
  model->freeze_backbone(model->num_backbone_stages());
  for (const auto& p : model->named_parameters()) EXPECT_TRUE(p.value().requires_grad()) << p.key();
  ClipClassifier mask(ClipClassifierOptions("mask_small_cnn").hidden_size(8));
  mask->freeze_backbone(0);
  for (const auto& p : mask->named_parameters())
    EXPECT_EQ(p.value().requires_grad(), p.key().rfind("backbone.", 0) != 0) << p.key();
}

TEST(ClipClassifier, ReplacingTheHeadChangesTheClassesOnly) {
  ClipClassifier model(ClipClassifierOptions("mobilenet_v3_small").hidden_size(8).bidirectional(true));
  model->replace_head(5, 7);
  EXPECT_EQ(model->num_classes(), 5);
  model->eval();
  torch::NoGradGuard no_grad;
  EXPECT_EQ(model->forward(clips(1, 2, 64)).sizes(), (std::vector<int64_t>{1, 5}));
  EXPECT_EQ(model->named_parameters()["fc.weight"].sizes(), (std::vector<int64_t>{5, 16}));
}

TEST(ClipZoo, ClipModelsAreClassifiersCarryingAClipLength) {
  const auto names = model_names();
  for (const std::string backbone :
       {"mobilenet_v2", "mobilenet_v3_large", "mobilenet_v3_small", "resnet18", "mask_small_cnn"}) {
    for (const std::string rnn : {"lstm", "gru"}) {
      const std::string name = "clip_" + backbone + "_" + rnn;
      ASSERT_NE(std::find(names.begin(), names.end(), name), names.end()) << name;
      const auto& spec = find_model(name);
      EXPECT_EQ(spec.task, data::Task::kClassification) << name;
      EXPECT_EQ(spec.clip_length, 8) << name;
      EXPECT_EQ(spec.preprocess.width, find_model(backbone).preprocess.width) << name;
      EXPECT_EQ(spec.preprocess.mean, find_model(backbone).preprocess.mean) << name;
      EXPECT_EQ(find_model(backbone).clip_length, 0) << backbone;
    }
  }
  auto classifier = make_classifier("clip_mobilenet_v3_small_gru", 2);
  auto clip = std::dynamic_pointer_cast<ClipClassifierImpl>(classifier);
  ASSERT_TRUE(clip);
  EXPECT_EQ(clip->options().rnn(), RecurrentKind::kGru);
  EXPECT_EQ(clip->num_classes(), 2);
  EXPECT_EQ(clip->clip_length(), 8);
  ModelArgs args;
  args.num_classes = 3;
  args.clip_length = 4;
  args.dropout = 0.0;
  auto built = std::dynamic_pointer_cast<ClipClassifierImpl>(make_model("clip_resnet18_lstm", args));
  ASSERT_TRUE(built);
  EXPECT_EQ(built->clip_length(), 4);
  EXPECT_EQ(built->options().dropout(), 0.0);
  EXPECT_EQ(built->num_classes(), 3);
}

}  // namespace
}  // namespace vigil::nn

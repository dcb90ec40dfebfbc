// Image embeddings for drift monitoring come from the same forward pass as the answer: every classifier's
// forward_with_embedding gives exactly forward()'s logits and its head's input (the pooled backbone features,
// the small CNN's dense layer), detectors in eval mode return the spatial means of their backbone maps, and
// the projection to 16 numbers (model/embedding.h) is fixed: the same features give the same embedding in
// any process, and distances survive it roughly (a Johnson-Lindenstrauss map).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "vigil/core/error.h"
#include "vigil/model/embedding.h"
#include "vigil/nn/classification/clip_classifier.h"
#include "vigil/nn/detection/faster_rcnn.h"
#include "vigil/nn/zoo.h"

namespace vigil::nn {
namespace {

TEST(Embedding, ClassifiersGiveForwardsLogitsAndTheirHeadsInput) {
  register_builtin_models();
  const std::vector<std::pair<std::string, int64_t>> archs = {
      {"mask_small_cnn", 256}, {"mobilenet_v2", 1280}, {"mobilenet_v3_small", 576}, {"resnet18", 512}};
  for (const auto& [arch, width] : archs) {
    torch::manual_seed(1);
    auto model = make_classifier(arch, 3);
    model->eval();
    torch::NoGradGuard no_grad;
    const int64_t side = arch == "mask_small_cnn" ? 100 : 96;
    const torch::Tensor x = torch::rand({2, 3, side, side});
    const torch::Tensor logits = model->forward(x);
    const auto [same, embedding] = model->forward_with_embedding(x);
    EXPECT_TRUE(torch::equal(logits, same)) << arch;
    EXPECT_EQ(embedding.sizes(), (std::vector<int64_t>{2, width})) << arch;
    const torch::Tensor e = vigil::model::project_embedding(embedding);
    EXPECT_EQ(e.sizes(), (std::vector<int64_t>{2, vigil::model::kEmbeddingDims})) << arch;
  }
}

TEST(Embedding, DetectorsReturnTheirBackboneMapsMeansInEvalMode) {
  register_builtin_models();
  torch::manual_seed(2);
  auto options = faster_rcnn_defaults("fasterrcnn_mobilenet_v3_large_320_fpn").min_size({160}).max_size(224);
  auto detector = make_faster_rcnn("fasterrcnn_mobilenet_v3_large_320_fpn", {}, options);
  detector->eval();
  torch::NoGradGuard no_grad;
  const DetectorOutput out = detector->forward({torch::rand({3, 120, 160}), torch::rand({3, 120, 160})});
  ASSERT_TRUE(out.embeddings.defined());
  EXPECT_EQ(out.embeddings.size(0), 2);
  EXPECT_EQ(out.embeddings.size(1) % 256, 0) << "FPN levels of 256 channels";
  EXPECT_TRUE(torch::isfinite(out.embeddings).all().item<bool>());
}

TEST(Embedding, TheProjectionIsFixedAndKeepsDistancesRoughly) {
  torch::manual_seed(3);
  const torch::Tensor f = torch::rand({20, 960});
  const torch::Tensor a = vigil::model::project_embedding(f), b = vigil::model::project_embedding(f.clone());
  EXPECT_TRUE(torch::equal(a, b));
  // The matrix is +-1/4 drawn from mt19937_64 with a fixed seed: its first entry is the same everywhere.
  const torch::Tensor unit = torch::zeros({1, 960});
  unit[0][0] = 1;
  EXPECT_FLOAT_EQ(std::abs(vigil::model::project_embedding(unit)[0][0].item<float>()), 0.25F);
  // Pairwise distances of 20 random points kept within a factor of 2 (JL with 16 dimensions).
  for (int i = 0; i < 20; ++i)
    for (int j = i + 1; j < 20; ++j) {
      const double before = (f[i] - f[j]).norm().item<double>(), after = (a[i] - a[j]).norm().item<double>();
      EXPECT_GT(after / before, 0.4) << i << " " << j;
      EXPECT_LT(after / before, 2.0) << i << " " << j;
    }
  EXPECT_THROW(vigil::model::project_embedding(torch::rand({3})), InvalidArgument);
}

}  // namespace
}  // namespace vigil::nn

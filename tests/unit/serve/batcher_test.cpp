// The dynamic batcher with a real (small) classifier: batching of what waits, the bound, ordering of results
// and the drain on shutdown.

#include "vigil/serve/batcher.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests_util.h"
#include "vigil/core/error.h"
#include "vigil/nn/zoo.h"

namespace vigil::serve {
namespace {

std::shared_ptr<ServedModel> small_model() {
  torch::manual_seed(0);
  model::LoadedModel m;
  m.info = model::default_model_info("mask_small_cnn", {"a", "b"});
  m.classifier = nn::make_classifier("mask_small_cnn", 2);
  m.module = std::dynamic_pointer_cast<torch::nn::Module>(m.classifier);
  auto served = std::make_shared<ServedModel>();
  served->predictor = std::make_unique<model::Predictor>(std::move(m), model::PredictOptions{});
  served->info = served->predictor->info();
  return served;
}

InferenceRequest request(const std::shared_ptr<ServedModel>& model, int seed) {
  cv::Mat img(100, 100, CV_8UC3, cv::Scalar(seed * 20 % 255, 100, 200 - seed));
  InferenceRequest r;
  r.model = model;
  r.input = model->predictor->preprocess(img);
  r.width = r.height = 100;
  return r;
}

TEST(Batcher, BatchesWhatArrivesWithinTheDelayAndKeepsOrder) {
  auto model = small_model();
  std::vector<int> batches;
  Batcher b({8, 200, 64}, [&](int n, double, const std::vector<double>& waits) {
    batches.push_back(n);
    EXPECT_EQ(waits.size(), static_cast<size_t>(n));
  });
  std::vector<InferenceRequest> reqs;
  for (int i = 0; i < 5; ++i) reqs.push_back(request(model, i));
  // Reference: each image alone.
  std::vector<std::vector<float>> alone;
  for (int i = 0; i < 5; ++i) {
    auto f = b.submit({request(model, i)});
    ASSERT_TRUE(f);
    alone.push_back((*f)[0].get().prediction.probs);
  }
  batches.clear();
  auto futures = b.submit(std::move(reqs));
  ASSERT_TRUE(futures);
  for (int i = 0; i < 5; ++i) {
    InferenceResult r = (*futures)[i].get();
    EXPECT_TRUE(r.error.empty());
    EXPECT_EQ(r.batch_size, 5);
    ASSERT_EQ(r.prediction.probs.size(), 2u);
    for (int c = 0; c < 2; ++c) EXPECT_NEAR(r.prediction.probs[c], alone[i][c], 1e-5) << i;
  }
  EXPECT_EQ(batches, std::vector<int>({5}));
}

TEST(Batcher, RefusesWhatDoesNotFitAndDrainsOnShutdown) {
  auto model = small_model();
  Batcher b({4, 1000, 3});
  // Three images now and a fourth still being decoded: the worker waits (up to 1 s) for it instead of
  // running, so the queue deterministically holds all three when more arrive.
  b.announce(4);
  std::vector<InferenceRequest> three;
  for (int i = 0; i < 3; ++i) three.push_back(request(model, i));
  auto first = b.submit(std::move(three));
  ASSERT_TRUE(first);
  EXPECT_EQ(b.depth(), 3u);
  std::vector<InferenceRequest> more;
  more.push_back(request(model, 9));
  more.push_back(request(model, 10));
  EXPECT_FALSE(b.submit(std::move(more)));  // 3 waiting + 2 > capacity 3: refused whole
  b.shutdown();                             // does not wait out the 1 s delay, and finishes all three
  for (auto& f : *first) EXPECT_EQ(f.get().prediction.probs.size(), 2u);
  std::vector<InferenceRequest> late;
  late.push_back(request(model, 11));
  EXPECT_FALSE(b.submit(std::move(late)));
}

TEST(BatcherOptions, ValidateNamesTheField) {
  EXPECT_THROW((BatcherOptions{0, 5, 4}.validate()), InvalidArgument);
  EXPECT_THROW((BatcherOptions{4, -1, 4}.validate()), InvalidArgument);
  EXPECT_THROW((BatcherOptions{4, 5, 0}.validate()), InvalidArgument);
}

}  // namespace
}  // namespace vigil::serve

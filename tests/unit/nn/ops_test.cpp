// Hand-computed cases for vigil::nn::ops (box helpers, NMS, box coder, matcher, RoIAlign, poolers).

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <chrono>
#include <thread>

#include "vigil/core/blas.h"
#include "vigil/core/error.h"
#include "vigil/nn/ops/boxes.h"
#include "vigil/nn/ops/nms.h"
#include "vigil/nn/ops/poolers.h"
#include "vigil/nn/ops/roi_align.h"

namespace vigil::nn::ops {
namespace {

torch::Tensor boxes_of(std::vector<std::vector<double>> rows, torch::Dtype dtype = torch::kFloat32) {
  auto t = torch::empty({static_cast<int64_t>(rows.size()), 4}, torch::kFloat64);
  for (size_t i = 0; i < rows.size(); ++i) {
    for (int j = 0; j < 4; ++j) t[i][j] = rows[i][j];
  }
  return t.to(dtype);
}

torch::Tensor longs(std::vector<int64_t> v) {
  return torch::tensor(v, torch::kLong);
}

TEST(BoxOps, AreaAndIouOfKnownBoxes) {
  const auto a = boxes_of({{0, 0, 2, 2}, {1, 1, 3, 3}});
  const auto b = boxes_of({{0, 0, 2, 2}, {2, 2, 4, 4}, {0, 0, 1, 1}});
  EXPECT_TRUE(torch::equal(box_area(a), torch::tensor({4.f, 4.f})));
  const auto iou = box_iou(a, b);
  ASSERT_EQ(iou.sizes(), torch::IntArrayRef({2, 3}));
  EXPECT_FLOAT_EQ(iou[0][0].item<float>(), 1.f);
  EXPECT_FLOAT_EQ(iou[0][1].item<float>(), 0.f);  // touching corners do not overlap
  EXPECT_FLOAT_EQ(iou[0][2].item<float>(), 0.25f);
  EXPECT_FLOAT_EQ(iou[1][0].item<float>(), 1.f / 7.f);
  EXPECT_FLOAT_EQ(iou[1][1].item<float>(), 1.f / 7.f);
  // Integer boxes are upcast, not truncated to uint8.
  EXPECT_EQ(box_area(boxes_of({{0, 0, 20, 20}}, torch::kUInt8)).item<int64_t>(), 400);
}

TEST(BoxOps, ClipAndRemoveSmall) {
  const auto b = boxes_of({{-5, -5, 50, 30}, {10, 10, 12, 40}, {1, 1, 4, 4}});
  const auto clipped = clip_boxes_to_image(b, {20, 40});
  EXPECT_TRUE(torch::equal(clipped, boxes_of({{0, 0, 40, 20}, {10, 10, 12, 20}, {1, 1, 4, 4}})));
  EXPECT_TRUE(torch::equal(remove_small_boxes(clipped, 3.0), longs({0, 2})));
  EXPECT_THROW(box_area(torch::zeros({3, 5})), InvalidArgument);
}

TEST(Nms, SuppressesAboveThresholdAndKeepsAPairExactlyAtIt) {
  // IoU([0,0,3,1], [1,0,4,1]) = 2 / 4 = 0.5 exactly in float.
  const auto b = boxes_of({{0, 0, 3, 1}, {1, 0, 4, 1}, {0, 0, 3, 1.1}});
  const auto s = torch::tensor({0.9f, 0.8f, 0.7f});
  EXPECT_TRUE(torch::equal(nms(b.slice(0, 0, 2), s.slice(0, 0, 2), 0.5), longs({0, 1})));
  EXPECT_TRUE(torch::equal(nms(b.slice(0, 0, 2), s.slice(0, 0, 2), 0.49), longs({0})));
  // The third box overlaps the first by 3 / 3.3 > 0.5 and goes; result is ordered by score.
  EXPECT_TRUE(torch::equal(nms(b, torch::tensor({0.7f, 0.8f, 0.9f}), 0.5), longs({2, 1})));
}

TEST(Nms, EmptyInputGivesEmptyInt64) {
  const auto keep = nms(torch::zeros({0, 4}), torch::zeros({0}), 0.5);
  EXPECT_EQ(keep.numel(), 0);
  EXPECT_EQ(keep.scalar_type(), torch::kLong);
  const auto bkeep =
      batched_nms(torch::zeros({0, 4}), torch::zeros({0}), torch::zeros({0}, torch::kLong), 0.5);
  EXPECT_EQ(bkeep.numel(), 0);
  EXPECT_EQ(bkeep.scalar_type(), torch::kLong);
}

TEST(Nms, RejectsMismatchedInputs) {
  EXPECT_THROW(nms(torch::zeros({3, 4}), torch::zeros({2}), 0.5), InvalidArgument);
  EXPECT_THROW(nms(torch::zeros({3, 4}), torch::zeros({3}, torch::kFloat64), 0.5), InvalidArgument);
}

TEST(Nms, BatchedNeverSuppressesAcrossClasses) {
  // Identical boxes: one survivor per class, on both sides of the 4000-number switch.
  for (int64_t n : {6, 1200}) {
    const auto b = boxes_of({{5, 5, 25, 25}}).repeat({n, 1});
    const auto scores = torch::arange(n, torch::kFloat32) / n;
    const auto idxs = torch::arange(n, torch::kLong) % 3;
    const auto keep = batched_nms(b, scores, idxs, 0.5);
    ASSERT_EQ(keep.numel(), 3) << n;
    EXPECT_TRUE(torch::equal(keep, longs({n - 1, n - 2, n - 3}))) << n;
  }
}

TEST(BoxCoder, EncodeDecodeRoundTrip) {
  const BoxCoder coder({10, 10, 5, 5});
  const auto proposals = boxes_of({{10, 20, 50, 60}, {0, 0, 8, 4}}, torch::kFloat64);
  const auto gt = boxes_of({{12, 18, 48, 70}, {1, 1, 9, 3}}, torch::kFloat64);
  const auto codes = coder.encode({gt}, {proposals});
  ASSERT_EQ(codes.size(), 1u);
  // dx = 10 * (30 - 30) / 40 = 0; dw = 5 * log(36 / 40).
  EXPECT_NEAR(codes[0][0][0].item<double>(), 0.0, 1e-12);
  EXPECT_NEAR(codes[0][0][2].item<double>(), 5 * std::log(36.0 / 40.0), 1e-12);
  const auto decoded = coder.decode(codes[0], {proposals});
  ASSERT_EQ(decoded.sizes(), torch::IntArrayRef({2, 1, 4}));
  EXPECT_TRUE(torch::allclose(decoded.squeeze(1), gt, 0, 1e-9));
}

TEST(BoxCoder, ClampsLargeSizeCodes) {
  const BoxCoder coder({1, 1, 1, 1});
  const auto decoded =
      coder.decode_single(torch::tensor({{0.f, 0.f, 100.f, 100.f}}), boxes_of({{0, 0, 2, 2}}));
  // exp(log(1000 / 16)) * 2 = 125 wide, centred on 1.
  EXPECT_NEAR(decoded[0][2].item<float>() - decoded[0][0].item<float>(), 125.f, 1e-3);
}

TEST(Matcher, ThresholdsAndLowQualityMatches) {
  // 2 ground truths x 4 predictions.
  const auto q = torch::tensor({{0.9f, 0.5f, 0.1f, 0.2f}, {0.1f, 0.6f, 0.35f, 0.25f}});
  EXPECT_TRUE(torch::equal(Matcher(0.7, 0.3)(q), longs({0, -2, -2, -1})));
  // GT 1's best prediction is 1 (0.6): it gets matched despite being between thresholds.
  EXPECT_TRUE(torch::equal(Matcher(0.7, 0.3, true)(q), longs({0, 1, -2, -1})));
  EXPECT_THROW(Matcher(0.7, 0.3)(torch::zeros({0, 4})), InvalidArgument);
  EXPECT_THROW(Matcher(0.3, 0.7), InvalidArgument);
}

TEST(Sampler, RespectsCountsAndFraction) {
  const auto matched = torch::cat(
      {torch::ones({30}, torch::kLong), torch::zeros({100}, torch::kLong), -torch::ones({10}, torch::kLong)});
  torch::manual_seed(0);
  const auto [pos, neg] = BalancedPositiveNegativeSampler(64, 0.25)({matched});
  EXPECT_EQ(pos[0].sum().item<int64_t>(), 16);
  EXPECT_EQ(neg[0].sum().item<int64_t>(), 48);
  EXPECT_EQ((pos[0] * (matched < 1)).sum().item<int64_t>(), 0);
  EXPECT_EQ((neg[0] * (matched != 0)).sum().item<int64_t>(), 0);
}

TEST(RoiAlign, ConstantMapGivesConstant) {
  const auto input = torch::full({2, 3, 16, 16}, 2.5f);
  const auto rois = torch::tensor({{0.f, 1.f, 1.f, 9.f, 7.f}, {1.f, 3.5f, 2.25f, 14.f, 15.f}});
  for (bool aligned : {false, true}) {
    for (int64_t ratio : {-1, 0, 2}) {
      const auto out = roi_align(input, rois, {3, 4}, 1.0, ratio, aligned);
      ASSERT_EQ(out.sizes(), torch::IntArrayRef({2, 3, 3, 4}));
      EXPECT_TRUE(torch::allclose(out, torch::full_like(out, 2.5f), 0, 1e-6)) << aligned << " " << ratio;
    }
  }
}

TEST(RoiAlign, BoxListOverloadMatchesRoiTensor) {
  const auto input = torch::randn({2, 2, 10, 12});
  const std::vector<torch::Tensor> boxes = {boxes_of({{1, 1, 6, 5}}),
                                            boxes_of({{0, 2, 11, 9}, {3, 3, 4, 4}})};
  const auto rois = convert_boxes_to_roi_format(boxes);
  EXPECT_TRUE(torch::equal(rois.select(1, 0), torch::tensor({0.f, 1.f, 1.f})));
  EXPECT_TRUE(torch::equal(roi_align(input, boxes, {2, 2}, 1.0, 2), roi_align(input, rois, {2, 2}, 1.0, 2)));
  EXPECT_EQ(roi_align(input, torch::zeros({0, 5}), {2, 2}).sizes(), torch::IntArrayRef({0, 2, 2, 2}));
  EXPECT_THROW(roi_align(input, rois.to(torch::kFloat64), {2, 2}), InvalidArgument);
}

TEST(RoiAlign, GradientMatchesFiniteDifferences) {
  torch::manual_seed(7);
  const auto input = torch::randn({2, 2, 7, 9}, torch::kFloat64).requires_grad_(true);
  // Box corners avoid integer sample positions, where bilinear interpolation has kinks.
  const auto rois = torch::tensor(
      {{0.0, 0.3, 0.7, 5.1, 4.9}, {1.0, -1.2, 1.1, 8.7, 7.6}, {0.0, 2.2, 2.4, 3.1, 3.3}}, torch::kFloat64);
  for (bool aligned : {false, true}) {
    const auto out = roi_align(input, rois, {3, 2}, 0.9, -1, aligned);
    const auto upstream = torch::randn(out.sizes(), torch::kFloat64);
    const auto analytic = torch::autograd::grad({out}, {input}, {upstream})[0];
    // roi_align is linear in input, so central differences are exact up to rounding.
    auto numeric = torch::zeros_like(input);
    const double eps = 1e-6;
    auto flat = input.detach().clone();
    for (int64_t i = 0; i < flat.numel(); ++i) {
      const double v = flat.view(-1)[i].item<double>();
      flat.view(-1)[i] = v + eps;
      const double up = (roi_align(flat, rois, {3, 2}, 0.9, -1, aligned) * upstream).sum().item<double>();
      flat.view(-1)[i] = v - eps;
      const double down = (roi_align(flat, rois, {3, 2}, 0.9, -1, aligned) * upstream).sum().item<double>();
      flat.view(-1)[i] = v;
      numeric.view(-1)[i] = (up - down) / (2 * eps);
    }
    EXPECT_TRUE(torch::allclose(analytic, numeric, 1e-6, 1e-7))
        << "aligned " << aligned << " max diff " << (analytic - numeric).abs().max().item<double>();
  }
}

TEST(RoiAlign, ResultsDoNotDependOnThreadCount) {
  torch::manual_seed(3);
  const auto input = torch::randn({2, 64, 40, 40}).requires_grad_(true);
  const auto xy = torch::rand({200, 2}) * 120;
  const auto rois =
      torch::cat({torch::randint(0, 2, {200, 1}).to(torch::kFloat), xy, xy + torch::rand({200, 2}) * 60}, 1);
  const auto upstream = torch::randn({200, 64, 7, 7});
  const int before = at::get_num_threads();
  std::vector<torch::Tensor> outs;
  std::vector<torch::Tensor> grads;
  for (int threads : {1, 2}) {
    at::set_num_threads(threads);
    outs.push_back(roi_align(input, rois, {7, 7}, 0.25, 2, false));
    grads.push_back(torch::autograd::grad({outs.back()}, {input}, {upstream})[0]);
  }
  at::set_num_threads(before);
  EXPECT_TRUE(torch::equal(outs[0], outs[1]));
  EXPECT_TRUE(torch::equal(grads[0], grads[1]));
}

TEST(MultiScaleRoIAlign, InfersScalesAndLevels) {
  EXPECT_DOUBLE_EQ(infer_scale(torch::zeros({1, 1, 50, 64}), {200, 256}), 0.25);
  EXPECT_DOUBLE_EQ(infer_scale(torch::zeros({1, 1, 13, 16}), {200, 256}), 1.0 / 16);
  const LevelMapper mapper(2, 5);
  // sqrt(area) 224 -> level 4; 112 -> 3; 8 -> clamped 2; 2000 -> clamped 5.
  const auto levels =
      mapper({boxes_of({{0, 0, 224, 224}, {0, 0, 112, 112}, {0, 0, 8, 8}, {0, 0, 2000, 2000}})});
  EXPECT_TRUE(torch::equal(levels, longs({2, 1, 0, 3})));

  torch::OrderedDict<std::string, torch::Tensor> feats;
  feats.insert("0", torch::full({1, 2, 32, 32}, 1.f));
  feats.insert("1", torch::full({1, 2, 16, 16}, 2.f));
  feats.insert("pool", torch::full({1, 2, 8, 8}, 9.f));
  MultiScaleRoIAlign pooler(MultiScaleRoIAlignOptions({"0", "1"}, {2, 2}, 2));
  const auto out = pooler->forward(feats, {boxes_of({{0, 0, 10, 10}, {0, 0, 120, 120}})}, {{128, 128}});
  ASSERT_EQ(out.sizes(), torch::IntArrayRef({2, 2, 2, 2}));
  EXPECT_EQ(pooler->scales(), std::vector<double>({0.25, 0.125}));
  EXPECT_TRUE(torch::allclose(out[0], torch::full({2, 2, 2}, 1.f)));
  EXPECT_TRUE(torch::allclose(out[1], torch::full({2, 2, 2}, 2.f)));
}

}  // namespace
}  // namespace vigil::nn::ops

// vigil serve runs OpenBLAS on one thread (set_blas_threads); LibTorch's matmul goes through the OpenBLAS
// that scripts/install-deps.sh installs, found by symbol.
TEST(BlasThreads, SetsOpenBlasOwnCountAndReturnsThePreviousOne) {
  const int before = vigil::blas_threads();
  ASSERT_GT(before, 0) << "no OpenBLAS in this process";
  EXPECT_EQ(vigil::set_blas_threads(1), before);
  EXPECT_EQ(vigil::blas_threads(), 1);
  const auto product = torch::mm(torch::ones({96, 80}), torch::ones({80, 64}));
  EXPECT_TRUE(torch::equal(product, torch::full({96, 64}, 80.0f)));
  EXPECT_EQ(vigil::set_blas_threads(0), 1) << "0 leaves the count as it is";
  EXPECT_EQ(vigil::blas_threads(), 1);
  vigil::set_blas_threads(before);
  EXPECT_EQ(vigil::blas_threads(), before);
}

// The choice is a measurement: whichever count runs `forward` faster stays set (1 only when clearly faster).
TEST(BlasThreads, ChooseKeepsTheCountThatRunsTheForwardFaster) {
  const int start = vigil::blas_threads();
  ASSERT_GT(start, 0) << "no OpenBLAS in this process";
  auto sleeping = [](double one_ms, double many_ms) {
    return [=] {
      const double ms = vigil::blas_threads() == 1 ? one_ms : many_ms;
      std::this_thread::sleep_for(std::chrono::microseconds(static_cast<int>(ms * 1000)));
    };
  };
  vigil::BlasChoice c = vigil::choose_blas_threads(4, sleeping(2, 12), 3);
  EXPECT_TRUE(c.timed);
  EXPECT_EQ(c.threads, 1);
  EXPECT_EQ(vigil::blas_threads(), 1);
  EXPECT_LT(c.ms_one, c.ms_many);
  c = vigil::choose_blas_threads(4, sleeping(12, 2), 3);
  EXPECT_EQ(c.threads, 4);
  EXPECT_EQ(vigil::blas_threads(), 4);
  EXPECT_GT(c.ms_one, c.ms_many);
  c = vigil::choose_blas_threads(1, sleeping(2, 12), 3);
  EXPECT_FALSE(c.timed) << "nothing to choose between";
  vigil::set_blas_threads(start);
}

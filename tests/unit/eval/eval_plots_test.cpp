#include "vigil/eval/eval_plots.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <opencv2/core.hpp>

#include <cmath>
#include <cstdlib>

#include "tests_util.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/image/decode.h"

namespace vigil::eval {
namespace {

using vigil::testing::TempDir;

// Set VIGIL_PLOT_TEST_OUT=/some/dir to keep the PNGs for a look.
class EvalPlotsTest : public ::testing::Test {
 protected:
  fs::path out(const std::string& name) {
    if (const char* keep = std::getenv("VIGIL_PLOT_TEST_OUT"); keep && *keep) {
      fs::create_directories(keep);
      return fs::path(keep) / name;
    }
    return tmp_ / name;
  }
  TempDir tmp_;
};

// Decodes with vigil::image (by magic bytes, so a non-PNG fails) and returns the pixels.
cv::Mat expect_png(const fs::path& png, int width, int height) {
  auto bytes = read_file(png);
  EXPECT_EQ(image::sniff_type(bytes), image::ImageType::kPng) << png;
  auto d = image::decode(bytes);
  EXPECT_TRUE(d.ok()) << png << ": " << d.error.kind_name() << " " << d.error.detail;
  if (!d.ok()) return {};
  EXPECT_EQ(d.bgr.cols, width) << png;
  EXPECT_EQ(d.bgr.rows, height) << png;
  cv::Scalar mean, stddev;
  cv::meanStdDev(d.bgr, mean, stddev);
  EXPECT_GT(stddev[0] + stddev[1] + stddev[2], 1.0) << png << " is a single colour";
  for (const auto& e : fs::directory_iterator(png.parent_path())) {
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << "left behind: " << e.path();
  }
  return d.bgr;
}

// Pixels clearly tinted blue (blue - red > 45): heatmap cells above about half the colour scale.
int count_strong_blue(const cv::Mat& bgr) {
  int n = 0;
  for (int y = 0; y < bgr.rows; ++y) {
    for (int x = 0; x < bgr.cols; ++x) {
      auto p = bgr.at<cv::Vec3b>(y, x);
      if (p[0] - p[2] > 45) ++n;
    }
  }
  return n;
}

TEST_F(EvalPlotsTest, ConfusionCountsAndNormalisedWithBackground) {
  // Detection-style: the last row/column is "background" (false positives / misses).
  std::vector<std::vector<double>> m = {{50, 2, 8}, {3, 7, 1}, {4, 0, 0}};
  std::vector<std::string> labels = {"gun", "knife_<x>", "background"};
  plot_confusion(m, labels, false, out("confusion.png"));
  plot_confusion(m, labels, true, out("confusion_norm.png"));
  auto counts = expect_png(out("confusion.png"), 900, 600);
  auto norm = expect_png(out("confusion_norm.png"), 900, 600);
  // Counts: only the 50 cell is strongly blue. Normalised rows: 50/60, 7/11 and 4/4 are, three cells.
  EXPECT_GT(count_strong_blue(norm), count_strong_blue(counts) * 2);
}

TEST_F(EvalPlotsTest, ConfusionRejectsBadShapes) {
  EXPECT_THROW(plot_confusion({{1, 2}, {3}}, {"a", "b"}, false, out("x.png")), InvalidArgument);
  EXPECT_THROW(plot_confusion({{1, 2}, {3, 4}}, {"a"}, false, out("x.png")), InvalidArgument);
  EvalPlotOptions small;
  small.width = 50;
  EXPECT_THROW(plot_confusion({{1}}, {"a"}, false, out("x.png"), small), InvalidArgument);
  EXPECT_FALSE(fs::exists(out("x.png")));
}

TEST_F(EvalPlotsTest, MeanCurveSkipsNonFinitePoints) {
  auto m = mean_curve({{1, 0, NAN}, {0, 0, NAN}, {0.5, NAN, NAN}});
  ASSERT_EQ(m.size(), 3u);
  EXPECT_DOUBLE_EQ(m[0], 0.5);  // (1 + 0 + 0.5) / 3
  EXPECT_DOUBLE_EQ(m[1], 0.0);  // (0 + 0) / 2
  EXPECT_TRUE(std::isnan(m[2]));
  EXPECT_THROW(mean_curve({{1, 2}, {1}}), InvalidArgument);
  EXPECT_TRUE(mean_curve({}).empty());
}

TEST_F(EvalPlotsTest, PrAndConfidenceCurves) {
  std::vector<double> x;
  for (int i = 0; i <= 100; ++i) x.push_back(i / 100.0);
  std::vector<std::vector<double>> pr(3), f1(3);
  for (size_t c = 0; c < 3; ++c) {
    for (double r : x) {
      pr[c].push_back(std::clamp(1.0 - std::pow(r, 3.0 + c), 0.0, 1.0));
      f1[c].push_back(std::sin(M_PI * r) * (0.9 - 0.2 * c));
    }
  }
  plot_curves(x, pr, {"gun 0.81", "knife 0.62", "no_gun 0.40"}, out("pr.png"));
  expect_png(out("pr.png"), 900, 600);
  CurvePlotOptions o;
  o.xlabel = "confidence";
  o.ylabel = "F1";
  o.annotate_max = true;
  o.plot.width = 640, o.plot.height = 480;
  plot_curves(x, f1, {"gun", "knife", "no_gun"}, out("f1.png"), o);
  expect_png(out("f1.png"), 640, 480);
  EXPECT_THROW(plot_curves(x, pr, {"one"}, out("bad.png")), InvalidArgument);
  EXPECT_THROW(plot_curves({0, 1}, pr, {"a", "b", "c"}, out("bad.png")), InvalidArgument);
}

TEST_F(EvalPlotsTest, ManyClassesDrawOnlyTheMean) {
  std::vector<double> x = {0, 0.5, 1};
  std::vector<std::vector<double>> ys;
  std::vector<std::string> names;
  for (int c = 0; c < kMaxClassCurves + 5; ++c) {
    ys.push_back({1, 0.5 + 0.01 * c, 0});
    names.push_back("class " + std::to_string(c));
  }
  plot_curves(x, ys, names, out("many.png"));
  expect_png(out("many.png"), 900, 600);
}

TEST_F(EvalPlotsTest, RocLeavesOutUndefinedCurves) {
  std::vector<image::Series> curves = {{"cat (AUC 0.958)", {0, 0, 0, 0.25, 1}, {0, 1.0 / 3, 2.0 / 3, 1, 1}},
                                       {"bird (AUC undefined)", {0, NAN, NAN}, {0, 0.5, 1}}};
  plot_roc(curves, out("roc.png"));
  expect_png(out("roc.png"), 900, 600);
  // Only undefined curves: a "no data" plot, still a valid picture.
  plot_roc({curves[1]}, out("roc_none.png"));
  expect_png(out("roc_none.png"), 900, 600);
  EXPECT_THROW(plot_roc({{"bad", {0, 1}, {0}}}, out("bad.png")), InvalidArgument);
}

TEST_F(EvalPlotsTest, RocWithManyClassesShowsTheMean) {
  std::vector<image::Series> curves;
  for (int c = 0; c < 12; ++c)
    curves.push_back({"c" + std::to_string(c), {0, 0, 0.1 * c / 12, 1}, {0, 0.5, 1, 1}});
  plot_roc(curves, out("roc_many.png"));
  expect_png(out("roc_many.png"), 900, 600);
}

TEST_F(EvalPlotsTest, ReliabilityDiagram) {
  std::vector<ReliabilityBin> bins(15);
  for (int b = 0; b < 15; ++b) {
    bins[b].lower = b / 15.0, bins[b].upper = (b + 1) / 15.0;
    if (b >= 6)
      bins[b].count = 10, bins[b].accuracy = 0.8 * bins[b].upper, bins[b].confidence = bins[b].upper;
  }
  plot_reliability(bins, 0.0875, out("reliability.png"));
  expect_png(out("reliability.png"), 900, 600);
  bins[3].upper = bins[3].lower;
  EXPECT_THROW(plot_reliability(bins, 0.1, out("bad.png")), InvalidArgument);
}

TEST_F(EvalPlotsTest, WriteClassificationPlots) {
  std::vector<ClassificationSample> s = {{0, {0.7, 0.2, 0.1}}, {0, {0.3, 0.6, 0.1}}, {1, {0.2, 0.5, 0.3}},
                                         {1, {0.3, 0.1, 0.6}}, {2, {0.2, 0.2, 0.6}}, {2, {0.2, 0.5, 0.3}},
                                         {0, {0.8, 0.1, 0.1}}};
  auto m = compute_classification_metrics(s, {"cat", "dog", "<script>bird"});
  auto dir = out("cls_plots");
  auto files = write_classification_plots(m, dir);
  ASSERT_EQ(files.size(), 4u);
  for (const auto& f : files) {
    EXPECT_EQ(f.path.parent_path(), dir);
    expect_png(f.path, 900, 600);
  }
  EXPECT_EQ(files[0].path.filename(), "confusion_matrix.png");
  EXPECT_EQ(files[3].path.filename(), "reliability.png");
}

}  // namespace
}  // namespace vigil::eval

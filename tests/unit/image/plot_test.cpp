#include "vigil/image/plot.h"

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <cmath>
#include <cstdlib>
#include <thread>

#include "tests_util.h"
#include "vigil/core/error.h"

namespace vigil::image {
namespace {

using vigil::testing::TempDir;
namespace fs = std::filesystem;

// Set VIGIL_PLOT_TEST_OUT=/some/dir to keep the PNGs for a look.
class PlotTest : public ::testing::Test {
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

// The PNG decodes, has the requested size and is not a blank canvas.
void expect_plot(const fs::path& png, int width, int height) {
  ASSERT_TRUE(fs::exists(png)) << png;
  cv::Mat img = cv::imread(png.string(), cv::IMREAD_COLOR);
  ASSERT_FALSE(img.empty()) << png;
  EXPECT_EQ(img.cols, width);
  EXPECT_EQ(img.rows, height);
  cv::Scalar mean, stddev;
  cv::meanStdDev(img, mean, stddev);
  EXPECT_GT(stddev[0] + stddev[1] + stddev[2], 0.0) << png;
  // No temporary file is left beside the plot.
  for (const auto& e : fs::directory_iterator(png.parent_path())) {
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << e.path();
  }
}

PlotSpec spec(const std::string& title) {
  PlotSpec s;
  s.title = title;
  s.xlabel = "x axis_label";
  s.ylabel = "y axis label";
  return s;
}

TEST_F(PlotTest, BarChartWithManyLongLabels) {
  std::vector<std::string> labels;
  std::vector<double> values;
  for (int i = 0; i < 20; ++i) {
    labels.push_back("class name_" + std::to_string(i));
    values.push_back(i * 37 % 101 + 1);
  }
  auto s = spec("Boxes per class {train}");
  bar_chart(labels, values, s, out("bar_many.png"));
  expect_plot(out("bar_many.png"), 900, 600);
}

TEST_F(PlotTest, BarChartFewLabelsCustomSizeAndLogY) {
  auto s = spec("Few bars");
  s.width = 640, s.height = 480;
  bar_chart({"gun", "knife", "no object"}, {120, 3.5, 0}, s, out("bar_few.png"));
  expect_plot(out("bar_few.png"), 640, 480);
  s.log_y = true;
  bar_chart({"gun", "knife", "no object"}, {12000, 3, 0}, s, out("bar_log.png"));
  expect_plot(out("bar_log.png"), 640, 480);
}

TEST_F(PlotTest, Histogram) {
  std::vector<double> v;
  for (int i = 0; i < 1000; ++i) v.push_back(std::sin(i * 0.37) * 40 + 60 + (i % 7));
  v.push_back(NAN);
  histogram(v, 20, spec("Box size (sqrt area, px)"), out("hist.png"));
  expect_plot(out("hist.png"), 900, 600);
  histogram({5, 5, 5}, 10, spec("Constant"), out("hist_const.png"));
  expect_plot(out("hist_const.png"), 900, 600);
  EXPECT_THROW(histogram(v, 0, spec("x"), out("bad.png")), InvalidArgument);
}

TEST_F(PlotTest, Scatter) {
  std::vector<double> x, y;
  for (int i = 0; i < 300; ++i) {
    x.push_back(200 + (i * 53) % 1700);
    y.push_back(150 + (i * 29) % 1000);
  }
  scatter(x, y, spec("Image sizes"), out("scatter.png"));
  expect_plot(out("scatter.png"), 900, 600);
  EXPECT_THROW(scatter({1, 2}, {1}, spec("x"), out("bad.png")), InvalidArgument);
}

TEST_F(PlotTest, LinePlotWithFixedRanges) {
  std::vector<Series> series;
  for (int k = 0; k < 3; ++k) {
    Series s{"class_" + std::to_string(k) + " AP=0." + std::to_string(9 - k), {}, {}};
    for (int i = 0; i <= 50; ++i) {
      double r = i / 50.0;
      s.x.push_back(r);
      s.y.push_back(1.0 - std::pow(r, 3.0 - k * 0.8));
    }
    series.push_back(s);
  }
  auto s = spec("Precision-recall");
  s.x_range = {0, 1};
  s.y_range = {0, 1.02};
  line_plot(series, s, out("pr.png"));
  expect_plot(out("pr.png"), 900, 600);
  line_plot({Series{"one point", {0.5}, {0.5}}}, spec("single"), out("line_single.png"));
  expect_plot(out("line_single.png"), 900, 600);
}

TEST_F(PlotTest, HeatmapConfusionMatrix) {
  std::vector<std::string> names = {"gun", "knife", "no_object", "phone case"};
  std::vector<std::vector<double>> m = {{50, 2, 3, 0}, {4, 40, 1, 2}, {6, 0, 90, 10}, {0, 1, 5, 33}};
  auto s = spec("Confusion matrix");
  s.xlabel = "predicted";
  s.ylabel = "true";
  heatmap(m, names, names, s, out("confusion.png"));
  expect_plot(out("confusion.png"), 900, 600);
  std::vector<std::vector<double>> rates = {{0.9, 0.1}, {0.25, 0.75}};
  heatmap(rates, {"a", "b"}, {"a", "b"}, s, out("rates.png"), false);
  expect_plot(out("rates.png"), 900, 600);
  EXPECT_THROW(heatmap({{1, 2}, {3}}, {}, {}, s, out("bad.png")), InvalidArgument);
}

TEST_F(PlotTest, EmptyInputsDrawNoDataPlots) {
  bar_chart({}, {}, spec("empty bars"), out("empty_bar.png"));
  expect_plot(out("empty_bar.png"), 900, 600);
  histogram({}, 10, spec("empty hist"), out("empty_hist.png"));
  expect_plot(out("empty_hist.png"), 900, 600);
  scatter({}, {}, spec("empty scatter"), out("empty_scatter.png"));
  expect_plot(out("empty_scatter.png"), 900, 600);
  line_plot({}, spec("empty lines"), out("empty_line.png"));
  expect_plot(out("empty_line.png"), 900, 600);
  line_plot({Series{"nothing", {}, {}}}, spec("empty series"), out("empty_series.png"));
  expect_plot(out("empty_series.png"), 900, 600);
  heatmap({}, {}, {}, spec("empty heatmap"), out("empty_heat.png"));
  expect_plot(out("empty_heat.png"), 900, 600);
}

TEST_F(PlotTest, UnwritablePathThrowsIoErrorNamingIt) {
  // A regular file where a directory should be: cannot be created, whoever runs the test (even root).
  vigil::testing::write_text(tmp_ / "file", "x");
  fs::path bad = tmp_ / "file" / "sub" / "plot.png";
  try {
    bar_chart({"a"}, {1}, spec("x"), bad);
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(bad.string()), std::string::npos) << e.what();
  }
  EXPECT_THROW(histogram({1, 2}, 3, spec("x"), tmp_ / "file" / "h.png"), IoError);
}

TEST_F(PlotTest, ConcurrentCallsAreSafe) {
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      histogram({1, 2, 3, 3, 4}, 4, spec("t"), tmp_ / ("c" + std::to_string(t) + ".png"));
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) expect_plot(tmp_ / ("c" + std::to_string(t) + ".png"), 900, 600);
}

}  // namespace
}  // namespace vigil::image

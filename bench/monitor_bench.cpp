// What the prediction log adds to each request's thread: the input statistics (monitor/image_stats.h) of a
// decoded frame, by size, and their JSON; and the drift report over a window of logged rows.
//   build/bench/monitor_bench [--benchmark_filter=ImageStats]

#include <benchmark/benchmark.h>

#include <opencv2/core/utility.hpp>
#include <opencv2/imgproc.hpp>

#include <cstdlib>

#include <nlohmann/json.hpp>

#include "vigil/monitor/image_stats.h"

namespace {

cv::Mat frame(int w, int h) {
  cv::Mat img(h, w, CV_8UC3);
  cv::randu(img, cv::Scalar::all(0), cv::Scalar::all(255));
  cv::GaussianBlur(img, img, {0, 0}, 3);
  return img;
}

void ImageStats(benchmark::State& state) {
  const cv::Mat img = frame(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  for (auto _ : state) benchmark::DoNotOptimize(vigil::monitor::image_stats(img));
}
BENCHMARK(ImageStats)->Args({225, 225})->Args({640, 480})->Args({1920, 1080})->Unit(benchmark::kMicrosecond);

void ImageStatsJson(benchmark::State& state) {
  const auto s = vigil::monitor::image_stats(frame(640, 480));
  for (auto _ : state) benchmark::DoNotOptimize(vigil::monitor::to_json(s).dump());
}
BENCHMARK(ImageStatsJson)->Unit(benchmark::kMicrosecond);

}  // namespace

int main(int argc, char** argv) {
  if (std::getenv("CV_THREADS")) cv::setNumThreads(std::atoi(std::getenv("CV_THREADS")));
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
}

// JPEG decoding, vigil's path (image::decode: libjpeg-turbo straight to BGR) against cv::imdecode
// (OpenCV 4.6: libjpeg to RGB, then a byte loop swapping every pixel to BGR), side by side on the same bytes:
// a photograph from Debian's opencv-doc (baboon.jpg, 512x512) resized to the sizes a server and a camera see,
// encoded at quality 90 (4:2:0, as cameras and browsers write).
//   build/bench/image_decode_bench [--benchmark_filter=640]

#include <benchmark/benchmark.h>

#include <opencv2/core/utility.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cstdlib>
#include <string>
#include <vector>

#include "vigil/image/decode.h"

namespace {

const char* kPhoto = "/usr/share/doc/opencv-doc/examples/data/baboon.jpg";

std::vector<uchar> jpeg(int w, int h) {
  cv::Mat photo = cv::imread(kPhoto, cv::IMREAD_COLOR);
  if (photo.empty()) {  // without opencv-doc: smoothed noise, still a photograph-like spectrum
    photo.create(512, 512, CV_8UC3);
    cv::randu(photo, cv::Scalar::all(0), cv::Scalar::all(255));
    cv::GaussianBlur(photo, photo, {0, 0}, 2);
  }
  cv::resize(photo, photo, {w, h}, 0, 0, cv::INTER_CUBIC);
  std::vector<uchar> bytes;
  cv::imencode(".jpg", photo, bytes, {cv::IMWRITE_JPEG_QUALITY, 90});
  return bytes;
}

void Vigil(benchmark::State& state) {
  const auto bytes = jpeg(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  const std::string_view view(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  for (auto _ : state) benchmark::DoNotOptimize(vigil::image::decode(view));
}

void OpenCv(benchmark::State& state) {
  const auto bytes = jpeg(static_cast<int>(state.range(0)), static_cast<int>(state.range(1)));
  for (auto _ : state) benchmark::DoNotOptimize(cv::imdecode(bytes, cv::IMREAD_COLOR));
}

// Interleaved by size, so a busy moment of the shared machine lands on both sides.
BENCHMARK(Vigil)->Args({225, 225})->Unit(benchmark::kMicrosecond);
BENCHMARK(OpenCv)->Args({225, 225})->Unit(benchmark::kMicrosecond);
BENCHMARK(Vigil)->Args({640, 480})->Unit(benchmark::kMicrosecond);
BENCHMARK(OpenCv)->Args({640, 480})->Unit(benchmark::kMicrosecond);
BENCHMARK(Vigil)->Args({1920, 1080})->Unit(benchmark::kMicrosecond);
BENCHMARK(OpenCv)->Args({1920, 1080})->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();

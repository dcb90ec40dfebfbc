// Face detectors of `vigil watch` on one 640x480 frame, through the watcher's FrameDetector interface:
// OpenCV's haarcascade_frontalface_default (min_size 24, the config default) against face-api.js's
// tiny_face_detector (416 and 224 px inputs) and ssd_mobilenetv1, so their frames per second compare side by
// side in one run. The frame holds a real face (a mask dataset crop, 200 px high) when ../shared is present,
// else a smooth background. face-api.js entries are skipped without scripts/install-face-api.sh's weights.
//
//   flock /tmp/vigil-ninja.lock ninja -C build face_detect_bench && build/bench/face_detect_bench

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <cstdlib>
#include <filesystem>
#include <thread>

#include "vigil/model/faceapi.h"
#include "vigil/video/frame_detector.h"

namespace {

namespace fs = std::filesystem;

cv::Mat frame_640x480() {
  cv::Mat frame(480, 640, CV_8UC3, cv::Scalar(100, 110, 120));
  std::vector<fs::path> roots;
  if (const char* env = std::getenv("VIGIL_SHARED_DIR"); env && *env) roots.emplace_back(env);
  roots.emplace_back(fs::path(__FILE__).parent_path() / ".." / ".." / "shared");
  for (const auto& r : roots) {
    const cv::Mat crop = cv::imread((r / "datasets" / "masks" / "with_mask" / "10-with-mask.jpg").string());
    if (crop.empty()) continue;
    cv::Mat face;
    cv::resize(crop, face, {}, 200.0 / crop.rows, 200.0 / crop.rows, cv::INTER_AREA);
    face(cv::Rect(0, 0, std::min(face.cols, 400), face.rows))
        .copyTo(frame(cv::Rect(120, 140, std::min(face.cols, 400), face.rows)));
    break;
  }
  return frame;
}

void detect(benchmark::State& state, const std::string& spec, int input_size) {
  if (spec.rfind("faceapi:", 0) == 0 &&
      !fs::exists(vigil::model::faceapi_manifest_path(vigil::model::FaceApiNet::kTinyFaceDetector,
                                                      vigil::model::faceapi_weights_dir()))) {
    state.SkipWithError("face-api.js weights absent: run scripts/install-face-api.sh");
    return;
  }
  torch::set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  vigil::video::DetectConfig config;
  config.model = spec;
  config.score_threshold = 0.5;
  config.faceapi.input_size = input_size;
  auto detector = vigil::video::make_frame_detector(config, "");
  const cv::Mat frame = frame_640x480();
  size_t faces = 0;
  for (auto _ : state) faces += detector->detect({frame}, {"bench"})[0].size();
  state.counters["fps"] =
      benchmark::Counter(static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
  state.counters["faces_per_frame"] = static_cast<double>(faces) / static_cast<double>(state.iterations());
}

BENCHMARK_CAPTURE(detect, haarcascade_frontalface_default,
                  std::string("opencv:haarcascade_frontalface_default"), -1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(detect, tiny_face_detector_416, std::string("faceapi:tiny_face_detector"), 416)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(detect, tiny_face_detector_224, std::string("faceapi:tiny_face_detector"), 224)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(detect, ssd_mobilenetv1, std::string("faceapi:ssd_mobilenetv1"), -1)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();

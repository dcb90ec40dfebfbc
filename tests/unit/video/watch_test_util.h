#pragma once
// Shared by the watcher's unit tests and `vigil watch`'s integration test: real videos written with OpenCV's
// VideoWriter (a real face from OpenCV's sample messi5.jpg moving across a background), model files with
// fresh seeded weights written by vigil's own model-file writer, and a real HTTP receiver on a loopback port
// for webhooks.

#include <httplib.h>
#include <torch/torch.h>

#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <opencv2/videoio.hpp>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "vigil/model/model_file.h"
#include "vigil/nn/zoo.h"
#include "webhook_receiver.h"

namespace vigil::testing {

namespace fs = std::filesystem;

/// Debian opencv-doc's samples (vtest.avi, messi5.jpg), when installed.
inline const fs::path kOpenCvSamples = "/usr/share/doc/opencv-doc/examples/data";

/// Messi's face from messi5.jpg (at [225, 94, 38, 38] there) with a 20 px margin, scaled x2 to 156x156;
/// haarcascade_frontalface_default finds it at about [46, 41, 70, 70] of the patch. nullopt without
/// opencv-doc.
inline std::optional<cv::Mat> face_patch() {
  const cv::Mat full = cv::imread((kOpenCvSamples / "messi5.jpg").string());
  if (full.empty()) return std::nullopt;
  cv::Mat face;
  cv::resize(full(cv::Rect(205, 74, 78, 78)), face, {156, 156}, 0, 0, cv::INTER_CUBIC);
  return face;
}

/// A smooth, mildly textured background (no face-like structure for a cascade to find).
inline cv::Mat background(cv::Size size, int seed) {
  cv::Mat bg(size, CV_8UC3);
  for (int y = 0; y < size.height; ++y)
    for (int x = 0; x < size.width; ++x)
      bg.at<cv::Vec3b>(y, x) = cv::Vec3b(static_cast<uchar>(90 + (x * 60) / size.width + seed * 7 % 40),
                                         static_cast<uchar>(100 + (y * 50) / size.height),
                                         static_cast<uchar>(110 + ((x + y) % 23)));
  return bg;
}

/// Writes `frames` frames of `patch` moving left to right across a background at constant speed, `travel`
/// pixels in all (slow enough that detections a few frames apart still overlap); the patch's rectangle in
/// frame i is returned in `positions` when given.
inline void write_moving_patch_video(const fs::path& file, const cv::Mat& patch, int frames, double fps,
                                     cv::Size size, std::vector<cv::Rect>* positions = nullptr,
                                     int travel = 200) {
  cv::VideoWriter w(file.string(), cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), fps, size);
  const cv::Mat bg = background(size, 0);
  const int y = (size.height - patch.rows) / 2;
  travel = std::min(travel, size.width - patch.cols - 20);
  for (int i = 0; i < frames; ++i) {
    cv::Mat frame = bg.clone();
    const int x = 10 + travel * i / std::max(1, frames - 1);
    const cv::Rect r(x, y, patch.cols, patch.rows);
    patch.copyTo(frame(r));
    if (positions) positions->push_back(r);
    w.write(frame);
  }
}

/// A video of coloured shapes drifting (content for detectors with random weights, whose boxes mean nothing).
inline void write_shapes_video(const fs::path& file, int frames, double fps, cv::Size size, int seed = 0) {
  cv::VideoWriter w(file.string(), cv::VideoWriter::fourcc('M', 'J', 'P', 'G'), fps, size);
  const cv::Mat bg = background(size, seed);
  for (int i = 0; i < frames; ++i) {
    cv::Mat frame = bg.clone();
    cv::rectangle(frame, cv::Rect(20 + 4 * i, 30 + seed * 10, 60, 80), cv::Scalar(40, 40, 200), cv::FILLED);
    cv::circle(frame, cv::Point(size.width - 60 - 3 * i, size.height / 2), 30, cv::Scalar(200, 120, 30),
               cv::FILLED);
    w.write(frame);
  }
}

/// A model file of `arch` with fresh weights from `seed` (vigil's own writer).
inline fs::path make_model_file(const fs::path& file, const std::string& arch,
                                const std::vector<std::string>& classes, uint64_t seed) {
  torch::manual_seed(seed);
  const model::ModelInfo info = model::default_model_info(arch, classes);
  nn::ModelArgs args;
  args.num_classes = info.num_classes();
  auto module = nn::make_model(arch, args);
  model::save_model(file, info, *module);
  return file;
}

}  // namespace vigil::testing

// The detect and classify stages of the watcher: vigil models through model::Predictor and clip models
// through model::ClipPredictor (the one torch translation unit of video/), face-api.js's face detectors
// (model::FaceApiDetector), OpenCV cascades, and model specs resolved through the workspace registry.

#include "vigil/video/frame_detector.h"

#include <fmt/format.h>
#include <torch/torch.h>

#include <opencv2/imgproc.hpp>
#include <opencv2/objdetect.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <deque>
#include <map>
#include <set>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"
#include "vigil/core/workspace.h"
#include "vigil/model/clip_predict.h"
#include "vigil/model/faceapi.h"
#include "vigil/model/predict.h"
#include "vigil/store/model_ref.h"

namespace vigil::video {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const char* const kCascadeDirs[] = {"/usr/share/opencv4/haarcascades", "/usr/share/opencv4/lbpcascades"};

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void count_batch(DetectorStats& s, size_t frames, int64_t passes, Clock::time_point t0) {
  ++s.batches;
  s.frames += static_cast<int64_t>(frames);
  s.forward_passes += passes;
  s.max_batch = std::max(s.max_batch, static_cast<int>(frames));
  s.busy_seconds += seconds_since(t0);
}

bool keeps_label(const std::vector<std::string>& labels, const std::string& label) {
  return labels.empty() || std::find(labels.begin(), labels.end(), label) != labels.end();
}

/// The label a cascade's boxes get from its file name.
std::string cascade_label(const std::string& name) {
  const std::string n = to_lower(name);
  if (n.find("catface") != std::string::npos) return "cat_face";
  if (n.find("face") != std::string::npos) return "face";
  if (n.find("body") != std::string::npos) return "person";
  if (n.find("plate") != std::string::npos) return "license_plate";
  if (n.find("eye") != std::string::npos) return "eye";
  if (n.find("smile") != std::string::npos) return "smile";
  return fs::path(name).stem().string();
}

/// OpenCV's Viola-Jones cascades (Haar or LBP features): no score, so every box scores 1.
class CascadeDetector : public FrameDetector {
 public:
  CascadeDetector(const ResolvedModel& model, const OpenCvCascadeConfig& config)
      : model_(model),
        config_(config),
        label_(config.label.empty() ? cascade_label(model.name) : config.label) {
    bool ok = false;
    try {
      ok = cascade_.load(model.file);
    } catch (const cv::Exception& e) {
      throw DataError(fmt::format("{}: not an OpenCV cascade: {}", model.file, e.what()));
    }
    if (!ok || cascade_.empty()) throw DataError(fmt::format("{}: not an OpenCV cascade file", model.file));
  }

  std::string describe() const override { return fmt::format("OpenCV cascade {} ({})", model_.name, label_); }
  std::vector<std::string> labels() const override { return {label_}; }

  std::vector<std::vector<Detection>> detect(const std::vector<cv::Mat>& frames,
                                             const std::vector<std::string>& /*cameras*/) override {
    const auto t0 = Clock::now();
    std::vector<std::vector<Detection>> out(frames.size());
    for (size_t i = 0; i < frames.size(); ++i) {
      cv::Mat grey;
      cv::cvtColor(frames[i], grey, cv::COLOR_BGR2GRAY);
      if (config_.equalize) cv::equalizeHist(grey, grey);
      std::vector<cv::Rect> rects;
      cascade_.detectMultiScale(grey, rects, config_.scale_factor, config_.min_neighbors, 0,
                                cv::Size(config_.min_size, config_.min_size));
      for (const cv::Rect& r : rects) {
        Detection d;
        d.box = {static_cast<float>(r.x), static_cast<float>(r.y), static_cast<float>(r.x + r.width),
                 static_cast<float>(r.y + r.height)};
        d.score = 1;
        d.class_id = 1;
        d.label = label_;
        out[i].push_back(std::move(d));
      }
    }
    count_batch(stats_, frames.size(), static_cast<int64_t>(frames.size()), t0);
    return out;
  }
  DetectorStats stats() const override { return stats_; }

 private:
  ResolvedModel model_;
  OpenCvCascadeConfig config_;
  std::string label_;
  cv::CascadeClassifier cascade_;
  DetectorStats stats_;
};

/// face-api.js's tiny face detector or SSD MobileNetV1 (model/faceapi.h): every frame of a batch in one
/// forward pass (each is padded and resized to the net's square input, whatever its size).
class FaceApiFrameDetector : public FrameDetector {
 public:
  FaceApiFrameDetector(const ResolvedModel& model, const DetectConfig& config)
      : model_(model), config_(config) {
    model::FaceApiOptions options;
    options.score_threshold = config.score_threshold;
    options.nms_iou = config.nms_iou;
    options.max_detections = config.max_detections;
    options.input_size = config.faceapi.input_size;
    detector_ =
        std::make_unique<model::FaceApiDetector>(model::parse_faceapi_net(model.name), model.file, options);
    // oneDNN builds its kernels on the first pass; a grey frame takes that cost before the first real one.
    detector_->detect({cv::Mat(480, 640, CV_8UC3, cv::Scalar(114, 114, 114))});
  }

  std::string describe() const override {
    return fmt::format("face-api.js {} at {} px ({})", model_.name, detector_->input_size(), model_.file);
  }
  std::vector<std::string> labels() const override { return {config_.faceapi.label}; }

  std::vector<std::vector<Detection>> detect(const std::vector<cv::Mat>& frames,
                                             const std::vector<std::string>& /*cameras*/) override {
    const auto t0 = Clock::now();
    const auto faces = detector_->detect(frames);
    std::vector<std::vector<Detection>> out(frames.size());
    for (size_t i = 0; i < frames.size(); ++i)
      for (const model::FaceBox& f : faces[i]) {
        Detection d;
        d.box = {f.x1, f.y1, f.x2, f.y2};
        d.score = f.score;
        d.class_id = 1;
        d.label = config_.faceapi.label;
        if (d.box.valid()) out[i].push_back(std::move(d));
      }
    count_batch(stats_, frames.size(), frames.empty() ? 0 : 1, t0);
    return out;
  }
  DetectorStats stats() const override { return stats_; }

 private:
  ResolvedModel model_;
  DetectConfig config_;
  std::unique_ptr<model::FaceApiDetector> detector_;
  DetectorStats stats_;
};

/// "faceapi:<net>" in model::faceapi_weights_dir(), or "faceapi:<path>" to a NET_model-weights_manifest.json.
ResolvedModel resolve_faceapi(const std::string& spec) {
  const std::string what = spec.substr(8);
  ResolvedModel r;
  r.spec = spec;
  r.faceapi = true;
  std::error_code ec;
  if (lower_extension(what) == ".json") {
    const std::string stem = fs::path(what).filename().string();
    for (const std::string& net : model::faceapi_net_names())
      if (starts_with(stem, net + "_model")) r.name = net;
    if (r.name.empty())
      throw InvalidArgument(
          fmt::format("'{}': expected a face-api.js manifest named NET_model-weights_manifest.json "
                      "with NET one of {}, got {}",
                      spec, join(model::faceapi_net_names(), ", "), stem));
    r.file = what;
  } else {
    const auto names = model::faceapi_net_names();
    if (std::find(names.begin(), names.end(), what) == names.end()) {
      const auto close = closest_match(what, names);
      throw NotFound(fmt::format("'{}': no such face-api.js detector{}; there are: {}", spec,
                                 close ? fmt::format(" (did you mean faceapi:{}?)", *close) : "",
                                 join(names, ", ")));
    }
    r.name = what;
    r.file =
        model::faceapi_manifest_path(model::parse_faceapi_net(what), model::faceapi_weights_dir()).string();
  }
  if (!fs::exists(r.file, ec))
    throw NotFound(
        fmt::format("'{}': no face-api.js weights at {} (scripts/install-face-api.sh installs them into "
                    "{}; VIGIL_FACEAPI_DIR points elsewhere)",
                    spec, r.file, model::kDefaultFaceApiDir));
  return r;
}

/// The classify stage's model: an image classifier (a crop is one image, not a sequence of frames).
model::LoadedModel load_crop_model(const ResolvedModel& resolved) {
  model::LoadedModel loaded = model::load_model(resolved.file);
  VIGIL_CHECK(!model::is_clip_model(loaded.info),
              "classify.model '{}': expected an image classifier, got the clip classifier {} (it classifies "
              "sequences of frames: put it in detect.model, where it sees each camera's last frames)",
              resolved.spec, loaded.info.arch);
  return loaded;
}

/// A frame-sized box carrying a verdict on the whole frame (an image or clip classifier's).
Detection whole_frame(cv::Size frame, int64_t class_id, const std::string& label, float score) {
  Detection d;
  d.box = {0, 0, static_cast<float>(frame.width), static_cast<float>(frame.height)};
  d.score = score;
  d.class_id = class_id;
  d.label = label;
  return d;
}

/// Runs `predictor` once on a grey frame so oneDNN builds its kernels before the first real frame.
void warm_up(model::Predictor& predictor, int width, int height) {
  cv::Mat grey(height, width, CV_8UC3, cv::Scalar(114, 114, 114));
  model::Prediction p;
  p.width = width;
  p.height = height;
  predictor.predict({predictor.preprocess(grey)}, {&p});
}

/// A vigil model file: a detector (boxes) or a classifier (one frame-sized box with the class).
class ModelDetector : public FrameDetector {
 public:
  ModelDetector(const ResolvedModel& resolved, const DetectConfig& config, model::LoadedModel loaded)
      : resolved_(resolved), config_(config) {
    model::PredictOptions po;
    po.score_threshold = config.score_threshold;
    po.nms_iou = config.nms_iou;
    po.max_detections = config.max_detections;
    po.precision = config.precision;
    predictor_ = std::make_unique<model::Predictor>(std::move(loaded), po);
    const auto& info = predictor_->info();
    if (predictor_->is_detector()) {
      const auto& pre = info.preprocess;
      fixed_ = starts_with(info.arch, "ssd") && pre.min_size > 0 && pre.min_size == pre.max_size;
      min_size_ = pre.min_size;
      max_size_ = pre.max_size;
      warm_up(*predictor_, 640, 480);
    } else {
      warm_up(*predictor_, info.preprocess.width, info.preprocess.height);
    }
  }

  std::string describe() const override {
    return fmt::format("{} ({}, {})", resolved_.name, predictor_->info().arch,
                       predictor_->is_detector() ? "detector" : "classifier");
  }

  std::vector<std::string> labels() const override {
    std::vector<std::string> names = predictor_->info().class_names;
    if (predictor_->is_detector() && !names.empty() && names.front() == "__background__")
      names.erase(names.begin());
    return names;
  }

  std::vector<std::vector<Detection>> detect(const std::vector<cv::Mat>& frames,
                                             const std::vector<std::string>& /*cameras*/) override {
    const auto t0 = Clock::now();
    std::vector<torch::Tensor> inputs;
    std::vector<model::Prediction> predictions(frames.size());
    std::vector<model::Prediction*> out;
    std::vector<cv::Size> input_sizes;
    std::set<std::pair<int, int>> sizes;
    for (size_t i = 0; i < frames.size(); ++i) {
      const cv::Mat& frame = frames[i];
      cv::Mat input = frame;
      if (predictor_->is_detector() && config_.resize) {
        const cv::Size target = input_size(frame.size());
        if (target != frame.size()) cv::resize(frame, input, target, 0, 0, cv::INTER_LINEAR);
      }
      inputs.push_back(predictor_->preprocess(input));
      predictions[i].width = input.cols;
      predictions[i].height = input.rows;
      input_sizes.push_back(input.size());
      sizes.insert({input.cols, input.rows});
      out.push_back(&predictions[i]);
    }
    predictor_->predict(inputs, out);
    std::vector<std::vector<Detection>> result(frames.size());
    for (size_t i = 0; i < frames.size(); ++i)
      result[i] = to_detections(predictions[i], frames[i].size(), input_sizes[i]);
    // A classifier stacks every input into one pass; a detector takes one pass per input size.
    count_batch(stats_, frames.size(), predictor_->is_detector() ? static_cast<int64_t>(sizes.size()) : 1,
                t0);
    return result;
  }
  DetectorStats stats() const override { return stats_; }

 private:
  /// The size the detector's own transform would resize `frame` to (torchvision's GeneralizedRCNNTransform:
  /// SSD's fixed size, Faster R-CNN's short side to min_size with the long side capped at max_size).
  cv::Size input_size(cv::Size frame) const {
    if (fixed_) return {min_size_, min_size_};
    if (min_size_ <= 0 || frame.width <= 0 || frame.height <= 0) return frame;
    const double short_side = std::min(frame.width, frame.height),
                 long_side = std::max(frame.width, frame.height);
    double scale = min_size_ / short_side;
    if (max_size_ > 0) scale = std::min(scale, max_size_ / long_side);
    return {std::max(1, static_cast<int>(std::floor(frame.width * scale))),
            std::max(1, static_cast<int>(std::floor(frame.height * scale)))};
  }

  std::vector<Detection> to_detections(const model::Prediction& p, cv::Size frame, cv::Size input) const {
    std::vector<Detection> out;
    if (!predictor_->is_detector()) {
      if (keeps_label(config_.labels, p.label))
        out.push_back(whole_frame(frame, p.class_id, p.label, p.score));
      return out;
    }
    const float sx = static_cast<float>(frame.width) / input.width;
    const float sy = static_cast<float>(frame.height) / input.height;
    for (const auto& b : p.boxes) {
      if (b.score < config_.score_threshold || !keeps_label(config_.labels, b.label)) continue;
      Detection d;
      d.box = {b.x1 * sx, b.y1 * sy, b.x2 * sx, b.y2 * sy};
      d.score = b.score;
      d.class_id = b.class_id;
      d.label = b.label;
      if (d.box.valid()) out.push_back(std::move(d));
    }
    return out;
  }

  ResolvedModel resolved_;
  DetectConfig config_;
  std::unique_ptr<model::Predictor> predictor_;
  bool fixed_ = false;
  int min_size_ = 0, max_size_ = 0;
  DetectorStats stats_;
};

/// A clip classifier (CNN + LSTM/GRU, model/clip_predict.h) over each camera's last T sampled frames, T the
/// length it was trained on. A sampled frame goes through the CNN once, in the batch it arrived with, and its
/// feature vector joins its camera's window; the windows that hold T frames then go through the recurrent
/// layer and the head together, and each verdict becomes one frame-sized box, as an image classifier's does.
/// A camera's first T - 1 frames give no verdict: its window is still filling. The window is the last T
/// sampled frames, so detect.fps sets the time a window covers and should match the rate of the clips the
/// model was trained on (the accident data: consecutive frames of its clips).
class ClipDetector : public FrameDetector {
 public:
  ClipDetector(const ResolvedModel& resolved, const DetectConfig& config, model::LoadedModel loaded)
      : resolved_(resolved), config_(config) {
    model::PredictOptions po;
    po.precision = config.precision;
    predictor_ = std::make_unique<model::ClipPredictor>(std::move(loaded), po);
    // oneDNN builds its kernels on the first pass; a grey window takes that cost before the first camera.
    const auto& pre = predictor_->preprocess_options();
    const torch::Tensor grey =
        predictor_->preprocess(cv::Mat(pre.height, pre.width, CV_8UC3, cv::Scalar(114, 114, 114)));
    predictor_->predict(grey.unsqueeze(0).unsqueeze(0).expand({1, predictor_->clip_length(), -1, -1, -1}));
  }

  std::string describe() const override {
    return fmt::format("{} ({}, clip classifier over {} frames)", resolved_.name, predictor_->info().arch,
                       predictor_->clip_length());
  }
  std::vector<std::string> labels() const override { return predictor_->info().class_names; }

  std::vector<std::vector<Detection>> detect(const std::vector<cv::Mat>& frames,
                                             const std::vector<std::string>& cameras) override {
    VIGIL_ASSERT(cameras.size() == frames.size(), "{} frames for {} camera names", frames.size(),
                 cameras.size());
    const auto t0 = Clock::now();
    std::vector<std::vector<Detection>> out(frames.size());
    if (frames.empty()) return out;
    std::vector<torch::Tensor> inputs;
    for (const cv::Mat& frame : frames) inputs.push_back(predictor_->preprocess(frame));
    const torch::Tensor features = predictor_->frame_features(torch::stack(inputs));
    const auto length = static_cast<size_t>(predictor_->clip_length());
    std::vector<torch::Tensor> full;  // windows of T frames, [T, F] each
    std::vector<size_t> owners;       // the frame each window ends with
    for (size_t i = 0; i < frames.size(); ++i) {
      std::deque<torch::Tensor>& window = windows_[cameras[i]];
      window.push_back(features[static_cast<int64_t>(i)].clone());  // not a view that keeps the batch alive
      if (window.size() > length) window.pop_front();
      if (window.size() < length) continue;
      full.push_back(torch::stack(std::vector<torch::Tensor>(window.begin(), window.end())));
      owners.push_back(i);
    }
    if (!full.empty()) {
      const auto verdicts = predictor_->classify_features(torch::stack(full));
      for (size_t k = 0; k < verdicts.size(); ++k) {
        const model::ClipPrediction& v = verdicts[k];
        if (keeps_label(config_.labels, v.label))
          out[owners[k]].push_back(whole_frame(frames[owners[k]].size(), v.class_id, v.label, v.score));
      }
    }
    count_batch(stats_, frames.size(), full.empty() ? 1 : 2, t0);  // the CNN pass, then the windows' pass
    return out;
  }
  DetectorStats stats() const override { return stats_; }

 private:
  ResolvedModel resolved_;
  DetectConfig config_;
  std::unique_ptr<model::ClipPredictor> predictor_;
  std::map<std::string, std::deque<torch::Tensor>> windows_;  ///< by camera: the last T frames' features
  DetectorStats stats_;
};

}  // namespace

std::vector<std::string> opencv_cascade_names() {
  std::vector<std::string> names;
  for (const char* dir : kCascadeDirs) {
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir, ec))
      if (e.path().extension() == ".xml") names.push_back(e.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

ResolvedModel resolve_model_spec(const std::string& spec, const std::string& workspace) {
  VIGIL_CHECK(!spec.empty(),
              "expected a model (file, NAME@alias, faceapi:<net> or opencv:<cascade>), got none");
  ResolvedModel r;
  r.spec = spec;
  std::error_code ec;
  if (starts_with(spec, "faceapi:")) return resolve_faceapi(spec);
  if (starts_with(spec, "opencv:")) {
    const std::string name = spec.substr(7);
    r.opencv = true;
    r.name = fs::path(name).stem().string();
    if (lower_extension(name) == ".xml") {
      r.file = name;
      if (!fs::exists(name, ec)) throw NotFound(fmt::format("'{}': no such cascade file {}", spec, name));
      return r;
    }
    for (const char* dir : kCascadeDirs) {
      const fs::path p = fs::path(dir) / (name + ".xml");
      if (fs::exists(p, ec)) {
        r.file = p.string();
        return r;
      }
    }
    const auto names = opencv_cascade_names();
    if (names.empty())
      throw NotFound(fmt::format("'{}': no OpenCV cascades installed (Debian package opencv-data)", spec));
    const auto close = closest_match(name, names);
    throw NotFound(fmt::format("'{}': no such OpenCV cascade{}; installed: {}", spec,
                               close ? fmt::format(" (did you mean opencv:{}?)", *close) : "",
                               join(names, ", ")));
  }
  // A file or a registered model: the rule `vigil serve` and `vigil predict` use too.
  const store::ResolvedModel m = store::resolve_model_spec(spec, workspace);
  if (m.version.empty()) {
    if (!fs::exists(spec, ec)) throw NotFound(fmt::format("'{}': no such model file", spec));
    r.file = spec;
    r.name = fs::path(spec).stem().string();
    return r;
  }
  r.file = m.file;
  r.name = m.name;
  r.version = m.version;
  return r;
}

std::unique_ptr<FrameDetector> make_frame_detector(const DetectConfig& detect, const std::string& workspace) {
  const ResolvedModel resolved = resolve_model_spec(detect.model, workspace);
  if (resolved.opencv) return std::make_unique<CascadeDetector>(resolved, detect.opencv);
  if (resolved.faceapi) return std::make_unique<FaceApiFrameDetector>(resolved, detect);
  model::LoadedModel loaded = model::load_model(resolved.file);
  if (model::is_clip_model(loaded.info))
    return std::make_unique<ClipDetector>(resolved, detect, std::move(loaded));
  return std::make_unique<ModelDetector>(resolved, detect, std::move(loaded));
}

// ---- the classify stage -------------------------------------------------------------------------------

cv::Rect crop_rect(const Box& box, double margin, int width, int height) {
  const double mx = margin * box.width(), my = margin * box.height();
  const int x1 = std::clamp(static_cast<int>(std::floor(box.x1 - mx)), 0, std::max(0, width - 1));
  const int y1 = std::clamp(static_cast<int>(std::floor(box.y1 - my)), 0, std::max(0, height - 1));
  const int x2 = std::clamp(static_cast<int>(std::ceil(box.x2 + mx)), x1 + 1, std::max(x1 + 1, width));
  const int y2 = std::clamp(static_cast<int>(std::ceil(box.y2 + my)), y1 + 1, std::max(y1 + 1, height));
  return {x1, y1, x2 - x1, y2 - y1};
}

struct CropClassifier::Impl {
  ClassifyConfig config;
  ResolvedModel resolved;
  std::unique_ptr<model::Predictor> predictor;
  DetectorStats stats;
  static constexpr size_t kChunk = 64;  ///< crops per forward pass at most (bounds memory on crowded frames)
};

CropClassifier::CropClassifier(const ClassifyConfig& config, const std::string& workspace)
    : impl_(std::make_unique<Impl>()) {
  impl_->config = config;
  impl_->resolved = resolve_model_spec(config.model, workspace);
  VIGIL_CHECK(!impl_->resolved.opencv && !impl_->resolved.faceapi,
              "classify.model: expected a vigil classifier, got '{}'", config.model);
  model::PredictOptions po;
  po.precision = config.precision;
  impl_->predictor = std::make_unique<model::Predictor>(load_crop_model(impl_->resolved), po);
  VIGIL_CHECK(
      !impl_->predictor->is_detector(),
      "classify.model: expected a classifier, got the detector '{}' ({}); a detector goes in detect.model",
      config.model, impl_->predictor->info().arch);
  const auto& pre = impl_->predictor->info().preprocess;
  warm_up(*impl_->predictor, pre.width, pre.height);
}

CropClassifier::~CropClassifier() = default;

std::string CropClassifier::describe() const {
  return fmt::format("{} ({}, classifier)", impl_->resolved.name, impl_->predictor->info().arch);
}

std::vector<std::string> CropClassifier::labels() const {
  return impl_->predictor->info().class_names;
}

DetectorStats CropClassifier::stats() const {
  return impl_->stats;
}

void CropClassifier::classify(const std::vector<cv::Mat>& frames,
                              std::vector<std::vector<ObjectDetection>>& objects) {
  VIGIL_ASSERT(frames.size() == objects.size(), "{} frames for {} object lists", frames.size(),
               objects.size());
  const auto t0 = Clock::now();
  const ClassifyConfig& c = impl_->config;
  std::vector<ObjectDetection*> targets;
  std::vector<torch::Tensor> inputs;
  for (size_t i = 0; i < frames.size(); ++i) {
    std::vector<ObjectDetection*> mine;
    for (auto& o : objects[i])
      if (keeps_label(c.labels, o.detector_label)) mine.push_back(&o);
    std::stable_sort(mine.begin(), mine.end(), [](const ObjectDetection* a, const ObjectDetection* b) {
      return a->detector_score > b->detector_score;
    });
    if (mine.size() > static_cast<size_t>(c.max_crops)) mine.resize(static_cast<size_t>(c.max_crops));
    for (ObjectDetection* o : mine) {
      const cv::Rect r = crop_rect(o->detection.box, c.margin, frames[i].cols, frames[i].rows);
      inputs.push_back(impl_->predictor->preprocess(frames[i](r)));
      targets.push_back(o);
    }
  }
  int64_t passes = 0;
  for (size_t start = 0; start < inputs.size(); start += Impl::kChunk) {
    const size_t end = std::min(inputs.size(), start + Impl::kChunk);
    std::vector<torch::Tensor> chunk(inputs.begin() + start, inputs.begin() + end);
    std::vector<model::Prediction> predictions(chunk.size());
    std::vector<model::Prediction*> out;
    for (auto& p : predictions) out.push_back(&p);
    impl_->predictor->predict(chunk, out);
    ++passes;
    for (size_t k = 0; k < predictions.size(); ++k) {
      ObjectDetection& o = *targets[start + k];
      o.classified = true;
      o.class_score = predictions[k].score;
      o.detection.label = predictions[k].label;
      o.detection.class_id = predictions[k].class_id;
      o.detection.score = o.detector_score * predictions[k].score;
    }
  }
  count_batch(impl_->stats, inputs.size(), passes, t0);
}

}  // namespace vigil::video

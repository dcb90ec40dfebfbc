#include "vigil/model/predict.h"

#include <fmt/format.h>
#include <torch/cuda.h>
#include <torch/torch.h>

#include <deque>
#include <filesystem>
#include <future>
#include <map>

#include "vigil/core/error.h"
#include "vigil/core/interrupt.h"
#include "vigil/core/thread_pool.h"
#include "vigil/data/loader.h"
#include "vigil/image/decode.h"
#include "vigil/image/draw.h"
#include "vigil/model/clip_predict.h"
#include "vigil/model/embedding.h"
#include "vigil/model/predict_io.h"
#include "vigil/nn/fuse.h"
#include "vigil/nn/quantize.h"

namespace vigil::model {
namespace {

/// A decoded, preprocessed image (or why it could not be), made on a decode worker.
struct DecodedInput {
  cv::Mat bgr;  ///< kept only when the caller draws on it
  torch::Tensor input;
  int width = 0, height = 0;
  std::string error;
};

DecodedInput decode_input(const Predictor& predictor, const std::string& path, bool keep_image) {
  DecodedInput d;
  image::Decoded dec = image::decode_file(path);
  if (!dec.ok()) {
    d.error = dec.error.kind_name() + ": " + dec.error.detail;
    return d;
  }
  d.width = dec.bgr.cols;
  d.height = dec.bgr.rows;
  try {
    d.input = predictor.preprocess(dec.bgr);
  } catch (const std::exception& e) {
    d.error = std::string("preprocess: ") + e.what();
    return d;
  }
  if (keep_image) d.bgr = std::move(dec.bgr);
  return d;
}

std::string label_of(const ModelInfo& info, int64_t class_id) {
  if (class_id >= 0 && class_id < static_cast<int64_t>(info.class_names.size()))
    return info.class_names[class_id];
  return fmt::format("class_{}", class_id);
}

std::vector<double> or_default(const std::vector<double>& v, double fallback) {
  return v.empty() ? std::vector<double>(3, fallback) : v;
}

}  // namespace

void PredictOptions::validate() const {
  VIGIL_CHECK(batch_size >= 1, "expected batch_size >= 1, got {}", batch_size);
  VIGIL_CHECK(decode_threads >= 0, "expected decode_threads >= 0 (0 = every core), got {}", decode_threads);
  VIGIL_CHECK(prefetch_batches >= 1, "expected prefetch_batches >= 1, got {}", prefetch_batches);
  VIGIL_CHECK(device == "cpu" || device == "cuda" || device.rfind("cuda:", 0) == 0,
              "expected device 'cpu', 'cuda' or 'cuda:N', got '{}'", device);
  VIGIL_CHECK(
      device == "cpu" || torch::cuda::is_available(),
      "expected device 'cpu': CUDA is not available (this LibTorch build or this machine has no usable "
      "GPU), got '{}'",
      device);
  VIGIL_CHECK(score_threshold <= 1, "expected score_threshold <= 1 (< 0: the model's), got {}",
              score_threshold);
  VIGIL_CHECK(nms_iou <= 1, "expected nms_iou <= 1 (< 0: the model's), got {}", nms_iou);
  const nn::Precision p = nn::parse_precision(precision);  // names the valid values
  VIGIL_CHECK(p != nn::Precision::kInt8 || !calibration.empty(),
              "expected calibration images for precision int8 (calibration: a folder, an image or @LIST of "
              "representative inputs, e.g. the training images), got none");
  VIGIL_CHECK(calibration_images >= 1 && calibration_images <= 10000,
              "expected calibration_images in 1..10000, got {}", calibration_images);
}

Predictor::Predictor(LoadedModel model, PredictOptions options)
    : model_(std::move(model)), options_(std::move(options)), device_(torch::kCPU) {
  options_.validate();
  VIGIL_ASSERT(model_.module && (model_.classifier || model_.detector), "Predictor needs a loaded model");
  const ModelInfo& info = model_.info;
  // Refused here, so that every single-image path (predict on images, serve, watch) says why.
  VIGIL_CHECK(!is_clip_model(info),
              "expected an image model, got clip classifier '{}', which classifies windows of {} frames, "
              "not single images: run it with `vigil predict` on a video file or a folder of frames, or "
              "`vigil evaluate` on a dataset of frames (serving and watching do not run clip models yet)",
              info.arch, info.clip_length);
  device_ = torch::Device(options_.device);
  model_.module->to(device_);
  model_.module->eval();
  if (options_.fold_batch_norms) nn::fold_batch_norms(*model_.module);
  if (options_.channels_last && device_.is_cpu()) nn::to_channels_last(*model_.module);
  precision_ = nn::parse_precision(options_.precision);
  if (precision_ != nn::Precision::kFp32) {
    VIGIL_CHECK(device_.is_cpu(), "expected device cpu for precision {}, got '{}'", options_.precision,
                options_.device);
    nn::check_precision_supported(precision_);
    if (precision_ == nn::Precision::kBf16) nn::convert_weights_to_bf16(*model_.module);
  }
  input_ = info.preprocess;
  input_.mean = or_default(input_.mean, 0.0);
  input_.std = or_default(input_.std, 1.0);
  input_.normalize = !is_detector();  // detectors normalise inside, like torchvision's transform
  input_.validate();
  if (is_detector()) {
    nn::PostprocessOptions post = model_.detector->postprocess();
    if (options_.score_threshold >= 0) post.score_threshold = options_.score_threshold;
    if (options_.nms_iou >= 0) post.nms_iou = options_.nms_iou;
    if (options_.max_detections >= 0) post.max_detections = options_.max_detections;
    model_.detector->set_postprocess(post);
    model_.info.postprocess = post;
  } else {
    VIGIL_CHECK(input_.width > 0 && input_.height > 0, "expected a classifier input size, got {}x{}",
                input_.width, input_.height);
  }
  if (precision_ == nn::Precision::kInt8) quantize_int8();
}

void Predictor::quantize_int8() {
  const ModelInfo& info = model_.info;
  VIGIL_CHECK(options_.fold_batch_norms, "expected fold_batch_norms for precision int8, got it off");
  VIGIL_CHECK(nn::count_int8_capable(*model_.module) > 0,
              "expected a model with a ResNet backbone for precision int8 (resnet18, resnet50, "
              "fasterrcnn_resnet50_fpn), got '{}': use precision fp32 or bf16",
              info.arch);
  const std::string& where = options_.calibration;
  VIGIL_CHECK(where.rfind('@', 0) == 0 || std::filesystem::exists(where),
              "expected calibration images for precision int8 (a folder, an image or @LIST), got '{}', which "
              "does not exist",
              where);
  const auto all = collect_inputs({where}, {});
  const size_t n = std::min(all.size(), static_cast<size_t>(options_.calibration_images));
  std::vector<torch::Tensor> inputs;
  std::vector<std::string> unreadable;
  for (size_t k = 0; k < n; ++k) {
    const std::string& path = all[k * all.size() / n].path;  // evenly spaced over the sorted list
    DecodedInput d = decode_input(*this, path, /*keep_image=*/false);
    if (d.error.empty()) {
      inputs.push_back(std::move(d.input));
    } else {
      unreadable.push_back(path + " (" + d.error + ")");
    }
  }
  VIGIL_CHECK(unreadable.empty(), "expected readable calibration images, got {} unreadable, the first {}",
              unreadable.size(), unreadable.empty() ? "" : unreadable.front());
  c10::InferenceMode inference;
  nn::quantize_int8(*model_.module, [&] {
    for (const torch::Tensor& input : inputs) {
      if (is_detector()) {
        model_.detector->forward({input.to(device_)});
      } else {
        torch::Tensor batch = input.unsqueeze(0).to(device_);
        if (options_.channels_last) batch = batch.contiguous(torch::MemoryFormat::ChannelsLast);
        model_.classifier->forward(batch);
      }
    }
  });
}

void Predictor::set_postprocess(const nn::PostprocessOptions& post) {
  if (!is_detector()) return;
  VIGIL_CHECK(post.score_threshold >= 0 && post.score_threshold <= 1,
              "expected score_threshold in 0..1, got {}", post.score_threshold);
  VIGIL_CHECK(post.nms_iou >= 0 && post.nms_iou <= 1, "expected nms_iou in 0..1, got {}", post.nms_iou);
  VIGIL_CHECK(post.max_detections >= 1, "expected max_detections >= 1, got {}", post.max_detections);
  model_.detector->set_postprocess(post);
  model_.info.postprocess = post;
}

torch::Tensor Predictor::preprocess(const cv::Mat& bgr) const {
  return is_detector() ? data::image_to_tensor(bgr, input_) : data::classification_input(bgr, input_);
}

void Predictor::predict(const std::vector<torch::Tensor>& inputs, const std::vector<Prediction*>& out) {
  VIGIL_ASSERT(inputs.size() == out.size(), "{} inputs for {} predictions", inputs.size(), out.size());
  if (inputs.empty()) return;
  c10::InferenceMode inference;  // no autograd bookkeeping at all (lighter than NoGradGuard)
  if (!is_detector()) {
    torch::Tensor batch = torch::stack(inputs).to(device_);
    if (options_.channels_last && device_.is_cpu())
      batch = batch.contiguous(torch::MemoryFormat::ChannelsLast);
    torch::Tensor logits, features, embeddings;
    {
      const nn::PrecisionGuard precision(precision_);
      if (options_.embed) {
        std::tie(logits, features) = model_.classifier->forward_with_embedding(batch);
      } else {
        logits = model_.classifier->forward(batch);
      }
    }
    logits = nn::to_float32(logits);
    if (features.defined()) embeddings = project_embedding(features);
    const torch::Tensor probs = torch::softmax(logits, 1).to(torch::kCPU, torch::kFloat32).contiguous();
    const int64_t n_classes = probs.size(1);
    for (size_t i = 0; i < out.size(); ++i) {
      const float* row = probs.data_ptr<float>() + static_cast<int64_t>(i) * n_classes;
      Prediction& p = *out[i];
      p.probs.assign(row, row + n_classes);
      p.class_id = std::max_element(row, row + n_classes) - row;
      p.score = row[p.class_id];
      p.label = label_of(model_.info, p.class_id);
      if (embeddings.defined()) p.embedding = embedding_row(embeddings, static_cast<int64_t>(i));
    }
    return;
  }
  // torchvision pads a batch to its largest image, which changes the results of the smaller ones: only
  // images of one size share a forward pass, so results do not depend on --batch, sharding or file order.
  std::map<std::pair<int64_t, int64_t>, std::vector<size_t>> by_size;
  for (size_t i = 0; i < inputs.size(); ++i) by_size[{inputs[i].size(1), inputs[i].size(2)}].push_back(i);
  for (const auto& [size, members] : by_size) {
    std::vector<torch::Tensor> images;
    for (size_t i : members) images.push_back(inputs[i].to(device_));
    nn::DetectorOutput result;
    {
      const nn::PrecisionGuard precision(precision_);
      result = model_.detector->forward(images);
    }
    VIGIL_ASSERT(result.detections.size() == members.size(), "detector returned {} results for {} images",
                 result.detections.size(), members.size());
    const torch::Tensor embeddings = options_.embed && result.embeddings.defined()
                                         ? project_embedding(result.embeddings)
                                         : torch::Tensor();
    for (size_t m = 0; m < members.size(); ++m) {
      fill_boxes(result.detections[m], *out[members[m]]);
      if (embeddings.defined())
        out[members[m]]->embedding = embedding_row(embeddings, static_cast<int64_t>(m));
    }
  }
}

void Predictor::fill_boxes(const nn::Detections& d, Prediction& p) const {
  const torch::Tensor boxes = d.boxes.to(torch::kCPU, torch::kFloat32).contiguous();
  const torch::Tensor scores = d.scores.to(torch::kCPU, torch::kFloat32).contiguous();
  const torch::Tensor labels = d.labels.to(torch::kCPU, torch::kInt64).contiguous();
  p.boxes.resize(static_cast<size_t>(scores.numel()));
  for (int64_t k = 0; k < scores.numel(); ++k) {
    const float* b = boxes.data_ptr<float>() + 4 * k;
    PredictedBox& box = p.boxes[k];
    box = {b[0], b[1], b[2], b[3], scores.data_ptr<float>()[k], labels.data_ptr<int64_t>()[k], ""};
    box.label = label_of(model_.info, box.class_id);
  }
}

PredictSummary predict_files(Predictor& predictor, const std::vector<PredictInput>& inputs,
                             const PredictionSink& sink, bool keep_images, Progress* progress) {
  const PredictOptions& o = predictor.options();
  const size_t batch = static_cast<size_t>(o.batch_size);
  const size_t n_batches = (inputs.size() + batch - 1) / batch;
  ThreadPool pool(o.decode_threads > 0 ? static_cast<size_t>(o.decode_threads) : hardware_threads());
  std::deque<std::vector<std::future<DecodedInput>>> in_flight;
  size_t submitted = 0;
  auto submit_next = [&] {
    std::vector<std::future<DecodedInput>> futures;
    const size_t end = std::min(inputs.size(), (submitted + 1) * batch);
    for (size_t i = submitted * batch; i < end; ++i) {
      futures.push_back(pool.submit([&predictor, path = inputs[i].path, keep_images] {
        return decode_input(predictor, path, keep_images);
      }));
    }
    in_flight.push_back(std::move(futures));
    ++submitted;
  };
  while (submitted < n_batches && in_flight.size() < static_cast<size_t>(o.prefetch_batches)) submit_next();

  PredictSummary summary;
  size_t base = 0;
  while (!in_flight.empty()) {
    if (interrupt_requested()) {
      throw Interrupted(fmt::format("prediction interrupted after {} of {} images", base, inputs.size()));
    }
    std::vector<DecodedInput> items;
    for (auto& f : in_flight.front()) items.push_back(f.get());
    in_flight.pop_front();
    if (submitted < n_batches) submit_next();  // the workers decode ahead while this batch runs

    std::vector<Prediction> predictions(items.size());
    std::vector<torch::Tensor> tensors;
    std::vector<Prediction*> targets;
    for (size_t k = 0; k < items.size(); ++k) {
      Prediction& p = predictions[k];
      p.image = inputs[base + k].path;
      p.index = inputs[base + k].index;
      p.width = items[k].width;
      p.height = items[k].height;
      p.error = items[k].error;
      if (p.ok()) {
        tensors.push_back(std::move(items[k].input));
        targets.push_back(&p);
      }
    }
    predictor.predict(tensors, targets);
    for (size_t k = 0; k < items.size(); ++k) {
      sink(predictions[k], items[k].bgr);
      ++(predictions[k].ok() ? summary.predicted : summary.failed);
    }
    if (progress != nullptr) progress->advance(items.size());
    base += items.size();
  }
  return summary;
}

void draw_prediction(cv::Mat& bgr, const Prediction& prediction) {
  std::vector<image::DrawBox> boxes;
  if (prediction.class_id >= 0) {
    // A classification frames the whole image with its label.
    image::DrawBox frame;
    frame.x2 = static_cast<float>(bgr.cols);
    frame.y2 = static_cast<float>(bgr.rows);
    frame.label = prediction.label;
    frame.score = prediction.score;
    frame.class_id = static_cast<int>(prediction.class_id);
    boxes.push_back(frame);
  }
  for (const auto& b : prediction.boxes) {
    image::DrawBox box;
    box.x1 = b.x1;
    box.y1 = b.y1;
    box.x2 = b.x2;
    box.y2 = b.y2;
    box.label = b.label;
    box.score = b.score;
    box.class_id = static_cast<int>(b.class_id);
    boxes.push_back(box);
  }
  image::draw_boxes(bgr, boxes);
}

}  // namespace vigil::model

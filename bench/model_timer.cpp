// The vigil side of bench/models.sh: times one architecture on the weights and inputs bench/models_ref.py
// wrote, with the same protocol as models_ref.py's `time` mode (median latency after a warm-up for inference,
// images/s over a few SGD steps for training), and prints one JSON line.
//
// Usage: model_timer DIR ARCH [--threads T] [--iters N] [--train-iters M] [--channels-last 0|1] [--bf16 0|1]

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "vigil/core/blas.h"
#include "vigil/core/error.h"
#include "vigil/nn/classification/classifier.h"
#include "vigil/nn/detection/detector.h"
#include "vigil/nn/fuse.h"
#include "vigil/nn/precision.h"
#include "vigil/nn/quantize.h"
#include "vigil/nn/weights.h"
#include "vigil/nn/zoo.h"

namespace {

constexpr int kDetTrainBatch = 2;
constexpr int kClsBatch = 8;

struct Args {
  std::string dir, arch;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int iters = 5, train_iters = 3;
  int channels_last = 1;  ///< what vigil's predictor and trainer do by default on CPU
  vigil::nn::Precision precision = vigil::nn::Precision::kFp32;  ///< inference only (--bf16 1)
};

Args parse(int argc, char** argv) {
  if (argc < 3)
    throw vigil::InvalidArgument(
        "usage: model_timer DIR ARCH [--threads T] [--iters N] [--train-iters M (0: no training)] "
        "[--channels-last 0|1] [--bf16 0|1] [--int8 0|1]");
  Args a;
  a.dir = argv[1];
  a.arch = argv[2];
  for (int i = 3; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int value = std::stoi(argv[i + 1]);
    if (flag == "--threads") {
      a.threads = value;
    } else if (flag == "--iters") {
      a.iters = value;
    } else if (flag == "--train-iters") {
      a.train_iters = value;
    } else if (flag == "--channels-last") {
      a.channels_last = value;
    } else if (flag == "--bf16") {
      a.precision = value ? vigil::nn::Precision::kBf16 : vigil::nn::Precision::kFp32;
    } else if (flag == "--int8") {
      a.precision = value ? vigil::nn::Precision::kInt8 : vigil::nn::Precision::kFp32;
    } else {
      throw vigil::InvalidArgument("unknown flag " + flag);
    }
  }
  return a;
}

double elapsed_ms(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

double median_ms(const std::function<void()>& fn, int iters) {
  fn();  // warm-up, as models_ref.py
  std::vector<double> times;
  for (int i = 0; i < iters; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    times.push_back(elapsed_ms(start));
  }
  std::sort(times.begin(), times.end());
  const size_t n = times.size();
  return n % 2 == 1 ? times[n / 2] : 0.5 * (times[n / 2 - 1] + times[n / 2]);
}

double images_per_second(const std::function<void()>& step, int iters, int batch) {
  step();  // warm-up
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < iters; ++i) step();
  return batch * iters / (elapsed_ms(start) / 1000.0);
}

std::vector<torch::optim::OptimizerParamGroup> trainable(torch::nn::Module& m) {
  std::vector<torch::Tensor> params;
  for (auto& p : m.parameters()) {
    if (p.requires_grad()) params.push_back(p);
  }
  return {torch::optim::OptimizerParamGroup(params)};
}

struct Timings {
  double b1 = 0, b8 = 0, train = 0;
  int blas_threads = -1;  ///< OpenBLAS's threads during inference
};

// What `vigil serve` does at load (serve/model_host.cpp): OpenBLAS's thread count chosen on a batch of 4
// (choose_model_blas_threads), here from the second batch-1 inference, past the first's one-time set-up.
// Training runs with the start-up count, as `vigil train` does.
int choose_blas_like_serve(const std::function<void()>& b1, const std::function<void()>& b4) {
  b1();
  const auto t0 = std::chrono::steady_clock::now();
  b1();
  return vigil::choose_model_blas_threads(elapsed_ms(t0), b4).threads;
}

Timings time_detector(vigil::nn::Detector& model, vigil::nn::Detector& trainee,
                      const vigil::nn::StateDict& inputs, const Args& a) {
  std::vector<torch::Tensor> images;
  std::vector<vigil::nn::DetectionTarget> targets;
  for (int i = 0; i < 8; ++i) {
    const auto k = std::to_string(i);
    images.push_back(inputs["image" + k]);
    targets.push_back({inputs["boxes" + k], inputs["labels" + k]});
  }
  const std::vector<torch::Tensor> batch1(images.begin(), images.begin() + 1);
  Timings t;
  model.eval();
  {
    c10::InferenceMode inference;  // what vigil's predict and serve paths use
    const vigil::nn::PrecisionGuard precision(a.precision);
    const std::vector<torch::Tensor> batch4(images.begin(), images.begin() + 4);
    t.blas_threads = choose_blas_like_serve([&] { model.forward(batch1); }, [&] { model.forward(batch4); });
    t.b1 = median_ms([&] { model.forward(batch1); }, a.iters);
    t.b8 = median_ms([&] { model.forward(images); }, std::max(1, a.iters / 2));
  }
  vigil::set_blas_threads(vigil::initial_blas_threads());
  trainee.train();
  torch::optim::SGD opt(trainable(trainee), torch::optim::SGDOptions(0.001).momentum(0.9));
  const std::vector<torch::Tensor> train_images(images.begin(), images.begin() + kDetTrainBatch);
  const std::vector<vigil::nn::DetectionTarget> train_targets(targets.begin(),
                                                              targets.begin() + kDetTrainBatch);
  if (a.train_iters <= 0) return t;
  t.train = images_per_second(
      [&] {
        opt.zero_grad();
        auto out = trainee.forward(train_images, &train_targets);
        torch::Tensor loss = torch::zeros({});
        for (auto& [name, value] : out.losses) loss = loss + value;
        loss.backward();
        opt.step();
      },
      a.train_iters, kDetTrainBatch);
  return t;
}

Timings time_classifier(vigil::nn::Classifier& model, vigil::nn::Classifier& trainee,
                        const vigil::nn::StateDict& inputs, const Args& a) {
  const torch::Tensor images =
      a.channels_last ? inputs["images"].contiguous(torch::MemoryFormat::ChannelsLast) : inputs["images"];
  const torch::Tensor labels = inputs["labels"];
  const torch::Tensor batch1 = images.slice(0, 0, 1);
  Timings t;
  model.eval();
  {
    c10::InferenceMode inference;  // what vigil's predict and serve paths use
    const vigil::nn::PrecisionGuard precision(a.precision);
    const torch::Tensor batch4 = images.slice(0, 0, 4);
    t.blas_threads = choose_blas_like_serve([&] { model.forward(batch1); }, [&] { model.forward(batch4); });
    t.b1 = median_ms([&] { model.forward(batch1); }, a.iters);
    t.b8 = median_ms([&] { model.forward(images); }, std::max(1, a.iters / 2));
  }
  vigil::set_blas_threads(vigil::initial_blas_threads());
  trainee.train();
  torch::optim::SGD opt(trainable(trainee), torch::optim::SGDOptions(0.001).momentum(0.9));
  if (a.train_iters <= 0) return t;
  t.train = images_per_second(
      [&] {
        opt.zero_grad();
        auto loss = torch::nn::functional::cross_entropy(trainee.forward(images), labels);
        loss.backward();
        opt.step();
      },
      a.train_iters, kClsBatch);
  return t;
}

std::shared_ptr<torch::nn::Module> build(const Args& a, const vigil::nn::StateDict& weights) {
  const auto& spec = vigil::nn::find_model(a.arch);
  vigil::nn::ModelArgs args;
  args.num_classes =
      spec.task == vigil::data::Task::kDetection ? 91 : (a.arch == "mask_small_cnn" ? 2 : 1000);
  auto module = vigil::nn::make_model(a.arch, args);
  vigil::nn::load_state_dict(*module, weights);
  return module;
}

int run(const Args& a) {
  torch::set_num_threads(a.threads);
  const std::string dir = a.dir + "/" + a.arch;
  const auto weights = vigil::nn::read_state_dict(dir + "/weights.pth");
  const auto inputs = vigil::nn::read_state_dict(dir + "/inputs.pt");
  // Inference runs the way vigil serves: batch norms folded into the convolutions and channels-last weights
  // (nn/fuse.h); training gets its own unfolded copy of the same weights, channels-last like the trainer.
  auto infer = build(a, weights);
  infer->eval();
  vigil::nn::fold_batch_norms(*infer);
  auto train = build(a, weights);
  if (a.channels_last) {
    vigil::nn::to_channels_last(*infer);
    vigil::nn::to_channels_last(*train);
  }
  if (a.precision != vigil::nn::Precision::kFp32) {  // as the Predictor does (model/predict.cpp)
    vigil::nn::check_precision_supported(a.precision);
    if (a.precision == vigil::nn::Precision::kBf16) vigil::nn::convert_weights_to_bf16(*infer);
  }
  if (a.precision == vigil::nn::Precision::kInt8) {
    // Calibrated on the timing inputs themselves: this tool measures speed, not accuracy (the Predictor
    // calibrates on the user's images).
    c10::InferenceMode inference;
    vigil::nn::quantize_int8(*infer, [&] {
      if (auto det = std::dynamic_pointer_cast<vigil::nn::Detector>(infer)) {
        for (int i = 0; i < 2; ++i) det->forward({inputs["image" + std::to_string(i)]});
      } else {
        const torch::Tensor images = inputs["images"].slice(0, 0, 4);
        std::dynamic_pointer_cast<vigil::nn::Classifier>(infer)->forward(
            a.channels_last ? images.contiguous(torch::MemoryFormat::ChannelsLast) : images);
      }
    });
  }
  Timings t;
  if (auto det = std::dynamic_pointer_cast<vigil::nn::Detector>(infer)) {
    t = time_detector(*det, *std::dynamic_pointer_cast<vigil::nn::Detector>(train), inputs, a);
  } else if (auto cls = std::dynamic_pointer_cast<vigil::nn::Classifier>(infer)) {
    t = time_classifier(*cls, *std::dynamic_pointer_cast<vigil::nn::Classifier>(train), inputs, a);
  } else {
    throw vigil::InvalidArgument(a.arch + " is neither a detector nor a classifier");
  }
  std::printf(
      "{\"arch\": \"%s\", \"infer_b1_ms\": %.3f, \"infer_b8_ms\": %.3f, \"train_img_s\": %.3f, "
      "\"blas_threads\": %d, \"precision\": \"%s\"}\n",
      a.arch.c_str(), t.b1, t.b8, t.train, t.blas_threads, vigil::nn::precision_name(a.precision));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::cerr << "model_timer: " << e.what() << "\n";
    return 1;
  }
}

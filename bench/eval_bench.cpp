// Detection metrics on synthetic data: 5,000 images x 100 detections over 5 classes (seeded, same every run).
// `eval_bench --write-json DIR` instead writes DIR/gt.json and DIR/results.json (COCO) plus DIR/vigil.json
// (vigil's twelve numbers and its timings) for bench/eval_ref.py to compare pycocotools against;
// bench/eval.sh runs both side by side.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "vigil/core/fs.h"
#include "vigil/eval/coco_eval.h"
#include "vigil/eval/coco_json.h"
#include "vigil/eval/detection_metrics.h"

namespace {

using vigil::eval::DetBox;
using vigil::eval::DetectionData;
using vigil::eval::GtBox;

constexpr int kImages = 5000;
constexpr int kDetsPerImage = 100;
constexpr int kClasses = 5;

/// Uniform in [0, 1) from the raw 64-bit output, so the data is the same with every standard library.
double uniform(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}
double uniform(std::mt19937_64& rng, double lo, double hi) {
  return lo + (hi - lo) * uniform(rng);
}

/// Rounded to 1/100 so the JSON text is short and both sides parse the same doubles.
double r2(double v) {
  return std::round(v * 100) / 100;
}

GtBox random_gt(std::mt19937_64& rng, int64_t image) {
  GtBox g;
  g.image_id = image;
  g.category_id = 1 + static_cast<int64_t>(uniform(rng) * kClasses);
  const double side = std::exp(uniform(rng, std::log(8.0), std::log(300.0)));  // spans small, medium, large
  const double aspect = uniform(rng, 0.5, 2.0);
  g.w = r2(side * std::sqrt(aspect));
  g.h = r2(side / std::sqrt(aspect));
  g.x = r2(uniform(rng, 0, 640 - std::min(g.w, 600.0)));
  g.y = r2(uniform(rng, 0, 480 - std::min(g.h, 440.0)));
  g.area = r2(g.w * g.h * uniform(rng, 0.7, 1.0));  // like a segmentation area, below the box's
  g.iscrowd = uniform(rng) < 0.02;
  return g;
}

/// A detection near a ground-truth box (jittered, sometimes the wrong class) or anywhere.
DetBox random_det(std::mt19937_64& rng, const std::vector<GtBox>& image_gt, int64_t image) {
  DetBox d;
  d.image_id = image;
  d.score = r2(uniform(rng) * 0.98 + 0.01);
  if (!image_gt.empty() && uniform(rng) < 0.3) {
    const GtBox& g = image_gt[static_cast<size_t>(uniform(rng) * image_gt.size())];
    const double jitter = uniform(rng, 0.0, 0.25);
    d.category_id = uniform(rng) < 0.9 ? g.category_id : 1 + static_cast<int64_t>(uniform(rng) * kClasses);
    d.x = r2(g.x + g.w * uniform(rng, -jitter, jitter));
    d.y = r2(g.y + g.h * uniform(rng, -jitter, jitter));
    d.w = r2(g.w * uniform(rng, 1 - jitter, 1 + jitter));
    d.h = r2(g.h * uniform(rng, 1 - jitter, 1 + jitter));
    d.score = r2(std::min(0.99, d.score + 0.3));
    return d;
  }
  d.category_id = 1 + static_cast<int64_t>(uniform(rng) * kClasses);
  d.w = r2(uniform(rng, 4, 200));
  d.h = r2(uniform(rng, 4, 200));
  d.x = r2(uniform(rng, 0, 600));
  d.y = r2(uniform(rng, 0, 440));
  return d;
}

const DetectionData& synthetic() {
  static const DetectionData data = [] {
    DetectionData out;
    std::mt19937_64 rng(20240531);
    for (int c = 0; c < kClasses; ++c) out.categories.push_back({c + 1, "class" + std::to_string(c)});
    for (int i = 0; i < kImages; ++i) {
      out.image_ids.push_back(i);
      std::vector<GtBox> image_gt;
      const int n_gt = i % 50 == 0 ? 0 : 1 + static_cast<int>(uniform(rng) * 10);  // some images have none
      for (int g = 0; g < n_gt; ++g) image_gt.push_back(random_gt(rng, i));
      for (int d = 0; d < kDetsPerImage; ++d) out.detections.push_back(random_det(rng, image_gt, i));
      out.ground_truth.insert(out.ground_truth.end(), image_gt.begin(), image_gt.end());
    }
    return out;
  }();
  return data;
}

void BM_CocoEvaluate(benchmark::State& state) {
  const DetectionData& data = synthetic();
  vigil::eval::CocoEvalOptions opt;
  opt.threads = static_cast<size_t>(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(vigil::eval::coco_evaluate(data, opt));
  state.counters["images"] = kImages;
  state.counters["detections"] = static_cast<double>(data.detections.size());
}
BENCHMARK(BM_CocoEvaluate)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_UltralyticsMetrics(benchmark::State& state) {
  const DetectionData& data = synthetic();
  vigil::eval::UltralyticsOptions opt;
  opt.threads = static_cast<size_t>(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(vigil::eval::ultralytics_metrics(data, opt));
}
BENCHMARK(BM_UltralyticsMetrics)->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ConfusionMatrix(benchmark::State& state) {
  const DetectionData& data = synthetic();
  for (auto _ : state) benchmark::DoNotOptimize(vigil::eval::confusion_matrix(data));
}
BENCHMARK(BM_ConfusionMatrix)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_ReadResultsJson(benchmark::State& state) {
  const DetectionData& data = synthetic();
  const std::string text = vigil::eval::coco_results_json(data.detections).dump();
  for (auto _ : state) {
    benchmark::DoNotOptimize(vigil::eval::parse_coco_results(nlohmann::json::parse(text), data, "results"));
  }
  state.counters["MB"] = static_cast<double>(text.size()) / 1e6;
}
BENCHMARK(BM_ReadResultsJson)->Unit(benchmark::kMillisecond)->UseRealTime();

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

/// The --write-json mode: the files for pycocotools, and vigil's numbers and timings on the same files
/// (best of three runs of loading and of evaluating, like eval_ref.py).
int write_json(const std::filesystem::path& dir) {
  vigil::ensure_dir(dir);
  const DetectionData& data = synthetic();
  vigil::eval::write_coco_ground_truth(dir / "gt.json", data);
  vigil::eval::write_coco_results(dir / "results.json", data.detections);
  double load_s = 1e9, eval_s = 1e9;
  vigil::eval::CocoEvalResult r;
  for (int run = 0; run < 3; ++run) {
    auto t0 = std::chrono::steady_clock::now();
    DetectionData loaded = vigil::eval::read_coco_ground_truth(dir / "gt.json");
    loaded.detections = vigil::eval::read_coco_results(dir / "results.json", loaded);
    load_s = std::min(load_s, seconds_since(t0));
    t0 = std::chrono::steady_clock::now();
    r = vigil::eval::coco_evaluate(loaded);
    eval_s = std::min(eval_s, seconds_since(t0));
  }
  nlohmann::json out = {{"stats", r.stats},
                        {"ap_per_class", r.ap_per_class},
                        {"load_seconds", load_s},
                        {"eval_seconds", eval_s},
                        {"images", kImages},
                        {"detections", data.detections.size()},
                        {"ground_truth", data.ground_truth.size()}};
  vigil::write_file_atomic(dir / "vigil.json", out.dump(2));
  std::cout << out.dump() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--write-json") == 0) return write_json(argv[i + 1]);
  }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

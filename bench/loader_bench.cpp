// Loader throughput: a full augmented epoch of ../shared/datasets/guns at the training resolutions of
// fasterrcnn_mobilenet_v3_large_320_fpn (320/640) and fasterrcnn_resnet50_fpn (800/1333), 1 and 2 workers.

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "vigil/data/loader.h"

namespace {

namespace fs = std::filesystem;
using vigil::data::Box;
using vigil::data::Dataset;

std::optional<fs::path> guns_root() {
  std::vector<fs::path> roots;
  if (const char* env = std::getenv("VIGIL_SHARED_DIR"); env && *env) roots.emplace_back(env);
  roots.emplace_back(fs::path(__FILE__).parent_path() / ".." / ".." / "shared");
  for (const auto& r : roots) {
    if (fs::is_directory(r / "datasets" / "guns" / "Images")) return r / "datasets" / "guns";
  }
  return std::nullopt;
}

/// The guns layout read here directly (Images/N.jpeg + Labels/N.txt: a count, then "x1 y1 x2 y2" lines), so
/// the benchmark measures the loader only and does not depend on the format reader.
Dataset read_guns(const fs::path& root) {
  Dataset ds;
  ds.task = vigil::data::Task::kDetection;
  ds.root = root;
  ds.classes = {"gun"};
  for (const auto& entry : fs::directory_iterator(root / "Images")) {
    vigil::data::Sample s;
    s.file = "Images/" + entry.path().filename().string();
    std::ifstream labels(root / "Labels" / (entry.path().stem().string() + ".txt"));
    int count = 0;
    labels >> count;
    for (int i = 0; i < count; ++i) {
      Box b;
      if (labels >> b.x1 >> b.y1 >> b.x2 >> b.y2) s.boxes.push_back(b);
    }
    ds.samples.push_back(std::move(s));
  }
  std::sort(ds.samples.begin(), ds.samples.end(),
            [](const auto& a, const auto& b) { return a.file < b.file; });
  return ds;
}

/// Args: min_size, max_size, threads.
void BM_LoaderEpochGuns(benchmark::State& state) {
  const auto root = guns_root();
  if (!root) {
    state.SkipWithError("../shared/datasets/guns absent");
    return;
  }
  const Dataset ds = read_guns(*root);
  std::vector<int> indices(ds.samples.size());
  for (size_t i = 0; i < indices.size(); ++i) indices[i] = static_cast<int>(i);
  vigil::data::LoaderOptions o;
  o.min_size = static_cast<int>(state.range(0));
  o.max_size = static_cast<int>(state.range(1));
  o.threads = static_cast<int>(state.range(2));
  o.batch_size = 8;
  o.augment = true;
  vigil::data::DataLoader loader(ds, {}, indices, o);
  int64_t images = 0, epoch = 0;
  for (auto _ : state) {
    loader.start_epoch(static_cast<int>(epoch++));
    while (auto batch = loader.next()) {
      images += static_cast<int64_t>(batch->size());
      benchmark::DoNotOptimize(batch->image_list.data());
    }
  }
  state.counters["images/s"] = benchmark::Counter(static_cast<double>(images), benchmark::Counter::kIsRate);
  state.counters["skipped"] = static_cast<double>(loader.skipped());
}

BENCHMARK(BM_LoaderEpochGuns)
    ->ArgNames({"min", "max", "threads"})
    ->Args({320, 640, 1})
    ->Args({320, 640, 2})
    ->Args({800, 1333, 1})
    ->Args({800, 1333, 2})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(2.0)
    ->UseRealTime();  // the work happens on loader threads: CPU time of the benchmark thread means nothing

}  // namespace

BENCHMARK_MAIN();

#pragma once
// Small synthetic datasets and quiet controls shared by the trainer's tests (trainer, observers, SSDlite,
// budget and best-weights tests): each builds a workspace with one ingested, split dataset.

#include <gtest/gtest.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests_util.h"
#include "vigil/core/config.h"
#include "vigil/core/fs.h"
#include "vigil/core/interrupt.h"
#include "vigil/core/strings.h"
#include "vigil/data/split.h"
#include "vigil/data/store.h"
#include "vigil/data/synth.h"
#include "vigil/train/trainer.h"

namespace vigil::train::testing {

/// Synthesises `synth` into tmp/src-<name>, ingests it into `ws` as `name` and saves a split "default" with
/// `val` of the samples validated on; returns the version id.
inline std::string make_dataset(const Workspace& ws, const std::filesystem::path& tmp,
                                const std::string& name, const data::SynthOptions& synth, double val = 0.25) {
  const std::filesystem::path src = tmp / ("src-" + name);
  const std::string format = data::synthesize(synth, src);
  data::DatasetStore store(ws);
  data::IngestOptions ingest;
  ingest.name = name;
  ingest.format = format;
  ingest.threads = 2;
  const auto version = store.ingest(src, ingest).version;
  data::SplitOptions so;
  so.val = val;
  const auto ds = store.load(version);
  const auto result = data::split_dataset(ds, so);
  data::SplitFiles files;
  for (int i : result.train) files.train.push_back(ds.samples[i].file);
  for (int i : result.val) files.val.push_back(ds.samples[i].file);
  store.save_split(version, "default", files, result.summary().dump(), config::to_yaml(so));
  return version.id;
}

/// `images` 64x64 classification images of 3 shapes.
inline data::SynthOptions shapes(int images, uint64_t seed = 1) {
  data::SynthOptions s;
  s.task = "classification";
  s.images = images;
  s.width = s.height = 64;
  s.classes = 3;
  s.seed = seed;
  return s;
}

/// `images` detection images of 2 classes of boxes, width x height.
inline data::SynthOptions boxes(int images, int width, int height, uint64_t seed) {
  data::SynthOptions s;
  s.images = images;
  s.width = width;
  s.height = height;
  s.classes = 2;
  s.seed = seed;
  return s;
}

/// The small mask CNN on the "shapes" dataset (make_dataset + shapes()) for 3 short epochs with Adam.
inline TrainOptions small_cnn_options(const std::string& name) {
  TrainOptions o;
  o.name = name;
  o.epochs = 3;
  o.seed = 7;
  o.threads = 1;
  o.model.arch = "mask_small_cnn";
  o.data.dataset = "shapes";
  o.data.batch_size = 8;
  o.data.threads = 1;
  o.optimizer.name = "adam";
  o.optimizer.lr = 1e-3;
  o.schedule.warmup_iters = 4;
  return o;
}

/// A workspace holding "shapes" (48 images, split 36/12) for small_cnn_options; the interrupt flag cleared
/// before and after each test.
class ShapesTrainerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    clear_interrupt();
    make_dataset(ws, tmp.path(), "shapes", shapes(48));
  }
  void TearDown() override { clear_interrupt(); }
  vigil::testing::TempDir tmp;
  Workspace ws{tmp / "ws"};
};

/// No progress bars, tracking on, optionally stopping after `stop_after` iterations.
inline TrainControl quiet(int64_t stop_after = -1) {
  TrainControl c;
  c.progress = false;
  c.stop_after_iterations = stop_after;
  c.code_version = "test";
  return c;
}

/// The non-empty lines of a text file (results.csv).
inline std::vector<std::string> csv_lines(const std::filesystem::path& file) {
  std::vector<std::string> out;
  for (auto& line : split(read_file(file), '\n')) {
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

/// "0.1 0.25 ..." for failure messages.
inline std::string join_numbers(const std::vector<double>& values) {
  std::string out;
  for (double v : values) out += (out.empty() ? "" : " ") + std::to_string(v);
  return out;
}

}  // namespace vigil::train::testing

#pragma once
// A dataset and a training config small enough for tests that train several times (retrain, the retrain API):
// 60 synthetic 48x48 shape images in 2 classes, stored as "shapes" with a 30% validation split, and a
// one-epoch mask_small_cnn config on it.

#include <gtest/gtest.h>

#include <string>

#include "tests_util.h"

namespace vigil::testing {

constexpr const char* kTinyClassifierConfig = R"(# one epoch of a tiny classifier, for tests
epochs: 1
seed: 3
threads: 1
model:
  arch: mask_small_cnn
data:
  dataset: shapes
  batch_size: 8
  threads: 1
optimizer:
  name: adam
  lr: 0.001
)";

/// kTinyClassifierConfig on another dataset.
inline std::string tiny_classifier_config(const std::string& dataset) {
  std::string config = kTinyClassifierConfig;
  const std::string from = "dataset: shapes";
  config.replace(config.find(from), from.size(), "dataset: " + dataset);
  return config;
}

/// synth -> ingest -> split in `ws`; writes the config to `dir`/train.yaml and returns its path.
inline fs::path make_tiny_shapes(const fs::path& dir, const fs::path& ws) {
  auto r = run_vigil("data synth '" + (dir / "src").string() +
                         "' --task classification --images 60 --width 48 --height 48 --classes 2 --seed 2",
                     ws);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = run_vigil("data ingest '" + (dir / "src").string() + "' --name shapes", ws);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  r = run_vigil("data split shapes --val 0.3 --seed 1", ws);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  write_text(dir / "train.yaml", kTinyClassifierConfig);
  return dir / "train.yaml";
}

}  // namespace vigil::testing

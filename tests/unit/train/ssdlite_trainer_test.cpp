// ssdlite320_mobilenet_v3_large through the unchanged trainer on a tiny synthetic detection dataset: the
// training loss falls over a few epochs of SGD, validation runs (losses in eval mode and COCO metrics), and
// the best checkpoint loads back as a detector that predicts.

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <iostream>

#include "tests_util.h"
#include "train_fixtures.h"
#include "vigil/core/config.h"
#include "vigil/core/fs.h"
#include "vigil/core/interrupt.h"
#include "vigil/core/strings.h"
#include "vigil/data/split.h"
#include "vigil/data/store.h"
#include "vigil/data/synth.h"
#include "vigil/model/model_file.h"
#include "vigil/train/trainer.h"

namespace vigil::train {
namespace {

namespace fs = std::filesystem;
using vigil::testing::TempDir;

TEST(TrainerSSDLite, LossFallsAndTheCheckpointPredicts) {
  clear_interrupt();
  TempDir tmp;
  Workspace ws(tmp / "ws");
  data::SynthOptions s;
  s.images = 10;
  s.width = 160;
  s.height = 120;
  s.classes = 2;
  s.seed = 3;
  testing::make_dataset(ws, tmp.path(), "boxes", s, /*val=*/0.2);  // 8 train, 2 val
  TrainOptions o;
  o.name = "ssdlite";
  o.epochs = 6;
  o.seed = 5;
  o.threads = o.data.threads = 1;
  o.model.arch = "ssdlite320_mobilenet_v3_large";
  o.data.dataset = "boxes";
  o.data.batch_size = 2;  // SSD's 1x1 extra map needs two values per channel for batch norm in training
  o.data.augment = false;
  o.optimizer.name = "sgd";
  o.optimizer.lr = 0.005;
  TrainControl quiet;
  quiet.progress = false;
  quiet.code_version = "test";
  const auto r = Trainer(ws, o, quiet).run();
  EXPECT_FALSE(r.interrupted);
  EXPECT_EQ(r.epochs_completed, 6);
  for (const char* key : {"train/loss", "val/loss", "metrics/mAP50(B)", "fitness"}) {
    ASSERT_TRUE(r.last_metrics.count(key)) << key;
    EXPECT_TRUE(std::isfinite(r.last_metrics.at(key))) << key;
  }

  std::vector<std::string> lines;
  for (auto& line : split(read_file(r.run_dir / "results.csv"), '\n')) {
    if (!line.empty()) lines.push_back(line);
  }
  ASSERT_EQ(lines.size(), 7u);  // header + 6 epochs
  const auto header = split(lines[0], ',');
  size_t column = header.size();
  for (size_t c = 0; c < header.size(); ++c) {
    if (trim(header[c]) == "train/loss") column = c;
  }
  ASSERT_LT(column, header.size()) << lines[0];
  const double first = std::stod(split(lines[1], ',')[column]);
  const double last = std::stod(split(lines[6], ',')[column]);
  std::cout << "train/loss per epoch:";
  for (size_t e = 1; e < lines.size(); ++e) std::cout << " " << trim(split(lines[e], ',')[column]);
  std::cout << "\n";
  EXPECT_LT(last, 0.7 * first) << "train/loss per epoch:\n" << join(lines, "\n");

  auto loaded = model::load_model(r.best_checkpoint);
  ASSERT_TRUE(loaded.detector);
  EXPECT_EQ(loaded.detector->num_classes(), 3);
  EXPECT_EQ(loaded.info.arch, "ssdlite320_mobilenet_v3_large");
  torch::NoGradGuard no_grad;
  const auto out = loaded.detector->forward({torch::rand({3, 120, 160})});
  ASSERT_EQ(out.detections.size(), 1u);
  if (out.detections[0].boxes.size(0) > 0) {
    EXPECT_LE(out.detections[0].boxes.select(1, 2).max().item<float>(), 160.f);
    EXPECT_LT(out.detections[0].labels.max().item<int64_t>(), 3);
  }
}

}  // namespace
}  // namespace vigil::train

// Published weights through the real `vigil` binary: `vigil weights pull|published|import|inspect` and
// `vigil train` with model.weights given by name or URL, against a real loopback HTTP server
// (tests/weights_server.h) standing in for download.pytorch.org with torchvision-made files
// (tests/unit/model/gen_published_weights.py). The library's own cases (dropped connection, stall, cache
// checks) are in tests/unit/model/published_weights_test.cpp. A classifier's weights as a detector's backbone
// are checked through `weights import --partial backbone` (the trainer's weights_scope takes the same
// conversion; a detector training run here would cost ~50 s).

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "tests_util.h"
#include "vigil/core/fs.h"
#include "vigil/model/model_file.h"
#include "vigil/model/published_weights.h"
#include "vigil/nn/weights.h"
#include "weights_server.h"

namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using vigil::testing::run_vigil;
using vigil::testing::ScopedEnv;
using vigil::testing::TempDir;
using vigil::testing::WeightsServer;
using Files = WeightsServer::Files;

constexpr const char* kTrainConfig = R"(epochs: 1
seed: 1
threads: 1
model:
  arch: {arch}
  weights: {weights}
data:
  dataset: {dataset}
  batch_size: 4
  threads: 1
  augment: false
{extra})";

class WeightsCli : public ::testing::Test {
 protected:
  /// torchvision-made mobilenet_v3_small and mobilenet_v3_large files (ImageNet-shaped classifiers), made
  /// once.
  static void SetUpTestSuite() {
    auto python = vigil::testing::reference_python();
    if (!python) return;
    gen_ = new TempDir();
    auto names = vigil::testing::generate_published_like(
        *python, gen_->path(), {"mobilenet_v3_small", "mobilenet_v3_large"}, &gen_error_);
    if (names.size() == 2) small_ = names[0], large_ = names[1];
  }
  static void TearDownTestSuite() {
    delete gen_;
    gen_ = nullptr;
  }
  void SetUp() override {
    if (!vigil::testing::reference_python()) GTEST_SKIP() << "python3 with torchvision absent; skipping";
    ASSERT_FALSE(small_.empty()) << "gen_published_weights.py failed:\n" << gen_error_;
  }

  vigil::testing::CommandResult vigil(const std::string& args) { return run_vigil(args, ws_); }
  static std::string bytes(const std::string& name) { return vigil::read_file(gen_->path() / name); }
  std::vector<std::string> cached_files() const {
    std::vector<std::string> out;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(cache_, ec)) out.push_back(e.path().filename().string());
    return out;
  }
  /// A synthetic dataset `name` ingested and split in the workspace.
  void make_dataset(const std::string& name, const std::string& task) {
    auto r =
        vigil(fmt::format("data synth '{}' --task {} --images 16 --width 64 --height 64 --classes 2 --seed 3",
                          (tmp_ / name).string(), task));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = vigil(fmt::format("data ingest '{}' --name {}", (tmp_ / name).string(), name));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    r = vigil(fmt::format("data split {} --val 0.25 --seed 1", name));
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  fs::path write_config(const std::string& file, const std::string& arch, const std::string& weights,
                        const std::string& dataset, const std::string& extra = "") {
    const fs::path path = tmp_ / file;
    vigil::testing::write_text(path,
                               fmt::format(kTrainConfig, fmt::arg("arch", arch), fmt::arg("weights", weights),
                                           fmt::arg("dataset", dataset), fmt::arg("extra", extra)));
    return path;
  }

  static TempDir* gen_;
  static std::string small_, large_, gen_error_;
  TempDir tmp_;
  fs::path ws_ = tmp_ / "ws";
  fs::path cache_ = tmp_ / "cache";
  ScopedEnv cache_env_{"VIGIL_WEIGHTS_CACHE", cache_.string()};
};
TempDir* WeightsCli::gen_ = nullptr;
std::string WeightsCli::small_, WeightsCli::large_, WeightsCli::gen_error_;

TEST_F(WeightsCli, PullDownloadsChecksAndPrintsTheCachePath) {
  WeightsServer server(Files{{small_, {bytes(small_)}}});
  const std::string url = server.base_url() + small_;
  auto r = vigil("weights pull " + url);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, (cache_ / small_).string() + "\n");
  EXPECT_TRUE(vigil::read_file(cache_ / small_) == bytes(small_));
  EXPECT_EQ(cached_files(), std::vector<std::string>{small_});
  server.stop();
  // Offline now: the cached copy serves every later use.
  r = vigil("weights inspect " + url);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("features.0.0.weight"));
}

TEST_F(WeightsCli, PublishedListsEveryNameAndWhetherItIsCached) {
  auto r = vigil("weights published");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& w : vigil::model::published_weights())
    EXPECT_THAT(r.out, HasSubstr(vigil::model::published_weights_ref(w))) << r.out;
  EXPECT_THAT(r.out, HasSubstr("cache " + cache_.string()));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr(" cached\n")));
  // A file copied into the cache by hand (the offline route the errors describe) shows as cached.
  vigil::testing::write_text(cache_ / "resnet50-11ad3fa6.pth", "x");
  r = vigil("weights published --arch resnet50");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out,
              ::testing::ContainsRegex("torchvision:resnet50/IMAGENET1K_V1 +resnet50-0676ba61.pth +-"));
  EXPECT_THAT(r.out, ::testing::ContainsRegex(
                         "torchvision:resnet50/IMAGENET1K_V2 +DEFAULT +resnet50-11ad3fa6.pth +cached"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("mobilenet")));
}

TEST_F(WeightsCli, PullRefusesBytesThatDoNotMatchTheNamesHash) {
  const auto& w = vigil::model::find_published_weights("torchvision:mobilenet_v3_small/DEFAULT");
  WeightsServer server(Files{{std::string(w.file), {bytes(small_)}}});
  ScopedEnv mirror("VIGIL_WEIGHTS_URL", server.base_url());
  auto r = vigil("weights pull torchvision:mobilenet_v3_small/DEFAULT");
  EXPECT_EQ(r.exit_code, 3) << r.err;  // invalid data
  EXPECT_THAT(r.err, HasSubstr(server.base_url() + std::string(w.file)));
  EXPECT_THAT(r.err, HasSubstr("nothing was kept"));
  EXPECT_EQ(cached_files(), std::vector<std::string>{});
}

TEST_F(WeightsCli, OfflineAndNotCachedExitsUnavailableSayingWhatToDo) {
  std::string dead;
  {
    WeightsServer gone(Files{});
    dead = gone.base_url();
  }
  ScopedEnv mirror("VIGIL_WEIGHTS_URL", dead);
  auto r = vigil("weights pull torchvision:resnet18/DEFAULT");
  EXPECT_EQ(r.exit_code, 6) << r.err;  // unavailable
  EXPECT_THAT(r.err, HasSubstr("copy resnet18-f37072fd.pth"));
  EXPECT_THAT(r.err, HasSubstr((cache_ / "resnet18-f37072fd.pth").string()));
  r = vigil("weights pull torchvision:resnet18/COCO_V1");
  EXPECT_EQ(r.exit_code, 2) << r.err;  // usage: an unknown name lists the valid ones
  EXPECT_THAT(r.err, HasSubstr("IMAGENET1K_V1, DEFAULT (= IMAGENET1K_V1)"));
  r = vigil("weights pull resnet18.pth");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("vigil weights published"));
}

TEST_F(WeightsCli, ImportTakesAURLAndAClassifierAsADetectorBackbone) {
  WeightsServer server(Files{{small_, {bytes(small_)}}, {large_, {bytes(large_)}}});
  const std::string url = server.base_url() + small_;
  auto r = vigil(
      fmt::format("weights import {} --arch mobilenet_v3_small -o '{}'", url, (tmp_ / "c.vgm").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = vigil(fmt::format("weights show '{}'", (tmp_ / "c.vgm").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("source      " + url));

  // torchvision's weights_backbone: an ImageNet classifier's body under a detector's FPN.
  const fs::path det = tmp_ / "d.vgm";
  r = vigil(fmt::format(
      "weights import {}{} --arch fasterrcnn_mobilenet_v3_large_320_fpn --partial backbone -o '{}'",
      server.base_url(), large_, det.string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto loaded = vigil::model::load_model(det);
  const auto source = vigil::nn::read_state_dict(gen_->path() / large_);
  auto params = loaded.module->named_parameters(true);
  for (const std::string key : {"features.0.0.weight", "features.16.0.weight"}) {
    const std::string body = "backbone.body." + key.substr(std::string("features.").size());
    ASSERT_NE(params.find(body), nullptr) << body;
    EXPECT_TRUE(torch::equal(params[body], *source.find(key))) << key;
  }
}

TEST_F(WeightsCli, TrainingStartsFromWeightsByURLAndReusesThemOffline) {
  make_dataset("shapes", "classification");
  WeightsServer server(Files{{small_, {bytes(small_)}}});
  const std::string url = server.base_url() + small_;
  const fs::path config = write_config("c.yaml", "mobilenet_v3_small", url, "shapes", "  image_size: 64\n");
  auto r = vigil(fmt::format("train --config '{}' --name first", config.string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err,
              ::testing::ContainsRegex("model.weights " + url + ": loaded [0-9]+ tensors \\(full scope\\)"));
  EXPECT_EQ(server.requests(small_), 1);
  server.stop();
  r = vigil(fmt::format("train --config '{}' --name second", config.string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("model.weights " + url + ": loaded"));

  // By name, offline and not cached: exit 6 and what to do, before any epoch.
  ScopedEnv mirror("VIGIL_WEIGHTS_URL", server.base_url());
  const fs::path named =
      write_config("n.yaml", "mobilenet_v3_small", "torchvision:mobilenet_v3_small/IMAGENET1K_V1", "shapes");
  r = vigil(fmt::format("train --config '{}' --name third", named.string()));
  EXPECT_EQ(r.exit_code, 6) << r.err;
  EXPECT_THAT(r.err, HasSubstr((cache_ / "mobilenet_v3_small-047dcff4.pth").string()));
}

}  // namespace

// Published weights by name (model/published_weights.h): the name table against the installed torchvision
// (check_published_weights.py), torch.hub's hash prefix and cache folder, and downloads from a real loopback
// HTTP server (tests/weights_server.h) serving a torchvision-made file (gen_published_weights.py): download,
// check and import; reuse with the server gone; a corrupted file, a connection dropped mid-body and a stalled
// server refused with nothing left in the cache; offline and not cached; unknown names.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "tests_util.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/hash.h"
#include "vigil/model/published_weights.h"
#include "vigil/model/weight_import.h"
#include "vigil/nn/weights.h"
#include "vigil/nn/zoo.h"
#include "weights_server.h"

namespace {

namespace fs = std::filesystem;
namespace model = vigil::model;
using ::testing::HasSubstr;
using vigil::testing::ScopedEnv;
using vigil::testing::TempDir;
using vigil::testing::WeightsReply;
using vigil::testing::WeightsServer;
using Files = WeightsServer::Files;

/// The error `f` throws, as (code, message); (kInternal, "<no error>") when it throws none.
template <class F>
std::pair<vigil::ErrorCode, std::string> error_of(F&& f) {
  try {
    f();
  } catch (const vigil::Error& e) {
    return {e.code(), e.what()};
  }
  return {vigil::ErrorCode::kInternal, "<no error>"};
}

/// Files in `dir` (none when it does not exist), partial downloads included.
std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(PublishedWeights, NamesResolveToTheirFilesWithTorchvisionsDefault) {
  const auto& v1 = model::find_published_weights("torchvision:mobilenet_v3_large/IMAGENET1K_V1");
  EXPECT_EQ(v1.arch, "mobilenet_v3_large");
  EXPECT_EQ(v1.name, "IMAGENET1K_V1");
  const auto& def = model::find_published_weights("torchvision:mobilenet_v3_large/DEFAULT");
  EXPECT_TRUE(def.is_default);
  EXPECT_EQ(def.name, "IMAGENET1K_V2");  // torchvision 0.14's MobileNet_V3_Large_Weights.DEFAULT
  EXPECT_EQ(model::published_weights_ref(def), "torchvision:mobilenet_v3_large/IMAGENET1K_V2");
  // Every entry is found by its own name, exactly one per architecture is the default, and every file carries
  // a hash prefix to check.
  std::map<std::string, int> defaults;
  for (const auto& w : model::published_weights()) {
    EXPECT_EQ(&model::find_published_weights(model::published_weights_ref(w)), &w);
    EXPECT_EQ(model::hash_prefix_of(w.file).size(), 8u) << w.file;
    defaults[std::string(w.arch)] += w.is_default;
    EXPECT_NO_THROW(vigil::nn::find_model(std::string(w.arch))) << w.arch << " is not in the zoo";
  }
  for (const auto& [arch, n] : defaults) EXPECT_EQ(n, 1) << arch;
}

TEST(PublishedWeights, TableMatchesTorchvisionsWeightsEnums) {
  VIGIL_REQUIRE_TORCHVISION(python);
  TempDir tmp;
  nlohmann::json table;
  table["base_url"] = std::string(model::kDefaultWeightsUrl);
  table["zoo"] = vigil::nn::model_names();
  table["weights"] = nlohmann::json::array();
  for (const auto& w : model::published_weights()) {
    table["weights"].push_back({{"arch", std::string(w.arch)},
                                {"name", std::string(w.name)},
                                {"file", std::string(w.file)},
                                {"default", w.is_default}});
  }
  vigil::testing::write_text(tmp / "table.json", table.dump(2));
  auto [code, out] =
      vigil::testing::run_shell(fmt::format("{} '{}/tests/unit/model/check_published_weights.py' '{}'",
                                            python, VIGIL_SOURCE_DIR, (tmp / "table.json").string()));
  EXPECT_EQ(code, 0) << out;
  EXPECT_THAT(out, HasSubstr("all match"));
}

TEST(PublishedWeights, UnknownNamesListTheValidOnes) {
  auto [code, msg] =
      error_of([] { model::find_published_weights("torchvision:mobilenet_v3_large/COCO_V1"); });
  EXPECT_EQ(code, vigil::ErrorCode::kInvalidArgument);
  EXPECT_THAT(msg, HasSubstr("'torchvision:mobilenet_v3_large/COCO_V1'"));
  EXPECT_THAT(msg, HasSubstr("IMAGENET1K_V1, IMAGENET1K_V2, DEFAULT (= IMAGENET1K_V2)"));

  std::tie(code, msg) = error_of([] { model::find_published_weights("torchvision:resnet18"); });
  EXPECT_EQ(code, vigil::ErrorCode::kInvalidArgument);
  EXPECT_THAT(msg, HasSubstr("IMAGENET1K_V1, DEFAULT (= IMAGENET1K_V1)"));

  std::tie(code, msg) =
      error_of([] { model::find_published_weights("torchvision:mobilenet_v3_larg/DEFAULT"); });
  EXPECT_THAT(msg, HasSubstr("did you mean 'mobilenet_v3_large'?"));
  EXPECT_THAT(msg, HasSubstr("fasterrcnn_mobilenet_v3_large_320_fpn"));
  // A zoo model torchvision publishes nothing for.
  std::tie(code, msg) = error_of([] { model::find_published_weights("torchvision:mask_small_cnn/DEFAULT"); });
  EXPECT_EQ(code, vigil::ErrorCode::kInvalidArgument);
  EXPECT_THAT(msg, HasSubstr("ssdlite320_mobilenet_v3_large"));
}

TEST(PublishedWeights, HashPrefixIsTorchHubsRegex) {
  // torch.hub: HASH_REGEX = re.compile(r"-([a-f0-9]*)\.") and HASH_REGEX.search(filename); ECMAScript regex
  // search has the same semantics for this pattern.
  const std::regex hub(R"(-([a-f0-9]*)\.)");
  for (const std::string name : {"resnet18-f37072fd.pth", "fasterrcnn_resnet50_fpn_coco-258fb6c6.pth",
                                 "model.pth", "my-model-1a2b.pth", "x-ABCDEF12.pth", "x-.pth", "a-12-34.pth",
                                 "a-12x-34.tar.gz", "-beef.", "no-dot-cafe", ""}) {
    std::smatch m;
    const std::string expected = std::regex_search(name, m, hub) ? m[1].str() : "";
    EXPECT_EQ(model::hash_prefix_of(name), expected) << name;
  }
}

TEST(PublishedWeights, CacheFolderIsTorchHubsUnlessOverridden) {
  ScopedEnv vigil_cache("VIGIL_WEIGHTS_CACHE", ""), torch_home("TORCH_HOME", ""), xdg("XDG_CACHE_HOME", ""),
      home("HOME", "/home/someone");
  EXPECT_EQ(model::weights_cache_dir(), fs::path("/home/someone/.cache/torch/hub/checkpoints"));
  {
    ScopedEnv x("XDG_CACHE_HOME", "/xdg");
    EXPECT_EQ(model::weights_cache_dir(), fs::path("/xdg/torch/hub/checkpoints"));
    ScopedEnv t("TORCH_HOME", "~/th");
    EXPECT_EQ(model::weights_cache_dir(), fs::path("/home/someone/th/hub/checkpoints"));
    ScopedEnv v("VIGIL_WEIGHTS_CACHE", "/mirror/weights");
    EXPECT_EQ(model::weights_cache_dir(), fs::path("/mirror/weights"));
  }
  ScopedEnv url("VIGIL_WEIGHTS_URL", "");
  EXPECT_EQ(model::weights_base_url(), "https://download.pytorch.org/models/");
  ScopedEnv mirror("VIGIL_WEIGHTS_URL", "http://mirror.local/models");
  EXPECT_EQ(model::weights_base_url(), "http://mirror.local/models/");
}

TEST(PublishedWeights, PlainPathsAreLeftAlone) {
  EXPECT_EQ(model::resolve_weights("runs/x/weights/best.ckpt"), "runs/x/weights/best.ckpt");
  EXPECT_EQ(model::resolve_weights("/data/torchvision-resnet18-f37072fd.pth"),
            "/data/torchvision-resnet18-f37072fd.pth");
}

/// A torchvision-made mobilenet_v3_small file named as torchvision names its published files, made once.
class PublishedWeightsDownload : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto python = vigil::testing::reference_python();
    if (!python) return;
    source_dir_ = new TempDir();
    std::string out;
    auto names =
        vigil::testing::generate_published_like(*python, source_dir_->path(), {"mobilenet_v3_small"}, &out);
    if (names.empty()) {
      generator_error_ = out;
      return;
    }
    name_ = names[0];
    bytes_ = vigil::read_file(source_dir_->path() / name_);
  }
  static void TearDownTestSuite() {
    delete source_dir_;
    source_dir_ = nullptr;
  }
  void SetUp() override {
    if (!vigil::testing::reference_python()) GTEST_SKIP() << "python3 with torchvision absent; skipping";
    ASSERT_FALSE(name_.empty()) << "gen_published_weights.py failed:\n" << generator_error_;
    options_.cache_dir = tmp_ / "cache";
    options_.progress = false;
  }

  /// A server at a port nothing listens on any more.
  static std::string dead_url() {
    WeightsServer gone(Files{});
    gone.stop();
    return gone.base_url();
  }

  static TempDir* source_dir_;
  static std::string name_, bytes_, generator_error_;
  TempDir tmp_;
  model::FetchOptions options_;
};
TempDir* PublishedWeightsDownload::source_dir_ = nullptr;
std::string PublishedWeightsDownload::name_, PublishedWeightsDownload::bytes_,
    PublishedWeightsDownload::generator_error_;

TEST_F(PublishedWeightsDownload, DownloadIsCheckedAndImportsTheFilesTensors) {
  WeightsServer server(Files{{name_, {bytes_}}});
  const fs::path got = model::fetch_weights_url(server.base_url() + name_, options_);
  EXPECT_EQ(got, options_.cache_dir / name_);
  EXPECT_EQ(files_in(options_.cache_dir), std::vector<std::string>{name_});  // no partial file left over
  EXPECT_TRUE(vigil::read_file(got) == bytes_);

  model::LoadModelOptions lo;
  lo.arch = "mobilenet_v3_small";
  const auto imported = model::import_weights(got, lo);
  const vigil::nn::StateDict expected = vigil::nn::read_state_dict(source_dir_->path() / name_);
  auto params = imported.model.module->named_parameters(true);
  auto buffers = imported.model.module->named_buffers(true);
  size_t compared = 0;
  for (const auto& item : expected) {
    const torch::Tensor* mine = params.find(item.key());
    if (mine == nullptr) mine = buffers.find(item.key());
    ASSERT_NE(mine, nullptr) << item.key();
    EXPECT_TRUE(torch::equal(*mine, item.value())) << item.key();
    ++compared;
  }
  EXPECT_GT(compared, 200u);
}

TEST_F(PublishedWeightsDownload, SecondUseComesFromTheCacheEvenWithTheServerGone) {
  WeightsServer server(Files{{name_, {bytes_}}});
  const std::string url = server.base_url() + name_;
  const fs::path first = model::fetch_weights_url(url, options_);
  EXPECT_EQ(model::fetch_weights_url(url, options_), first);
  EXPECT_EQ(server.requests(name_), 1);  // the second use did not download again
  server.stop();
  EXPECT_EQ(model::resolve_weights(url, options_), first.string());
  EXPECT_TRUE(vigil::read_file(first) == bytes_);
}

TEST_F(PublishedWeightsDownload, CorruptedDownloadIsRefusedAndNotCached) {
  // The server answers torchvision's name for mobilenet_v3_small with other bytes: the SHA-256 prefix in the
  // name (047dcff4) cannot match. The base URL comes from VIGIL_WEIGHTS_URL, as a mirror's would.
  const auto& w = model::find_published_weights("torchvision:mobilenet_v3_small/IMAGENET1K_V1");
  WeightsServer server(Files{{std::string(w.file), {bytes_}}});
  ScopedEnv mirror("VIGIL_WEIGHTS_URL", server.base_url());
  auto [code, msg] =
      error_of([&] { model::resolve_weights("torchvision:mobilenet_v3_small/DEFAULT", options_); });
  EXPECT_EQ(code, vigil::ErrorCode::kInvalidData) << msg;
  EXPECT_THAT(msg, HasSubstr(server.base_url() + std::string(w.file)));
  EXPECT_THAT(msg, HasSubstr("not starting with " + model::hash_prefix_of(w.file)));
  EXPECT_THAT(msg, HasSubstr(vigil::hash_bytes(bytes_)));
  EXPECT_EQ(server.requests(std::string(w.file)), 1);
  EXPECT_EQ(files_in(options_.cache_dir), std::vector<std::string>{});
}

TEST_F(PublishedWeightsDownload, DroppedConnectionIsAnErrorAndLeavesNoPartialFile) {
  WeightsServer server(Files{{name_, {bytes_, WeightsReply::Kind::kDropHalfway}}});
  const std::string url = server.base_url() + name_;
  auto [code, msg] = error_of([&] { model::fetch_weights_url(url, options_); });
  EXPECT_EQ(code, vigil::ErrorCode::kUnavailable) << msg;
  EXPECT_THAT(msg, HasSubstr(url));
  EXPECT_THAT(msg, HasSubstr("bytes"));  // how far it got
  EXPECT_EQ(server.requests(name_), 1);
  EXPECT_EQ(files_in(options_.cache_dir), std::vector<std::string>{});
}

TEST_F(PublishedWeightsDownload, StalledServerTimesOutAndLeavesNoPartialFile) {
  WeightsServer server(Files{{name_, {bytes_, WeightsReply::Kind::kStall}}});
  options_.low_speed_time_s = 1;
  options_.low_speed_bytes_per_s = 1000;
  const std::string url = server.base_url() + name_;
  auto [code, msg] = error_of([&] { model::fetch_weights_url(url, options_); });
  EXPECT_EQ(code, vigil::ErrorCode::kUnavailable) << msg;
  EXPECT_THAT(msg, HasSubstr(url));
  EXPECT_EQ(files_in(options_.cache_dir), std::vector<std::string>{});
}

TEST_F(PublishedWeightsDownload, OfflineAndNotCachedSaysWhereToPutTheFile) {
  options_.base_url = dead_url();
  auto [code, msg] =
      error_of([&] { model::resolve_weights("torchvision:resnet18/IMAGENET1K_V1", options_); });
  EXPECT_EQ(code, vigil::ErrorCode::kUnavailable) << msg;
  EXPECT_THAT(msg, HasSubstr(options_.base_url + "resnet18-f37072fd.pth"));
  EXPECT_THAT(msg, HasSubstr("copy resnet18-f37072fd.pth"));
  EXPECT_THAT(msg, HasSubstr((options_.cache_dir / "resnet18-f37072fd.pth").string()));
  EXPECT_THAT(msg, HasSubstr("VIGIL_WEIGHTS_URL"));
  EXPECT_EQ(files_in(options_.cache_dir), std::vector<std::string>{});
}

TEST_F(PublishedWeightsDownload, MissingFileOnTheServerIsNotFound) {
  WeightsServer server(Files{});
  const std::string url = server.base_url() + name_;
  auto [code, msg] = error_of([&] { model::fetch_weights_url(url, options_); });
  EXPECT_EQ(code, vigil::ErrorCode::kNotFound) << msg;
  EXPECT_THAT(msg, HasSubstr(url));
  EXPECT_THAT(msg, HasSubstr("HTTP 404"));
  EXPECT_EQ(files_in(options_.cache_dir), std::vector<std::string>{});
}

TEST_F(PublishedWeightsDownload, CachedFileThatDoesNotMatchItsNameIsRefusedAndKept) {
  // A damaged copy in the cache (here: the file cut short) is reported, not loaded and not deleted.
  const fs::path cached = options_.cache_dir / name_;
  vigil::testing::write_text(cached, bytes_.substr(0, bytes_.size() / 2));
  options_.base_url = dead_url();
  auto [code, msg] = error_of([&] { model::fetch_weights_url(options_.base_url + name_, options_); });
  EXPECT_EQ(code, vigil::ErrorCode::kInvalidData) << msg;
  EXPECT_THAT(msg, HasSubstr(cached.string()));
  EXPECT_THAT(msg, HasSubstr("delete it"));
  EXPECT_TRUE(fs::exists(cached));
}

}  // namespace

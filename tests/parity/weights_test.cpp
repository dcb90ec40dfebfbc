// Reading real PyTorch weight files (written by tests/parity/gen_weights.py with python3-torchvision) must
// give exactly Python's tensors, and files vigil writes must load back in Python unchanged.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <memory>
#include <optional>

#include "parity/parity_util.h"
#include "tests_util.h"
#include "vigil/core/error.h"
#include "vigil/nn/weights.h"

namespace {

namespace fs = std::filesystem;
using vigil::nn::read_state_dict;
using vigil::nn::save_state_dict;
using vigil::nn::StateDict;
using vigil::testing::TempDir;

// The generator runs once for the whole suite (it writes ~250 MB of weights in a few seconds).
const fs::path* fixtures(const std::string& python) {
  static std::unique_ptr<TempDir> dir;
  static bool ok = false;
  if (!dir) {
    dir = std::make_unique<TempDir>();
    ok = vigil::testing::run_generator(python, "gen_weights.py", dir->path());
  }
  return ok ? &dir->path() : nullptr;
}

#define VIGIL_FIXTURES(var)                     \
  VIGIL_REQUIRE_TORCHVISION(python);            \
  const fs::path* var##_ptr = fixtures(python); \
  ASSERT_NE(var##_ptr, nullptr);                \
  const fs::path& var = *var##_ptr

// Keys of a tensor_io reference directory in the order Python wrote them.
std::vector<std::string> reference_keys(const fs::path& ref_dir) {
  std::ifstream in(ref_dir / "index.json");
  auto index = nlohmann::ordered_json::parse(in);
  std::vector<std::string> keys;
  for (auto& [k, v] : index.items()) keys.push_back(k);
  return keys;
}

// Same keys in the same order, same shapes, identical values; dtype equal unless tensor_io widened float16.
void expect_matches_reference(const StateDict& got, const fs::path& ref_dir) {
  auto ref = vigil::testing::load_tensors(ref_dir);
  ASSERT_EQ(got.keys(), reference_keys(ref_dir));
  int differ = 0;
  for (const auto& item : got) {
    const auto& want = ref.at(item.key());
    const auto& t = item.value();
    bool widened = t.scalar_type() == torch::kHalf || t.scalar_type() == torch::kBFloat16;
    if (!widened) {
      EXPECT_EQ(t.scalar_type(), want.scalar_type()) << item.key();
    }
    EXPECT_EQ(t.sizes(), want.sizes()) << item.key();
    if (t.sizes() != want.sizes() || !torch::equal(widened ? t.to(torch::kFloat) : t, want)) {
      ++differ;
      ADD_FAILURE() << item.key() << " differs, max |diff| " << vigil::testing::max_abs_diff(t, want);
    }
  }
  EXPECT_EQ(differ, 0);
}

TEST(WeightsParity, TorchvisionPublishedFormat) {
  VIGIL_FIXTURES(dir);
  auto sd = read_state_dict(dir / "resnet18.pth");
  EXPECT_EQ(sd.size(), 122u);
  expect_matches_reference(sd, dir / "resnet18_ref");
  EXPECT_EQ(sd["bn1.num_batches_tracked"].scalar_type(), torch::kLong);
  EXPECT_EQ(sd["bn1.num_batches_tracked"].dim(), 0);
}

TEST(WeightsParity, CheckpointModelEntry) {
  VIGIL_FIXTURES(dir);
  auto sd = read_state_dict(dir / "checkpoint.pth");
  expect_matches_reference(sd, dir / "checkpoint_ref");
  auto before = read_state_dict(dir / "resnet18.pth");
  EXPECT_FALSE(torch::equal(sd["conv1.weight"], before["conv1.weight"]));  // the step changed the weights
}

TEST(WeightsParity, TorchScriptArchive) {
  VIGIL_FIXTURES(dir);
  auto sd = read_state_dict(dir / "resnet18_script.pt");
  expect_matches_reference(sd, dir / "resnet18_script_ref");
}

TEST(WeightsParity, DetectorStateDict) {
  VIGIL_FIXTURES(dir);
  auto sd = read_state_dict(dir / "detector.pth");
  expect_matches_reference(sd, dir / "detector_ref");
  EXPECT_TRUE(sd.contains("roi_heads.box_predictor.cls_score.weight"));
  EXPECT_EQ(sd["roi_heads.box_predictor.cls_score.weight"].size(0), 2);
}

torch::ScalarType dtype_of(const std::string& name) {
  static const std::map<std::string, torch::ScalarType> kNames = {
      {"float32", torch::kFloat}, {"float64", torch::kDouble}, {"float16", torch::kHalf},
      {"int64", torch::kLong},    {"int32", torch::kInt},      {"uint8", torch::kByte},
      {"bool", torch::kBool}};
  return kNames.at(name);
}

// Views keep Python's dtype, strides, storage offset and storage sharing.
void expect_views(const StateDict& sd, const fs::path& dir) {
  expect_matches_reference(sd, dir / "views_ref");
  std::ifstream in(dir / "views_meta.json");
  auto meta = nlohmann::json::parse(in);
  for (auto& [key, m] : meta.items()) {
    const auto& t = sd[key];
    EXPECT_EQ(t.scalar_type(), dtype_of(m["dtype"])) << key;
    EXPECT_EQ(t.strides().vec(), m["stride"].get<std::vector<int64_t>>()) << key;
    EXPECT_EQ(t.storage_offset(), m["offset"].get<int64_t>()) << key;
    const auto shares = m["shares_with"].get<std::string>();
    if (!shares.empty()) {
      EXPECT_EQ(t.storage().data(), sd[shares].storage().data()) << key << " should share " << shares;
    }
  }
}

TEST(WeightsParity, ViewsOffsetsSharedStoragesAndDtypes) {
  VIGIL_FIXTURES(dir);
  expect_views(read_state_dict(dir / "views.pth"), dir);
}

TEST(WeightsParity, LegacyFormat) {
  VIGIL_FIXTURES(dir);
  expect_views(read_state_dict(dir / "legacy.pth"), dir);
  expect_matches_reference(read_state_dict(dir / "legacy_resnet.pth"), dir / "legacy_resnet_ref");
}

TEST(WeightsParity, TruncatedLegacyFileIsDataError) {
  VIGIL_FIXTURES(dir);
  std::ifstream in(dir / "legacy_resnet.pth", std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  TempDir tmp;
  for (size_t cut : {size_t{20}, bytes.size() / 2, bytes.size() - 4}) {
    std::ofstream(tmp / "cut.pth", std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(cut));
    try {
      read_state_dict(tmp / "cut.pth");
      ADD_FAILURE() << "no error for a legacy file cut at " << cut;
    } catch (const vigil::DataError& e) {
      EXPECT_THAT(e.what(), ::testing::HasSubstr("cut.pth")) << cut;
    }
  }
}

TEST(WeightsParity, SavedFilesLoadBackInPython) {
  VIGIL_FIXTURES(dir);
  TempDir out;
  save_state_dict(read_state_dict(dir / "resnet18.pth"), out / "resnet18_vigil.pth");
  auto [code, log] = vigil::testing::run_shell(
      python + " '" + VIGIL_SOURCE_DIR + "/tests/parity/gen_weights.py' '" + out.path().string() +
      "' --check '" + (out / "resnet18_vigil.pth").string() + "' '" + (dir / "resnet18_ref").string() + "'");
  EXPECT_EQ(code, 0) << log;

  save_state_dict(read_state_dict(dir / "detector.pth"), out / "detector_vigil.pth");
  auto [code2, log2] = vigil::testing::run_shell(
      python + " '" + VIGIL_SOURCE_DIR + "/tests/parity/gen_weights.py' '" + out.path().string() +
      "' --check '" + (out / "detector_vigil.pth").string() + "' '" + (dir / "detector_ref").string() + "'");
  EXPECT_EQ(code2, 0) << log2;
}

// Mixed dtypes and non-contiguous inputs written by vigil, checked in Python against a tensor_io directory.
TEST(WeightsParity, SavedMixedDtypesLoadBackInPython) {
  VIGIL_REQUIRE_TORCHVISION(python);
  TempDir out;
  torch::manual_seed(4);
  auto base = torch::randn({4, 6});
  StateDict sd;
  sd.insert("float", torch::randn({2, 3}));
  sd.insert("double", torch::randn({5}, torch::kDouble));
  sd.insert("long", torch::arange(6, torch::kLong).reshape({2, 3}));
  sd.insert("int", torch::arange(4, torch::kInt));
  sd.insert("uint8", torch::randint(0, 255, {7}, torch::kByte));
  sd.insert("bool", torch::tensor({true, false, true}));
  sd.insert("scalar", torch::tensor(2.5));
  sd.insert("transposed", base.t());
  sd.insert("offset", base.view({-1}).slice(0, 5));
  save_state_dict(sd, out / "mixed.pth");

  const std::map<torch::ScalarType, std::string> names = {
      {torch::kFloat, "float32"}, {torch::kDouble, "float64"}, {torch::kLong, "int64"},
      {torch::kInt, "int32"},     {torch::kByte, "uint8"},     {torch::kBool, "bool"}};
  nlohmann::ordered_json index;
  fs::create_directories(out / "ref");
  int n = 0;
  for (const auto& item : sd) {
    auto t = item.value().contiguous();
    auto file = std::to_string(n++) + ".bin";
    std::ofstream(out / "ref" / file, std::ios::binary)
        .write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
    index[item.key()] = {{"dtype", names.at(t.scalar_type())}, {"shape", t.sizes().vec()}, {"file", file}};
  }
  std::ofstream(out / "ref" / "index.json") << index.dump();
  auto [code, log] = vigil::testing::run_shell(
      python + " '" + VIGIL_SOURCE_DIR + "/tests/parity/gen_weights.py' '" + out.path().string() +
      "' --check '" + (out / "mixed.pth").string() + "' '" + (out / "ref").string() + "'");
  EXPECT_EQ(code, 0) << log;
}

}  // namespace

// Weight files without Python: loading by name into modules (reports, options, strict errors), corrupt inputs
// that must become DataError naming the file, and the C++ save/read round trip.
#include "vigil/nn/weights.h"

#include <caffe2/serialize/inline_container.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <fstream>
#include <random>

#include "tests_util.h"
#include "vigil/core/error.h"

namespace {

using ::testing::HasSubstr;
using vigil::DataError;
using vigil::InvalidArgument;
using vigil::nn::load_state_dict;
using vigil::nn::LoadOptions;
using vigil::nn::read_state_dict;
using vigil::nn::save_state_dict;
using vigil::nn::StateDict;
using vigil::testing::TempDir;

struct NetImpl : torch::nn::Module {
  NetImpl() {
    conv = register_module("conv", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 4, 3)));
    bn = register_module("bn", torch::nn::BatchNorm2d(4));
    head = register_module("head", torch::nn::Linear(4, 2));
  }
  torch::nn::Conv2d conv{nullptr};
  torch::nn::BatchNorm2d bn{nullptr};
  torch::nn::Linear head{nullptr};
};
TORCH_MODULE(Net);

// A module's parameters and buffers as a detached copy, like Python's state_dict().
StateDict state_of(torch::nn::Module& m) {
  StateDict out;
  for (const auto& p : m.named_parameters()) out.insert(p.key(), p.value().detach().clone());
  for (const auto& b : m.named_buffers()) out.insert(b.key(), b.value().detach().clone());
  return out;
}

StateDict random_state(int seed) {
  torch::manual_seed(seed);
  Net net;
  auto sd = state_of(*net);
  sd["bn.running_mean"].uniform_(-1, 1);
  sd["bn.running_var"].uniform_(0.5, 2);
  sd["bn.num_batches_tracked"].fill_(7);
  return sd;
}

StateDict without(const StateDict& in, const std::string& key) {
  StateDict out;
  for (const auto& item : in)
    if (item.key() != key) out.insert(item.key(), item.value());
  return out;
}

std::string invalid_argument_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const InvalidArgument& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected InvalidArgument";
  return "";
}

std::string data_error_message(const std::filesystem::path& file) {
  try {
    read_state_dict(file);
  } catch (const DataError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected DataError, got " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected DataError for " << file;
  return "";
}

std::string slurp(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::filesystem::path& p, const std::string& bytes) {
  std::ofstream(p, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// A zip archive with the given records, as torch.save lays them out (archive/<name>).
std::string make_archive(const std::vector<std::pair<std::string, std::string>>& records) {
  std::string buffer;
  caffe2::serialize::PyTorchStreamWriter writer([&](const void* d, size_t n) {
    buffer.append(static_cast<const char*>(d), n);
    return n;
  });
  for (const auto& [name, data] : records) writer.writeRecord(name, data.data(), data.size());
  writer.writeEndOfFile();
  return buffer;
}

TEST(LoadStateDict, ExactKeysCopyEverything) {
  auto sd = random_state(1);
  torch::manual_seed(2);
  Net net;
  auto report = load_state_dict(*net, sd);
  EXPECT_EQ(report.loaded.size(), 9u);
  EXPECT_TRUE(report.missing.empty() && report.unexpected.empty() && report.skipped.empty());
  auto after = state_of(*net);
  for (const auto& item : sd) EXPECT_TRUE(torch::equal(after[item.key()], item.value())) << item.key();
  EXPECT_FALSE(net->conv->weight.grad().defined());
  EXPECT_TRUE(net->conv->weight.requires_grad());
}

TEST(LoadStateDict, SequentialNames) {
  torch::nn::Sequential a(torch::nn::Linear(3, 4), torch::nn::ReLU(), torch::nn::Linear(4, 1));
  torch::nn::Sequential b(torch::nn::Linear(3, 4), torch::nn::ReLU(), torch::nn::Linear(4, 1));
  auto sd = state_of(*a);
  ASSERT_TRUE(sd.contains("2.weight"));
  auto report = load_state_dict(*b, sd);
  EXPECT_EQ(report.loaded.size(), 4u);
  EXPECT_TRUE(torch::equal(b[2]->as<torch::nn::Linear>()->weight, sd["2.weight"]));
}

TEST(LoadStateDict, MissingAndUnexpectedReportedWhenNotStrict) {
  auto sd = without(random_state(1), "head.bias");
  sd.insert("extra.weight", torch::zeros({2}));
  Net net;
  LoadOptions opt;
  opt.strict = false;
  auto report = load_state_dict(*net, sd, opt);
  EXPECT_EQ(report.loaded.size(), 8u);
  EXPECT_EQ(report.missing, std::vector<std::string>{"head.bias"});
  EXPECT_EQ(report.unexpected, std::vector<std::string>{"extra.weight"});
  auto text = report.to_text();
  EXPECT_THAT(text, HasSubstr("8 loaded, 1 missing, 1 unexpected"));
  EXPECT_THAT(text, HasSubstr("head.bias"));
}

TEST(LoadStateDict, StrictErrorNamesKeysAndCounts) {
  auto sd = without(random_state(1), "head.bias");
  sd.insert("extra.weight", torch::zeros({2}));
  Net net;
  auto msg = invalid_argument_message([&] { load_state_dict(*net, sd); });
  EXPECT_THAT(msg, HasSubstr("1 missing: head.bias"));
  EXPECT_THAT(msg, HasSubstr("1 unexpected: extra.weight"));
  EXPECT_THAT(msg, HasSubstr("8 of 9 module keys match"));
  EXPECT_THAT(msg, ::testing::Not(HasSubstr("different architecture")));
}

TEST(LoadStateDict, OtherArchitectureIsObvious) {
  StateDict sd;
  for (int i = 0; i < 20; ++i) sd.insert("features." + std::to_string(i) + ".weight", torch::zeros({3}));
  Net net;
  auto msg = invalid_argument_message([&] { load_state_dict(*net, sd); });
  EXPECT_THAT(msg, HasSubstr("0 of 9 module keys match the file's 20 keys"));
  EXPECT_THAT(msg, HasSubstr("different architecture"));
  EXPECT_THAT(msg, HasSubstr("(15 more)"));
}

TEST(LoadStateDict, ExtraPrefixHint) {
  StateDict sd;
  for (const auto& item : random_state(1)) sd.insert("backbone." + item.key(), item.value());
  Net net;
  auto msg = invalid_argument_message([&] { load_state_dict(*net, sd); });
  EXPECT_THAT(msg, HasSubstr("extra prefix 'backbone.'"));
}

TEST(LoadStateDict, ShapeMismatchStrictAndSkipped) {
  auto sd = random_state(1);
  sd["head.weight"] = torch::ones({3, 4});
  sd["head.bias"] = torch::ones({3});
  Net net;
  auto msg = invalid_argument_message([&] { load_state_dict(*net, sd); });
  EXPECT_THAT(msg, HasSubstr("head.weight: expected [2, 4], got [3, 4]"));

  torch::manual_seed(5);
  Net fresh;
  auto before = fresh->head->weight.detach().clone();
  LoadOptions opt;
  opt.skip_shape_mismatch = true;
  auto report = load_state_dict(*fresh, sd, opt);  // strict, but the mismatched head is skipped on purpose
  EXPECT_EQ(report.loaded.size(), 7u);
  EXPECT_EQ(report.shape_mismatches.size(), 2u);
  EXPECT_EQ(report.skipped.size(), 2u);
  EXPECT_TRUE(torch::equal(fresh->head->weight, before));
  EXPECT_TRUE(torch::equal(fresh->conv->weight, sd["conv.weight"]));
}

TEST(LoadStateDict, SkipPrefixes) {
  auto sd = without(without(random_state(1), "head.weight"), "head.bias");
  Net net;
  auto before = net->head->weight.detach().clone();
  LoadOptions opt;
  opt.skip_prefixes = {"head."};
  auto report = load_state_dict(*net, sd, opt);
  EXPECT_EQ(report.loaded.size(), 7u);
  EXPECT_EQ(report.skipped.size(), 2u);
  EXPECT_THAT(report.skipped[0], HasSubstr("skip_prefixes"));
  EXPECT_TRUE(torch::equal(net->head->weight, before));
}

TEST(LoadStateDict, OnlyPrefixes) {
  StateDict sd;
  for (const auto& item : random_state(1))
    if (item.key().rfind("conv.", 0) == 0) sd.insert(item.key(), item.value());
  sd.insert("roi_heads.box_predictor.cls_score.weight", torch::zeros({2, 4}));
  Net net;
  LoadOptions opt;
  opt.only_prefixes = {"conv."};
  auto report = load_state_dict(*net, sd, opt);
  EXPECT_EQ(report.loaded, (std::vector<std::string>{"conv.weight", "conv.bias"}));
  EXPECT_TRUE(report.missing.empty());
  EXPECT_TRUE(report.unexpected.empty());
  EXPECT_EQ(report.skipped.size(), 8u);  // 7 module keys + 1 file key outside conv.
}

TEST(LoadStateDict, NumBatchesTrackedOnEitherSideIsNotAnError) {
  auto sd = without(random_state(1), "bn.num_batches_tracked");
  Net net;
  auto report = load_state_dict(*net, sd);
  EXPECT_EQ(report.loaded.size(), 8u);
  ASSERT_EQ(report.skipped.size(), 1u);
  EXPECT_THAT(report.skipped[0], HasSubstr("bn.num_batches_tracked"));

  torch::nn::Sequential seq(torch::nn::Linear(2, 2));
  auto lin = state_of(*seq);
  lin.insert("1.num_batches_tracked", torch::tensor(3, torch::kLong));
  EXPECT_NO_THROW(load_state_dict(*seq, lin));
}

TEST(LoadStateDict, DtypeConversionWithinAKind) {
  auto sd = random_state(1);
  for (auto& item : sd)
    if (item.value().is_floating_point()) item.value() = item.value().to(torch::kDouble);
  Net net;
  load_state_dict(*net, sd);
  EXPECT_EQ(net->conv->weight.scalar_type(), torch::kFloat);
  EXPECT_TRUE(torch::equal(net->conv->weight, sd["conv.weight"].to(torch::kFloat)));

  sd["head.bias"] = torch::ones({2}, torch::kLong);
  auto msg = invalid_argument_message([&] { load_state_dict(*net, sd); });
  EXPECT_THAT(msg, HasSubstr("head.bias: expected dtype float32, got int64"));
}

TEST(LoadStateDict, EmptyPrefixRejected) {
  Net net;
  LoadOptions opt;
  opt.skip_prefixes = {""};
  EXPECT_THROW(load_state_dict(*net, random_state(1), opt), InvalidArgument);
}

StateDict mixed_state() {
  torch::manual_seed(3);
  auto base = torch::randn({4, 6});
  StateDict sd;
  sd.insert("float", torch::randn({2, 3}));
  sd.insert("double", torch::randn({5}, torch::kDouble));
  sd.insert("half", torch::randn({3}).to(torch::kHalf));
  sd.insert("bfloat16", torch::randn({3}).to(torch::kBFloat16));
  sd.insert("long", torch::arange(6, torch::kLong).reshape({2, 3}));
  sd.insert("int", torch::arange(4, torch::kInt));
  sd.insert("uint8", torch::randint(0, 255, {7}, torch::kByte));
  sd.insert("bool", torch::tensor({true, false, true}));
  sd.insert("scalar", torch::tensor(2.5));
  sd.insert("empty", torch::zeros({0, 3}));
  sd.insert("transposed", base.t());
  sd.insert("offset", base.view({-1}).slice(0, 5));
  sd.insert("big_int", torch::tensor({int64_t{1} << 40, -(int64_t{1} << 40)}));
  return sd;
}

TEST(SaveStateDict, RoundTripInCpp) {
  TempDir dir;
  auto sd = mixed_state();
  save_state_dict(sd, dir / "w.pth");
  auto back = read_state_dict(dir / "w.pth");
  ASSERT_EQ(back.keys(), sd.keys());
  for (const auto& item : sd) {
    const auto& got = back[item.key()];
    EXPECT_EQ(got.scalar_type(), item.value().scalar_type()) << item.key();
    EXPECT_EQ(got.sizes(), item.value().sizes()) << item.key();
    EXPECT_TRUE(torch::equal(got, item.value())) << item.key();
  }
}

TEST(ReadStateDict, StripsDataParallelPrefix) {
  TempDir dir;
  StateDict sd;
  sd.insert("module.conv.weight", torch::ones({2}));
  sd.insert("module.conv.bias", torch::zeros({1}));
  save_state_dict(sd, dir / "dp.pth");
  auto back = read_state_dict(dir / "dp.pth");
  EXPECT_EQ(back.keys(), (std::vector<std::string>{"conv.weight", "conv.bias"}));
}

TEST(ReadStateDict, MissingFileIsNotFound) {
  TempDir dir;
  EXPECT_THROW(read_state_dict(dir / "nope.pth"), vigil::NotFound);
}

TEST(ReadStateDict, CorruptInputsAreDataErrorsNamingTheFile) {
  TempDir dir;
  write_bytes(dir / "zero.pth", "");
  EXPECT_THAT(data_error_message(dir / "zero.pth"), HasSubstr("zero.pth: empty file"));

  std::mt19937 rng(7);
  std::string noise(4096, '\0');
  for (auto& c : noise) c = static_cast<char>(rng() & 0xff);
  noise[0] = 'x';
  write_bytes(dir / "noise.pth", noise);
  EXPECT_THAT(data_error_message(dir / "noise.pth"), HasSubstr("noise.pth: not a PyTorch weight file"));

  write_bytes(dir / "notes.txt", "these are not weights\n");
  EXPECT_THAT(data_error_message(dir / "notes.txt"), HasSubstr("notes.txt: not a PyTorch weight file"));

  std::filesystem::create_directory(dir / "folder.pth");
  EXPECT_THAT(data_error_message(dir / "folder.pth"), HasSubstr("is a directory"));

  write_bytes(dir / "pickle.pth", "\x80\x02}q\x00.");
  EXPECT_THAT(data_error_message(dir / "pickle.pth"), HasSubstr("not a file written by torch.save"));
}

TEST(ReadStateDict, TruncatedZipIsDataError) {
  TempDir dir;
  save_state_dict(mixed_state(), dir / "full.pth");
  const auto bytes = slurp(dir / "full.pth");
  for (size_t cut : {size_t{2}, size_t{30}, size_t{100}, bytes.size() / 2, bytes.size() - 10}) {
    auto name = "cut" + std::to_string(cut) + ".pth";
    write_bytes(dir / name, bytes.substr(0, cut));
    EXPECT_THAT(data_error_message(dir / name), HasSubstr(name)) << cut;
  }
}

TEST(ReadStateDict, ArchiveProblemsAreDataErrors) {
  TempDir dir;
  write_bytes(dir / "nopkl.pth", make_archive({{"other.txt", "hi"}}));
  EXPECT_THAT(data_error_message(dir / "nopkl.pth"), HasSubstr("without data.pkl"));

  write_bytes(dir / "garbage.pth", make_archive({{"data.pkl", "\x80\x02\xff\xfe garbage"}}));
  EXPECT_THAT(data_error_message(dir / "garbage.pth"), HasSubstr("garbage.pth:data.pkl: corrupt"));

  // A tensor whose storage record is absent.
  save_state_dict(mixed_state(), dir / "full.pth");
  caffe2::serialize::PyTorchStreamReader reader((dir / "full.pth").string());
  auto [pkl, size] = reader.getRecord("data.pkl");
  std::string pickle(static_cast<const char*>(pkl.get()), size);
  write_bytes(dir / "nostorage.pth", make_archive({{"data.pkl", pickle}}));
  EXPECT_THAT(data_error_message(dir / "nostorage.pth"), HasSubstr("lacks the storage record"));

  // A list instead of a dict.
  write_bytes(dir / "list.pth", make_archive({{"data.pkl", std::string("\x80\x02]q\x00.", 6)}}));
  EXPECT_THAT(data_error_message(dir / "list.pth"), HasSubstr("holds a list"));
}

std::string short_string(const std::string& s) {
  return std::string("X") + static_cast<char>(s.size()) + std::string(3, '\0') + s;
}

// Wraps a saved state dict's pickle into {"epoch": 3, <key>: state_dict} as a training checkpoint does.
std::string checkpoint_archive(const std::filesystem::path& saved, const std::string& key) {
  caffe2::serialize::PyTorchStreamReader reader(saved.string());
  auto [pkl, size] = reader.getRecord("data.pkl");
  std::string inner(static_cast<const char*>(pkl.get()) + 2, size - 3);  // without PROTO and STOP
  std::string outer =
      std::string("\x80\x02}(", 4) + short_string("epoch") + "K\x03" + short_string(key) + inner + "u.";
  std::vector<std::pair<std::string, std::string>> records = {{"data.pkl", outer}};
  for (const auto& name : reader.getAllRecords()) {
    if (name.rfind("data/", 0) != 0) continue;
    auto [d, n] = reader.getRecord(name);
    records.emplace_back(name, std::string(static_cast<const char*>(d.get()), n));
  }
  return make_archive(records);
}

TEST(ReadStateDict, CheckpointEntries) {
  TempDir dir;
  auto sd = random_state(1);
  save_state_dict(sd, dir / "sd.pth");
  for (const char* key : {"model", "state_dict", "model_state_dict", "ema"}) {
    write_bytes(dir / "ckpt.pth", checkpoint_archive(dir / "sd.pth", key));
    auto back = read_state_dict(dir / "ckpt.pth");
    EXPECT_EQ(back.keys(), sd.keys()) << key;
    EXPECT_TRUE(torch::equal(back["conv.weight"], sd["conv.weight"])) << key;
  }
  write_bytes(dir / "other.pth", checkpoint_archive(dir / "sd.pth", "weights_of_something"));
  auto msg = data_error_message(dir / "other.pth");
  EXPECT_THAT(msg, HasSubstr("no state dict found"));
  EXPECT_THAT(msg, HasSubstr("epoch (int), weights_of_something (dict)"));
}

TEST(ReadStateDict, PickledModuleObjectIsExplained) {
  TempDir dir;
  write_bytes(dir / "obj.pth", make_archive({{"data.pkl", std::string("\x80\x02"
                                                                      "c__main__\nNet\nq\x00)\x81q\x01}b.",
                                                                      25)}}));
  auto msg = data_error_message(dir / "obj.pth");
  EXPECT_THAT(msg, HasSubstr("pickled '__main__.Net' object"));
  EXPECT_THAT(msg, HasSubstr("model.state_dict()"));
}

TEST(ReadStateDict, DeeplyNestedPickleDoesNotOverflowTheStack) {
  TempDir dir;
  const size_t n = 1000000;  // a million nested lists: freeing them recursively would overflow the stack
  std::string pkl = std::string("\x80\x02") + std::string(n, ']') + std::string(n - 1, 'a') + ".";
  write_bytes(dir / "deep.pth", make_archive({{"data.pkl", pkl}}));
  EXPECT_THAT(data_error_message(dir / "deep.pth"), HasSubstr("holds a list"));
}

TEST(ReadStateDict, HugeStorageClaimIsDataError) {
  TempDir dir;
  std::string huge("\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x40", 10);  // LONG1 2^62
  std::string pkl = std::string("\x80\x02}(", 4) + short_string("w") +
                    "ctorch._utils\n_rebuild_tensor_v2\n((" + short_string("storage") +
                    "ctorch\nFloatStorage\n" + short_string("0") + short_string("cpu") + huge + "tQK\x01(" +
                    huge + "t(K\x01t\x89NtRu.";
  write_bytes(dir / "huge.pth", make_archive({{"data.pkl", pkl}, {"data/0", std::string(16, '\0')}}));
  EXPECT_THAT(data_error_message(dir / "huge.pth"), HasSubstr("storage 'data/0' has 16 bytes"));
}

// Every single-byte corruption of a real pickle must end in a DataError or a (different) valid result.
TEST(ReadStateDict, MutatedPicklesNeverCrash) {
  TempDir dir;
  save_state_dict(mixed_state(), dir / "full.pth");
  caffe2::serialize::PyTorchStreamReader reader((dir / "full.pth").string());
  auto [pkl, size] = reader.getRecord("data.pkl");
  const std::string pickle(static_cast<const char*>(pkl.get()), size);
  std::vector<std::pair<std::string, std::string>> records;
  for (size_t k = 0; k < 13; ++k) {
    auto [d, n] = reader.getRecord("data/" + std::to_string(k));
    records.emplace_back("data/" + std::to_string(k), std::string(static_cast<const char*>(d.get()), n));
  }
  std::mt19937 rng(11);
  int errors = 0;
  for (int trial = 0; trial < 300; ++trial) {
    auto mutated = pickle;
    mutated[rng() % mutated.size()] = static_cast<char>(rng() & 0xff);
    auto all = records;
    all.emplace_back("data.pkl", mutated);
    write_bytes(dir / "m.pth", make_archive(all));
    try {
      read_state_dict(dir / "m.pth");
    } catch (const DataError&) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 0);
}

// Random byte corruption anywhere in the zip container (headers, central directory, pickle, tensor data) ends
// in one of two ways: a DataError that names the file, or a state dict whose every tensor is defined and can
// be read to its last element (a flipped byte in the pickle may rename a key or change a value; it must
// never make a tensor point outside its storage). Anything else escaping read_state_dict (c10::Error,
// std::bad_alloc, a crash) fails the test, and both outcomes must actually occur.
TEST(ReadStateDict, MutatedZipBytesNeverCrash) {
  TempDir dir;
  save_state_dict(mixed_state(), dir / "full.pth");
  const auto bytes = slurp(dir / "full.pth");
  std::mt19937 rng(13);
  int errors = 0, reads = 0;
  for (int trial = 0; trial < 200; ++trial) {
    auto mutated = bytes;
    for (int k = 0; k < 4; ++k) mutated[rng() % mutated.size()] = static_cast<char>(rng() & 0xff);
    write_bytes(dir / "z.pth", mutated);
    try {
      const StateDict read = read_state_dict(dir / "z.pth");
      ++reads;
      EXPECT_GT(read.size(), 0u) << "trial " << trial;
      for (const auto& item : read) {
        ASSERT_TRUE(item.value().defined()) << "trial " << trial << ": " << item.key();
        // Touches every element: a tensor whose sizes outgrew its storage would read out of bounds here.
        (void)item.value().to(torch::kDouble).sum().item<double>();
      }
    } catch (const DataError& e) {
      ++errors;
      EXPECT_THAT(e.what(), HasSubstr("z.pth")) << "trial " << trial;
    }
  }
  EXPECT_GT(errors, 0);
  EXPECT_GT(reads, 0);
}

TEST(DescribeStateDict, ListsKeysShapesAndTotals) {
  auto text = vigil::nn::describe_state_dict(random_state(1));
  EXPECT_THAT(text, HasSubstr("conv.weight"));
  EXPECT_THAT(text, HasSubstr("[4, 3, 3, 3]"));
  EXPECT_THAT(text, HasSubstr("int64"));
  EXPECT_THAT(text, HasSubstr("9 tensors, 139 elements (138 floating-point)"));
}

}  // namespace

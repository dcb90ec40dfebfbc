// Drives the real `vigil` binary from a torchvision weight file to predictions: `weights import` of a .pth
// written by torchvision 0.14, `predict` over generated JPEG/PNG images, and a comparison with torchvision's
// own outputs on the same pixels (classifier probabilities within 1e-4; detector boxes within 1e-3 px and
// scores within 1e-4). Also shards, list files, COCO output, drawn images, and bad inputs.
// Reference: tests/integration/gen_predict_fixtures.py, run with Debian's python3-torchvision.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>

#include "tests_util.h"
#include "vigil/core/cpu.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"
#include "vigil/image/decode.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::HasSubstr;
using vigil::testing::CommandResult;
using vigil::testing::run_vigil;
using vigil::testing::TempDir;

constexpr double kProbTolerance = 1e-4;
constexpr double kBoxTolerance = 1e-3;
constexpr double kScoreTolerance = 1e-4;

std::string q(const fs::path& p) {
  return "'" + p.string() + "'";
}

std::vector<json> json_lines(const std::string& text) {
  std::vector<json> out;
  for (const auto& line : vigil::split(text, '\n'))
    if (!vigil::trim(line).empty()) out.push_back(json::parse(line));
  return out;
}

std::string stem_of(const std::string& path) {
  return fs::path(path).stem().string();
}

/// Real images of assorted sizes and formats, one in a subfolder, plus the lossless copies the reference
/// reads: decoded by vigil's decoder (the same pixels vigil predicts on), resized with OpenCV's bilinear
/// resize when `input_size` > 0 (what vigil's loader does for classifiers).
struct ImageSet {
  std::vector<fs::path> images;
  std::vector<fs::path> reference_pngs;
};

ImageSet make_images(const fs::path& dir, const fs::path& ref_dir, int input_size) {
  const std::vector<std::tuple<std::string, int, int>> specs = {{"img0.png", 224, 224},
                                                                {"img1.jpg", 320, 240},
                                                                {"img2.jpg", 180, 260},
                                                                {"sub/img3.png", 400, 300},
                                                                {"img4.jpg", 97, 131}};
  ImageSet set;
  int seed = 1;
  for (const auto& [name, w, h] : specs) {
    const fs::path p = dir / name;
    vigil::testing::write_image(p, w, h, seed++);
    auto dec = vigil::image::decode_file(p.string());
    EXPECT_TRUE(dec.ok()) << p;
    cv::Mat pixels = dec.bgr;
    if (input_size > 0) cv::resize(dec.bgr, pixels, cv::Size(input_size, input_size), 0, 0, cv::INTER_LINEAR);
    const fs::path ref = ref_dir / (stem_of(name) + ".png");
    fs::create_directories(ref_dir);
    EXPECT_TRUE(cv::imwrite(ref.string(), pixels));
    set.images.push_back(p);
    set.reference_pngs.push_back(ref);
  }
  return set;
}

bool run_generator(const std::string& python, const std::string& mode, const fs::path& out,
                   const ImageSet& set) {
  std::string cmd = python + " " +
                    q(fs::path(VIGIL_SOURCE_DIR) / "tests/integration/gen_predict_fixtures.py") + " " + mode +
                    " " + q(out);
  for (const auto& p : set.reference_pngs) cmd += " " + q(p);
  auto [code, output] = vigil::testing::run_shell(cmd);
  if (code != 0) ADD_FAILURE() << "generator failed: " << output;
  return code == 0;
}

class PredictCli : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto python = vigil::testing::reference_python();
    if (!python) return;
    dir_ = new TempDir();
    images_ = make_images(dir_->path() / "images", dir_->path() / "ref", 224);
    if (!run_generator(*python, "classifier", dir_->path() / "gen", images_)) return;
    expected_ = json::parse(vigil::read_file(dir_->path() / "gen" / "expected.json"));
    auto r = run_vigil("weights import " + q(dir_->path() / "gen" / "weights.pth") +
                           " --arch mobilenet_v3_small --class-names helmet,head,person --output " +
                           q(model_path()),
                       dir_->path() / "ws");
    import_output_ = r.out + r.err;
    ready_ = r.exit_code == 0;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (!vigil::testing::reference_python()) GTEST_SKIP() << "python3 with torchvision absent; skipping";
    ASSERT_TRUE(ready_) << import_output_;
  }

  static fs::path model_path() { return dir_->path() / "model.vgm"; }
  static fs::path images_dir() { return dir_->path() / "images"; }
  CommandResult vigil(const std::string& args) { return run_vigil(args, tmp_ / "ws"); }

  /// Every line must match torchvision's probabilities for that image, within `tolerance`; the label too,
  /// unless the reference's two best are closer than twice the tolerance.
  void expect_parity(const std::vector<json>& lines, double tolerance = kProbTolerance) {
    const std::vector<std::string> names = {"helmet", "head", "person"};
    for (const auto& line : lines) {
      const std::string key = stem_of(line.at("image")) + ".png";
      ASSERT_TRUE(expected_.contains(key)) << line.dump();
      const auto& want = expected_.at(key);
      size_t best = 0;
      for (size_t k = 0; k < 3; ++k) {
        EXPECT_NEAR(line.at("probs").at(names[k]).get<double>(), want.at(k).get<double>(), tolerance)
            << key << " class " << names[k];
        if (want.at(k).get<double>() > want.at(best).get<double>()) best = k;
      }
      double second = 0;
      for (size_t k = 0; k < 3; ++k)
        if (k != best) second = std::max(second, want.at(k).get<double>());
      if (want.at(best).get<double>() - second > 2 * tolerance) {
        EXPECT_EQ(line.at("label"), names[best]) << key;
        EXPECT_EQ(line.at("class_id"), static_cast<int>(best)) << key;
      }
      EXPECT_NEAR(line.at("score").get<double>(), want.at(best).get<double>(), tolerance);
    }
  }

  TempDir tmp_;
  static inline TempDir* dir_ = nullptr;
  static inline ImageSet images_;
  static inline json expected_;
  static inline bool ready_ = false;
  static inline std::string import_output_;
};

TEST_F(PredictCli, ImportReportsEveryKeyAndShowDescribesTheModel) {
  EXPECT_THAT(import_output_, HasSubstr("0 missing, 0 unexpected, 0 skipped, 0 shape mismatches"));
  EXPECT_THAT(import_output_, HasSubstr("wrote " + model_path().string()));
  auto r = vigil("weights show " + q(model_path()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("mobilenet_v3_small"));
  EXPECT_THAT(r.out, HasSubstr("classes     3: helmet, head, person"));
  EXPECT_THAT(r.out, HasSubstr("input       224x224"));
  EXPECT_THAT(r.out, HasSubstr("parameters  1520931"));  // torchvision's count for 3 classes

  // Back out as a .pth that torchvision loads strictly, holding the same tensors.
  r = vigil("weights export " + q(model_path()) + " --output " + q(tmp_ / "back.pth"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string check =
      "import torch, torchvision; m = torchvision.models.mobilenet_v3_small(num_classes=3); "
      "m.load_state_dict(torch.load('" +
      (tmp_ / "back.pth").string() + "')); a = torch.load('" +
      (dir_->path() / "gen" / "weights.pth").string() +
      "'); b = m.state_dict(); assert all(torch.equal(a[k], b[k]) for k in a), 'tensors differ'; "
      "print('same')";
  auto [code, output] =
      vigil::testing::run_shell(*vigil::testing::reference_python() + " -c \"" + check + "\"");
  EXPECT_EQ(code, 0) << output;
  EXPECT_THAT(output, HasSubstr("same"));
  r = vigil("weights inspect " + q(tmp_ / "back.pth"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("classifier.3.weight"));
}

TEST_F(PredictCli, ClassifierProbabilitiesMatchTorchvision) {
  auto r = vigil("predict --model " + q(model_path()) + " " + q(images_dir()) + " --batch 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), images_.images.size()) << r.out;
  std::vector<std::string> order;
  for (const auto& l : lines) order.push_back(l.at("image"));
  EXPECT_TRUE(std::is_sorted(order.begin(), order.end()));
  expect_parity(lines);
  // Widths and heights are the original image's.
  for (const auto& l : lines) {
    auto dec = vigil::image::decode_file(l.at("image").get<std::string>());
    EXPECT_EQ(l.at("width"), dec.bgr.cols);
    EXPECT_EQ(l.at("height"), dec.bgr.rows);
  }
  EXPECT_THAT(r.err, HasSubstr("predicted 5 image(s), 0 unreadable"));

  // The torchvision file itself, with --arch, gives the same answers (one image per batch, one decoder).
  r = vigil("predict --model " + q(dir_->path() / "gen" / "weights.pth") +
            " --arch mobilenet_v3_small --batch 1 --decode-threads 1 " + q(images_dir()) + " --output " +
            q(tmp_ / "out.jsonl"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out.empty());
  const auto from_pth = json_lines(vigil::read_file(tmp_ / "out.jsonl"));
  ASSERT_EQ(from_pth.size(), lines.size());
  EXPECT_EQ(from_pth[0].at("label"), "class_" + std::to_string(lines[0].at("class_id").get<int>()));
}

// bf16 (nn/precision.h) on the same images: within 0.02 of torchvision's float32 probabilities where the CPU
// has the instructions; refused by name where it does not (simulated through VIGIL_CPU_FLAGS, which the
// child process inherits); other precisions name the valid ones.
TEST_F(PredictCli, Bf16StaysNearFloat32AndIsRefusedWithoutTheInstructions) {
  if (vigil::cpu_info().has_bf16()) {
    auto r = vigil("predict --model " + q(model_path()) + " " + q(images_dir()) + " --precision bf16");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto lines = json_lines(r.out);
    ASSERT_EQ(lines.size(), images_.images.size()) << r.out;
    expect_parity(lines, 0.02);
  }
  setenv("VIGIL_CPU_FLAGS", "fpu sse4_2 avx avx2 avx512f avx512bw", 1);
  auto r = vigil("predict --model " + q(model_path()) + " " + q(images_dir()) + " --precision bf16");
  unsetenv("VIGIL_CPU_FLAGS");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_THAT(r.err, AllOf(HasSubstr("avx512_bf16"), HasSubstr("precision fp32")));
  EXPECT_TRUE(r.out.empty()) << "nothing predicted before the refusal";

  // int8 needs calibration images, and a ResNet backbone (this model is a MobileNetV3): both said before
  // anything is predicted.
  r = vigil("predict --model " + q(model_path()) + " " + q(images_dir()) + " --precision int8");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("calibration"));
  if (vigil::cpu_info().has_int8_dot()) {
    r = vigil("predict --model " + q(model_path()) + " " + q(images_dir()) +
              " --precision int8 --calibration " + q(images_dir()));
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_THAT(r.err, AllOf(HasSubstr("ResNet backbone"), HasSubstr("mobilenet_v3_small")));
    EXPECT_TRUE(r.out.empty());
  }
  r = vigil("predict --model " + q(model_path()) + " " + q(images_dir()) + " --precision fp16");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, AllOf(HasSubstr("fp32, bf16 or int8"), HasSubstr("fp16")));
}

TEST_F(PredictCli, ShardsCoverEveryImageExactlyOnce) {
  std::multiset<std::string> seen;
  for (int i = 0; i < 3; ++i) {
    auto r = vigil("predict -m " + q(model_path()) + " " + q(images_dir()) + " --shard " + std::to_string(i) +
                   "/3");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const auto lines = json_lines(r.out);
    EXPECT_EQ(lines.size(), i < 2 ? 2u : 1u);
    for (const auto& l : lines) seen.insert(l.at("image"));
    expect_parity(lines);
  }
  std::multiset<std::string> all;
  for (const auto& p : images_.images) all.insert(p.string());
  EXPECT_EQ(seen, all);
  auto r = vigil("predict -m " + q(model_path()) + " " + q(images_dir()) + " --shard 3/3");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("0 <= i < n"));
}

TEST_F(PredictCli, ListFilesAndUnreadableImagesAreReported) {
  vigil::testing::write_text(tmp_ / "broken.jpg", "not an image at all");
  const std::string list = "# images to check\n" + images_.images[1].string() + "\n\n" +
                           images_.images[3].string() + "\n" + (tmp_ / "gone.jpg").string() + "\n" +
                           (tmp_ / "broken.jpg").string() + "\n";
  vigil::testing::write_text(tmp_ / "list.txt", list);
  auto r = vigil("predict -m " + q(model_path()) + " @" + (tmp_ / "list.txt").string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), 2u);
  expect_parity(lines);
  EXPECT_THAT(r.err, HasSubstr("gone.jpg: unreadable"));
  EXPECT_THAT(r.err, HasSubstr("broken.jpg: not_an_image"));
  EXPECT_THAT(r.err, HasSubstr("predicted 2 image(s), 2 unreadable"));

  // --list is the same thing; nothing readable at all is an error (exit 3).
  vigil::testing::write_text(tmp_ / "bad.txt", (tmp_ / "broken.jpg").string() + "\n");
  r = vigil("predict -m " + q(model_path()) + " --list " + q(tmp_ / "bad.txt"));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, HasSubstr("no image could be predicted"));
}

TEST_F(PredictCli, SaveWritesDecodableDrawnImages) {
  auto r = vigil("predict -m " + q(model_path()) + " " + q(images_dir()) + " --save " + q(tmp_ / "drawn"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& p : images_.images) {
    const fs::path drawn = tmp_ / "drawn" / p.filename();
    ASSERT_TRUE(fs::exists(drawn)) << drawn;
    auto a = vigil::image::decode_file(drawn.string());
    auto b = vigil::image::decode_file(p.string());
    ASSERT_TRUE(a.ok()) << a.error.detail;
    EXPECT_EQ(a.bgr.size(), b.bgr.size());
    if (p.extension() == ".png") {
      EXPECT_GT(cv::norm(a.bgr, b.bgr, cv::NORM_L1), 0) << "nothing drawn";
    }
  }
}

TEST_F(PredictCli, PartialImportForFineTuning) {
  auto r = vigil("weights import " + q(dir_->path() / "gen" / "weights.pth") +
                 " --arch mobilenet_v3_small --class-names ok,bad --partial skip-predictor");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("0 missing, 0 unexpected, 2 skipped"));
  EXPECT_THAT(r.out, HasSubstr("classifier.3.weight (skip_prefixes)"));
  const auto pos = r.out.find("wrote ");
  ASSERT_NE(pos, std::string::npos);
  const std::string written(vigil::trim(r.out.substr(pos + 6)));
  EXPECT_THAT(written, HasSubstr((tmp_ / "ws" / "models" / "mobilenet_v3_small-").string()));
  r = vigil("weights show " + q(written));
  EXPECT_THAT(r.out, HasSubstr("classes     2: ok, bad"));
  // Without --partial the head does not fit: the mismatching key is named.
  r = vigil("weights import " + q(dir_->path() / "gen" / "weights.pth") +
            " --arch mobilenet_v3_small --class-names ok,bad");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("'classifier.3.weight' (expected shape [2, 1024], got [3, 1024])"));
}

TEST_F(PredictCli, BadInputsGiveClearErrors) {
  const std::string pth = q(dir_->path() / "gen" / "weights.pth");
  auto r = vigil("weights import " + pth + " --arch mobilenet_v9");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, AllOf(HasSubstr("mobilenet_v9"), HasSubstr("mobilenet_v3_small")));

  r = vigil("weights import " + pth + " --arch resnet18");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err,
              AllOf(HasSubstr("first mismatching key is 'conv1.weight'"), HasSubstr("another architecture")));

  r = vigil("weights import " + q(tmp_ / "missing.pth") + " --arch resnet18");
  EXPECT_EQ(r.exit_code, 4);

  r = vigil("predict -m " + q(tmp_ / "missing.vgm") + " " + q(images_dir()));
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_THAT(r.err, HasSubstr("missing.vgm"));

  r = vigil("predict -m " + q(model_path()) + " " + q(tmp_ / "no_such_dir"));
  EXPECT_EQ(r.exit_code, 4);
  EXPECT_THAT(r.err, HasSubstr("no_such_dir: no such file or directory"));

  std::string bytes = vigil::read_file(model_path());
  bytes[bytes.size() / 3] ^= 0x40;
  vigil::testing::write_text(tmp_ / "corrupt.vgm", bytes);
  r = vigil("predict -m " + q(tmp_ / "corrupt.vgm") + " " + q(images_dir()));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, AllOf(HasSubstr("corrupt.vgm"), HasSubstr("corrupt")));

  r = vigil("predict -m " + pth + " " + q(images_dir()));
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_THAT(r.err, HasSubstr("--arch"));

  r = vigil("predict -m " + q(model_path()) + " --arch resnet18 " + q(images_dir()));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("got one of 'mobilenet_v3_small'"));

  r = vigil("predict -m " + q(model_path()) + " --format coco " + q(images_dir()));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("COCO results hold boxes"));

  r = vigil("predict -m " + q(model_path()) + " --device cuda " + q(images_dir()));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("CUDA is not available"));

  r = vigil("predict -m " + q(model_path()) + " --batch 0 " + q(images_dir()));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("batch_size >= 1"));

  r = vigil("predict -m " + q(model_path()));
  EXPECT_EQ(r.exit_code, 2);
}

// ---- detector: fasterrcnn_mobilenet_v3_large_320_fpn from torchvision, end to end ----

/// Finds a prediction matching `want` (same label, box within 1e-3 px, score within 1e-4).
bool has_match(const json& detections, const std::vector<double>& box, double score, int64_t label) {
  for (const auto& d : detections) {
    if (d.at("class_id").get<int64_t>() != label) continue;
    if (std::abs(d.at("score").get<double>() - score) > kScoreTolerance) continue;
    bool close = true;
    for (int k = 0; k < 4; ++k)
      close = close && std::abs(d.at("box")[k].get<double>() - box[k]) <= kBoxTolerance;
    if (close) return true;
  }
  return false;
}

TEST(PredictDetectorCli, FasterRcnnMatchesTorchvisionEndToEnd) {
  VIGIL_REQUIRE_TORCHVISION(python);
  TempDir tmp;
  auto images = make_images(tmp / "images", tmp / "ref", 0);
  // A second image of img1's size: with --batch 3 the two share a forward pass (same-size images batch).
  fs::copy_file(images.images[1], tmp / "images" / "img1b.jpg");
  fs::copy_file(images.reference_pngs[1], tmp / "ref" / "img1b.png");
  images.images.push_back(tmp / "images" / "img1b.jpg");
  images.reference_pngs.push_back(tmp / "ref" / "img1b.png");
  ASSERT_TRUE(run_generator(python, "detector", tmp / "gen", images));
  const json expected = json::parse(vigil::read_file(tmp / "gen" / "expected.json"));
  const fs::path ws = tmp / "ws";
  auto r = run_vigil("weights import " + q(tmp / "gen" / "weights.pth") +
                         " --arch fasterrcnn_mobilenet_v3_large_320_fpn --class-names gun,knife --output " +
                         q(tmp / "det.vgm"),
                     ws);
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_THAT(r.out, HasSubstr("0 missing, 0 unexpected"));

  r = run_vigil("predict -m " + q(tmp / "det.vgm") + " --score-threshold 0 --batch 3 " + q(tmp / "images") +
                    " --save " + q(tmp / "drawn"),
                ws);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto lines = json_lines(r.out);
  ASSERT_EQ(lines.size(), images.images.size());
  for (const auto& line : lines) {
    const std::string key = stem_of(line.at("image")) + ".png";
    const auto& want = expected.at(key);
    const auto& got = line.at("detections");
    ASSERT_EQ(got.size(), want.at("scores").size()) << key;
    ASSERT_GT(got.size(), 0u) << key;
    const double lowest = want.at("scores").back().get<double>();
    size_t compared = 0;
    for (size_t i = 0; i < want.at("scores").size(); ++i) {
      const double score = want.at("scores")[i].get<double>();
      // A box tied with the last one kept may fall on either side of torchvision's top-k cut.
      if (score - lowest <= kScoreTolerance) continue;
      ++compared;
      EXPECT_TRUE(has_match(got, want.at("boxes")[i].get<std::vector<double>>(), score,
                            want.at("labels")[i].get<int64_t>()))
          << key << " detection " << i << " score " << score;
    }
    // The calibrated weights give distinct scores, so almost every box is compared (DESIGN.md section 6).
    EXPECT_GE(compared * 10, got.size() * 9) << key << ": too many tied scores for a meaningful comparison";
    std::printf("%s: %zu of %zu detections compared\n", key.c_str(), compared, got.size());
    for (const auto& d : got) {
      const int64_t id = d.at("class_id").get<int64_t>();
      EXPECT_TRUE(id == 1 || id == 2);
      EXPECT_EQ(d.at("label"), id == 1 ? "gun" : "knife");
    }
    EXPECT_TRUE(fs::exists(tmp / "drawn" / fs::path(line.at("image").get<std::string>()).filename()));
  }

  // COCO results: an array of {image_id, category_id, bbox [x, y, w, h], score}; ids are input positions.
  r = run_vigil("predict -m " + q(tmp / "det.vgm") + " --format coco --output " + q(tmp / "coco.json") + " " +
                    q(tmp / "images"),
                ws);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json coco = json::parse(vigil::read_file(tmp / "coco.json"));
  ASSERT_TRUE(coco.is_array());
  ASSERT_FALSE(coco.empty());
  std::set<int64_t> ids;
  for (const auto& entry : coco) {
    ids.insert(entry.at("image_id").get<int64_t>());
    EXPECT_EQ(entry.at("bbox").size(), 4u);
    EXPECT_GE(entry.at("bbox")[2].get<double>(), 0);
    EXPECT_GE(entry.at("bbox")[3].get<double>(), 0);
    EXPECT_GE(entry.at("score").get<double>(), 0.05 - 1e-9);  // the model's default threshold
    EXPECT_TRUE(entry.at("category_id") == 1 || entry.at("category_id") == 2);
  }
  for (int64_t id : ids) EXPECT_TRUE(id >= 0 && id < 6) << id;
}

}  // namespace

// Drives the real `vigil` binary through the dataset workflow: synth -> ingest -> validate -> split -> stats
// -> export, hash stability of versions, bad input, and the real datasets in ../shared when present.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <set>

#include "tests_util.h"
#include "vigil/core/fs.h"
#include "vigil/data/duplicates.h"
#include "vigil/data/store.h"

namespace {

using json = nlohmann::json;
using vigil::testing::run_vigil;
using vigil::testing::TempDir;
namespace fs = std::filesystem;

json read_json(const fs::path& p) {
  return json::parse(vigil::read_file(p));
}

std::string version_id(const std::string& out) {
  auto pos = out.find("\nid ");
  EXPECT_NE(pos, std::string::npos) << out;
  return pos == std::string::npos ? "" : out.substr(pos + 4, 64);
}

size_t count_objects(const fs::path& ws) {
  size_t n = 0;
  for (auto& e : fs::recursive_directory_iterator(ws / "store" / "objects")) n += e.is_regular_file();
  return n;
}

class DataCli : public ::testing::Test {
 protected:
  TempDir tmp;
  fs::path ws = tmp / "ws";
  vigil::testing::CommandResult vigil(const std::string& args) { return run_vigil(args, ws); }
};

TEST_F(DataCli, SynthIngestValidateSplitStatsExport) {
  auto r = vigil("data synth '" + (tmp / "src").string() + "' --images 40 --seed 3");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = vigil("data ingest '" + (tmp / "src").string() + "' --format coco --name shapes");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("40 images"), std::string::npos) << r.out;
  const std::string id = version_id(r.out);

  r = vigil("data validate shapes");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  auto report = read_json(ws / "datasets" / id / "validate" / "report.json");
  EXPECT_TRUE(fs::exists(ws / "datasets" / id / "validate" / "config.yaml"));

  r = vigil("data split shapes --val 0.25 --seed 1");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  vigil::data::DatasetStore store{vigil::Workspace(ws)};
  auto v = store.resolve("shapes");
  auto split = store.load_split(v, "default");
  EXPECT_EQ(split.train.size() + split.val.size() + split.test.size(), 40u);
  EXPECT_NEAR(static_cast<double>(split.val.size()), 10.0, 3.0);

  // Another tool's validation list: those samples validate, the rest trains; a bad line is named.
  vigil::testing::write_text(tmp / "val.txt", "# from elsewhere\n" + split.train[0] + "\n" +
                                                  fs::path(split.train[1]).filename().string() + "\n");
  r = vigil("data split shapes --val-list '" + (tmp / "val.txt").string() + "' --name given");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto given = store.load_split(v, "given");
  EXPECT_EQ(given.val, (std::vector<std::string>{split.train[0], split.train[1]}));
  EXPECT_EQ(given.train.size(), 38u);
  vigil::testing::write_text(tmp / "bad.txt", split.val[0] + "\nnope.png\n");
  r = vigil("data split shapes --val-list '" + (tmp / "bad.txt").string() + "' --name bad");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("bad.txt:2: 'nope.png' is not a sample"), std::string::npos) << r.err;

  r = vigil("data stats shapes");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto stats = read_json(ws / "datasets" / id / "stats" / "stats.json");
  EXPECT_TRUE(fs::exists(ws / "datasets" / id / "stats" / "class_counts.png"));

  // COCO -> YOLO -> ingest again: same boxes (to rounding) and the same image files.
  r = vigil("data export shapes --format yolo --out '" + (tmp / "yolo").string() + "' --split default");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = vigil("data ingest '" + (tmp / "yolo").string() + "' --format yolo --name shapes-yolo");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto a = store.load(v);
  auto b = store.load(store.resolve("shapes-yolo"));
  EXPECT_EQ(a.box_count(), b.box_count());
  EXPECT_EQ(a.samples.size(), b.samples.size());
}

TEST_F(DataCli, VersionIdIsContentHash) {
  auto r = vigil("data synth '" + (tmp / "src").string() + "' --images 12 --seed 5");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = vigil("data ingest '" + (tmp / "src").string() + "' --name a");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto id1 = version_id(r.out);
  const size_t objects = count_objects(ws);

  r = vigil("data ingest '" + (tmp / "src").string() + "' --name a");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(version_id(r.out), id1);
  EXPECT_NE(r.out.find("unchanged"), std::string::npos) << r.out;

  // Same content under another name: same id, no new objects (stored once).
  r = vigil("data ingest '" + (tmp / "src").string() + "' --name b");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(version_id(r.out), id1);
  EXPECT_EQ(count_objects(ws), objects);

  // One changed byte in one file: a new id, one new object.
  auto img = *fs::directory_iterator(tmp / "src" / "images");
  std::string bytes = vigil::read_file(img.path());
  bytes[bytes.size() / 2] ^= 0x01;
  vigil::write_file_atomic(img.path(), bytes);
  r = vigil("data ingest '" + (tmp / "src").string() + "' --name a");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(version_id(r.out), id1);
  EXPECT_EQ(count_objects(ws), objects + 1);

  r = vigil("data list");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find(id1.substr(0, 12)), std::string::npos) << r.out;
  r = vigil("data show a@" + id1.substr(0, 8));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find(id1), std::string::npos) << r.out;
}

TEST_F(DataCli, BadInputGivesClearErrors) {
  auto r = vigil("data ingest /nonexistent/folder --name x");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.err.find("/nonexistent/folder"), std::string::npos) << r.err;

  fs::create_directories(tmp / "src");
  r = vigil("data ingest '" + (tmp / "src").string() + "' --format nosuch --name x");
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("imagefolder"), std::string::npos) << r.err;  // lists the valid formats

  r = vigil("data ingest '" + (tmp / "src").string() + "' --format guns --name x");
  EXPECT_EQ(r.exit_code, 4) << r.err;  // not a guns layout
  EXPECT_NE(r.err.find("Images/"), std::string::npos) << r.err;
  fs::create_directories(tmp / "src" / "Images");
  fs::create_directories(tmp / "src" / "Labels");
  r = vigil("data ingest '" + (tmp / "src").string() + "' --format guns --name x");
  EXPECT_EQ(r.exit_code, 3) << r.err;  // an empty dataset
  EXPECT_NE(r.err.find("no usable samples"), std::string::npos) << r.err;

  r = vigil("data show nosuch");
  EXPECT_EQ(r.exit_code, 4) << r.err;

  r = vigil("data synth '" + (tmp / "s").string() + "' --set imagez=3");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("did you mean 'images'"), std::string::npos) << r.err;

  r = vigil("data synth '" + (tmp / "s").string() + "' --images lots");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("'images'"), std::string::npos) << r.err;
}

TEST_F(DataCli, ValidateFindsBrokenFilesInAFolder) {
  // A class-folder dataset with a random-bytes .jpg, a zero-byte file, a truncated JPEG and good images.
  for (int i = 0; i < 4; ++i)
    vigil::testing::write_image(tmp / "cls" / "a" / (std::to_string(i) + ".jpg"), 64, 48, i);
  for (int i = 0; i < 4; ++i)
    vigil::testing::write_image(tmp / "cls" / "b" / (std::to_string(i) + ".png"), 40, 40, 10 + i);
  vigil::testing::write_text(tmp / "cls" / "a" / "random.jpg", std::string(500, '\x5a'));
  vigil::testing::write_text(tmp / "cls" / "b" / "empty.jpg", "");
  std::string jpeg = vigil::read_file(tmp / "cls" / "a" / "0.jpg");
  vigil::testing::write_text(tmp / "cls" / "a" / "cut.jpg", jpeg.substr(0, jpeg.size() / 2));
  auto r = vigil("data validate '" + (tmp / "cls").string() + "' --format imagefolder --out '" +
                 (tmp / "rep").string() + "'");
  EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
  const std::string text = vigil::read_file(tmp / "rep" / "report.txt");
  for (const char* f : {"random.jpg", "empty.jpg", "cut.jpg"})
    EXPECT_NE(text.find(f), std::string::npos) << f;
  auto report = read_json(tmp / "rep" / "report.json");
  EXPECT_FALSE(report.dump().empty());
}

// ---- real data (skips without ../shared) ----

TEST_F(DataCli, GunsEndToEnd) {
  VIGIL_REQUIRE_SHARED(guns, "guns");
  // Box count from the label files themselves: the sum of each file's first line.
  size_t declared = 0, files = 0;
  for (auto& e : fs::directory_iterator(guns / "Labels")) {
    std::ifstream in(e.path());
    size_t n = 0;
    in >> n;
    declared += n;
    ++files;
  }
  auto r = vigil("data ingest '" + guns.string() + "' --format guns --name guns");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("266 images"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(std::to_string(declared) + " boxes"), std::string::npos) << r.out;
  const auto id = version_id(r.out);

  r = vigil("data validate guns");
  EXPECT_NE(r.out.find("box_outside"), std::string::npos) << r.out;  // the data has at least one
  r = vigil("data split guns --val 0.2 --test 0.1 --seed 0");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  vigil::data::DatasetStore store{vigil::Workspace(ws)};
  auto split = store.load_split(store.resolve("guns"), "default");
  EXPECT_EQ(split.train.size() + split.val.size() + split.test.size(), 266u);
  r = vigil("data stats guns");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(files, 266u);
}

TEST_F(DataCli, MasksNearDuplicatesStayOnOneSide) {
  VIGIL_REQUIRE_SHARED(masks, "masks");
  auto r = vigil("data ingest '" + masks.string() + "' --format imagefolder --name masks");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("1101 images"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("2 classes"), std::string::npos) << r.out;
  r = vigil("data validate masks");
  EXPECT_NE(r.out.find("near_duplicate"), std::string::npos) << r.out;
  r = vigil("data split masks --val 0.2 --test 0.1 --seed 0");
  ASSERT_EQ(r.exit_code, 0) << r.err;

  vigil::data::DatasetStore store{vigil::Workspace(ws)};
  auto v = store.resolve("masks");
  auto ds = store.load(v);
  auto split = store.load_split(v, "default");
  std::map<std::string, int> side;
  for (auto& f : split.train) side[f] = 0;
  for (auto& f : split.val) side[f] = 1;
  for (auto& f : split.test) side[f] = 2;
  ASSERT_EQ(side.size(), 1101u);
  auto summary = read_json(store.version_dir(v.id) / "splits" / "default" / "summary.json");
  auto cfg = vigil::read_file(store.version_dir(v.id) / "splits" / "default" / "config.yaml");
  auto dist_pos = cfg.find("near_duplicate_distance: ");
  ASSERT_NE(dist_pos, std::string::npos) << cfg;
  int distance = std::stoi(cfg.substr(dist_pos + 25));
  auto groups = vigil::data::find_duplicates(ds, distance);
  size_t cross_class = 0;
  for (auto [i, j] : groups.near_pairs) {
    EXPECT_EQ(side[ds.samples[i].file], side[ds.samples[j].file])
        << ds.samples[i].file << " and " << ds.samples[j].file << " straddle splits";
    cross_class += ds.samples[i].label != ds.samples[j].label;
  }
  EXPECT_GT(cross_class, 50u) << "expected many with_mask/without_mask pairs of the same face";
}

TEST_F(DataCli, AccidentsRespectExistingSplit) {
  VIGIL_REQUIRE_SHARED(acc, "accidents");
  auto r = vigil("data ingest '" + acc.string() + "' --format imagefolder --name accidents");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("2 classes"), std::string::npos) << r.out;
  r = vigil("data split accidents --mode folders --name given");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  vigil::data::DatasetStore store{vigil::Workspace(ws)};
  auto split = store.load_split(store.resolve("accidents"), "given");
  EXPECT_EQ(split.train.size(), 369u + 422u);
  EXPECT_EQ(split.val.size(), 46u + 52u);
  EXPECT_TRUE(split.test.empty());
  for (auto& f : split.train) EXPECT_EQ(f.rfind("train/", 0), 0u) << f;
  for (auto& f : split.val) EXPECT_EQ(f.rfind("val/", 0), 0u) << f;
}

}  // namespace

// TensorBoard event files (checked by an independent pure-Python reader, and by TensorBoard itself when some
// python3 on the machine has it) and Ultralytics-style results.csv.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "tests_util.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/train/results_csv.h"
#include "vigil/train/tensorboard.h"

namespace {

namespace fs = std::filesystem;
using vigil::testing::TempDir;
using vigil::train::EventWriter;
using vigil::train::ResultsCsv;

const std::string kReader = std::string(VIGIL_SOURCE_DIR) + "/tests/unit/train/read_events.py";

std::optional<std::string> any_python() {
  for (const char* py : {"python3", "/usr/bin/python3"}) {
    if (vigil::testing::run_shell(std::string(py) + " -c 'import json, struct'").first == 0) return py;
  }
  return std::nullopt;
}

// A python3 with the tensorboard package, if any (VIGIL_TENSORBOARD_PYTHON first).
std::optional<std::string> tensorboard_python() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("VIGIL_TENSORBOARD_PYTHON")) candidates.emplace_back(env);
  candidates.insert(candidates.end(), {"python3", "/usr/bin/python3"});
  for (const auto& py : candidates) {
    if (vigil::testing::run_shell(py + " -c 'import tensorboard'").first == 0) return py;
  }
  return std::nullopt;
}

fs::path only_event_file(const fs::path& dir) {
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir)) files.push_back(e.path());
  EXPECT_EQ(files.size(), 1u);
  return files.empty() ? fs::path() : files.front();
}

nlohmann::json read_events(const fs::path& file, const std::string& flags = "") {
  auto py = any_python();
  if (!py) return nullptr;
  auto [code, out] = vigil::testing::run_shell(*py + " '" + kReader + "' '" + file.string() + "' " + flags);
  EXPECT_EQ(code, 0) << out;
  if (code != 0) return nullptr;
  return nlohmann::json::parse(out);
}

#define REQUIRE_PYTHON() \
  if (!any_python()) GTEST_SKIP() << "no python3 to run read_events.py"

TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(vigil::train::crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(vigil::train::crc32c(""), 0u);
  // RFC 3720 appendix B.4.
  EXPECT_EQ(vigil::train::crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(vigil::train::crc32c(std::string(32, '\xff')), 0x62A8AB43u);
  std::string inc;
  for (int i = 0; i < 32; ++i) inc.push_back(static_cast<char>(i));
  EXPECT_EQ(vigil::train::crc32c(inc), 0x46DD794Eu);
}

TEST(TfRecord, FrameLayout) {
  const std::string data = "hello";
  const std::string rec = vigil::train::tfrecord_frame(data);
  ASSERT_EQ(rec.size(), 8u + 4 + 5 + 4);
  EXPECT_EQ(rec.substr(0, 8), std::string("\x05\0\0\0\0\0\0\0", 8));
  EXPECT_EQ(rec.substr(12, 5), data);
  const uint32_t crc = vigil::train::crc32c(data);
  const uint32_t expect = ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
  uint32_t stored;
  std::memcpy(&stored, rec.data() + 17, 4);
  EXPECT_EQ(stored, expect);
}

TEST(EventWriter, FileNameAndScalarsReadBackIndependently) {
  REQUIRE_PYTHON();
  TempDir dir;
  fs::path file;
  {
    EventWriter w(dir / "run", ".vigil");
    file = w.path();
    w.add_scalar("train/loss", 0.5, 0, 1700000000.25);
    w.add_scalar("train/loss", 0.25, 1, 1700000001.5);
    w.add_scalar("metrics/mAP50(B)", 0.123456789, 1 << 20, 1700000002.0);
    w.add_scalar("lr/pg0", 1e-3, -7, 1700000003.0);
    w.add_scalar("big", 3.0e38, (int64_t{1} << 40) + 3);
    w.add_scalar("ünïcode/ταγ", -2.0, 5);
  }
  const std::string name = file.filename().string();
  EXPECT_EQ(name.rfind("events.out.tfevents.", 0), 0u) << name;
  EXPECT_NE(name.find("." + std::to_string(getpid()) + "."), std::string::npos) << name;
  EXPECT_EQ(name.substr(name.size() - 6), ".vigil");
  EXPECT_EQ(file.parent_path(), dir / "run");

  auto j = read_events(file);
  ASSERT_FALSE(j.is_null());
  EXPECT_EQ(j["file_version"], "brain.Event:2");
  EXPECT_GT(j["first_wall_time"].get<double>(), 1.6e9);
  const auto& s = j["scalars"];
  ASSERT_EQ(s.size(), 6u);
  EXPECT_EQ(s[0]["tag"], "train/loss");
  EXPECT_EQ(s[0]["step"], 0);
  EXPECT_EQ(s[0]["value"], 0.5);
  EXPECT_EQ(s[0]["wall_time"], 1700000000.25);
  EXPECT_EQ(s[1]["step"], 1);
  EXPECT_EQ(s[1]["wall_time"], 1700000001.5);
  EXPECT_EQ(s[2]["tag"], "metrics/mAP50(B)");
  EXPECT_EQ(s[2]["step"], 1 << 20);
  EXPECT_EQ(s[2]["value"].get<double>(), static_cast<double>(0.123456789f));  // stored as float
  EXPECT_EQ(s[3]["step"], -7);
  EXPECT_EQ(s[4]["step"], (int64_t{1} << 40) + 3);
  EXPECT_EQ(s[4]["value"].get<double>(), static_cast<double>(3.0e38f));
  EXPECT_EQ(s[5]["tag"], "ünïcode/ταγ");
  EXPECT_EQ(s[5]["value"], -2.0);
  EXPECT_GT(s[5]["wall_time"].get<double>(), 1.6e9);  // "now"
}

TEST(EventWriter, ConcurrentWritersLoseNothing) {
  REQUIRE_PYTHON();
  TempDir dir;
  fs::path file;
  {
    EventWriter w(dir.path());
    file = w.path();
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&w, t] {
        for (int i = 0; i < 250; ++i) w.add_scalar("thread" + std::to_string(t), i * 0.5, i);
      });
    }
    for (auto& th : threads) th.join();
  }
  auto j = read_events(file);
  ASSERT_FALSE(j.is_null());
  ASSERT_EQ(j["scalars"].size(), 1000u);
  std::map<std::string, int> next;
  for (const auto& s : j["scalars"]) {
    const std::string tag = s["tag"];
    EXPECT_EQ(s["step"].get<int>(), next[tag]) << tag;  // each thread's records stay in order
    EXPECT_EQ(s["value"].get<double>(), next[tag] * 0.5);
    next[tag]++;
  }
  EXPECT_EQ(next.size(), 4u);
}

TEST(EventWriter, TwoWritersInOneDirectoryGetDistinctFiles) {
  TempDir dir;
  EventWriter a(dir.path());
  EventWriter b(dir.path());
  EXPECT_NE(a.path(), b.path());
  EXPECT_THROW(a.add_scalar("", 1.0, 0), vigil::InvalidArgument);
}

// A child process writes, then is SIGKILLed: what was flushed (explicitly or by the background flusher)
// must be in the file, every record intact.
TEST(EventWriter, KilledProcessKeepsFlushedRecords) {
  REQUIRE_PYTHON();
  TempDir dir;
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    EventWriter w(dir.path(), "", /*flush_secs=*/0.1);
    for (int i = 0; i < 10; ++i) w.add_scalar("explicit", i, i);
    w.flush();
    for (int i = 0; i < 5; ++i) w.add_scalar("periodic", i, i);
    std::this_thread::sleep_for(std::chrono::milliseconds(800));  // several flush periods
    raise(SIGKILL);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFSIGNALED(status));
  auto j = read_events(only_event_file(dir.path()));
  ASSERT_FALSE(j.is_null());
  int explicit_count = 0, periodic_count = 0;
  for (const auto& s : j["scalars"]) (s["tag"] == "explicit" ? explicit_count : periodic_count)++;
  EXPECT_EQ(explicit_count, 10);
  EXPECT_EQ(periodic_count, 5);
}

TEST(EventWriter, ReaderRejectsCorruptRecords) {
  auto py = any_python();
  if (!py) GTEST_SKIP() << "no python3";
  TempDir dir;
  fs::path file;
  {
    EventWriter w(dir.path());
    file = w.path();
    w.add_scalar("x", 1.0, 1);
  }
  std::string bytes = vigil::read_file(file);
  bytes[bytes.size() - 6] ^= 0x01;  // inside the last record's data
  vigil::testing::write_text(dir / "bad", bytes);
  auto [code, out] = vigil::testing::run_shell(*py + " '" + kReader + "' '" + (dir / "bad").string() + "'");
  EXPECT_EQ(code, 1);
  EXPECT_NE(out.find("CRC mismatch"), std::string::npos) << out;
}

TEST(EventWriter, TensorBoardReadsTheFile) {
  auto py = tensorboard_python();
  if (!py) GTEST_SKIP() << "no python3 with the tensorboard package; set VIGIL_TENSORBOARD_PYTHON to one";
  TempDir dir;
  {
    EventWriter w(dir.path());
    for (int i = 0; i < 5; ++i) w.add_scalar("train/box_loss", 1.0 / (i + 1), i);
  }
  vigil::testing::write_text(dir / "read.py",
                             "import sys\n"
                             "from tensorboard.backend.event_processing.event_accumulator import "
                             "EventAccumulator\n"
                             "ea = EventAccumulator(sys.argv[1]); ea.Reload()\n"
                             "for e in ea.Scalars('train/box_loss'): print(e.step, repr(e.value))\n");
  auto [code, out] =
      vigil::testing::run_shell(*py + " '" + (dir / "read.py").string() + "' '" + dir.path().string() + "'");
  ASSERT_EQ(code, 0) << out;
  std::istringstream in(out);
  for (int i = 0; i < 5; ++i) {
    int step;
    double value;
    ASSERT_TRUE(in >> step >> value) << out;
    EXPECT_EQ(step, i);
    EXPECT_EQ(value, static_cast<double>(static_cast<float>(1.0 / (i + 1))));
  }
}

// ---- results.csv
// -------------------------------------------------------------------------------------------

const std::vector<std::string> kColumns = {"epoch", "train/box_loss", "metrics/mAP50(B)", "lr/pg0"};

TEST(ResultsCsv, UltralyticsLayout) {
  TempDir dir;
  const fs::path file = dir / "results.csv";
  ResultsCsv csv(file, kColumns);
  csv.append({{"epoch", 1}, {"train/box_loss", 1.23456789}, {"metrics/mAP50(B)", 0.5}, {"lr/pg0", 0.00033}});
  csv.append({{"epoch", 2}, {"train/box_loss", 1e-7}});  // missing cells stay empty
  const std::string expected =
      "                  epoch,         train/box_loss,       metrics/mAP50(B),                 lr/pg0\n"
      "                      1,                 1.2346,                    0.5,                0.00033\n"
      "                      2,                  1e-07,,\n";
  EXPECT_EQ(vigil::read_file(file), expected);
  EXPECT_THROW(csv.append({{"val/box_loss", 1.0}}), vigil::InvalidArgument);
}

TEST(ResultsCsv, ResumeAppendsAndChecksHeader) {
  TempDir dir;
  const fs::path file = dir / "results.csv";
  { ResultsCsv(file, kColumns).append({{"epoch", 1}}); }
  { ResultsCsv(file, kColumns).append({{"epoch", 2}}); }
  const std::string text = vigil::read_file(file);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3);
  EXPECT_NE(text.find("                      2,,,\n"), std::string::npos) << text;

  try {
    ResultsCsv other(file, {"epoch", "train/cls_loss"});
    FAIL() << "expected InvalidArgument";
  } catch (const vigil::InvalidArgument& e) {
    EXPECT_NE(std::string(e.what()).find(file.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("train/cls_loss"), std::string::npos) << e.what();
  }
}

TEST(ResultsCsv, HalfWrittenLastRowIsDroppedOnResume) {
  TempDir dir;
  const fs::path file = dir / "results.csv";
  { ResultsCsv(file, kColumns).append({{"epoch", 1}}); }
  std::ofstream(file, std::ios::app) << "                      2,   0.1";  // killed mid-row
  ResultsCsv csv(file, kColumns);
  csv.append({{"epoch", 2}, {"lr/pg0", 0.01}});
  const std::string text = vigil::read_file(file);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 3);
  EXPECT_EQ(text.find("0.1"), std::string::npos) << text;
  EXPECT_NE(text.find("0.01\n"), std::string::npos) << text;
}

TEST(ResultsCsv, TruncateAfterDropsRowsPastTheCheckpoint) {
  TempDir dir;
  const fs::path file = dir / "results.csv";
  ResultsCsv csv(file, kColumns);
  for (int e = 1; e <= 5; ++e) csv.append({{"epoch", e}, {"lr/pg0", 0.1 * e}});
  csv.truncate_after(3);
  csv.append({{"epoch", 4}});
  const std::string text = vigil::read_file(file);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 5) << text;  // header, 1, 2, 3, new 4
  EXPECT_NE(text.find("0.3\n                      4,,,\n"), std::string::npos) << text;
  EXPECT_THROW(ResultsCsv(dir / "x.csv", {"step", "loss"}).truncate_after(1), vigil::InvalidArgument);
}

TEST(ResultsCsv, RejectsBadColumns) {
  TempDir dir;
  EXPECT_THROW(ResultsCsv(dir / "a.csv", {}), vigil::InvalidArgument);
  EXPECT_THROW(ResultsCsv(dir / "b.csv", {"epoch", "epoch"}), vigil::InvalidArgument);
  EXPECT_THROW(ResultsCsv(dir / "c.csv", {"a,b"}), vigil::InvalidArgument);
}

}  // namespace

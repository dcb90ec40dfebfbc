// The vigil binary's foundation: help for every subcommand, version, doctor, threads, logging, usage errors.

#include <gtest/gtest.h>

#include "tests_util.h"

namespace {

using vigil::testing::run_vigil;
using vigil::testing::TempDir;
namespace fs = std::filesystem;

TEST(Cli, EverySubcommandHasHelp) {
  TempDir tmp;
  for (const char* cmd : {"", "version", "doctor", "data", "data ingest", "data list", "data show",
                          "data validate", "data split", "data stats", "data export", "data synth"}) {
    auto r = run_vigil(std::string(cmd) + " --help", tmp / "ws");
    EXPECT_EQ(r.exit_code, 0) << cmd << ": " << r.err;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << cmd << ": " << r.out;
  }
}

TEST(Cli, VersionAndUsageErrors) {
  TempDir tmp;
  auto r = run_vigil("version", tmp / "ws");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("libtorch 1.13"), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(tmp / "ws")) << "version must not create a workspace";
  r = run_vigil("nosuchcommand", tmp / "ws");
  EXPECT_EQ(r.exit_code, 2);
  r = run_vigil("data ingest", tmp / "ws");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("required"), std::string::npos) << r.err;
}

TEST(Cli, DoctorReportsThreadsBlasAndOpenCV) {
  TempDir tmp;
  auto r = run_vigil("--threads 2 doctor", tmp / "ws");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("intra-op threads: 2"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("blas:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("opencv: 4."), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("JPEG"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("reference BLAS"), std::string::npos) << "install-deps installs OpenBLAS: " << r.out;
  if (std::thread::hardware_concurrency() > 1) {
    r = run_vigil("--threads 1 doctor", tmp / "ws");
    EXPECT_NE(r.out.find("WARNING: libtorch runs 1 thread"), std::string::npos) << r.out;
  }
}

TEST(Cli, WorkspaceGetsADailyLogFile) {
  TempDir tmp;
  auto r = run_vigil("data list", tmp / "ws");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  bool found = false;
  for (auto& e : fs::directory_iterator(tmp / "ws" / "logs")) {
    found = found || e.path().filename().string().rfind("vigil_", 0) == 0;
  }
  EXPECT_TRUE(found);
}

TEST(Cli, WorkspaceFromEnvironment) {
  TempDir tmp;
  auto cmd = "VIGIL_WORKSPACE='" + (tmp / "envws").string() + "' '" + std::string(VIGIL_BINARY) +
             "' data list > /dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  EXPECT_TRUE(fs::exists(tmp / "envws" / "logs"));
}

}  // namespace

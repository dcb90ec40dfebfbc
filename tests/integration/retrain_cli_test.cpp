// `vigil retrain` for real: synth -> ingest -> split, then three retrains of a tiny classifier. The first has
// no champion and becomes masks@production; the second must beat the champion by more than 1.0 (impossible),
// so the alias stays and the challenger is only registered; the third (min-delta -1: any score wins) is
// promoted. Each decision is checked in result.json, in both scores and in the registry's alias. A config
// that does not exist and a training that fails leave a clear message and a failed result.

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "integration/tiny_train.h"
#include "tests_util.h"
#include "vigil/core/fs.h"

namespace {

using json = nlohmann::json;
using ::testing::HasSubstr;
using vigil::testing::run_vigil;
using vigil::testing::TempDir;
namespace fs = std::filesystem;

TEST(RetrainCli, PromotesOnlyAChallengerThatBeatsTheChampion) {
  TempDir tmp;
  const fs::path ws = tmp / "ws";
  auto vigil = [&](const std::string& args) { return run_vigil(args, ws); };
  const fs::path config = vigil::testing::make_tiny_shapes(tmp.path(), ws);
  vigil::testing::CommandResult r;
  const std::string base = "retrain --config '" + config.string() + "' --model shapes --json";

  r = vigil(base + " --run first");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json first = json::parse(r.out);
  EXPECT_EQ(first["state"], "promoted") << first.dump(1);
  EXPECT_TRUE(first["champion"].is_null());
  EXPECT_EQ(first["challenger"]["version"], 1);
  EXPECT_EQ(first["metric"], "accuracy");
  EXPECT_THAT(first["reason"].get<std::string>(), HasSubstr("first version"));

  r = vigil(base + " --run second --min-delta 1.0 --set seed=4");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  json second = json::parse(r.out);
  EXPECT_EQ(second["state"], "kept") << second.dump(1);
  EXPECT_EQ(second["champion"]["version"], 1);
  EXPECT_EQ(second["challenger"]["version"], 2);
  EXPECT_GE(second["champion"]["score"].get<double>(), 0.0);
  EXPECT_TRUE(fs::exists(ws / "jobs" / "second" / "champion" / "metrics.json"));
  EXPECT_TRUE(fs::exists(ws / "jobs" / "second" / "challenger" / "metrics.json"));
  json described = json::parse(vigil("models describe shapes@production --json").out);
  EXPECT_EQ(described["version"], 1) << "the champion keeps the alias";

  r = vigil(base + " --run third --min-delta -1 --set seed=5");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(json::parse(r.out)["state"], "promoted");
  described = json::parse(vigil("models describe shapes@production --json").out);
  EXPECT_EQ(described["version"], 3);
  const json saved = json::parse(vigil::read_file(ws / "jobs" / "third" / "result.json"));
  EXPECT_EQ(saved["state"], "promoted");

  // Failures: a missing config; a training that fails (unknown dataset) leaves a failed result.
  r = vigil("retrain --config /nope.yaml --model shapes");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("/nope.yaml"));
  r = vigil(base + " --run broken --set data.dataset=nosuchdata");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, HasSubstr("training the challenger"));
  const json failed = json::parse(vigil::read_file(ws / "jobs" / "broken" / "result.json"));
  EXPECT_EQ(failed["state"], "failed");
  EXPECT_EQ(json::parse(vigil("models describe shapes@production --json").out)["version"], 3);
}

}  // namespace

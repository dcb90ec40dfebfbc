// `vigil serve --model NAME@ALIAS` resolves through the workspace's registry; moving the alias and
// reloading (KServe load, or SIGHUP) switches the served version; bad references are clear errors.

#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include "serve_util.h"
#include "vigil/store/store.h"

namespace {

using json = nlohmann::json;
using vigil::testing::ServerProcess;
using vigil::testing::TempDir;
namespace fs = std::filesystem;

/// A registry with two versions of `masks` (different weights) and production -> 1.
void seed_registry(const TempDir& tmp, const fs::path& ws) {
  vigil::testing::seed_masks_registry(tmp.path(), ws, 10);
}

json served_model(httplib::Client& c) {
  auto r = c.Get("/v1/models");
  EXPECT_TRUE(r && r->status == 200);
  return json::parse(r->body)["models"][0];
}

TEST(ServeRegistry, FollowsTheAliasOnReload) {
  TempDir tmp;
  const fs::path ws = tmp / "ws";
  seed_registry(tmp, ws);
  ServerProcess server("--model masks@production --follow-alias-s 0", tmp / "server", "serve", ws);
  ASSERT_GT(server.port(), 0) << server.log();
  httplib::Client c("127.0.0.1", server.port());
  json m = served_model(c);
  EXPECT_EQ(m["name"], "masks");
  EXPECT_EQ(m["version"], "1");

  // Move the alias, then reload through KServe's repository API.
  vigil::store::Store{vigil::Workspace(ws)}.set_alias("masks", "production", 2);
  EXPECT_EQ(served_model(c)["version"], "1") << "the alias moves only on reload";
  auto r = c.Post("/v2/repository/models/masks/load", "", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(served_model(c)["version"], "2");

  // ... or with SIGHUP.
  vigil::store::Store{vigil::Workspace(ws)}.set_alias("masks", "production", 1);
  ASSERT_EQ(kill(server.pid(), SIGHUP), 0);
  for (int i = 0; i < 200 && served_model(c)["version"] != "1"; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(served_model(c)["version"], "1");
  vigil::testing::write_image(tmp / "face.png", 100, 100, 3);
  auto predicted = c.Post("/v1/predict", vigil::read_file(tmp / "face.png"), "image/png");
  ASSERT_TRUE(predicted);
  EXPECT_EQ(predicted->status, 200) << predicted->body;

  // An alias that points nowhere on reload keeps the old version serving.
  vigil::store::Store{vigil::Workspace(ws)}.delete_alias("masks", "production");
  r = c.Post("/v2/repository/models/masks/load", "", "application/json");
  ASSERT_TRUE(r);
  // A failed load answers the status of its error (docs/serve-api.md): the alias is gone, NotFound -> 404;
  // the old model stays.
  EXPECT_EQ(r->status, 404) << r->body;
  EXPECT_NE(r->body.find("no alias 'production'"), std::string::npos) << r->body;
  EXPECT_EQ(served_model(c)["version"], "1");
}

TEST(ServeRegistry, BadReferencesExitWithAClearMessage) {
  TempDir tmp;
  const fs::path ws = tmp / "ws";
  seed_registry(tmp, ws);
  ServerProcess alias("--model masks@canary", tmp / "a", "serve", ws);
  EXPECT_EQ(alias.exit_code(), 4);
  EXPECT_NE(alias.log().find("no alias 'canary' (aliases: production -> 1"), std::string::npos)
      << alias.log();
  ServerProcess version("--model masks/9", tmp / "b", "serve", ws);
  EXPECT_EQ(version.exit_code(), 4);
  EXPECT_NE(version.log().find("has no version 9 (versions: 1, 2)"), std::string::npos) << version.log();
  ServerProcess name("--model maskz@production", tmp / "c", "serve", ws);
  EXPECT_EQ(name.exit_code(), 4);
  EXPECT_NE(name.log().find("did you mean 'masks'"), std::string::npos) << name.log();
}

/// `vigil predict` takes the same references as `vigil serve` (a sharded batch Job names guns@production):
/// the registry's copy of the version the alias means, and the same clear error for a missing alias.
TEST(ServeRegistry, PredictResolvesRegisteredModels) {
  TempDir tmp;
  const fs::path ws = tmp / "ws";
  seed_registry(tmp, ws);
  vigil::testing::write_image(tmp / "face.png", 100, 100, 3);
  auto predict = [&](const std::string& model) {
    return vigil::testing::run_shell(fmt::format("'{}' --workspace '{}' predict --model '{}' '{}' 2>&1",
                                                 VIGIL_BINARY, ws.string(), model,
                                                 (tmp / "face.png").string()));
  };
  const auto [rc_alias, by_alias] = predict("masks@production");
  const auto [rc_file, by_file] = predict((tmp / "m1.ckpt").string());
  const auto [rc_other, by_other] = predict("masks/2");
  ASSERT_EQ(rc_alias, 0) << by_alias;
  ASSERT_EQ(rc_file, 0) << by_file;
  ASSERT_EQ(rc_other, 0) << by_other;
  auto scores = [](const std::string& out) {
    const auto line = out.substr(out.find('{'));
    return json::parse(line.substr(0, line.find('\n')))["probs"].dump();
  };
  EXPECT_EQ(scores(by_alias), scores(by_file));   // production -> 1: version 1's weights
  EXPECT_NE(scores(by_alias), scores(by_other));  // version 2 has other weights
  const auto [rc_bad, bad] = predict("masks@canary");
  EXPECT_EQ(rc_bad, 4) << bad;
  EXPECT_NE(bad.find("no alias 'canary'"), std::string::npos) << bad;
}

}  // namespace

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
  vigil::store::Store s{vigil::Workspace(ws)};
  for (int k = 1; k <= 2; ++k) {
    const auto file = vigil::testing::make_model_file(tmp / fmt::format("m{}.ckpt", k), "mask_small_cnn",
                                                      {"with_mask", "without_mask"}, 10 + k);
    vigil::store::NewModelVersion v;
    v.name = "masks";
    v.arch = "mask_small_cnn";
    v.task = "classification";
    s.register_model_file(v, file);
  }
  s.set_alias("masks", "production", 1);
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
  ServerProcess server("--model masks@production", tmp / "server", "serve", ws);
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

}  // namespace

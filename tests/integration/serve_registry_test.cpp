// `vigil serve --model NAME@ALIAS` resolves through the workspace's registry; moving the alias and
// reloading (KServe load, or SIGHUP) switches the served version; bad references are clear errors.

#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <map>
#include <regex>

#include "serve_util.h"
#include "vigil/store/store.h"
#include "webhook_receiver.h"

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
  ASSERT_TRUE(r) << server.log();
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

namespace {

// Every registry change, made by any process, reaches the registry webhook once, even with two servers
// sharing the store: seeding (model created, two versions, an alias), then an alias move and a deletion.
TEST(ServeRegistry, RegistryChangesReachTheWebhookOnceAcrossReplicas) {
  TempDir tmp;
  const fs::path ws = tmp / "ws";
  seed_registry(tmp, ws);
  vigil::testing::WebhookReceiver receiver;
  ::setenv("VIGIL_TEST_REGISTRY_SECRET", "s3cret", 1);
  const std::string args = "--model masks@production --registry-webhook " + receiver.url("/registry") +
                           " --set registry_webhook_secret_env=VIGIL_TEST_REGISTRY_SECRET";
  ServerProcess a(args, tmp / "a", "serve", ws);
  ServerProcess b(args, tmp / "b", "serve", ws);
  ASSERT_GT(a.port(), 0) << a.log();
  ASSERT_GT(b.port(), 0) << b.log();

  {
    vigil::store::Store st{vigil::Workspace(ws)};
    st.set_alias("masks", "production", 2);  // moved: alias created with previous_version 1
    st.set_alias("masks", "production", 2);  // no change: no event
    st.set_alias("masks", "staging", 1);
    st.delete_alias("masks", "staging");
  }
  const std::vector<std::string> expected = {"registered_model.created",    "model_version.created",
                                             "model_version.created",       "model_version_alias.created",
                                             "model_version_alias.created", "model_version_alias.created",
                                             "model_version_alias.deleted"};
  for (int i = 0; i < 200 && receiver.requests().size() < expected.size(); ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // a second delivery would arrive by now
  auto got = receiver.requests();
  ASSERT_EQ(got.size(), expected.size()) << a.log() << b.log();

  // Delivered in the order they happened (by event id), each once, signed, with MLflow's envelope.
  std::map<int64_t, json> by_id;
  for (const auto& r : got) {
    EXPECT_EQ(r.path, "/registry");
    EXPECT_TRUE(std::regex_match(r.signature, std::regex("sha256=[0-9a-f]{64}"))) << r.signature;
    const json body = json::parse(r.body);
    EXPECT_EQ(r.event, body["event"]);
    EXPECT_EQ(body["entity"].get<std::string>() + "." + body["action"].get<std::string>(), body["event"]);
    EXPECT_TRUE(by_id.emplace(body["event_id"].get<int64_t>(), body).second) << "delivered twice: " << r.body;
  }
  std::vector<std::string> order;
  for (const auto& [id, body] : by_id) order.push_back(body["event"]);
  EXPECT_EQ(order, expected);
  const json& moved = std::next(by_id.begin(), 4)->second["data"];
  EXPECT_EQ(moved,
            (json{{"name", "masks"}, {"alias", "production"}, {"version", "2"}, {"previous_version", "1"}}));
  const json& created = std::next(by_id.begin(), 1)->second["data"];
  EXPECT_EQ(created["name"], "masks");
  EXPECT_EQ(created["version"], "1");
  EXPECT_EQ(created["sha256"].get<std::string>().size(), 64u);

  // The feed on the API: every event, and which server delivered it.
  httplib::Client c("127.0.0.1", a.port());
  auto r = c.Get("/v1/registry/events?after=0&limit=100");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json feed = json::parse(r->body);
  ASSERT_EQ(feed["events"].size(), expected.size());
  for (const auto& e : feed["events"]) EXPECT_FALSE(e["delivered_by"].get<std::string>().empty()) << e;
  EXPECT_EQ(feed["webhook"]["url"], receiver.url("/registry"));
  r = c.Get("/v1/registry/events?limit=0");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400) << r->body;
}

}  // namespace

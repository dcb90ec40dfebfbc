// The tracking and registry API of the real server: a workspace filled through the real Store (runs with
// params and metric histories, a registered model with versions and an alias), then `vigil ui` (no model)
// on a real port, asked with a real HTTP client: experiments, run search (status, metric and param
// conditions, experiment, order by a metric, paging), bad filters, one run by id and by name, metric
// history, the registry, moving and removing aliases, the no-model answers of the predict and health
// routes, API keys on the alias routes; and `vigil serve` with a model serving the same API.

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include <nlohmann/json.hpp>
#include <set>

#include "serve_util.h"
#include "vigil/store/store.h"

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;
using ::testing::HasSubstr;
using vigil::store::RunStatus;
using vigil::testing::run_vigil;
using vigil::testing::ServerProcess;
using vigil::testing::TempDir;

json body_json(const httplib::Result& r) {
  EXPECT_TRUE(r) << "no response";
  if (!r) return json();
  return json::parse(r->body, nullptr, false);
}

/// A query parameter value, percent-encoded.
std::string q(const std::string& value) {
  return httplib::detail::encode_query_param(value);
}

/// Names of the runs of a /v1/runs answer, in order.
std::vector<std::string> run_names(const json& body) {
  std::vector<std::string> names;
  for (const auto& r : body["runs"]) names.push_back(r["name"].get<std::string>());
  return names;
}

struct Seed {
  std::string name, experiment;
  std::string lr, optimizer;
  std::vector<double> accuracy;  ///< val_accuracy at steps 1, 2, ...
  RunStatus status;
};

/// Fixture: one workspace with four runs and a model of three versions, served by one `vigil ui`.
class TrackingApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    store_ = new vigil::store::Store(vigil::Workspace(workspace()));
    const std::vector<Seed> seeds = {
        {"alpha", "cls", "0.001", "sgd", {0.5, 0.7, 0.95}, RunStatus::kFinished},
        {"beta", "cls", "0.01", "adam", {0.6, 0.8}, RunStatus::kFinished},
        {"gamma", "cls", "0.001", "adam", {0.92}, RunStatus::kFailed},
        {"delta run", "det", "0.1", "sgd", {}, RunStatus::kRunning},  // its process (this test) is alive
    };
    for (const auto& s : seeds) {
      vigil::store::NewRun nr;
      nr.name = s.name;
      nr.experiment = s.experiment;
      nr.kind = "train";
      nr.dataset_id = "ds-" + s.experiment;
      nr.params = {{"optimizer.lr", s.lr}, {"optimizer.name", s.optimizer}};
      nr.code.vigil = "test";
      const std::string id = store_->create_run(nr);
      for (size_t i = 0; i < s.accuracy.size(); ++i) {
        store_->log_metric(id, "val_accuracy", s.accuracy[i], static_cast<int64_t>(i + 1));
        store_->log_metric(id, "loss", 1.0 / (i + 1), static_cast<int64_t>(i + 1));
      }
      if (s.status != RunStatus::kRunning) store_->end_run(id, s.status);
      ids_[s.name] = id;
    }
    store_->log_artifact(ids_["alpha"], {"checkpoints/last.ckpt", "checkpoint", std::string(64, 'a'), 1234});
    for (int k = 1; k <= 3; ++k) {
      const fs::path file = *dir_ / fmt::format("clf-{}.bin", k);
      vigil::testing::write_text(file, fmt::format("model bytes {}", k));
      vigil::store::NewModelVersion v;
      v.name = "clf";
      v.run_id = ids_["alpha"];
      v.dataset_id = "ds-cls";
      v.arch = "mask_small_cnn";
      v.task = "classification";
      v.metrics = {{"val_accuracy", 0.9 + k / 100.0}};
      v.source = "run " + ids_["alpha"];
      store_->register_model_file(v, file);
    }
    store_->set_alias("clf", "production", 1);
    server_ = new ServerProcess("", *dir_ / "ui", "ui", workspace());
  }
  static void TearDownTestSuite() {
    delete server_;
    delete store_;
    delete dir_;
  }
  static fs::path workspace() { return *dir_ / "ws"; }

  static httplib::Client client(const ServerProcess& s) {
    httplib::Client c("127.0.0.1", s.port());
    c.set_read_timeout(60, 0);
    return c;
  }
  void SetUp() override { ASSERT_TRUE(server_->running()) << server_->log(); }

  static TempDir* dir_;
  static vigil::store::Store* store_;
  static ServerProcess* server_;
  static std::map<std::string, std::string> ids_;
};
TempDir* TrackingApiTest::dir_ = nullptr;
vigil::store::Store* TrackingApiTest::store_ = nullptr;
ServerProcess* TrackingApiTest::server_ = nullptr;
std::map<std::string, std::string> TrackingApiTest::ids_;

TEST_F(TrackingApiTest, ListsExperimentsAndRunsWithTheirRecords) {
  auto c = client(*server_);
  const json exps = body_json(c.Get("/v1/experiments"));
  EXPECT_THAT(exps["experiments"].get<std::vector<std::string>>(), ::testing::IsSupersetOf({"cls", "det"}));

  auto r = c.Get("/v1/runs");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json all = body_json(r);
  EXPECT_EQ(all["total"], 4);
  ASSERT_EQ(all["runs"].size(), 4u);
  for (const auto& run : all["runs"]) {
    if (run["name"] != "alpha") continue;
    EXPECT_EQ(run["id"], ids_["alpha"]);
    EXPECT_EQ(run["experiment"], "cls");
    EXPECT_EQ(run["kind"], "train");
    EXPECT_EQ(run["status"], "finished");
    EXPECT_EQ(run["dataset_id"], "ds-cls");
    EXPECT_EQ(run["params"]["optimizer.lr"], "0.001");
    EXPECT_DOUBLE_EQ(run["metrics"]["val_accuracy"].get<double>(), 0.95);
    EXPECT_EQ(run["code"]["vigil"], "test");
    EXPECT_TRUE(run["duration_s"].is_number());
    EXPECT_GT(run["start_ms"].get<int64_t>(), 0);
    EXPECT_GE(run["end_ms"].get<int64_t>(), run["start_ms"].get<int64_t>());
  }
}

TEST_F(TrackingApiTest, FiltersByStatusExperimentMetricAndParamConditions) {
  auto c = client(*server_);
  auto names = [&](const std::string& query) {
    auto r = c.Get("/v1/runs?" + query);
    EXPECT_TRUE(r && r->status == 200) << query << ": " << (r ? r->body : "no response");
    auto v = run_names(body_json(r));
    return std::set<std::string>(v.begin(), v.end());
  };
  using Names = std::set<std::string>;
  EXPECT_EQ(names("status=finished"), (Names{"alpha", "beta"}));
  EXPECT_EQ(names("status=running"), (Names{"delta run"}));
  EXPECT_EQ(names("experiment=det"), (Names{"delta run"}));
  EXPECT_EQ(names("filter=" + q("metrics.val_accuracy > 0.9")), (Names{"alpha", "gamma"}));
  EXPECT_EQ(names("filter=" + q("params.optimizer.lr = 0.001")), (Names{"alpha", "gamma"}));
  // Repeated filters must all hold; so must "and" inside one.
  EXPECT_EQ(names("filter=" + q("params.optimizer.lr = 0.001") + "&filter=" + q("status = finished")),
            (Names{"alpha"}));
  EXPECT_EQ(
      names("experiment=cls&filter=" + q("metrics.val_accuracy < 0.9 and params.optimizer.name = adam")),
      (Names{"beta"}));
}

TEST_F(TrackingApiTest, OrdersByAMetricAndPages) {
  auto c = client(*server_);
  const json desc = body_json(c.Get("/v1/runs?experiment=cls&order_by=" + q("metrics.val_accuracy DESC")));
  EXPECT_EQ(run_names(desc), (std::vector<std::string>{"alpha", "gamma", "beta"}));
  const json asc = body_json(c.Get("/v1/runs?experiment=cls&order_by=" + q("metrics.val_accuracy")));
  EXPECT_EQ(run_names(asc), (std::vector<std::string>{"beta", "gamma", "alpha"}));

  std::set<std::string> seen;
  for (int offset : {0, 2}) {
    const json page = body_json(c.Get(fmt::format("/v1/runs?limit=2&offset={}", offset)));
    EXPECT_EQ(page["total"], 4);
    EXPECT_EQ(page["runs"].size(), 2u);
    for (const auto& n : run_names(page)) seen.insert(n);
  }
  EXPECT_EQ(seen.size(), 4u) << "two pages of two must hold four different runs";
  const json past = body_json(c.Get("/v1/runs?limit=2&offset=4"));
  EXPECT_EQ(past["total"], 4);
  EXPECT_TRUE(past["runs"].empty());
}

TEST_F(TrackingApiTest, BadQueriesAre400sNamingTheProblem) {
  auto c = client(*server_);
  for (const std::string& query : std::vector<std::string>{
           "filter=" + q("metrics.val_accuracy >> 0.9"), "filter=" + q("bogus"), "status=sleeping", "limit=0",
           "limit=abc", "offset=-1", "order_by=" + q("metrics.x SIDEWAYS")}) {
    auto r = c.Get("/v1/runs?" + query);
    ASSERT_TRUE(r) << query;
    EXPECT_EQ(r->status, 400) << query << ": " << r->body;
    const json j = body_json(r);
    EXPECT_EQ(j["code"], "bad_request") << query;
    EXPECT_FALSE(j["error"].get<std::string>().empty()) << query;
  }
  auto r = c.Get("/v1/runs?status=sleeping");
  EXPECT_THAT(body_json(r)["error"].get<std::string>(), HasSubstr("sleeping"));
}

TEST_F(TrackingApiTest, OneRunByIdPrefixOrNameWithArtifactsAndMetricKeys) {
  auto c = client(*server_);
  auto r = c.Get("/v1/runs/" + ids_["alpha"]);
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json run = body_json(r);
  EXPECT_EQ(run["name"], "alpha");
  ASSERT_EQ(run["artifacts"].size(), 1u);
  EXPECT_EQ(run["artifacts"][0]["path"], "checkpoints/last.ckpt");
  EXPECT_EQ(run["artifacts"][0]["kind"], "checkpoint");
  EXPECT_EQ(run["artifacts"][0]["size"], 1234);
  EXPECT_THAT(run["metric_keys"].get<std::vector<std::string>>(),
              ::testing::UnorderedElementsAre("val_accuracy", "loss"));

  EXPECT_EQ(body_json(c.Get("/v1/runs/" + ids_["beta"].substr(0, 8)))["name"], "beta");
  // A name from the URL path is percent-decoded.
  auto spaced = c.Get("/v1/runs/delta%20run");
  ASSERT_TRUE(spaced);
  EXPECT_EQ(spaced->status, 200) << spaced->body;
  EXPECT_EQ(body_json(spaced)["status"], "running");
  EXPECT_TRUE(body_json(spaced)["duration_s"].is_number());

  auto missing = c.Get("/v1/runs/no-such-run");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404) << missing->body;
  EXPECT_EQ(body_json(missing)["code"], "not_found");
}

TEST_F(TrackingApiTest, MetricHistoryByStep) {
  auto c = client(*server_);
  auto r = c.Get("/v1/runs/alpha/metrics?keys=val_accuracy");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json j = body_json(r);
  EXPECT_EQ(j["run_id"], ids_["alpha"]);
  const auto& points = j["metrics"]["val_accuracy"];
  ASSERT_EQ(points.size(), 3u);
  EXPECT_FALSE(j["metrics"].contains("loss"));
  const std::vector<double> expected = {0.5, 0.7, 0.95};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(points[i]["step"], static_cast<int>(i + 1));
    EXPECT_DOUBLE_EQ(points[i]["value"].get<double>(), expected[i]);
    EXPECT_GT(points[i]["timestamp_ms"].get<int64_t>(), 0);
  }
  const json all = body_json(c.Get("/v1/runs/alpha/metrics"));
  EXPECT_EQ(all["metrics"].size(), 2u);
  EXPECT_EQ(all["metrics"]["loss"].size(), 3u);
  // Thinned to about max_points, always keeping the last point.
  const json thin = body_json(c.Get("/v1/runs/alpha/metrics?keys=val_accuracy&max_points=2"));
  ASSERT_LE(thin["metrics"]["val_accuracy"].size(), 3u);
  EXPECT_EQ(thin["metrics"]["val_accuracy"].back()["step"], 3);
  // A key the run does not have is an empty history (comparisons ask every run for the same keys).
  EXPECT_TRUE(body_json(c.Get("/v1/runs/gamma/metrics?keys=nope"))["metrics"]["nope"].empty());
}

TEST_F(TrackingApiTest, RegistryListsModelsAndVersionsWithLineage) {
  auto c = client(*server_);
  const json models = body_json(c.Get("/v1/registry/models"));
  ASSERT_TRUE(models.is_array()) << models.dump();
  ASSERT_EQ(models.size(), 1u);
  EXPECT_EQ(models[0]["name"], "clf");
  EXPECT_EQ(models[0]["latest_version"], 3);
  EXPECT_EQ(models[0]["version_count"], 3);
  EXPECT_TRUE(models[0]["updated_ms"].is_number());
  EXPECT_TRUE(models[0]["aliases"].is_object());

  auto r = c.Get("/v1/registry/models/clf");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  const json m = body_json(r);
  ASSERT_EQ(m["versions"].size(), 3u);
  const json& v1 = m["versions"][0];
  EXPECT_EQ(v1["version"], 1);
  EXPECT_EQ(v1["run_id"], ids_["alpha"]);
  EXPECT_EQ(v1["dataset_id"], "ds-cls");
  EXPECT_EQ(v1["arch"], "mask_small_cnn");
  EXPECT_EQ(v1["sha256"].get<std::string>().size(), 64u);
  EXPECT_EQ(v1["size"], 13);  // "model bytes 1"
  EXPECT_THAT(v1["source"].get<std::string>(), HasSubstr(ids_["alpha"]));
  EXPECT_DOUBLE_EQ(v1["metrics"]["val_accuracy"].get<double>(), 0.91);
  EXPECT_TRUE(v1["created_ms"].is_number());

  auto unknown = c.Get("/v1/registry/models/nope");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404) << unknown->body;
  auto bad = c.Get("/v1/registry/models/bad%20name");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400) << bad->body;
}

TEST_F(TrackingApiTest, AliasesMoveAndAreRemoved) {
  auto c = client(*server_);
  auto moved = c.Put("/v1/registry/models/clf/aliases/production", R"({"version": 2})", "application/json");
  ASSERT_TRUE(moved);
  ASSERT_EQ(moved->status, 200) << moved->body;
  EXPECT_EQ(body_json(moved)["alias"], "production");
  EXPECT_EQ(body_json(moved)["version"], 2);
  EXPECT_EQ(body_json(moved)["previous"], 1);
  const json m = body_json(c.Get("/v1/registry/models/clf"));
  EXPECT_EQ(m["aliases"]["production"], 2);
  EXPECT_THAT(m["versions"][1]["aliases"].get<std::vector<std::string>>(), ::testing::Contains("production"));
  EXPECT_EQ(store_->resolve_model("clf@production").version, 2) << "the store itself must see the move";

  auto fresh = c.Put("/v1/registry/models/clf/aliases/staging", R"({"version": 3})", "application/json");
  ASSERT_TRUE(fresh);
  ASSERT_EQ(fresh->status, 200) << fresh->body;
  EXPECT_TRUE(body_json(fresh)["previous"].is_null());

  auto missing = c.Put("/v1/registry/models/clf/aliases/production", R"({"version": 9})", "application/json");
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->status, 404) << missing->body;
  EXPECT_THAT(body_json(missing)["error"].get<std::string>(), HasSubstr("1, 2, 3"));
  for (const auto& [path, body] : std::vector<std::pair<std::string, std::string>>{
           {"/v1/registry/models/clf/aliases/latest", R"({"version": 1})"},
           {"/v1/registry/models/clf/aliases/42", R"({"version": 1})"},
           {"/v1/registry/models/clf/aliases/production", R"({"version": "x"})"},
           {"/v1/registry/models/clf/aliases/production", "not json"}}) {
    auto r = c.Put(path, body, "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << path << " " << body << ": " << r->body;
  }
  auto no_model =
      c.Put("/v1/registry/models/nope/aliases/production", R"({"version": 1})", "application/json");
  ASSERT_TRUE(no_model);
  EXPECT_EQ(no_model->status, 404);

  auto removed = c.Delete("/v1/registry/models/clf/aliases/staging");
  ASSERT_TRUE(removed);
  EXPECT_EQ(removed->status, 204) << removed->body;
  EXPECT_FALSE(body_json(c.Get("/v1/registry/models/clf"))["aliases"].contains("staging"));
  auto again = c.Delete("/v1/registry/models/clf/aliases/staging");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, 404) << again->body;
  EXPECT_THAT(body_json(again)["error"].get<std::string>(), HasSubstr("production"));

  auto wrong_method = c.Post("/v1/registry/models/clf/aliases/production", "{}", "application/json");
  ASSERT_TRUE(wrong_method);
  EXPECT_EQ(wrong_method->status, 405);
  EXPECT_THAT(wrong_method->get_header_value("Allow"), HasSubstr("PUT"));
}

TEST_F(TrackingApiTest, WithoutAModelPredictAnswers503AndHealthStaysSensible) {
  auto c = client(*server_);
  auto predict = c.Post("/v1/predict", "not an image", "image/jpeg");
  ASSERT_TRUE(predict);
  EXPECT_EQ(predict->status, 503);
  EXPECT_THAT(body_json(predict)["error"].get<std::string>(), HasSubstr("no model is served"));
  auto seed = c.Post("/predict/", "x", "image/jpeg");
  ASSERT_TRUE(seed);
  EXPECT_EQ(seed->status, 503);
  auto kserve = c.Get("/v2/models/clf");
  ASSERT_TRUE(kserve);
  EXPECT_EQ(kserve->status, 503);

  const json models = body_json(c.Get("/v1/models"));
  EXPECT_TRUE(models["models"].is_array() && models["models"].empty()) << models.dump();
  auto health = c.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto ready = c.Get("/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_EQ(body_json(ready)["ready"], false);
  auto ui = c.Get("/ui/");
  ASSERT_TRUE(ui);
  EXPECT_EQ(ui->status, 200);
  EXPECT_THAT(ui->body, HasSubstr("Experiments"));
  auto stats = c.Get("/v1/stats");
  ASSERT_TRUE(stats);
  EXPECT_EQ(stats->status, 200);
}

TEST_F(TrackingApiTest, ApiKeysGuardTheAliasRoutes) {
  ServerProcess keyed("--api-key k-123", *dir_ / "ui-key", "ui", workspace());
  ASSERT_TRUE(keyed.running()) << keyed.log();
  auto c = client(keyed);
  const std::string body = R"({"version": 3})";
  auto none = c.Put("/v1/registry/models/clf/aliases/canary", body, "application/json");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->status, 401);
  auto wrong =
      c.Put("/v1/registry/models/clf/aliases/canary", {{"X-API-Key", "nope"}}, body, "application/json");
  ASSERT_TRUE(wrong);
  EXPECT_EQ(wrong->status, 403);
  auto unkeyed_delete = c.Delete("/v1/registry/models/clf/aliases/production");
  ASSERT_TRUE(unkeyed_delete);
  EXPECT_EQ(unkeyed_delete->status, 401);
  auto ok = c.Put("/v1/registry/models/clf/aliases/canary", {{"Authorization", "Bearer k-123"}}, body,
                  "application/json");
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  auto removed = c.Delete("/v1/registry/models/clf/aliases/canary", {{"X-API-Key", "k-123"}});
  ASSERT_TRUE(removed);
  EXPECT_EQ(removed->status, 204);
  // Reading needs the key like every other /v1 route; health and the UI's files do not.
  auto runs = c.Get("/v1/runs");
  ASSERT_TRUE(runs);
  EXPECT_EQ(runs->status, 401);
  EXPECT_EQ(c.Get("/health")->status, 200);
  EXPECT_EQ(c.Get("/ui/")->status, 200);
}

TEST_F(TrackingApiTest, ServeWithoutAModelIsStillAnError) {
  TempDir t;
  const auto r = run_vigil("serve --port 0", t / "ws");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err + r.out, HasSubstr("model"));
}

TEST_F(TrackingApiTest, ServeWithAModelAlsoServesTheTrackingApi) {
  const fs::path model = vigil::testing::make_model_file(*dir_ / "masks.ckpt", "mask_small_cnn",
                                                         {"with_mask", "without_mask"}, 3);
  ServerProcess s(fmt::format("--model '{}'", model.string()), *dir_ / "serve", "serve", workspace());
  ASSERT_TRUE(s.running()) << s.log();
  auto c = client(s);
  EXPECT_EQ(body_json(c.Get("/v1/models"))["models"].size(), 1u);
  const json runs = body_json(c.Get("/v1/runs"));
  EXPECT_EQ(runs["total"], 4) << runs.dump();
  EXPECT_EQ(body_json(c.Get("/v1/registry/models")).size(), 1u);
}

}  // namespace

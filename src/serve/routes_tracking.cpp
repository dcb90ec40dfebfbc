// The tracking and registry API behind the UI's Experiments and Models pages: experiments, runs (search,
// one run, metric history) and registered models (versions, aliases). Every handler reaches the store
// through with_store(); what the store throws is mapped to a status by guarded(), like every other error.

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <limits>

#include "server_impl.h"
#include "vigil/core/clock.h"
#include "vigil/core/error.h"
#include "vigil/core/strings.h"
#include "vigil/store/json.h"

namespace vigil::serve {

namespace {

using nlohmann::json;

constexpr const char* kRunPath = R"(/v1/runs/([^/]+))";
constexpr const char* kModelPath = R"(/v1/registry/models/([^/]+))";
constexpr const char* kAliasPath = R"(/v1/registry/models/([^/]+)/aliases/([^/]+))";
constexpr size_t kMaxRefLength = 256;

/// The server's store settings: a request waits seconds, not the CLI's minutes, for another process's
/// write lock, then answers 503 so the browser can retry.
store::StoreOptions server_store_options() {
  store::StoreOptions o;
  o.busy_timeout_ms = 5000;
  o.max_retries = 2;
  return o;
}

/// A run reference from the URL path (httplib has already percent-decoded it): an id, an id prefix, a
/// name or "last"; names are free text, so only the length and control characters are checked here.
std::string run_ref_from(const httplib::Request& req) {
  std::string ref = req.matches[1];
  VIGIL_CHECK(!ref.empty() && ref.size() <= kMaxRefLength,
              "expected a run id, id prefix, name or 'last' of 1..{} characters, got {} characters",
              kMaxRefLength, ref.size());
  const bool control = std::any_of(ref.begin(), ref.end(),
                                   [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
  VIGIL_CHECK(!control, "expected a run reference without control characters, got '{}'", ref);
  return ref;
}

std::string model_name_from(const httplib::Request& req) {
  std::string name = req.matches[1];
  store::check_model_name(name);
  return name;
}

/// An integer query parameter in lo..hi (`fallback` when absent); 400 naming it otherwise.
int int_param(const httplib::Request& req, const char* name, int fallback, int lo, int hi) {
  if (!req.has_param(name)) return fallback;
  const std::string text = req.get_param_value(name);
  const auto v = parse_int(text);
  if (!v || *v < lo || *v > hi)
    throw_http(400, "bad_request",
               fmt::format("{} must be an integer in {}..{}, got '{}'", name, lo, hi, text));
  return static_cast<int>(*v);
}

std::vector<std::string> param_values(const httplib::Request& req, const char* name) {
  std::vector<std::string> values;
  const size_t n = req.get_param_value_count(name);
  for (size_t i = 0; i < n; ++i) {
    const std::string v(trim(req.get_param_value(name, i)));
    if (!v.empty()) values.push_back(v);
  }
  return values;
}

store::RunFilter filter_from(const httplib::Request& req) {
  store::RunFilter f;
  if (req.has_param("experiment")) f.experiment = req.get_param_value("experiment");
  if (req.has_param("status") && !req.get_param_value("status").empty())
    f.status = store::parse_run_status(req.get_param_value("status"));
  f.conditions = param_values(req, "filter");
  if (req.has_param("order_by") && !trim(req.get_param_value("order_by")).empty())
    f.order_by = std::string(trim(req.get_param_value("order_by")));
  f.limit = int_param(req, "limit", f.limit, 1, 10000);
  f.offset = int_param(req, "offset", 0, 0, 1'000'000'000);
  f.validate();  // a bad condition is a 400 naming it, before the store is touched
  return f;
}

/// Every `stride`-th point and the last one, so a long history stays a few thousand points for a chart.
std::vector<store::MetricPoint> thin(std::vector<store::MetricPoint> points, int max_points) {
  if (max_points <= 0 || static_cast<int>(points.size()) <= max_points) return points;
  const size_t stride = (points.size() + max_points - 1) / static_cast<size_t>(max_points);
  std::vector<store::MetricPoint> kept;
  for (size_t i = 0; i < points.size(); i += stride) kept.push_back(points[i]);
  if (kept.back().step != points.back().step || kept.back().timestamp_ms != points.back().timestamp_ms)
    kept.push_back(points.back());
  return kept;
}

/// The versions of `name`, oldest first; 404 when the model is not registered.
std::vector<store::ModelVersion> versions_of(store::Store& s, const std::string& name) {
  auto versions = s.list_versions(name);
  if (versions.empty())
    throw_http(404, "not_found", fmt::format("no registered model '{}'; see GET /v1/registry/models", name));
  std::sort(versions.begin(), versions.end(),
            [](const auto& a, const auto& b) { return a.version < b.version; });
  return versions;
}

/// "1, 2, 3" for an error message.
std::string version_list(const std::vector<store::ModelVersion>& versions) {
  std::vector<std::string> numbers;
  for (const auto& v : versions) numbers.push_back(std::to_string(v.version));
  return join(numbers, ", ");
}

/// The version a PUT alias body names: {"version": k} with k a positive integer (or its digits as text).
int version_from_body(const std::string& body) {
  const json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("version"))
    throw_http(400, "bad_request", R"(expected a JSON body {"version": K} naming the version to point at)");
  const json& v = j["version"];
  std::optional<long long> k;
  if (v.is_number_integer())
    k = v.get<long long>();
  else if (v.is_string())
    k = parse_int(v.get<std::string>());
  if (!k || *k < 1 || *k > 1'000'000'000)
    throw_http(400, "bad_request",
               fmt::format("expected \"version\" to be a positive integer, got {}", v.dump()));
  return static_cast<int>(*k);
}

/// The alias entries of a model as "production (version 2)" for an error message.
std::vector<std::string> alias_list(const std::vector<store::ModelVersion>& versions) {
  std::vector<std::string> out;
  for (const auto& v : versions)
    for (const auto& a : v.aliases) out.push_back(fmt::format("{} (version {})", a, v.version));
  return out;
}

bool has_alias(const std::vector<store::ModelVersion>& versions, const std::string& alias) {
  return std::any_of(versions.begin(), versions.end(), [&](const auto& v) {
    return std::find(v.aliases.begin(), v.aliases.end(), alias) != v.aliases.end();
  });
}

using Req = httplib::Request;
using Res = httplib::Response;

// ---- handlers (the route table, tracking_routes(), is at the end) -----------------------------------------

void list_experiments(Server::Impl& impl, const Req&, Res& res) {
  impl.with_store([&](store::Store& s) { send_json(res, {{"experiments", s.experiments()}}); });
}

void list_runs(Server::Impl& impl, const Req& req, Res& res) {
  const store::RunFilter filter = filter_from(req);
  impl.with_store([&](store::Store& s) {
    const store::RunPage page = s.search_runs(filter);
    json runs = json::array();
    for (const auto& r : page.runs) runs.push_back(store::to_json(r));
    send_json(res, {{"runs", std::move(runs)},
                    {"total", page.total},
                    {"limit", filter.limit},
                    {"offset", filter.offset}});
  });
}

void get_run(Server::Impl& impl, const Req& req, Res& res) {
  const std::string ref = run_ref_from(req);
  impl.with_store([&](store::Store& s) {
    const store::RunRecord r = s.get_run(ref);
    json j = store::to_json(r, /*with_artifacts=*/true);
    j["metric_keys"] = s.metric_keys(r.info.id);
    j["run_dir"] = r.info.run_dir;
    send_json(res, j);
  });
}

void get_run_metrics(Server::Impl& impl, const Req& req, Res& res) {
  const std::string ref = run_ref_from(req);
  std::vector<std::string> keys;
  if (req.has_param("keys"))
    for (const auto& k : split(req.get_param_value("keys"), ','))
      if (!trim(k).empty()) keys.emplace_back(trim(k));
  const int max_points = int_param(req, "max_points", 0, 0, 1'000'000);
  impl.with_store([&](store::Store& s) {
    const std::string id = s.resolve_run(ref);
    if (keys.empty()) keys = s.metric_keys(id);
    json metrics = json::object();
    for (const auto& k : keys) metrics[k] = store::to_json(thin(s.metric_history(id, k), max_points));
    send_json(res, {{"run_id", id}, {"metrics", std::move(metrics)}});
  });
}

void list_models(Server::Impl& impl, const Req&, Res& res) {
  impl.with_store([&](store::Store& s) {
    json models = json::array();
    for (const auto& m : s.list_models()) models.push_back(store::to_json(m));
    send_json(res, models);
  });
}

void get_model(Server::Impl& impl, const Req& req, Res& res) {
  const std::string name = model_name_from(req);
  impl.with_store([&](store::Store& s) {
    const auto versions = versions_of(s, name);
    json list = json::array();
    json aliases = json::object();
    for (const auto& v : versions) {
      list.push_back(store::to_json(v));
      for (const auto& a : v.aliases) aliases[a] = v.version;
    }
    send_json(res, {{"name", name},
                    {"latest_version", versions.back().version},
                    {"aliases", std::move(aliases)},
                    {"versions", std::move(list)}});
  });
}

void set_alias(Server::Impl& impl, const Req& req, Res& res) {
  const std::string name = model_name_from(req);
  const std::string alias = req.matches[2];
  store::check_alias_name(alias);
  const int version = version_from_body(req.body);
  impl.with_store([&](store::Store& s) {
    const auto versions = versions_of(s, name);
    const bool known =
        std::any_of(versions.begin(), versions.end(), [&](const auto& v) { return v.version == version; });
    if (!known)
      throw_http(404, "not_found",
                 fmt::format("model '{}' has no version {}; its versions are {}", name, version,
                             version_list(versions)));
    const int previous = s.set_alias(name, alias, version);
    spdlog::info("serve: alias {}@{} -> version {} (was {})", name, alias, version,
                 previous ? std::to_string(previous) : "unset");
    send_json(res, {{"name", name},
                    {"alias", alias},
                    {"version", version},
                    {"previous", previous ? json(previous) : json(nullptr)}});
  });
}

void delete_alias(Server::Impl& impl, const Req& req, Res& res) {
  const std::string name = model_name_from(req);
  const std::string alias = req.matches[2];
  store::check_alias_name(alias);
  impl.with_store([&](store::Store& s) {
    const auto versions = versions_of(s, name);
    if (!has_alias(versions, alias)) {
      const auto existing = alias_list(versions);
      throw_http(404, "not_found",
                 fmt::format("model '{}' has no alias '{}'; its aliases: {}", name, alias,
                             existing.empty() ? "none" : join(existing, ", ")));
    }
    s.delete_alias(name, alias);
    spdlog::info("serve: alias {}@{} removed", name, alias);
    res.status = 204;
  });
}

/// GET /v1/registry/events?after=ID&limit=N: the registry's changes after event ID, oldest first (a feed a
/// client pages through with the last id it saw), and the registry webhook's deliveries when one is set.
void list_registry_events(Server::Impl& impl, const Req& req, Res& res) {
  const int64_t after = int_param(req, "after", 0, 0, std::numeric_limits<int>::max());
  const int limit = int_param(req, "limit", 100, 1, 1000);
  impl.with_store([&](store::Store& s) {
    json events = json::array();
    for (const auto& e : s.registry_events(after, 0, limit)) {
      events.push_back({{"id", e.id},
                        {"time", format_utc_ms(e.time_ms)},
                        {"event", e.event},
                        {"name", e.name},
                        {"version", e.version},
                        {"alias", e.alias},
                        {"data", json::parse(e.payload_json, nullptr, false)},
                        {"delivered_by", e.claimed_by}});
    }
    send_json(res, {{"events", events},
                    {"webhook", impl.registry_notifier ? impl.registry_notifier->stats() : json(nullptr)}});
  });
}

}  // namespace

void Server::Impl::with_store(const std::function<void(store::Store&)>& fn) {
  if (options.workspace.empty())
    throw_http(503, "unavailable", "this server has no workspace, so it shows no runs or registered models");
  std::lock_guard lock(tracking_mutex);
  if (!tracking_store)
    tracking_store = std::make_unique<store::Store>(Workspace(options.workspace), server_store_options());
  fn(*tracking_store);
}

const std::vector<Route>& tracking_routes() {
  static const std::string run = kRunPath, model = kModelPath, alias = kAliasPath;
  static const std::string alias_label = "/v1/registry/models/{name}/aliases/{alias}";
  // clang-format off
  static const std::vector<Route> kRoutes = {
      {"GET",    "/v1/experiments",     "/v1/experiments",            list_experiments},
      {"GET",    "/v1/runs",            "/v1/runs",                   list_runs},
      {"GET",    run,                   "/v1/runs/{ref}",             get_run},
      {"GET",    run + "/metrics",      "/v1/runs/{ref}/metrics",     get_run_metrics},
      {"GET",    "/v1/registry/models", "/v1/registry/models",        list_models},
      {"GET",    model,                 "/v1/registry/models/{name}", get_model},
      {"PUT",    alias,                 alias_label,                  set_alias},
      {"DELETE", alias,                 alias_label,                  delete_alias},
      {"GET",    "/v1/registry/events", "/v1/registry/events",        list_registry_events},
  };
  // clang-format on
  return kRoutes;
}

}  // namespace vigil::serve

// Route table: retraining jobs (serve/retrain_jobs.h). A client chooses only what the operator allows: the
// dataset version, the epochs or time budget, the seed, the promotion margin and metric. The training config
// itself is the server's (--set retrain_config=...), never a path from the request.

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <regex>

#include "router.h"
#include "server_impl.h"
#include "vigil/core/error.h"

namespace vigil::serve {

namespace {

using nlohmann::json;
using Req = httplib::Request;
using Res = httplib::Response;

constexpr const char* kJobPath = R"(/v1/jobs/([A-Za-z0-9._-]{1,64}))";

RetrainJobs& jobs_of(Server::Impl& impl) {
  if (!impl.retrain_jobs)
    throw_http(404, "not_found", "retraining is off: start the server with --set retrain_config=TRAIN.yaml");
  return *impl.retrain_jobs;
}

/// The request body, field by field: {"dataset"?: "name[@id]", "epochs"?: int, "time"?: "30m", "seed"?: int,
/// "min_delta"?: number, "metric"?: "auto|accuracy|fitness|mAP50|mAP50-95"}; anything else is a 400.
RetrainRequest request_from(const std::string& body) {
  RetrainRequest r;
  const json j = body.empty() ? json::object() : json::parse(body, nullptr, false);
  if (!j.is_object()) throw_http(400, "bad_request", "expected a JSON object (or no body)");
  static const std::regex dataset_re(R"([A-Za-z0-9._-]{1,128}(@[0-9a-f]{6,64})?)");
  static const std::regex time_re(R"([0-9]+(\.[0-9]+)?[smh]?)");
  for (const auto& [key, v] : j.items()) {
    if (key == "dataset") {
      if (!v.is_string() || !std::regex_match(v.get<std::string>(), dataset_re))
        throw_http(400, "bad_request", "dataset: expected a dataset name or name@id");
      r.sets.push_back("data.dataset=" + v.get<std::string>());
    } else if (key == "epochs" || key == "seed") {
      if (!v.is_number_integer() || v.get<int64_t>() < (key == "epochs" ? 1 : 0) || v.get<int64_t>() > 100000)
        throw_http(400, "bad_request",
                   fmt::format("{}: expected a whole number{}", key, key == "epochs" ? " >= 1" : ""));
      r.sets.push_back(fmt::format("{}={}", key, v.get<int64_t>()));
    } else if (key == "time") {
      if (!v.is_string() || !std::regex_match(v.get<std::string>(), time_re))
        throw_http(400, "bad_request", "time: expected a budget such as 90s, 30m or 1.5h");
      r.sets.push_back("time=" + v.get<std::string>());
    } else if (key == "min_delta") {
      if (!v.is_number() || std::abs(v.get<double>()) > 1)
        throw_http(400, "bad_request", "min_delta: expected a number in -1..1");
      r.min_delta = v.get<double>();
    } else if (key == "metric") {
      static const std::vector<std::string> metrics = {"auto", "accuracy", "fitness", "mAP50", "mAP50-95"};
      if (!v.is_string() || std::find(metrics.begin(), metrics.end(), v.get<std::string>()) == metrics.end())
        throw_http(400, "bad_request", "metric: expected auto, accuracy, fitness, mAP50 or mAP50-95");
      r.metric = v.get<std::string>();
    } else {
      throw_http(
          400, "bad_request",
          fmt::format("unknown field '{}': expected dataset, epochs, time, seed, min_delta or metric", key));
    }
  }
  return r;
}

/// POST /v1/retrain -> 202 {"job", "url"}: queued, started when the jobs before it end.
void start_retrain(Server::Impl& impl, const Req& req, Res& res) {
  RetrainJobs& jobs = jobs_of(impl);
  const RetrainRequest r = request_from(req.body);
  const std::string id = jobs.start(r);  // a full queue is Unavailable: 503 + Retry-After
  res.set_header("Location", "/v1/jobs/" + id);
  send_json(res,
            {{"job", id},
             {"url", "/v1/jobs/" + id},
             {"model", jobs.options().model},
             {"alias", jobs.options().alias}},
            202);
}

void list_jobs(Server::Impl& impl, const Req&, Res& res) {
  send_json(res, {{"jobs", jobs_of(impl).list()}});
}

void get_job(Server::Impl& impl, const Req& req, Res& res) {
  send_json(res, jobs_of(impl).get(req.matches[1]));
}

/// DELETE /v1/jobs/{id}: cancels a running or queued job -> 202; a finished one -> 409.
void cancel_job(Server::Impl& impl, const Req& req, Res& res) {
  try {
    jobs_of(impl).cancel(req.matches[1]);
  } catch (const InvalidArgument& e) {
    throw_http(409, "conflict", e.what());
  }
  send_json(res, {{"job", req.matches[1]}, {"state", "cancelling"}}, 202);
}

}  // namespace

const std::vector<Route>& job_routes() {
  static const std::string one = kJobPath;
  // clang-format off
  static const std::vector<Route> kRoutes = {
      {"POST",   "/v1/retrain", "/v1/retrain",   start_retrain},
      {"GET",    "/v1/jobs",    "/v1/jobs",      list_jobs},
      {"GET",    one,           "/v1/jobs/{id}", get_job},
      {"DELETE", one,           "/v1/jobs/{id}", cancel_job},
  };
  // clang-format on
  return kRoutes;
}

}  // namespace vigil::serve

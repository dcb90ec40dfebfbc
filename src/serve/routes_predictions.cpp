// Route table: the prediction log (every answered image, store/prediction_log.h), its feedback, and the
// scheduled drift check over it (serve/drift_monitor.h).

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "router.h"
#include "server_impl.h"
#include "vigil/core/clock.h"
#include "vigil/core/error.h"
#include "vigil/serve/event_query.h"

namespace vigil::serve {

namespace {

using nlohmann::json;
using Req = httplib::Request;
using Res = httplib::Response;

constexpr const char* kPredictionPath = R"(/v1/predictions/([A-Za-z0-9._-]{1,64}))";
constexpr size_t kMaxFeedbackBoxes = 1000;

store::PredictionLog& log_of(Server::Impl& impl) {
  if (!impl.recorder)
    throw_http(
        503, "unavailable",
        "this server keeps no prediction log (it needs a model and a workspace; prediction_log is on by "
        "default)");
  return impl.recorder->log();
}

json parsed(const std::string& text) {
  json j = json::parse(text, nullptr, false);
  return j.is_discarded() ? json() : j;
}

json prediction_view(const store::PredictionRow& r) {
  json j = {{"id", r.id},
            {"request_id", r.request_id},
            {"time", format_utc_ms(r.time_ms)},
            {"time_ms", r.time_ms},
            {"model", {{"name", r.model}, {"version", r.version}}},
            {"route", r.route},
            {"client", r.client},
            {"latency_ms", r.latency_ms},
            {"input", parsed(r.input_json)},
            {"output", parsed(r.output_json)},
            {"image", r.image.empty() ? json() : json(r.image)},
            {"feedback", r.feedback_json.empty() ? json() : parsed(r.feedback_json)}};
  if (r.feedback_ms > 0) j["feedback_time"] = format_utc_ms(r.feedback_ms);
  return j;
}

/// GET /v1/predictions: model, version, since, until, feedback (true|false), limit (default 100), offset.
void list_predictions(Server::Impl& impl, const Req& req, Res& res) {
  const ParamLookup get = query_of(req);
  store::PredictionFilter f;
  f.model = get("model").value_or("");
  f.version = get("version").value_or("");
  f.since_ms = time_query(get, "since");
  f.until_ms = time_query(get, "until");
  if (get("feedback") && !get("feedback")->empty()) f.has_feedback = bool_query(get, "feedback", false);
  f.limit = static_cast<int>(int_query(get, "limit", 100, 1, 10000));
  f.offset = static_cast<int>(int_query(get, "offset", 0, 0, 1'000'000'000));
  store::PredictionLog& log = log_of(impl);
  impl.recorder->flush();  // what was just answered is listed
  const store::PredictionPage page = log.search(f);
  json rows = json::array();
  for (const auto& r : page.rows) rows.push_back(prediction_view(r));
  send_json(res, {{"total", page.total}, {"limit", f.limit}, {"offset", f.offset}, {"predictions", rows}});
}

void get_prediction(Server::Impl& impl, const Req& req, Res& res) {
  store::PredictionLog& log = log_of(impl);
  impl.recorder->flush();
  send_json(res, prediction_view(log.get(req.matches[1])));
}

/// The feedback body, checked field by field: {"correct": bool, "label"?: string, "boxes"?: [{"label",
/// "box": [x1, y1, x2, y2]}], "note"?: string}. Whatever else is refused, so a typo is not stored silently.
json checked_feedback(const std::string& body) {
  const json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object())
    throw_http(400, "bad_request", "expected a JSON object such as {\"correct\": false, \"label\": \"gun\"}");
  if (!j.contains("correct") || !j["correct"].is_boolean())
    throw_http(400, "bad_request", "correct: expected true or false");
  json out = {{"correct", j["correct"]}};
  for (const auto& [key, value] : j.items()) {
    if (key == "correct") continue;
    if (key == "label" || key == "note") {
      if (!value.is_string() || value.get<std::string>().empty() || value.get<std::string>().size() > 1000)
        throw_http(400, "bad_request",
                   fmt::format("{}: expected a non-empty string (at most 1000 characters)", key));
      out[key] = value;
    } else if (key == "boxes") {
      if (!value.is_array() || value.size() > kMaxFeedbackBoxes)
        throw_http(400, "bad_request",
                   fmt::format("boxes: expected an array of at most {} boxes", kMaxFeedbackBoxes));
      for (size_t i = 0; i < value.size(); ++i) {
        const json& b = value[i];
        const bool ok =
            b.is_object() && b.contains("label") && b["label"].is_string() && b.contains("box") &&
            b["box"].is_array() && b["box"].size() == 4 &&
            std::all_of(b["box"].begin(), b["box"].end(), [](const json& v) { return v.is_number(); });
        if (!ok)
          throw_http(400, "bad_request",
                     fmt::format("boxes[{}]: expected {{\"label\": string, \"box\": [x1, y1, x2, y2]}}", i));
        const auto box = b["box"].get<std::vector<double>>();
        if (!(box[2] > box[0] && box[3] > box[1]))
          throw_http(400, "bad_request", fmt::format("boxes[{}]: expected x2 > x1 and y2 > y1", i));
      }
      out[key] = value;
    } else {
      throw_http(400, "bad_request",
                 fmt::format("unknown field '{}': expected correct, label, boxes or note", key));
    }
  }
  if (!out["correct"].get<bool>() && !out.contains("label") && !out.contains("boxes"))
    out["review"] = true;  // wrong, and the right answer still to be given: the review set's job
  return out;
}

/// POST /v1/predictions/{id}/feedback: marks the prediction right or wrong (with the right label or boxes).
void prediction_feedback(Server::Impl& impl, const Req& req, Res& res) {
  store::PredictionLog& log = log_of(impl);
  const json feedback = checked_feedback(req.body);
  impl.recorder->flush();  // feedback may follow its prediction within milliseconds
  log.set_feedback(req.matches[1], feedback.dump());
  send_json(res, prediction_view(log.get(req.matches[1])));
}

DriftMonitor& monitor_of(Server::Impl& impl) {
  if (!impl.drift_monitor)
    throw_http(404, "not_found",
               "drift monitoring is off: start the server with --monitor-reference PROFILE");
  return *impl.drift_monitor;
}

/// GET /v1/monitor: the latest scheduled drift report (null before the first check) and the webhook's state.
void get_monitor(Server::Impl& impl, const Req&, Res& res) {
  DriftMonitor& m = monitor_of(impl);
  send_json(res, {{"report", m.latest()},
                  {"every_s", impl.options.monitor_every_s},
                  {"window_s", impl.options.monitor_window_s},
                  {"webhook", m.webhook_stats()}});
}

/// POST /v1/monitor/check: a drift check now (also updates the gauges and may alert).
void check_monitor(Server::Impl& impl, const Req&, Res& res) {
  send_json(res, monitor_of(impl).check_now());
}

}  // namespace

const std::vector<Route>& prediction_routes() {
  static const std::string one = kPredictionPath;
  // clang-format off
  static const std::vector<Route> kRoutes = {
      {"GET",  "/v1/predictions",   "/v1/predictions",               list_predictions},
      {"GET",  one,                 "/v1/predictions/{id}",          get_prediction},
      {"POST", one + "/feedback",   "/v1/predictions/{id}/feedback", prediction_feedback},
      {"GET",  "/v1/monitor",       "/v1/monitor",                   get_monitor},
      {"POST", "/v1/monitor/check", "/v1/monitor/check",             check_monitor},
  };
  // clang-format on
  return kRoutes;
}

}  // namespace vigil::serve

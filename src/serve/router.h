#pragma once
// The route tables and what is derived from them. Each route file declares its routes as one table of
// {method, pattern, label, handler} rows; all_routes() joins the tables, and that one list feeds the httplib
// registration, the route label of the metrics and access log, the 405 Allow lookup and the routing of
// requests without a body. Adding a route is one table row. Internal to src/serve/ (httplib lives here only).

#include <httplib.h>

#include <mutex>
#include <string>
#include <vector>

#include "vigil/core/workspace.h"
#include "vigil/serve/event_query.h"
#include "vigil/serve/server.h"

namespace vigil::serve {

/// A named handler: the server's state, the request, the response to fill. It may throw HttpError (a
/// route's own explicit status), vigil::Error (mapped by http_status_for) or anything else (500).
using RouteHandler = void (*)(Server::Impl& impl, const httplib::Request& req, httplib::Response& res);

/// One row of a route table.
struct Route {
  std::string method;   ///< "GET", "POST", "PUT" or "DELETE"
  std::string pattern;  ///< a regex matched against the whole path; groups become req.matches
  std::string label;    ///< the bounded route name of metrics and logs, e.g. "/v1/runs/{ref}"
  RouteHandler handler;
};

/// The table of routes_predict.cpp: the guns seed's routes, /v1 prediction and statistics, /metrics.
const std::vector<Route>& predict_routes();
/// The table of routes_kserve.cpp: health and the KServe v2 protocol.
const std::vector<Route>& kserve_routes();
/// The table of routes_tracking.cpp: experiments, runs and the model registry.
const std::vector<Route>& tracking_routes();
/// The table of routes_cameras.cpp: cameras (stats, latest frame, MJPEG) and events (search, one, snapshot,
/// server-sent stream).
const std::vector<Route>& camera_routes();
/// The table of routes_jobs.cpp: retraining jobs.
const std::vector<Route>& job_routes();
/// The table of routes_datasets.cpp: the workspace's datasets and bulk upload.
const std::vector<Route>& dataset_routes();
/// The request's query parameters as the typed readers of serve/event_query.h take them.
ParamLookup query_of(const httplib::Request& req);
/// The server's workspace (the dataset routes' store); 503 when the server has none.
Workspace workspace_of(const Server::Impl& impl);
/// One dataset ingest at a time per server (versions of one name are appended to one index file): every
/// upload route takes this lock.
std::mutex& dataset_ingest_mutex();
/// The table of routes_predictions.cpp: the prediction log and feedback.
const std::vector<Route>& prediction_routes();
/// The table of routes_accident.cpp: the accident-detection seed's routes (POST /predict with a sequence of
/// frames, its statistics and history from the prediction log, /retrain, /upload, /training-data-sources).
const std::vector<Route>& accident_routes();
/// The table of server.cpp: the web UI's static files.
const std::vector<Route>& ui_routes();

/// Every table above, in registration order.
const std::vector<Route>& all_routes();

/// The route answering `method` on `path` (with its groups in `matches`), or null.
const Route* find_route(const std::string& method, const std::string& path, httplib::Match& matches);

/// The methods the routes of `path` accept ("GET" or "PUT, DELETE"), in table order; empty for an unknown
/// path.
std::string allowed_methods(const std::string& path);

/// Registers every route of all_routes() with `http`, each wrapped by guarded().
void register_routes(httplib::Server& http, Server::Impl& impl);

/// The one handler wrapper: records the route's label for the metrics and the access log, runs its handler
/// and writes what it throws as the JSON error body: an HttpError with its own status, a vigil::Error with
/// http_status_for(code) (a 503 with Retry-After), anything else as 500.
void guarded(Server::Impl& impl, const Route& route, const httplib::Request& req, httplib::Response& res);

}  // namespace vigil::serve

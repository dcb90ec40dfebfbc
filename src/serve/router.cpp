// Joins the route tables of the route files and derives from them the httplib registration, the 405 Allow
// lookup, the routing of bodiless requests, and the one place where a handler's error becomes a status.

#include "router.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <regex>

#include "server_impl.h"
#include "vigil/core/error.h"
#include "vigil/core/strings.h"

namespace vigil::serve {

namespace {

/// Seconds a client is told to wait after a 503 from a vigil::Error (busy store, server stopping).
constexpr int kRetryAfterS = 1;

/// all_routes() with each pattern compiled once, for the lookups httplib does not answer itself.
const std::vector<std::pair<const Route*, std::regex>>& compiled_routes() {
  static const std::vector<std::pair<const Route*, std::regex>> kCompiled = [] {
    std::vector<std::pair<const Route*, std::regex>> compiled;
    for (const Route& r : all_routes()) compiled.emplace_back(&r, std::regex(r.pattern));
    return compiled;
  }();
  return kCompiled;
}

}  // namespace

ParamLookup query_of(const httplib::Request& req) {
  return [&req](const char* name) -> std::optional<std::string> {
    if (!req.has_param(name)) return std::nullopt;
    return req.get_param_value(name);
  };
}

const std::vector<Route>& all_routes() {
  static const std::vector<Route> kAll = [] {
    std::vector<Route> all;
    for (const auto* table :
         {&predict_routes(), &kserve_routes(), &tracking_routes(), &camera_routes(), &prediction_routes(),
          &dataset_routes(), &job_routes(), &accident_routes(), &ui_routes()})
      all.insert(all.end(), table->begin(), table->end());
    return all;
  }();
  return kAll;
}

std::vector<RouteInfo> server_routes() {
  std::vector<RouteInfo> routes;
  for (const Route& r : all_routes()) routes.push_back({r.method, r.pattern, r.label});
  return routes;
}

const Route* find_route(const std::string& method, const std::string& path, httplib::Match& matches) {
  for (const auto& [route, re] : compiled_routes())
    if (route->method == method && std::regex_match(path, matches, re)) return route;
  return nullptr;
}

std::string allowed_methods(const std::string& path) {
  std::vector<std::string> methods;
  for (const auto& [route, re] : compiled_routes()) {
    if (std::find(methods.begin(), methods.end(), route->method) == methods.end() &&
        std::regex_match(path, re))
      methods.push_back(route->method);
  }
  return join(methods, ", ");
}

void register_routes(httplib::Server& http, Server::Impl& impl) {
  for (const Route& route : all_routes()) {
    // The tables are static, so the row outlives the server.
    httplib::Server::Handler handler = [&impl, &route](const httplib::Request& req, httplib::Response& res) {
      guarded(impl, route, req, res);
    };
    if (route.method == "GET") {
      http.Get(route.pattern, std::move(handler));
    } else if (route.method == "POST") {
      http.Post(route.pattern, std::move(handler));
    } else if (route.method == "PUT") {
      http.Put(route.pattern, std::move(handler));
    } else if (route.method == "DELETE") {
      http.Delete(route.pattern, std::move(handler));
    } else {
      VIGIL_ASSERT(false, "route {} {}: expected GET, POST, PUT or DELETE", route.method, route.label);
    }
  }
}

void guarded(Server::Impl& impl, const Route& route, const httplib::Request& req, httplib::Response& res) {
  request_context().route = route.label;
  try {
    route.handler(impl, req, res);
  } catch (const HttpError& e) {
    send_error(res, e);
  } catch (const Error& e) {
    const int status = http_status_for(e.code());
    if (status == 500)
      spdlog::error("serve: {} {} [{}]: {}", req.method, req.path, request_context().id, e.what());
    send_error(res, {status, status_kind(status), e.what(), status == 503 ? kRetryAfterS : 0});
  } catch (const std::exception& e) {
    spdlog::error("serve: {} {} [{}]: {}", req.method, req.path, request_context().id, e.what());
    send_error(res, {500, "internal", fmt::format("internal error: {}", e.what())});
  }
}

}  // namespace vigil::serve

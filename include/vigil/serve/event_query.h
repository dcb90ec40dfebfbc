#pragma once
/// Query parameters of the camera and event routes, read into typed values with one error shape: an
/// InvalidArgument whose message starts with the parameter's name (the server answers it with 400). Pure:
/// the parameters come in through a lookup, so the rules are tested without a server.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "vigil/store/events.h"

namespace vigil::serve {

/// A request's query parameter by name; nullopt when absent.
using ParamLookup = std::function<std::optional<std::string>(const char* name)>;

/// An integer in lo..hi, or `fallback` when absent (or empty).
int64_t int_query(const ParamLookup& get, const char* name, int64_t fallback, int64_t lo, int64_t hi);
/// true/false, 1/0, yes/no, on/off (any case), or `fallback` when absent (or empty).
bool bool_query(const ParamLookup& get, const char* name, bool fallback);
/// Unix milliseconds or ISO 8601 UTC (core/clock.h parse_utc_ms), or 0 when absent (or empty).
int64_t time_query(const ParamLookup& get, const char* name);

/// GET /v1/events: camera, label, zone, since, until, ended (true|false), limit (default 100), offset,
/// checked by EventFilter::validate() too.
store::EventFilter event_filter_from(const ParamLookup& get);

}  // namespace vigil::serve

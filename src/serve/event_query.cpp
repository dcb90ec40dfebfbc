// The query parameters of the camera and event routes (event_query.h).

#include "vigil/serve/event_query.h"

#include <fmt/format.h>

#include "vigil/core/clock.h"
#include "vigil/core/error.h"
#include "vigil/core/strings.h"

namespace vigil::serve {

namespace {

/// The parameter's value, trimmed; nullopt when absent or empty (an empty `?camera=` means "any").
std::optional<std::string> present(const ParamLookup& get, const char* name) {
  auto v = get(name);
  if (!v) return std::nullopt;
  std::string t(trim(*v));
  if (t.empty()) return std::nullopt;
  return t;
}

}  // namespace

int64_t int_query(const ParamLookup& get, const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  const auto text = present(get, name);
  if (!text) return fallback;
  const auto v = parse_int(*text);
  VIGIL_CHECK(v && *v >= lo && *v <= hi, "{}: expected an integer in {}..{}, got '{}'", name, lo, hi, *text);
  return *v;
}

bool bool_query(const ParamLookup& get, const char* name, bool fallback) {
  const auto text = present(get, name);
  if (!text) return fallback;
  const std::string v = to_lower(*text);
  if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
  if (v == "0" || v == "false" || v == "no" || v == "off") return false;
  throw InvalidArgument(fmt::format("{}: expected true or false (1 or 0), got '{}'", name, *text));
}

int64_t time_query(const ParamLookup& get, const char* name) {
  const auto text = present(get, name);
  if (!text) return 0;
  const auto ms = parse_utc_ms(*text);
  VIGIL_CHECK(ms.has_value(),
              "{}: expected Unix milliseconds or an ISO 8601 UTC time such as 2026-01-31T08:00:00Z, got '{}'",
              name, *text);
  return *ms;
}

store::EventFilter event_filter_from(const ParamLookup& get) {
  store::EventFilter f;
  f.camera = present(get, "camera").value_or("");
  f.label = present(get, "label").value_or("");
  f.zone = present(get, "zone").value_or("");
  f.since_ms = time_query(get, "since");
  f.until_ms = time_query(get, "until");
  if (present(get, "ended")) f.ended = bool_query(get, "ended", false);
  f.limit = static_cast<int>(int_query(get, "limit", f.limit, 1, 10000));
  f.offset = static_cast<int>(int_query(get, "offset", 0, 0, 1'000'000'000));
  VIGIL_CHECK(f.since_ms == 0 || f.until_ms == 0 || f.since_ms < f.until_ms,
              "until: expected a time after since ({}), got {}", format_utc_ms(f.since_ms),
              format_utc_ms(f.until_ms));
  f.validate();
  return f;
}

}  // namespace vigil::serve

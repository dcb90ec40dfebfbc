// `vigil events list|show`: the alert events `vigil watch` and `vigil serve --cameras` recorded in the
// workspace store. The filters are GET /v1/events's, read by the same code (serve/event_query.h), and --json
// prints the same event objects.

#include <fmt/core.h>

#include <filesystem>
#include <map>

#include "cli.h"
#include "table.h"
#include "vigil/core/clock.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"
#include "vigil/serve/event_query.h"
#include "vigil/store/events.h"
#include "vigil/store/json.h"

namespace vigil::cli {

namespace {

struct EventsArgs {
  std::string camera, label, zone, since, until, id, snapshot_out;
  bool open = false, ended = false, json = false;
  int limit = 50, offset = 0;
};

store::EventFilter filter_from(const EventsArgs& a) {
  VIGIL_CHECK(!(a.open && a.ended), "expected --open or --ended, got both");
  std::map<std::string, std::string> params = {{"camera", a.camera},
                                               {"label", a.label},
                                               {"zone", a.zone},
                                               {"since", a.since},
                                               {"until", a.until},
                                               {"limit", std::to_string(a.limit)},
                                               {"offset", std::to_string(a.offset)}};
  if (a.open || a.ended) params["ended"] = a.ended ? "true" : "false";
  try {
    return serve::event_filter_from([&](const char* name) -> std::optional<std::string> {
      auto it = params.find(name);
      if (it == params.end()) return std::nullopt;
      return it->second;
    });
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(fmt::format("--{}", e.what()));  // "since: ..." names the flag --since
  }
}

std::string duration_of(const store::EventRow& e) {
  return e.end_ms > 0 ? format_duration_s((e.end_ms - e.start_ms) / 1000.0) : "open";
}

int list_events(const Context& ctx, const EventsArgs& a) {
  const store::EventFilter f = filter_from(a);
  store::EventLog log(ctx.workspace());
  const store::EventPage page = log.search(f);
  if (a.json) {
    nlohmann::json events = nlohmann::json::array();
    for (const auto& e : page.events) events.push_back(store::to_json(e));
    fmt::print(
        "{}\n",
        nlohmann::json{
            {"total", page.total}, {"limit", f.limit}, {"offset", f.offset}, {"events", std::move(events)}}
            .dump(2));
    return 0;
  }
  if (page.events.empty()) {
    fmt::print("no events{} (events are recorded by `vigil watch` and `vigil serve --cameras`)\n",
               page.total > 0 ? fmt::format(" on this page ({} in all)", page.total) : "");
    return 0;
  }
  Table t({"id", "camera", "label", "track", "start (UTC)", "duration", "end", "score", "zones"});
  for (const auto& e : page.events)
    t.add({e.id, e.camera, e.label, std::to_string(e.track_id), format_time_ms(e.start_ms), duration_of(e),
           e.end_reason.empty() ? "-" : e.end_reason, fmt::format("{:.2f}", e.top_score),
           e.zones.empty() ? "-" : join(e.zones, ",")});
  fmt::print("{}", t.str());
  const int64_t last = f.offset + static_cast<int64_t>(page.events.size());
  fmt::print("events {}-{} of {}{}\n", f.offset + 1, last, page.total,
             last < page.total ? fmt::format(" (next: --offset {})", last) : "");
  return 0;
}

int show_event(const Context& ctx, const EventsArgs& a) {
  store::EventLog log(ctx.workspace());
  const store::EventRow e = log.get(a.id);  // NotFound naming the id
  if (!a.snapshot_out.empty()) {
    std::error_code ec;
    if (e.snapshot.empty() || !std::filesystem::is_regular_file(e.snapshot, ec))
      throw NotFound(e.snapshot.empty()
                         ? fmt::format("event '{}' has no snapshot", e.id)
                         : fmt::format("event '{}': its snapshot {} is gone", e.id, e.snapshot));
    write_file_atomic(a.snapshot_out, read_file(e.snapshot));
  }
  if (a.json) {
    fmt::print("{}\n", store::to_json(e).dump(2));
  } else {
    const std::vector<std::pair<std::string, std::string>> kv = {
        {"camera", e.camera},
        {"label", e.label},
        {"track", std::to_string(e.track_id)},
        {"start", format_utc_ms(e.start_ms)},
        {"end", e.end_ms > 0 ? format_utc_ms(e.end_ms) + " (" + e.end_reason + ")" : "open"},
        {"duration", duration_of(e)},
        {"top score", fmt::format("{:.3f}", e.top_score)},
        {"zones", e.zones.empty() ? "-" : join(e.zones, ", ")},
        {"model", e.model.empty() ? "-" : e.model},
        {"snapshot", e.snapshot.empty() ? "-" : e.snapshot}};
    fmt::print("event {}\n", e.id);
    for (const auto& [k, v] : kv) fmt::print("  {:<9}  {}\n", k, v);
  }
  if (!a.snapshot_out.empty()) fmt::print(stderr, "snapshot written to {}\n", a.snapshot_out);
  return 0;
}

}  // namespace

void register_events(CLI::App& app, Context& ctx) {
  static EventsArgs a;
  auto* events = app.add_subcommand(
      "events", "alert events recorded by `vigil watch` and `vigil serve --cameras`: list, show");
  events->require_subcommand(1);
  auto* list = events->add_subcommand("list", "events, newest start first, with filters and paging");
  list->add_option("--camera,-c", a.camera, "only this camera");
  list->add_option("--label,-l", a.label, "only this label");
  list->add_option("--zone,-z", a.zone, "only events that entered this zone");
  list->add_option("--since", a.since, "started at or after: Unix ms or ISO 8601 UTC (2026-01-31T08:00:00Z)");
  list->add_option("--until", a.until, "started before: Unix ms or ISO 8601 UTC");
  list->add_flag("--open", a.open, "only events still open");
  list->add_flag("--ended", a.ended, "only events that ended");
  list->add_option("--limit", a.limit, "events per page (1..10000)")->capture_default_str();
  list->add_option("--offset", a.offset, "events to skip (paging)")->capture_default_str();
  list->add_flag("--json", a.json, "JSON output: {total, limit, offset, events} as GET /v1/events");
  list->callback([&ctx] { ctx.action = [&ctx] { return list_events(ctx, a); }; });

  auto* show = events->add_subcommand("show", "one event: times, zones, score, model, snapshot");
  show->add_option("id", a.id, "event id (as `vigil events list` shows it)")->required();
  show->add_flag("--json", a.json, "JSON output, with the watcher's whole record under \"data\"");
  show->add_option("--snapshot", a.snapshot_out, "copy the event's snapshot (JPEG) to this file");
  show->callback([&ctx] { ctx.action = [&ctx] { return show_event(ctx, a); }; });
}

}  // namespace vigil::cli

// The live view: the cameras `vigil serve --cameras` watches (stats, latest frame, MJPEG stream) and the
// events they raise (search, one event, its snapshot and clip, and a server-sent stream of new records). The
// cameras are a video::Watcher owned by the server; events are read back from the workspace store it writes.
// Streams hold an HTTP thread each, so they are bounded (max_streams, then 503) and end when the client
// leaves or the server stops (they poll `stopping`, so they never hold up a shutdown).

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <thread>

#include "server_impl.h"
#include "vigil/core/config.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"
#include "vigil/image/decode.h"
#include "vigil/serve/event_query.h"
#include "vigil/store/json.h"
#include "vigil/video/event_sinks.h"

namespace vigil::serve {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using Req = httplib::Request;
using Res = httplib::Response;

constexpr const char* kCameraPath = R"(/v1/cameras/([^/]+))";
constexpr const char* kEventPath = R"(/v1/events/([^/]+))";
constexpr int kDefaultJpegQuality = 85;
constexpr int kDefaultStreamFps = 5;
constexpr int kMaxStreamFps = 30;
/// A comment line this often keeps proxies from closing an idle event stream and finds clients that left.
constexpr auto kHeartbeat = std::chrono::seconds(10);
/// How long a stream waits at most before it looks at `stopping` again.
constexpr auto kPoll = std::chrono::milliseconds(100);

/// The server's watcher, knowing `camera`; 404 naming the camera (and the cameras there are) otherwise.
video::Watcher& watcher_with(Server::Impl& impl, const std::string& camera) {
  if (!impl.watcher)
    throw_http(
        404, "not_found",
        fmt::format("no camera '{}': this server watches no cameras (start it with --cameras FILE)", camera));
  impl.watcher->camera_stats(camera);  // NotFound naming the camera and the cameras there are
  return *impl.watcher;
}

/// A stream slot, given back when the last copy of the guard goes (the response's content provider holds
/// one for as long as the stream is open); 503 when max_streams are open.
std::shared_ptr<void> acquire_stream(Server::Impl& impl) {
  if (impl.open_streams.fetch_add(1) >= impl.options.max_streams) {
    impl.open_streams.fetch_sub(1);
    impl.metrics.rejected.inc({"streams"});
    throw_http(503, "unavailable",
               fmt::format("{} streams are open, the most this server allows (max_streams); retry later",
                           impl.options.max_streams),
               5);
  }
  return std::shared_ptr<void>(nullptr, [&impl](void*) { impl.open_streams.fetch_sub(1); });
}

/// Sleeps until `until`, in short steps; false when the server began stopping meanwhile.
bool sleep_until(const Server::Impl& impl, Clock::time_point until) {
  while (!impl.stopping) {
    const auto now = Clock::now();
    if (now >= until) return true;
    std::this_thread::sleep_for(std::min<Clock::duration>(until - now, kPoll));
  }
  return false;
}

/// The event's clip file as the watcher recorded it in the event's data ("" when clips are off).
std::string clip_of(const json& view) {
  const json& data = view["data"];
  if (!data.is_object() || !data.contains("event")) return "";
  const json& clip = data["event"].value("clip", json(nullptr));
  return clip.is_string() ? clip.get<std::string>() : "";
}

/// Where the clip thread writes a clip until it is finished (clip_writer.cpp).
std::filesystem::path partial_clip(const std::filesystem::path& clip) {
  return clip.parent_path() / ("." + clip.stem().string() + ".part" + clip.extension().string());
}

/// An event as GET /v1/events shows it: the store's JSON and the URLs of its snapshot and clip.
json event_view(const store::EventRow& row) {
  json j = store::to_json(row);
  j["snapshot_url"] =
      j["has_snapshot"].get<bool>() ? json(fmt::format("/v1/events/{}/snapshot.jpg", row.id)) : json(nullptr);
  const std::string clip = clip_of(j);
  std::error_code ec;
  const bool has_clip = !clip.empty() && std::filesystem::is_regular_file(clip, ec);
  j["has_clip"] = has_clip;
  j["clip"] = clip.empty() ? json(nullptr) : json(clip);
  j["clip_url"] = has_clip ? json(fmt::format("/v1/events/{}/clip.mp4", row.id)) : json(nullptr);
  return j;
}

std::string event_id_from(const Req& req) {
  std::string id = req.matches[1];
  VIGIL_CHECK(!id.empty() && id.size() <= 256, "expected an event id of 1..256 characters, got {} characters",
              id.size());
  return id;
}

// ---- handlers (the route table, camera_routes(), is at the end) -------------------------------------------

void list_cameras(Server::Impl& impl, const Req&, Res& res) {
  json cameras = json::array(), models = json::array();
  if (impl.watcher) {
    for (const auto& s : impl.watcher->camera_stats()) cameras.push_back(json(video::to_json(s)));
    for (const auto& m : impl.watcher->model_stats()) models.push_back(json(video::to_json(m)));
  }
  send_json(res, {{"cameras", std::move(cameras)}, {"models", std::move(models)}});
}

void get_camera(Server::Impl& impl, const Req& req, Res& res) {
  const std::string name = req.matches[1];
  send_json(res, video::to_json(watcher_with(impl, name).camera_stats(name)));
}

void latest_jpeg(Server::Impl& impl, const Req& req, Res& res) {
  const std::string name = req.matches[1];
  const auto query = query_of(req);
  const bool annotated = bool_query(query, "annotated", true);
  const int quality = static_cast<int>(int_query(query, "quality", kDefaultJpegQuality, 1, 100));
  const auto frame = watcher_with(impl, name).latest_frame(name, annotated);
  if (!frame) throw_http(503, "not_ready", fmt::format("camera '{}' has no detected frame yet", name), 1);
  res.set_header("Cache-Control", "no-store");
  res.set_content(image::encode(*frame, "jpg", quality), "image/jpeg");
}

/// One part of the multipart/x-mixed-replace stream.
std::string mjpeg_part(const std::string& jpeg) {
  return fmt::format("--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", jpeg.size()) +
         jpeg + "\r\n";
}

void stream_mjpeg(Server::Impl& impl, const Req& req, Res& res) {
  const std::string name = req.matches[1];
  const auto query = query_of(req);
  const int fps = static_cast<int>(int_query(query, "fps", kDefaultStreamFps, 1, kMaxStreamFps));
  const int quality = static_cast<int>(int_query(query, "quality", kDefaultJpegQuality, 1, 100));
  video::Watcher& watcher = watcher_with(impl, name);
  auto slot = acquire_stream(impl);
  const auto period = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / fps));
  res.set_header("Cache-Control", "no-store");
  // Only newly detected frames are sent: a camera that ended shows its last frame and the stream idles.
  res.set_chunked_content_provider("multipart/x-mixed-replace; boundary=frame",
                                   [&impl, &watcher, name, quality, period, slot, next = Clock::now(),
                                    sent = int64_t{-1}](size_t, httplib::DataSink& sink) mutable {
                                     if (!sleep_until(impl, next)) return false;
                                     next = std::max(next + period, Clock::now());
                                     const int64_t detected = watcher.camera_stats(name).detected;
                                     if (detected == sent) return sink.is_writable();
                                     const auto frame = watcher.latest_frame(name, /*annotated=*/true);
                                     if (!frame) return sink.is_writable();
                                     sent = detected;
                                     const std::string part =
                                         mjpeg_part(image::encode(*frame, "jpg", quality));
                                     return sink.write(part.data(), part.size());
                                   });
}

void list_events(Server::Impl& impl, const Req& req, Res& res) {
  const store::EventFilter filter = event_filter_from(query_of(req));
  const store::EventPage page = impl.events().search(filter);
  json events = json::array();
  for (const auto& e : page.events) events.push_back(event_view(e));
  send_json(res, {{"total", page.total},
                  {"limit", filter.limit},
                  {"offset", filter.offset},
                  {"events", std::move(events)}});
}

void get_event(Server::Impl& impl, const Req& req, Res& res) {
  send_json(res, event_view(impl.events().get(event_id_from(req))));
}

void event_snapshot(Server::Impl& impl, const Req& req, Res& res) {
  const store::EventRow row = impl.events().get(event_id_from(req));
  std::error_code ec;
  if (row.snapshot.empty() || !std::filesystem::is_regular_file(row.snapshot, ec))
    throw_http(404, "not_found",
               row.snapshot.empty()
                   ? fmt::format("event '{}' has no snapshot", row.id)
                   : fmt::format("event '{}': its snapshot {} is gone", row.id, row.snapshot));
  res.set_header("Cache-Control", "max-age=60");
  res.set_content(read_file(row.snapshot), "image/jpeg");
}

void event_clip(Server::Impl& impl, const Req& req, Res& res) {
  const store::EventRow row = impl.events().get(event_id_from(req));
  const std::string clip = clip_of(store::to_json(row));
  namespace fs = std::filesystem;
  std::error_code ec;
  if (clip.empty())
    throw_http(404, "not_found", fmt::format("event '{}' has no clip (clips are off)", row.id));
  if (!fs::is_regular_file(clip, ec)) {
    // A clip is finished post_capture seconds after its event ends; until then it is being written.
    if (row.end_ms <= 0 || fs::exists(partial_clip(clip), ec))
      throw_http(503, "not_ready",
                 fmt::format("event '{}': its clip is being recorded (written post_capture seconds after the "
                             "event ends)",
                             row.id),
                 5);
    throw_http(404, "not_found", fmt::format("event '{}': its clip {} is not there", row.id, clip));
  }
  const auto size = static_cast<size_t>(fs::file_size(clip, ec));
  res.set_header("Cache-Control", "max-age=60");
  // Streamed from the file with Range support (browsers' <video> seeks with Range requests).
  auto file = std::make_shared<std::ifstream>(clip, std::ios::binary);
  res.set_content_provider(size, "video/mp4", [file](size_t offset, size_t length, httplib::DataSink& sink) {
    char buf[64 * 1024];
    file->clear();
    file->seekg(static_cast<std::streamoff>(offset));
    while (length > 0) {
      const auto n = static_cast<std::streamsize>(std::min(length, sizeof(buf)));
      if (!file->read(buf, n)) return false;
      if (!sink.write(buf, static_cast<size_t>(n))) return false;
      length -= static_cast<size_t>(n);
    }
    return true;
  });
}

/// The client's Last-Event-ID (the header a reconnecting EventSource sends, or ?last_event_id=).
std::optional<uint64_t> last_event_id(const Req& req) {
  std::string text = req.get_header_value("Last-Event-ID");
  if (text.empty() && req.has_param("last_event_id")) text = req.get_param_value("last_event_id");
  if (text.empty()) return std::nullopt;
  const auto v = parse_int(text);
  VIGIL_CHECK(v && *v >= 0, "last_event_id: expected a non-negative integer, got '{}'", text);
  return static_cast<uint64_t>(*v);
}

void event_stream(Server::Impl& impl, const Req& req, Res& res) {
  const auto last_id = last_event_id(req);
  auto slot = acquire_stream(impl);
  auto subscriber = impl.hub.subscribe(last_id);
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");  // nginx: pass each record on at once
  res.set_chunked_content_provider(
      "text/event-stream", [&impl, subscriber, slot, first = true, last_write = Clock::now()](
                               size_t, httplib::DataSink& sink) mutable {
        std::string out;
        if (first) {
          // Sent at once, so the client knows the stream is open before the first event.
          out = "retry: 3000\n: vigil event stream\n\n";
          first = false;
        } else {
          if (impl.stopping) return false;
          const HubBatch batch = subscriber->next(kPoll);
          if (batch.closed || impl.stopping) return false;
          if (batch.lost > 0)
            out += fmt::format(
                "event: lost\ndata: {{\"lost\":{},\"message\":\"this client fell behind; {} records were "
                "dropped (GET /v1/events has them)\"}}\n\n",
                batch.lost, batch.lost);
          for (const auto& m : batch.messages) out += format_sse(m);
          if (out.empty() && Clock::now() - last_write >= kHeartbeat) out = ": heartbeat\n\n";
        }
        if (out.empty()) return sink.is_writable();
        last_write = Clock::now();
        return sink.write(out.data(), out.size());
      });
}

}  // namespace

void Server::Impl::open_cameras() {
  // The cameras.yaml of `vigil watch --config`, read by the same parser; the server's workspace holds the
  // store and, unless the file says otherwise, the snapshots (as `vigil watch` defaults them).
  config::Source source;
  source.file = options.cameras;
  const YAML::Node tree = config::build_tree(source);
  video::WatchConfig config = video::parse_watch_config(tree);
  config.workspace = options.workspace;
  const bool snapshots_configured = tree["outputs"] && tree["outputs"]["snapshots"];
  if (config.outputs.snapshots.empty() && !snapshots_configured && !options.workspace.empty())
    config.outputs.snapshots = (std::filesystem::path(options.workspace) / "snapshots").string();
  config.validate();
  watcher = std::make_unique<video::Watcher>(std::move(config));
  // The stream sends each record in the shape of GET /v1/events (without the track's box history).
  watcher->add_sink(video::make_callback_sink("event stream", [this](const video::WatchEventRecord& r) {
    hub.publish(video::to_string(r.record.kind), event_view(video::event_row(r, false)).dump());
  }));
  spdlog::info("serve: watching {} camera(s) from {}", watcher->config().cameras.size(), options.cameras);
}

store::EventLog& Server::Impl::events() {
  if (options.workspace.empty())
    throw_http(503, "unavailable", "this server has no workspace, so it has no events");
  std::lock_guard lock(event_log_mutex);
  if (!event_log) {
    store::StoreOptions o;
    o.busy_timeout_ms = 5000;  // a request waits seconds, not the CLI's minutes, then answers 503
    o.max_retries = 2;
    event_log = std::make_unique<store::EventLog>(Workspace(options.workspace), o);
  }
  return *event_log;
}

CameraMetrics::CameraMetrics(MetricsRegistry& r)
    : fps_in(r.add("vigil_camera_fps_in", "frames read per second", MetricType::kGauge, {"camera"})),
      fps_detect(
          r.add("vigil_camera_fps_detect", "frames detected per second", MetricType::kGauge, {"camera"})),
      frames(r.add("vigil_camera_frames_total", "frames read", MetricType::kCounter, {"camera"})),
      detected(r.add("vigil_camera_detected_total", "frames detected", MetricType::kCounter, {"camera"})),
      dropped(r.add("vigil_camera_dropped_total", "detection slots missed while the model was busy",
                    MetricType::kCounter, {"camera"})),
      reconnects(
          r.add("vigil_camera_reconnects_total", "source reconnections", MetricType::kCounter, {"camera"})),
      stalls(r.add("vigil_camera_stalls_total", "source stalls (no frame within stall_seconds)",
                   MetricType::kCounter, {"camera"})),
      events(r.add("vigil_camera_events_total", "events started", MetricType::kCounter, {"camera"})),
      latency(r.add("vigil_camera_latency_seconds", "capture to tracks, over the last 256 detected frames",
                    MetricType::kSummary, {"camera", "quantile"})),
      up(r.add("vigil_camera_up", "1 while the camera's source is running, else 0", MetricType::kGauge,
               {"camera"})) {}

void CameraMetrics::update(const std::vector<video::CameraStats>& cameras) {
  for (const auto& s : cameras) {
    const std::vector<std::string> camera = {s.name};
    fps_in.set(s.fps_in, camera);
    fps_detect.set(s.fps_detect, camera);
    // Counters read from the watcher's totals: set to their current value.
    frames.set(static_cast<double>(s.frames), camera);
    detected.set(static_cast<double>(s.detected), camera);
    dropped.set(static_cast<double>(s.dropped), camera);
    reconnects.set(static_cast<double>(s.reconnects), camera);
    stalls.set(static_cast<double>(s.stalls), camera);
    events.set(static_cast<double>(s.events), camera);
    latency.set(s.latency_p50_ms / 1000, {s.name, "0.5"});
    latency.set(s.latency_p95_ms / 1000, {s.name, "0.95"});
    up.set(s.state == "running" ? 1 : 0, camera);
  }
}

const std::vector<Route>& camera_routes() {
  static const std::string camera = kCameraPath, event = kEventPath;
  // The stream row comes before the event row: httplib takes the first pattern that matches.
  // clang-format off
  static const std::vector<Route> kRoutes = {
      {"GET", "/v1/cameras",                "/v1/cameras",                     list_cameras},
      {"GET", camera,                       "/v1/cameras/{name}",              get_camera},
      {"GET", camera + R"(/latest\.jpg)",   "/v1/cameras/{name}/latest.jpg",   latest_jpeg},
      {"GET", camera + R"(/stream\.mjpeg)", "/v1/cameras/{name}/stream.mjpeg", stream_mjpeg},
      {"GET", "/v1/events",                 "/v1/events",                      list_events},
      {"GET", "/v1/events/stream",          "/v1/events/stream",               event_stream},
      {"GET", event,                        "/v1/events/{id}",                 get_event},
      {"GET", event + R"(/snapshot\.jpg)",  "/v1/events/{id}/snapshot.jpg",    event_snapshot},
      {"GET", event + R"(/clip\.mp4)",      "/v1/events/{id}/clip.mp4",        event_clip},
  };
  // clang-format on
  return kRoutes;
}

}  // namespace vigil::serve

// `vigil watch`: real-time detection, tracking and alerts on cameras and video files, from a cameras.yaml
// (`--config`) or one source on the command line (`vigil watch FILE_OR_URL --model NAME_OR_PATH`). Prints a
// live status line on stderr and each event record on stdout as it happens; writes events to the workspace
// store, and optionally to JSON lines, webhooks, snapshots and an annotated video.
//
// Runs until every source has ended (files without --loop), --duration or --frames is reached, or
// Ctrl-C / SIGTERM: then open events end with reason `stopped`, queued outputs are written, exit 0.
// A camera config that is wrong exits 2 naming the camera and key; a missing model 4. A camera that fails
// while running is reported by name and the others go on; when no camera could run at all, exit 6.

#include <fmt/chrono.h>
#include <fmt/core.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <mutex>
#include <thread>

#include "cli.h"
#include "vigil/core/fs.h"
#include "vigil/core/interrupt.h"
#include "vigil/core/strings.h"
#include "vigil/video/watcher.h"

namespace vigil::cli {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct WatchArgs {
  std::string source, model, classify, name, jsonl, snapshots, detections, annotate, webhook_secret,
      stats_json;
  std::vector<std::string> webhooks, track;
  std::string precision = "fp32";
  double fps = 5, duration = 0, status_interval = 0;
  int64_t frames = 0;
  bool loop = false, no_store = false, no_snapshots = false, quiet = false;
  bool no_realtime = false;  ///< a recording: every sampled frame, no pacing, no drops
  bool clips = false;        ///< a video clip of each event (default pre/post capture, <workspace>/clips)
};

bool is_url(const std::string& s) {
  return s.find("://") != std::string::npos;
}

/// A camera name from a file or URL: its stem with anything but letters, digits, '_' and '-' replaced.
std::string camera_name_for(const std::string& source) {
  std::string stem = is_url(source) ? "camera" : fs::path(source).stem().string();
  for (char& ch : stem)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '_' && ch != '-') ch = '_';
  return stem.empty() ? "camera" : stem;
}

/// `vigil watch FILE_OR_URL --model M`: one camera with default rules.
video::WatchConfig single_camera(const WatchArgs& a) {
  VIGIL_CHECK(!a.model.empty(),
              "expected --model NAME_OR_PATH (or faceapi:<net>, opencv:<cascade>) with a source, "
              "got none");
  if (!is_url(a.source) && !(a.source.size() <= 3 && std::isdigit(static_cast<unsigned char>(a.source[0])))) {
    std::error_code ec;
    if (!fs::exists(a.source, ec))
      throw NotFound(
          fmt::format("camera '{}': {}: no such file or folder", camera_name_for(a.source), a.source));
  }
  video::CameraConfig c;
  c.name = a.name.empty() ? camera_name_for(a.source) : a.name;
  c.source.name = c.name;
  c.source.url = a.source;
  c.source.loop = a.loop;
  c.source.realtime = !a.no_realtime;
  c.clips.enabled = a.clips;
  c.detect.model = a.model;
  c.detect.fps = a.fps;
  c.detect.precision = c.classify.precision = a.precision;
  c.classify.model = a.classify;
  if (c.classify.enabled()) c.tracker.class_aware = false;  // as watch_config.cpp does for cascades
  c.rules.name = c.name;
  c.rules.objects.track = a.track;
  video::WatchConfig config;
  config.cameras.push_back(std::move(c));
  return config;
}

video::WatchConfig build_config(const Context& ctx, const WatchArgs& a, const YAML::Node& tree) {
  video::WatchConfig config;
  if (!ctx.config.file.empty()) {
    VIGIL_CHECK(a.source.empty(), "expected either --config FILE or a source, got both ('{}')", a.source);
    config = video::parse_watch_config(tree);
  } else {
    VIGIL_CHECK(!a.source.empty(),
                "expected a source (file, folder, URL) or --config cameras.yaml, got neither");
    config = single_camera(a);
  }
  config.workspace = fs::absolute(ctx.workspace().root()).string();
  auto& out = config.outputs;
  if (a.no_store) out.store = false;
  if (!a.jsonl.empty()) out.jsonl = a.jsonl;
  if (!a.detections.empty()) out.detections = a.detections;
  if (!a.snapshots.empty()) out.snapshots = a.snapshots;
  const bool snapshots_configured = tree && tree["outputs"] && tree["outputs"]["snapshots"];
  if (out.snapshots.empty() && !snapshots_configured && !a.no_snapshots)
    out.snapshots = (ctx.workspace().root() / "snapshots").string();
  if (a.no_snapshots) out.snapshots.clear();
  for (const auto& url : a.webhooks) {
    video::WebhookConfig hook;
    hook.url = url;
    hook.secret = a.webhook_secret;
    out.webhooks.push_back(hook);
  }
  if (!a.annotate.empty()) {
    VIGIL_CHECK(config.cameras.size() == 1,
                "expected --annotate with one camera, got {} (set cameras.<name>.annotate.video instead)",
                config.cameras.size());
    config.cameras[0].annotate.video = a.annotate;
  }
  config.validate();
  return config;
}

/// Unix seconds as "2026-12-06T01:02:03Z".
std::string iso_utc_seconds(double t) {
  return fmt::format("{:%Y-%m-%dT%H:%M:%S}Z", fmt::gmtime(static_cast<std::time_t>(t)));
}

std::string event_line(const video::WatchEventRecord& r) {
  const video::Event& e = r.record.event;
  std::string line = fmt::format("{} {:<6} {} {} #{} score {:.2f}", iso_utc_seconds(e.start.time),
                                 video::to_string(r.record.kind), e.camera, e.label, e.track_id, e.top_score);
  if (!e.zones.empty()) line += " zones " + join(e.zones, ",");
  if (e.ended())
    line += fmt::format(" ({}, {:.1f} s)", video::to_string(e.end_reason), *e.end_time - e.start.time);
  if (!r.snapshot.empty()) line += " " + r.snapshot;
  return line;
}

std::string status_line(const std::vector<video::CameraStats>& cams, double elapsed) {
  std::vector<std::string> parts;
  for (const auto& s : cams) {
    if (s.state == "failed" && s.detected == 0) {
      parts.push_back(fmt::format("{}: failed", s.name));
      continue;
    }
    parts.push_back(fmt::format("{}: {} {:.1f} fps in, {:.1f} det/s, {:.0f} ms, {} tracks, {} events{}",
                                s.name, s.finished ? "done" : s.state, s.fps_in, s.fps_detect, s.latency_ms,
                                s.tracks, s.events,
                                s.dropped > 0 ? fmt::format(", {} dropped", s.dropped) : ""));
  }
  return fmt::format("[{:.0f}s] {}", elapsed, join(parts, " | "));
}

nlohmann::ordered_json summary_json(const video::Watcher& w, double seconds) {
  nlohmann::ordered_json j;
  j["seconds"] = seconds;
  j["cameras"] = nlohmann::ordered_json::array();
  for (const auto& s : w.camera_stats()) j["cameras"].push_back(video::to_json(s));
  j["models"] = nlohmann::ordered_json::array();
  for (const auto& m : w.model_stats()) j["models"].push_back(video::to_json(m));
  j["sinks"] = nlohmann::ordered_json::array();
  for (const auto& [name, s] : w.sink_stats())
    j["sinks"].push_back({{"name", name},
                          {"written", s.written},
                          {"failed", s.failed},
                          {"dropped", s.dropped},
                          {"retries", s.retries},
                          {"last_error", s.last_error}});
  return j;
}

void print_summary(const video::Watcher& w, double seconds) {
  fmt::print(stderr, "watched for {:.1f} s\n", seconds);
  for (const auto& s : w.camera_stats()) {
    fmt::print(
        stderr,
        "  {}: {} frames read, {} detected, {} dropped, {} events; latency p50 {:.0f} ms, p95 {:.0f} ms{}\n",
        s.name, s.frames, s.detected, s.dropped, s.events, s.latency_p50_ms, s.latency_p95_ms,
        s.last_error.empty() ? "" : "; last error: " + s.last_error);
  }
  for (const auto& m : w.model_stats()) {
    fmt::print(stderr, "  model {}: {} batches, {} frames ({:.2f} per batch), {:.1f} ms per batch\n",
               m.detector, m.detect.batches, m.detect.frames,
               m.detect.batches ? static_cast<double>(m.detect.frames) / m.detect.batches : 0.0,
               m.detect.batches ? 1000 * m.detect.busy_seconds / m.detect.batches : 0.0);
  }
  for (const auto& [name, s] : w.sink_stats()) {
    if (s.failed || s.dropped)
      fmt::print(stderr, "  {}: {} written, {} failed, {} dropped{}\n", name, s.written, s.failed, s.dropped,
                 s.last_error.empty() ? "" : " (" + s.last_error + ")");
  }
}

/// True once every camera has detected `frames` frames or is finished.
bool reached_frames(const std::vector<video::CameraStats>& cams, int64_t frames) {
  for (const auto& s : cams)
    if (!s.finished && s.detected < frames) return false;
  return true;
}

/// The terminal's share: event lines on stdout, the status line on stderr (rewritten in place on a terminal),
/// never interleaved mid-line.
class Console {
 public:
  explicit Console(bool quiet) : quiet_(quiet), tty_(isatty(STDERR_FILENO) == 1) {}
  bool tty() const { return tty_; }
  void event(const video::WatchEventRecord& r) {
    std::lock_guard lock(mu_);
    clear_status();
    fmt::print("{}\n", event_line(r));
    std::fflush(stdout);
  }
  void status(const std::string& line) {
    if (quiet_) return;
    std::lock_guard lock(mu_);
    if (tty_) {
      fmt::print(stderr, "\r\033[K{}", line);
    } else {
      fmt::print(stderr, "{}\n", line);
    }
    std::fflush(stderr);
    status_shown_ = tty_;
  }
  void finish() {
    std::lock_guard lock(mu_);
    clear_status();
  }

 private:
  void clear_status() {
    if (status_shown_) fmt::print(stderr, "\r\033[K");
    status_shown_ = false;
  }
  bool quiet_, tty_;
  bool status_shown_ = false;
  std::mutex mu_;
};

/// Runs until the watcher is done or a limit or signal stops it; returns why it stopped.
const char* watch_until_stopped(video::Watcher& watcher, const WatchArgs& a, Console& console,
                                Clock::time_point t0) {
  const auto interval = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(a.status_interval > 0 ? a.status_interval : (console.tty() ? 0.5 : 5.0)));
  auto next_status = t0 + interval;
  while (!watcher.done()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
    if (interrupt_requested()) return "stopped by a signal";
    if (a.duration > 0 && elapsed >= a.duration) return "--duration reached";
    if (a.frames > 0 && reached_frames(watcher.camera_stats(), a.frames)) return "--frames reached";
    if (Clock::now() >= next_status) {
      next_status += interval;
      console.status(status_line(watcher.camera_stats(), elapsed));
    }
  }
  return "every source ended";
}

/// Names every camera that failed; kUnavailable when none could be watched at all.
int report_failures(const std::vector<video::CameraStats>& stats) {
  std::vector<std::string> failed;
  bool any_detected = false;
  for (const auto& s : stats) {
    any_detected = any_detected || s.detected > 0;
    if (s.state != "failed") continue;
    spdlog::error("camera '{}' failed: {}", s.name, s.last_error);
    failed.push_back(s.name);
  }
  if (failed.size() == stats.size() && !any_detected) {
    spdlog::error("no camera could be watched ({})", join(failed, ", "));
    return static_cast<int>(ExitCode::kUnavailable);
  }
  return 0;
}

int run_watch(const Context& ctx, const WatchArgs& a) {
  const YAML::Node tree = ctx.config.file.empty() ? YAML::Node() : config::build_tree(ctx.config_source());
  video::Watcher watcher(build_config(ctx, a, tree));
  Console console(a.quiet);
  watcher.add_sink(
      video::make_callback_sink("stdout", [&](const video::WatchEventRecord& r) { console.event(r); }));
  fmt::print(stderr, "vigil watch: {} camera(s); Ctrl-C stops\n", watcher.config().cameras.size());
  for (const auto& m : watcher.model_stats())
    fmt::print(stderr, "  {} -> {}\n", join(m.cameras, ", "),
               m.classifier.empty() ? m.detector : m.detector + " -> " + m.classifier);
  std::fflush(stderr);

  const auto t0 = Clock::now();
  watcher.start();
  const char* reason = watch_until_stopped(watcher, a, console, t0);
  watcher.stop();
  // A stop asked for by SIGINT/SIGTERM is the normal end of watching, not an interruption of work.
  if (interrupt_requested()) clear_interrupt();
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  console.finish();
  fmt::print(stderr, "vigil watch: stopped ({})\n", reason);
  if (!a.quiet) print_summary(watcher, seconds);
  if (!a.stats_json.empty()) write_file_atomic(a.stats_json, summary_json(watcher, seconds).dump(2) + "\n");
  return report_failures(watcher.camera_stats());
}

}  // namespace

void register_watch(CLI::App& app, Context& ctx) {
  static WatchArgs a;
  auto* sub = app.add_subcommand(
      "watch", "real-time detection, tracking and alerts on cameras and video files (see docs/watch.md)");
  sub->add_option("source", a.source,
                  "a video file, frame folder, rtsp:// or http(s):// URL, or /dev/videoN");
  add_config_options(sub, ctx);
  sub->add_option("--model,-m", a.model,
                  "detector or classifier: model file, registered NAME@alias, faceapi:<net> or "
                  "opencv:<cascade>");
  sub->add_option("--classify", a.classify, "second stage: a classifier run on every detected box (cascade)");
  sub->add_option("--name", a.name, "camera name (default: the file's stem)");
  sub->add_option("--fps", a.fps, "detections per second")->capture_default_str();
  sub->add_option("--precision", a.precision,
                  "one-camera mode: fp32 (default), or bf16 on CPUs with AVX512_BF16/AMX (both stages)");
  sub->add_flag("--loop", a.loop, "start the file again at its end");
  sub->add_flag(
      "--no-realtime", a.no_realtime,
      "files and frame folders: process every sampled frame as fast as detection allows (no pacing, "
      "no drops; event times are the file's)");
  sub->add_option("--track", a.track, "labels that raise events (default: every label)")->delimiter(',');
  sub->add_option("--jsonl", a.jsonl, "append event records to this JSON lines file");
  sub->add_option("--detections", a.detections,
                  "append every detected frame's objects and tracks (JSON lines)");
  sub->add_option("--snapshots", a.snapshots, "folder for event snapshots (default <workspace>/snapshots)");
  sub->add_flag("--no-snapshots", a.no_snapshots, "write no snapshots");
  sub->add_option("--annotate", a.annotate, "write an annotated video (.mp4 or .avi) of the one camera");
  sub->add_flag(
      "--clips", a.clips,
      "write a video clip of each event, 5 s before to 5 s after (<workspace>/clips/CAMERA/ID.mp4)");
  sub->add_option("--webhook", a.webhooks, "POST event records to this URL (repeatable)")
      ->allow_extra_args(false);
  sub->add_option("--webhook-secret", a.webhook_secret, "HMAC-SHA256 key for X-Vigil-Signature");
  sub->add_flag("--no-store", a.no_store, "do not write events to the workspace store");
  sub->add_option("--duration", a.duration, "stop after this many seconds")->check(CLI::NonNegativeNumber);
  sub->add_option("--frames", a.frames, "stop once every camera has detected this many frames")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--status-interval", a.status_interval,
                  "seconds between status lines (default 0.5 on a terminal, else 5)");
  sub->add_flag("--quiet,-q", a.quiet, "no status line and no summary");
  sub->add_option("--stats-json", a.stats_json, "write the final per-camera, model and sink counters here");
  sub->add_option("--threads", ctx.threads, "LibTorch threads (default: every core)")
      ->check(CLI::NonNegativeNumber);
  sub->footer(
      "A cameras.yaml has `cameras:` (each with source, detect, classify, tracker, objects, zones, alerts, "
      "annotate, clips) and `outputs:` (store, jsonl, snapshots, detections, webhooks); --set "
      "cameras.NAME.KEY=VALUE "
      "overrides it. See docs/watch.md.");
  sub->callback([&ctx] {
    ctx.uses_workspace = true;
    ctx.action = [&ctx] { return run_watch(ctx, a); };
  });
}

}  // namespace vigil::cli

// What the watcher reports while it runs: per-camera stats, model groups, the newest frame, and their JSON.

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "vigil/core/error.h"
#include "vigil/core/strings.h"
#include "vigil/video/annotate.h"
#include "watcher_impl.h"

namespace vigil::video {

namespace {

using ojson = nlohmann::ordered_json;

double round1(double x) {
  return std::round(x * 10) / 10;
}
double round3(double x) {
  return std::round(x * 1000) / 1000;
}

ojson box_json(const Box& b) {
  return ojson::array({round1(b.x1), round1(b.y1), round1(b.x2), round1(b.y2)});
}

}  // namespace

double detail::LatencyWindow::quantile(double p) const {
  if (values_.empty()) return 0;
  std::vector<double> v = values_;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(std::ceil(p * v.size())) - (p > 0 ? 1 : 0));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

const detail::CameraState& Watcher::Impl::camera(const std::string& name) const {
  for (const auto& c : cameras)
    if (c->config.name == name) return *c;
  std::vector<std::string> names;
  for (const auto& c : cameras) names.push_back(c->config.name);
  throw NotFound(fmt::format("no camera '{}'; cameras: {}", name, join(names, ", ")));
}

CameraStats Watcher::camera_stats(const std::string& name) const {
  const detail::CameraState& c = impl_->camera(name);
  CameraStats s;
  s.name = c.config.name;
  s.url = display_url(c.config.source.url);
  s.detector = c.group->description;
  s.detect_fps_target = c.config.detect.fps;
  s.finished = c.finished;
  if (c.source) {
    const SourceStats src = c.source->stats();
    s.state = source_state_name(src.state);
    s.fps_in = src.state == SourceState::kRunning ? src.fps : 0;
    s.frames = src.frames;
    s.reconnects = src.reconnects;
    s.stalls = src.stalls;
    s.width = src.width;
    s.height = src.height;
    s.last_error = src.last_error;
  } else {
    s.state = source_state_name(SourceState::kStarting);
  }
  std::lock_guard lock(c.mu);
  s.detected = c.detected;
  s.dropped = c.dropped;
  s.errors = c.errors;
  s.events = c.events;
  s.tracks = c.tracks;
  s.open_events = c.open_events;
  s.latency_ms = c.latency_ms;
  s.latency_p50_ms = c.latencies.quantile(0.5);
  s.latency_p95_ms = c.latencies.quantile(0.95);
  if (!c.detect_times.empty() && !c.finished) {
    const auto now = detail::Clock::now();
    const auto window_start = now - std::chrono::seconds(5);
    const auto n = std::count_if(c.detect_times.begin(), c.detect_times.end(),
                                 [&](const auto& t) { return t >= window_start; });
    const double span = std::min(5.0, std::chrono::duration<double>(now - impl_->t0_steady).count());
    s.fps_detect = span > 0 ? n / span : 0;
  }
  if (!c.detect_error.empty()) s.last_error = c.detect_error;
  const auto dropped = impl_->output->dropped_frames();
  if (const auto it = dropped.find(s.name); it != dropped.end()) s.output_dropped = it->second;
  const auto clips = impl_->output->clip_stats();
  if (const auto it = clips.find(s.name); it != clips.end()) {
    s.clips = it->second.written;
    s.clips_failed = it->second.failed;
    s.clip_frames_dropped = it->second.dropped_frames;
  }
  return s;
}

std::vector<CameraStats> Watcher::camera_stats() const {
  std::vector<CameraStats> out;
  for (const auto& c : impl_->cameras) out.push_back(camera_stats(c->config.name));
  return out;
}

std::vector<ModelGroupStats> Watcher::model_stats() const {
  std::vector<ModelGroupStats> out;
  for (const auto& g : impl_->groups) {
    ModelGroupStats s;
    s.detector = g->detector->describe();
    s.classifier = g->classifier ? g->classifier->describe() : "";
    for (const auto* c : g->cameras) s.cameras.push_back(c->config.name);
    std::lock_guard lock(g->mu);
    s.detect = g->detect_stats;
    s.classify = g->classify_stats;
    out.push_back(std::move(s));
  }
  return out;
}

std::optional<cv::Mat> Watcher::latest_frame(const std::string& name, bool annotated) const {
  const detail::CameraState& c = impl_->camera(name);
  cv::Mat frame;
  std::vector<Track> tracks;
  std::vector<TrackStatus> statuses;
  {
    std::lock_guard lock(c.mu);
    if (c.last_frame.empty()) return std::nullopt;
    frame = c.last_frame.clone();
    if (annotated) {
      tracks = c.last_tracks;
      statuses = c.last_statuses;
    }
  }
  if (annotated) draw_annotations(frame, c.config.name, c.config.rules.zones, tracks, statuses);
  return frame;
}

ojson to_json(const ModelGroupStats& m) {
  return {{"detector", m.detector},
          {"classifier", m.classifier},
          {"cameras", m.cameras},
          {"batches", m.detect.batches},
          {"frames", m.detect.frames},
          {"forward_passes", m.detect.forward_passes},
          {"max_batch", m.detect.max_batch},
          {"detect_seconds", m.detect.busy_seconds},
          {"crops", m.classify.frames},
          {"classify_seconds", m.classify.busy_seconds}};
}

ojson to_json(const CameraStats& s) {
  return {{"name", s.name},
          {"url", s.url},
          {"state", s.state},
          {"finished", s.finished},
          {"detector", s.detector},
          {"detect_fps_target", s.detect_fps_target},
          {"fps_in", round1(s.fps_in)},
          {"fps_detect", round1(s.fps_detect)},
          {"latency_ms", round1(s.latency_ms)},
          {"latency_p50_ms", round1(s.latency_p50_ms)},
          {"latency_p95_ms", round1(s.latency_p95_ms)},
          {"frames", s.frames},
          {"detected", s.detected},
          {"dropped", s.dropped},
          {"reconnects", s.reconnects},
          {"stalls", s.stalls},
          {"width", s.width},
          {"height", s.height},
          {"tracks", s.tracks},
          {"open_events", s.open_events},
          {"events", s.events},
          {"errors", s.errors},
          {"output_dropped", s.output_dropped},
          {"clips", s.clips},
          {"clips_failed", s.clips_failed},
          {"clip_frames_dropped", s.clip_frames_dropped},
          {"last_error", s.last_error}};
}

ojson to_json(const FrameResult& r) {
  ojson objects = ojson::array();
  for (const auto& o : r.objects) {
    ojson j = {{"box", box_json(o.detection.box)},
               {"label", o.detection.label},
               {"score", round3(o.detection.score)}};
    if (o.classified) {
      j["detector_label"] = o.detector_label;
      j["detector_score"] = round3(o.detector_score);
      j["class_score"] = round3(o.class_score);
    }
    objects.push_back(std::move(j));
  }
  ojson tracks = ojson::array();
  for (const auto& t : r.tracks) {
    tracks.push_back({{"id", t.id},
                      {"label", t.label},
                      {"state", to_string(t.state)},
                      {"box", box_json(t.matched() ? t.detection : t.box)},
                      {"score", round3(t.score)},
                      {"matched", t.matched()}});
  }
  return {{"camera", r.camera},         {"frame", r.frame},
          {"time", round3(r.time)},     {"latency_ms", round1(r.latency_ms)},
          {"batch", r.batch_size},      {"width", r.width},
          {"height", r.height},         {"objects", std::move(objects)},
          {"tracks", std::move(tracks)}};
}

}  // namespace vigil::video

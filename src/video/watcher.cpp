// The watcher (watcher.h): model groups, the sampling and batching loop of each group's detection thread, and
// each camera's tracker and rule engine. Outputs are in watcher_output.cpp, stats and JSON in
// watcher_stats.cpp.

#include "vigil/video/watcher.h"

#include <fmt/format.h>
#include <malloc.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "vigil/core/config.h"
#include "vigil/core/error.h"
#include "vigil/core/strings.h"
#include "watcher_impl.h"
#include "watcher_output.h"

namespace vigil::video {

namespace fs = std::filesystem;
using detail::CameraState;
using detail::Clock;
using detail::Group;

namespace {

/// Rethrows the current exception with `prefix` in front of its message, keeping its type.
[[noreturn]] void rethrow_with(const std::string& prefix) {
  try {
    throw;
  } catch (const NotFound& e) {
    throw NotFound(prefix + e.what());
  } catch (const DataError& e) {
    throw DataError(prefix + e.what());
  } catch (const InvalidArgument& e) {
    throw InvalidArgument(prefix + e.what());
  } catch (const IoError& e) {
    throw IoError(prefix + e.what());
  } catch (...) {
    throw;
  }
}

/// Cameras whose detect (but for fps) and classify sections are equal share one detector and classifier.
std::string group_key(const CameraConfig& c) {
  DetectConfig detect = c.detect;
  detect.fps = 0;
  return config::to_yaml(detect) + "\n--\n" + config::to_yaml(c.classify);
}

/// Every label a camera's rules name must be one its models can produce: a typo would never alert.
void check_labels(const CameraConfig& c, const std::vector<std::string>& valid) {
  if (valid.empty()) return;
  auto check = [&](const std::string& label, const std::string& key) {
    VIGIL_CHECK(std::find(valid.begin(), valid.end(), label) != valid.end(),
                "cameras.{}.{}: expected labels the models produce ({}), got '{}'", c.name, key,
                join(valid, ", "), label);
  };
  for (const auto& label : c.rules.objects.track) check(label, "objects.track");
  for (const auto& zone : c.rules.zones)
    for (const auto& label : zone.objects) check(label, "zones." + zone.name + ".objects");
}

}  // namespace

using detail::wall_seconds;

Watcher::Watcher(WatchConfig config, WatcherOptions options) : impl_(std::make_unique<Impl>()) {
  config.validate();
  // glibc serves a large allocation from fresh mmap pages once it passes the (dynamic) mmap threshold and
  // unmaps it when freed, so every forward pass pays page faults on its big activations again: the face-mask
  // cascade with face-api.js's tiny detector at 416 px took 34 ms a frame, 20 with the threshold fixed at
  // 256 MiB (bench/video.sh). Real-time detection wants the speed; freed blocks stay in the heap for reuse
  // and return to the system past 512 MiB of free top.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  Impl& m = *impl_;
  m.config = std::move(config);
  m.options = options;
  if (!m.config.outputs.snapshots.empty())
    m.config.outputs.snapshots = fs::absolute(m.config.outputs.snapshots).string();
  for (CameraConfig& c : m.config.cameras) {
    if (!c.clips.enabled) continue;
    if (c.clips.dir.empty()) {
      VIGIL_CHECK(
          !m.config.workspace.empty(),
          "cameras.{}.clips.dir: expected a folder for the clips (or a workspace to hold them), got none",
          c.name);
      c.clips.dir = (fs::path(m.config.workspace) / "clips").string();
    }
    c.clips.dir = fs::absolute(c.clips.dir).string();
  }

  std::map<std::string, Group*> groups;
  for (const CameraConfig& c : m.config.cameras) {
    auto cam = std::make_unique<CameraState>();
    cam->config = c;
    cam->interval = 1.0 / c.detect.fps;
    cam->offline = !c.source.realtime;
    const std::string key = group_key(c);
    Group*& g = groups[key];
    if (g == nullptr) {
      auto group = std::make_unique<Group>();
      try {
        group->detector = make_frame_detector(c.detect, m.config.workspace);
      } catch (const Error&) {
        rethrow_with(fmt::format("cameras.{}.detect.model: ", c.name));
      }
      try {
        if (c.classify.enabled())
          group->classifier = std::make_unique<CropClassifier>(c.classify, m.config.workspace);
      } catch (const Error&) {
        rethrow_with(fmt::format("cameras.{}.classify.model: ", c.name));
      }
      group->description = group->detector->describe();
      if (group->classifier) group->description += " -> " + group->classifier->describe();
      g = group.get();
      m.groups.push_back(std::move(group));
    }
    std::vector<std::string> labels = g->detector->labels();
    if (g->classifier)
      for (const auto& l : g->classifier->labels()) labels.push_back(l);
    check_labels(c, labels);
    cam->tracker = std::make_unique<Tracker>(c.tracker);
    cam->rules = std::make_unique<RuleEngine>(c.rules);
    cam->group = g;
    g->cameras.push_back(cam.get());
    m.cameras.push_back(std::move(cam));
  }

  m.output =
      std::make_unique<detail::OutputWorker>(m.config.outputs, static_cast<size_t>(options.output_queue));
  const OutputsConfig& out = m.config.outputs;
  if (out.store) {
    VIGIL_CHECK(!m.config.workspace.empty(),
                "outputs.store: expected a workspace to store events in, got none");
    m.output->add_sink(make_store_sink(m.config.workspace));
  }
  if (!out.jsonl.empty()) {
    try {
      m.output->add_sink(make_jsonl_sink(out.jsonl));
    } catch (const Error&) {
      rethrow_with("outputs.jsonl: ");
    }
  }
  for (const auto& hook : out.webhooks) m.output->add_sink(make_webhook_sink(hook));
}

Watcher::~Watcher() {
  stop();
}

void Watcher::add_sink(std::unique_ptr<EventSink> sink) {
  VIGIL_CHECK(!impl_->started, "expected add_sink() before start(), got it after");
  impl_->output->add_sink(std::move(sink));
}

void Watcher::set_frame_observer(std::function<void(const FrameResult&)> observer) {
  VIGIL_CHECK(!impl_->started, "expected set_frame_observer() before start(), got it after");
  impl_->observer = std::move(observer);
}

void Watcher::start() {
  Impl& m = *impl_;
  VIGIL_CHECK(!m.started, "expected one start(), got a second");
  m.started = true;
  m.t0_steady = Clock::now();
  m.t0_wall = wall_seconds();
  m.output->start();
  for (auto& c : m.cameras) {
    c->source = std::make_unique<Source>(c->config.source);
    if (c->config.composes()) {
      // Every frame read goes to the output thread too (the annotated video and clips are at the source's
      // rate); a recording waits for room, a live camera's frame is dropped (and counted) instead.
      c->source->set_frame_tap([&m, cam = c.get()](const Frame& f) {
        m.output->push_raw({f, &cam->config}, cam->offline);
      });
    }
    c->next_due = m.t0_steady;
    c->source->start();
  }
  for (auto& g : m.groups) g->thread = std::thread([&m, gp = g.get()] { m.run_group(*gp); });
}

void Watcher::stop() {
  Impl& m = *impl_;
  {
    std::lock_guard lock(m.mu);
    if (m.stopped) return;
    m.stopped = true;
    m.stopping = true;
  }
  m.wake.notify_all();
  for (auto& g : m.groups)
    if (g->thread.joinable()) g->thread.join();
  // Detection is over: end what is still open (reason `stopped`) on this thread, then stop the cameras.
  if (m.started) {
    for (auto& c : m.cameras)
      if (!c->finished) m.finish_camera(*c);
  }
  for (auto& c : m.cameras)
    if (c->source) c->source->stop();
  m.output->close(m.options.drain_seconds);
}

bool Watcher::done() const {
  for (const auto& c : impl_->cameras)
    if (!c->finished) return false;
  return impl_->started;
}

const WatchConfig& Watcher::config() const {
  return impl_->config;
}

std::vector<std::pair<std::string, SinkStats>> Watcher::sink_stats() const {
  return impl_->output->sink_stats();
}

// ---- the detection thread of one model group -------------------------------------------------------------

double Watcher::Impl::wall_of(Clock::time_point t) const {
  return t0_wall + std::chrono::duration<double>(t - t0_steady).count();
}

bool Watcher::Impl::wait_or_stop(Clock::duration d) {
  std::unique_lock lock(mu);
  return wake.wait_for(lock, d, [&] { return stopping.load(); });
}

/// True when the camera's source is over (ended, or failed for good) and its last frame has been detected.
bool Watcher::Impl::source_over(CameraState& c) {
  const SourceStats s = c.source->stats();
  if (s.state != SourceState::kEnded && s.state != SourceState::kFailed) return false;
  if (s.frames - 1 > c.last_index) return false;  // one more frame to detect first
  if (s.state == SourceState::kFailed) spdlog::warn("{}", s.last_error);
  return true;
}

void Watcher::Impl::account_sampling(CameraState& c, const Frame& f, Clock::time_point now) {
  const int64_t skipped = c.last_index >= 0 ? f.index - c.last_index - 1 : 0;
  const double late = std::chrono::duration<double>(now - c.next_due).count();
  const auto interval =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(c.interval));
  if (late >= c.interval) {
    // Slots passed while the model was busy elsewhere; their frames were replaced by this newer one.
    const auto missed = static_cast<int64_t>(std::floor(late / c.interval));
    std::lock_guard lock(c.mu);
    c.dropped += std::min(missed, skipped);
    c.next_due = now + interval;
  } else {
    c.next_due += interval;  // keeps the camera's phase, so cameras stay aligned into one batch
  }
  c.last_index = f.index;
}

std::optional<Frame> Watcher::Impl::next_offline_frame(CameraState& c) {
  // The reader decodes the next frame once this one is taken, so frames between samples cost a decode each
  // and nothing else; a short wait lets it catch up without holding the other cameras' batch for long.
  for (int spins = 0; spins < 64; ++spins) {
    auto frame = c.source->latest(c.last_index, std::chrono::milliseconds(20));
    if (!frame) return std::nullopt;
    c.last_index = frame->index;
    const double step = frame->position_seconds - c.last_position;
    if (c.last_position >= 0) {
      if (step > 0) c.frame_period = step;
      // A loop starts the file's time again; the events' clock goes on by one frame.
      c.offline_clock += step > 0 ? step : c.frame_period;
      if (step <= 0) c.next_position = frame->position_seconds;
    } else {
      c.next_position = frame->position_seconds;
    }
    c.last_position = frame->position_seconds;
    // Half a frame of slack: a file at 25 fps sampled at 5 keeps exactly every fifth frame.
    if (frame->position_seconds + 0.5 * c.frame_period + 1e-9 < c.next_position) continue;
    while (c.next_position <= frame->position_seconds + 1e-9) c.next_position += c.interval;
    return frame;
  }
  return std::nullopt;
}

void Watcher::Impl::run_group(Group& g) {
  while (!stopping) {
    const auto now = Clock::now();
    std::vector<CameraState*> active;
    for (CameraState* c : g.cameras) {
      if (c->finished) continue;
      if (source_over(*c)) {
        finish_camera(*c);
        continue;
      }
      active.push_back(c);
    }
    if (active.empty()) return;
    bool any_due = false;
    auto earliest = Clock::time_point::max();
    for (CameraState* c : active) {
      any_due = any_due || c->offline || c->next_due <= now;
      earliest = std::min(earliest, c->next_due);
    }
    if (!any_due) {
      if (wait_or_stop(std::min<Clock::duration>(earliest - now, std::chrono::milliseconds(50)))) return;
      continue;
    }
    // Every camera due now or within half its interval joins this batch: one forward pass instead of several.
    std::vector<std::pair<CameraState*, Frame>> batch;
    for (CameraState* c : active) {
      if (c->offline) {
        if (auto frame = next_offline_frame(*c)) batch.emplace_back(c, std::move(*frame));
        continue;
      }
      const auto window =
          std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(c->interval / 2));
      if (c->next_due > now + window) continue;
      auto frame = c->source->latest(c->last_index);
      if (!frame) continue;  // due, but its source has nothing new yet
      account_sampling(*c, *frame, now);
      batch.emplace_back(c, std::move(*frame));
    }
    if (batch.empty()) {
      if (wait_or_stop(std::chrono::milliseconds(5))) return;
      continue;
    }
    run_batch(g, batch);
  }
}

void Watcher::Impl::run_batch(Group& g, std::vector<std::pair<CameraState*, Frame>>& batch) {
  std::vector<cv::Mat> frames;
  std::vector<std::string> cameras;
  for (const auto& [c, f] : batch) {
    frames.push_back(f.bgr);
    cameras.push_back(c->config.name);
  }
  std::vector<std::vector<ObjectDetection>> objects(batch.size());
  try {
    const auto detections = g.detector->detect(frames, cameras);
    for (size_t i = 0; i < batch.size(); ++i) {
      for (const Detection& d : detections[i]) {
        ObjectDetection o;
        o.detection = d;
        o.detector_label = d.label;
        o.detector_score = d.score;
        objects[i].push_back(std::move(o));
      }
    }
    if (g.classifier) g.classifier->classify(frames, objects);
  } catch (const std::exception& e) {
    // A batch that fails costs these frames, never the thread: the next turn tries again.
    for (auto& [c, f] : batch) {
      std::lock_guard lock(c->mu);
      if (c->errors++ % 100 == 0) spdlog::warn("camera '{}': detection failed: {}", c->config.name, e.what());
      c->detect_error = e.what();
    }
    return;
  }
  {
    std::lock_guard lock(g.mu);
    g.detect_stats = g.detector->stats();
    if (g.classifier) g.classify_stats = g.classifier->stats();
  }
  for (size_t i = 0; i < batch.size(); ++i)
    process_frame(*batch[i].first, batch[i].second, std::move(objects[i]), static_cast<int>(batch.size()));
}

void Watcher::Impl::process_frame(CameraState& c, const Frame& f, std::vector<ObjectDetection> objects,
                                  int batch_size) {
  std::vector<Detection> detections;
  for (const auto& o : objects) detections.push_back(o.detection);
  // A recording's events run on its own clock (file time from the start), not on how fast it was processed.
  const double time = c.offline ? t0_wall + c.offline_clock : wall_of(f.captured);
  std::vector<Track> tracks = c.tracker->update(detections);
  const FrameRef ref{f.index, time};
  std::vector<EventRecord> records = c.rules->update(ref, tracks);

  // Keep the frame of each open event's best box (its snapshot may be written at a later record).
  for (const Event& e : c.rules->open_events())
    if (e.best.frame.index == f.index) c.best_frames[e.id] = f.bgr;
  for (const EventRecord& r : records)
    if (r.event.best.frame.index == f.index) c.best_frames[r.event.id] = f.bgr;
  emit(c, records);

  const std::vector<TrackStatus> statuses = c.rules->statuses();
  const double latency = std::chrono::duration<double, std::milli>(Clock::now() - f.captured).count();
  int confirmed = 0;
  for (const Track& t : tracks) confirmed += t.state == TrackState::kConfirmed && t.matched();
  {
    std::lock_guard lock(c.mu);
    ++c.detected;
    c.latency_ms = latency;
    c.latencies.push(latency);
    c.detect_times.push_back(Clock::now());
    while (c.detect_times.size() > 1 &&
           c.detect_times.front() < c.detect_times.back() - std::chrono::seconds(5))
      c.detect_times.pop_front();
    c.tracks = confirmed;
    c.open_events = static_cast<int>(c.rules->open_events().size());
    c.detect_error.clear();
    c.last_frame = f.bgr;
    c.last_tracks = tracks;
    c.last_statuses = statuses;
  }
  if (!observer && config.outputs.detections.empty() && !c.config.composes()) return;
  FrameResult r;
  r.camera = c.config.name;
  r.frame = f.index;
  r.time = time;
  r.latency_ms = latency;
  r.width = f.bgr.cols;
  r.height = f.bgr.rows;
  r.batch_size = batch_size;
  r.objects = std::move(objects);
  r.tracks = std::move(tracks);
  if (observer) observer(r);
  if (!config.outputs.detections.empty() || c.config.composes())
    output->push_frame({std::move(r), f.bgr, statuses, &c.config});
}

void Watcher::Impl::emit(CameraState& c, const std::vector<EventRecord>& records) {
  const bool snapshots = !config.outputs.snapshots.empty();
  for (const EventRecord& rec : records) {
    detail::EventTask task;
    task.record.record = rec;
    task.record.model = c.group->description;
    task.camera = &c.config;
    const std::string& id = rec.event.id;
    if (c.config.clips.enabled)
      task.record.clip = (fs::path(c.config.clips.dir) / c.config.name / (id + ".mp4")).string();
    if (snapshots) {
      task.record.snapshot = (fs::path(config.outputs.snapshots) / c.config.name / (id + ".jpg")).string();
      const auto snapped = c.snapped.find(id);
      const auto best = c.best_frames.find(id);
      if ((snapped == c.snapped.end() || snapped->second != rec.event.best.frame.index) &&
          best != c.best_frames.end()) {
        task.best_frame = best->second;
        c.snapped[id] = rec.event.best.frame.index;
      }
    }
    if (rec.kind == EventKind::kStart) {
      std::lock_guard lock(c.mu);
      ++c.events;
    }
    if (rec.kind == EventKind::kEnd) {
      c.best_frames.erase(id);
      c.snapped.erase(id);
    }
    output->push_event(std::move(task));
  }
}

void Watcher::Impl::finish_camera(CameraState& c) {
  const double now = wall_of(Clock::now());
  emit(c, c.rules->finish({std::max<int64_t>(c.last_index, 0), now}));
  if (c.config.composes()) output->push_finish({&c.config});
  std::lock_guard lock(c.mu);
  c.open_events = 0;
  c.tracks = 0;
  c.finished = true;
}

}  // namespace vigil::video

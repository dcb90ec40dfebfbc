#include "watcher_output.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/image/decode.h"
#include "vigil/video/annotate.h"

namespace vigil::video::detail {

namespace fs = std::filesystem;

namespace {

/// Frames waiting for the clip thread at most (JPEG, so tens of MB at worst).
constexpr size_t kClipQueueFrames = 512;

/// Raw frames held for their detection at most: past this they are drawn with the latest detection's boxes
/// (a model far slower than the camera must not hold seconds of full frames).
size_t max_pending(double fps) {
  return static_cast<size_t>(std::clamp(2 * fps, 8.0, 64.0));
}

int64_t frames_in(double seconds, double fps) {
  return static_cast<int64_t>(std::llround(seconds * fps));
}

/// The rate clips are counted and written at: the source's, or detect.fps before its first frame.
double clip_fps(const CameraConfig& camera, const CameraOutput& out) {
  return out.fps > 0 ? out.fps : camera.detect.fps;
}

}  // namespace

OutputWorker::OutputWorker(const OutputsConfig& outputs, size_t frame_capacity)
    : outputs_(outputs), frame_capacity_(frame_capacity), clips_(kClipQueueFrames) {
  if (!outputs_.detections.empty()) {
    const fs::path p(outputs_.detections);
    if (p.has_parent_path()) ensure_dir(p.parent_path());
    detections_ = std::make_unique<std::ofstream>(p, std::ios::binary | std::ios::app);
    if (!*detections_)
      throw IoError(fmt::format("outputs.detections: {}: cannot open for writing", p.string()));
  }
  if (!outputs_.snapshots.empty()) ensure_dir(outputs_.snapshots);
}

OutputWorker::~OutputWorker() {
  close(0);
}

void OutputWorker::add_sink(std::unique_ptr<EventSink> sink) {
  std::lock_guard lock(mu_);
  VIGIL_ASSERT(!thread_.joinable(), "sinks are added before the output thread starts");
  sinks_.push_back(std::move(sink));
}

void OutputWorker::start() {
  clips_.start();
  thread_ = std::thread([this] { run(); });
}

void OutputWorker::push_event(EventTask task) {
  std::lock_guard lock(mu_);
  if (closed_) return;
  tasks_.emplace_back(std::move(task));
  cv_.notify_all();
}

bool OutputWorker::push_frame(FrameTask task) {
  std::lock_guard lock(mu_);
  if (closed_) return false;
  if (queued_frames_ >= frame_capacity_) {
    ++dropped_[task.result.camera];
    return false;
  }
  ++queued_frames_;
  tasks_.emplace_back(std::move(task));
  cv_.notify_all();
  return true;
}

bool OutputWorker::push_raw(RawTask task, bool wait) {
  std::unique_lock lock(mu_);
  // A raw frame counts as a frame: raw frames and detections share the bound (both hold full images).
  if (wait) cv_.wait(lock, [&] { return closing_ || queued_frames_ < frame_capacity_; });
  if (closing_ || closed_) return false;
  if (queued_frames_ >= frame_capacity_) {
    ++dropped_[task.camera->name];
    return false;
  }
  ++queued_frames_;
  tasks_.emplace_back(std::move(task));
  cv_.notify_all();
  return true;
}

void OutputWorker::push_finish(FinishTask task) {
  std::lock_guard lock(mu_);
  if (closed_) return;
  tasks_.emplace_back(task);
  cv_.notify_all();
}

void OutputWorker::run() {
  for (;;) {
    Task task;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return closing_ || !tasks_.empty(); });
      if (tasks_.empty()) return;  // closing and everything written
      task = std::move(tasks_.front());
      tasks_.pop_front();
      if (std::holds_alternative<FrameTask>(task) || std::holds_alternative<RawTask>(task)) --queued_frames_;
    }
    cv_.notify_all();  // room for a recording's reader waiting in push_raw()
    std::visit([this](auto& t) { handle(t); }, task);
  }
}

void OutputWorker::write_snapshot(const EventTask& task) {
  cv::Mat canvas = task.best_frame.clone();  // the frame may still be shown by the live view
  draw_event_box(canvas, task.record.record.event);
  try {
    write_file_atomic(task.record.snapshot, image::encode(canvas, "jpg", 90));
  } catch (const std::exception& e) {
    spdlog::warn("camera '{}': snapshot {}: {}", task.record.record.event.camera, task.record.snapshot,
                 e.what());
  }
}

void OutputWorker::handle(EventTask& task) {
  if (!task.best_frame.empty() && !task.record.snapshot.empty()) write_snapshot(task);
  if (task.camera != nullptr && !task.record.clip.empty()) {
    const CameraConfig& camera = *task.camera;
    configs_[camera.name] = task.camera;
    CameraOutput& out = cameras_[camera.name];
    const Event& e = task.record.record.event;
    const double fps = clip_fps(camera, out);
    if (task.record.record.kind == EventKind::kStart && !out.clips.count(e.id)) {
      // The clip starts pre_capture before the event with what the buffer holds; the frames drawn from
      // now on follow (frames of the event not yet drawn are still pending, so none is missed).
      const int64_t from = e.start.index - frames_in(camera.clips.pre_capture, fps);
      std::vector<Jpeg> pre;
      for (const auto& [index, jpeg] : out.ring)
        if (index >= from) pre.push_back(jpeg);
      CameraOutput::OpenClip& clip = out.clips[e.id];
      clip.track_id = e.track_id;
      clip.last_seen = e.last.index;
      clip.frames = static_cast<int64_t>(pre.size());
      clips_.open(camera.name, e.id, task.record.clip, fps, std::move(pre));
    }
    if (task.record.record.kind == EventKind::kEnd) {
      const auto it = out.clips.find(e.id);
      if (it != out.clips.end()) {
        CameraOutput::OpenClip& clip = it->second;
        clip.until = e.last.index + frames_in(camera.clips.post_capture, fps);
        release_held(camera, e.id, clip, clip.until);
        clip.held.clear();  // past the end's post_capture: not part of the clip
        if (out.composed >= clip.until) {
          clips_.close(camera.name, e.id);
          out.clips.erase(it);
        }
      }
    }
  }
  for (auto& sink : sinks_) {
    try {
      sink->write(task.record);
    } catch (const std::exception& e) {  // one failing sink never starves the others
      spdlog::warn("event sink {}: {}", sink->name(), e.what());
    }
  }
}

void OutputWorker::handle(RawTask& task) {
  const CameraConfig& camera = *task.camera;
  configs_[camera.name] = task.camera;
  CameraOutput& out = cameras_[camera.name];
  if (task.frame.source_fps > 0) out.fps = task.frame.source_fps;
  out.pending.push_back(std::move(task.frame));
  while (out.pending.size() > max_pending(out.fps)) {
    compose(camera, out, out.pending.front());
    out.pending.pop_front();
  }
}

void OutputWorker::handle(FrameTask& task) {
  if (detections_) {
    *detections_ << to_json(task.result).dump() << '\n';
    detections_->flush();
  }
  const CameraConfig* camera = task.camera;
  if (camera == nullptr || !camera->composes()) return;
  CameraOutput& out = cameras_[camera->name];
  const int64_t index = task.result.frame;
  // Frames before this detection are drawn with the previous one's boxes, this frame with its own.
  while (!out.pending.empty() && out.pending.front().index < index) {
    compose(*camera, out, out.pending.front());
    out.pending.pop_front();
  }
  out.tracks = std::move(task.result.tracks);
  out.statuses = std::move(task.statuses);
  for (auto& [id, clip] : out.clips)
    for (const Track& t : out.tracks)
      if (t.id == clip.track_id && t.matched()) clip.last_seen = std::max(clip.last_seen, index);
  if (!out.pending.empty() && out.pending.front().index == index) {
    compose(*camera, out, out.pending.front());
    out.pending.pop_front();
  }
}

void OutputWorker::compose(const CameraConfig& camera, CameraOutput& out, const Frame& frame) {
  if (frame.bgr.empty()) return;
  cv::Mat canvas = frame.bgr.clone();  // the frame may still be shown by the live view
  draw_annotations(canvas, camera.name, camera.rules.zones, out.tracks, out.statuses);
  out.composed = frame.index;
  if (!camera.annotate.video.empty()) write_video(camera, out, canvas);
  if (camera.clips.enabled) add_to_clips(camera, out, frame.index, canvas);
}

void OutputWorker::write_video(const CameraConfig& camera, CameraOutput& out, const cv::Mat& canvas) {
  if (!out.video) {
    const std::string& file = camera.annotate.video;
    const fs::path p(file);
    if (p.has_parent_path()) ensure_dir(p.parent_path());
    const int fourcc = lower_extension(p) == ".avi" ? cv::VideoWriter::fourcc('M', 'J', 'P', 'G')
                                                    : cv::VideoWriter::fourcc('m', 'p', '4', 'v');
    out.video_size = canvas.size();
    out.video = std::make_unique<cv::VideoWriter>(file, fourcc, out.fps > 0 ? out.fps : camera.detect.fps,
                                                  out.video_size);
    if (!out.video->isOpened())
      spdlog::warn("camera '{}': annotate.video: cannot write {} (codec missing?)", camera.name, file);
  }
  // A reconnected stream that changed its resolution is not written: the file keeps its first size.
  if (out.video->isOpened() && canvas.size() == out.video_size) out.video->write(canvas);
}

void OutputWorker::add_to_clips(const CameraConfig& camera, CameraOutput& out, int64_t index,
                                const cv::Mat& canvas) {
  const ClipsConfig& o = camera.clips;
  const double fps = clip_fps(camera, out);
  Jpeg jpeg;
  try {
    const std::string bytes = image::encode(canvas, "jpg", o.quality);
    jpeg = std::make_shared<const std::vector<unsigned char>>(bytes.begin(), bytes.end());
  } catch (const std::exception& e) {
    spdlog::warn("camera '{}': clip frame {}: {}", camera.name, index, e.what());
    return;
  }
  // The pre-capture buffer: pre_capture seconds of frames, never more than buffer_mb.
  out.ring.emplace_back(index, jpeg);
  out.ring_bytes += jpeg->size();
  const size_t keep = static_cast<size_t>(frames_in(o.pre_capture, fps)) + 1;
  const size_t max_bytes = static_cast<size_t>(o.buffer_mb) << 20;
  while (!out.ring.empty() && (out.ring.size() > keep || out.ring_bytes > max_bytes)) {
    out.ring_bytes -= out.ring.front().second->size();
    out.ring.pop_front();
  }
  const int64_t post = frames_in(o.post_capture, fps);
  const int64_t max_frames = std::max<int64_t>(1, frames_in(o.max_seconds, fps));
  for (auto it = out.clips.begin(); it != out.clips.end();) {
    auto& [id, clip] = *it;
    if (clip.until < 0) {
      // Open event: a frame within post_capture of the last sighting belongs to the clip whatever happens
      // next; later ones wait (bounded by max_seconds) to see whether the object comes back.
      clip.held.emplace_back(index, jpeg);
      release_held(camera, id, clip, clip.last_seen + post);
      while (static_cast<int64_t>(clip.held.size()) > max_frames) clip.held.pop_front();
    } else if (index <= clip.until) {
      release_held(camera, id, clip, clip.until);
      if (clip.frames < max_frames) {
        clips_.append(camera.name, id, jpeg);
        ++clip.frames;
      }
    }
    if ((clip.until >= 0 && index >= clip.until) || clip.frames >= max_frames) {
      if (clip.until < 0) spdlog::info("camera '{}': clip of {} cut at max_seconds", camera.name, id);
      clips_.close(camera.name, id);
      it = out.clips.erase(it);
    } else {
      ++it;
    }
  }
}

void OutputWorker::release_held(const CameraConfig& camera, const std::string& id,
                                CameraOutput::OpenClip& clip, int64_t index) {
  const int64_t max_frames =
      std::max<int64_t>(1, frames_in(camera.clips.max_seconds, clip_fps(camera, cameras_[camera.name])));
  while (!clip.held.empty() && clip.held.front().first <= index) {
    if (clip.frames < max_frames) {
      clips_.append(camera.name, id, clip.held.front().second);
      ++clip.frames;
    }
    clip.held.pop_front();
  }
}

void OutputWorker::handle(FinishTask& task) {
  if (task.camera != nullptr) finish_camera(task.camera->name);
}

void OutputWorker::finish_camera(const std::string& name) {
  const auto config = configs_.find(name);
  const auto it = cameras_.find(name);
  if (config == configs_.end() || it == cameras_.end()) return;
  CameraOutput& out = it->second;
  for (const Frame& f : out.pending) compose(*config->second, out, f);
  out.pending.clear();
  for (auto& [id, clip] : out.clips) {
    release_held(*config->second, id, clip, clip.until >= 0 ? clip.until : clip.last_seen);
    clips_.close(name, id);
  }
  out.clips.clear();
  if (out.video) out.video->release();
}

void OutputWorker::flush_pending() {
  for (auto& [name, out] : cameras_) finish_camera(name);
}

void OutputWorker::close(double drain_seconds) {
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    closing_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  // The output thread is over: what still waits for a detection is drawn with the last one's boxes.
  flush_pending();
  clips_.stop();
  for (auto& sink : sinks_) sink->close(drain_seconds);
  if (detections_) detections_->flush();
}

std::vector<std::pair<std::string, SinkStats>> OutputWorker::sink_stats() const {
  std::vector<std::pair<std::string, SinkStats>> out;
  for (const auto& sink : sinks_) out.emplace_back(sink->name(), sink->stats());
  return out;
}

std::map<std::string, int64_t> OutputWorker::dropped_frames() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

std::map<std::string, ClipStats> OutputWorker::clip_stats() const {
  return clips_.stats();
}

}  // namespace vigil::video::detail

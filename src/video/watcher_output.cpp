#include "watcher_output.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <filesystem>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/image/decode.h"
#include "vigil/video/annotate.h"

namespace vigil::video::detail {

namespace fs = std::filesystem;

OutputWorker::OutputWorker(const OutputsConfig& outputs, size_t frame_capacity)
    : outputs_(outputs), frame_capacity_(frame_capacity) {
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
  thread_ = std::thread([this] { run(); });
}

void OutputWorker::push_event(EventTask task) {
  std::lock_guard lock(mu_);
  if (closed_) return;
  events_.push_back(std::move(task));
  cv_.notify_all();
}

bool OutputWorker::push_frame(FrameTask task) {
  std::lock_guard lock(mu_);
  if (closed_) return false;
  if (frames_.size() >= frame_capacity_) {
    ++dropped_[task.result.camera];
    return false;
  }
  frames_.push_back(std::move(task));
  cv_.notify_all();
  return true;
}

void OutputWorker::run() {
  for (;;) {
    std::deque<EventTask> events;
    std::optional<FrameTask> frame;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return closing_ || !events_.empty() || !frames_.empty(); });
      if (events_.empty() && frames_.empty()) return;  // closing and everything written
      events.swap(events_);
      if (!frames_.empty()) {
        frame = std::move(frames_.front());
        frames_.pop_front();
      }
    }
    for (auto& e : events) handle(e);
    if (frame) handle(*frame);
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
  for (auto& sink : sinks_) {
    try {
      sink->write(task.record);
    } catch (const std::exception& e) {  // one failing sink never starves the others
      spdlog::warn("event sink {}: {}", sink->name(), e.what());
    }
  }
}

void OutputWorker::handle(FrameTask& task) {
  if (detections_) {
    *detections_ << to_json(task.result).dump() << '\n';
    detections_->flush();
  }
  const CameraConfig* camera = task.camera;
  if (camera == nullptr || camera->annotate.video.empty() || task.frame.empty()) return;
  auto& [writer, size] = videos_[camera->name];
  if (!writer) {
    const std::string& file = camera->annotate.video;
    const fs::path p(file);
    if (p.has_parent_path()) ensure_dir(p.parent_path());
    const int fourcc = lower_extension(p) == ".avi" ? cv::VideoWriter::fourcc('M', 'J', 'P', 'G')
                                                    : cv::VideoWriter::fourcc('m', 'p', '4', 'v');
    size = task.frame.size();
    writer = std::make_unique<cv::VideoWriter>(file, fourcc, camera->detect.fps, size);
    if (!writer->isOpened())
      spdlog::warn("camera '{}': annotate.video: cannot write {} (codec missing?)", camera->name, file);
  }
  // A reconnected stream that changed its resolution is not written: the file keeps its first size.
  if (!writer->isOpened() || task.frame.size() != size) return;
  cv::Mat canvas = task.frame.clone();
  draw_annotations(canvas, camera->name, camera->rules.zones, task.result.tracks, task.statuses);
  writer->write(canvas);
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
  for (auto& [name, video] : videos_)
    if (video.first) video.first->release();
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

}  // namespace vigil::video::detail

#include "clip_writer.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <opencv2/videoio.hpp>

#include <filesystem>

#include "vigil/core/fs.h"
#include "vigil/image/decode.h"

namespace vigil::video::detail {

namespace fs = std::filesystem;

struct ClipWriter::Clip {
  std::string camera;
  fs::path path, temp;
  double fps = 0;
  cv::VideoWriter writer;
  cv::Size size;
  int64_t frames = 0;
  bool failed = false;
};

ClipWriter::ClipWriter(size_t capacity) : capacity_(capacity) {}

ClipWriter::~ClipWriter() {
  stop();
}

void ClipWriter::start() {
  thread_ = std::thread([this] { run(); });
}

void ClipWriter::push(Op op) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    queued_frames_ += op.frames.size();
    ops_.push_back(std::move(op));
  }
  cv_.notify_all();
}

void ClipWriter::open(const std::string& camera, const std::string& id, const std::string& path, double fps,
                      std::vector<Jpeg> frames) {
  push({OpKind::kOpen, camera, id, path, fps, std::move(frames)});
}

bool ClipWriter::append(const std::string& camera, const std::string& id, Jpeg frame) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    if (queued_frames_ >= capacity_) {
      ++stats_[camera].dropped_frames;
      return false;
    }
  }
  push({OpKind::kAppend, camera, id, {}, 0, {std::move(frame)}});
  return true;
}

void ClipWriter::close(const std::string& camera, const std::string& id) {
  push({OpKind::kClose, camera, id, {}, 0, {}});
}

void ClipWriter::run() {
  for (;;) {
    Op op;
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !ops_.empty(); });
      if (ops_.empty()) break;  // stopping and everything encoded
      op = std::move(ops_.front());
      ops_.pop_front();
      queued_frames_ -= op.frames.size();
    }
    apply(op);
  }
  // Clips still open at the end (the watcher stopped inside their post_capture) keep what they have.
  while (!clips_.empty()) finish(clips_.begin()->first);
}

void ClipWriter::apply(Op& op) {
  if (op.kind == OpKind::kOpen) {
    auto clip = std::make_unique<Clip>();
    clip->camera = op.camera;
    clip->path = op.path;
    // A hidden name while it is written: a reader (GET /v1/events/ID/clip.mp4) never sees half a clip, and
    // the extension stays last so FFmpeg picks the container from it.
    clip->temp = clip->path.parent_path() /
                 ("." + clip->path.stem().string() + ".part" + clip->path.extension().string());
    clip->fps = op.fps;
    clips_[op.id] = std::move(clip);
  } else if (op.kind == OpKind::kClose) {
    finish(op.id);
    return;
  }
  const auto it = clips_.find(op.id);
  if (it == clips_.end()) return;
  Clip& c = *it->second;
  for (const Jpeg& jpeg : op.frames) {
    if (c.failed) return;
    const cv::Mat frame =
        image::decode(std::string_view(reinterpret_cast<const char*>(jpeg->data()), jpeg->size())).bgr;
    if (frame.empty()) continue;
    if (!c.writer.isOpened()) {
      std::error_code ec;
      fs::create_directories(c.path.parent_path(), ec);
      c.size = frame.size();
      c.writer.open(c.temp.string(), cv::CAP_FFMPEG, cv::VideoWriter::fourcc('m', 'p', '4', 'v'), c.fps,
                    c.size);
      if (!c.writer.isOpened()) {
        spdlog::warn(
            "camera '{}': clip {}: cannot write it (mp4v codec missing, or the folder is not writable)",
            c.camera, c.path.string());
        c.failed = true;
        return;
      }
    }
    // A stream that came back at another resolution keeps the clip's first size.
    if (frame.size() != c.size) continue;
    c.writer.write(frame);
    ++c.frames;
  }
}

void ClipWriter::finish(const std::string& id) {
  const auto it = clips_.find(id);
  if (it == clips_.end()) return;
  std::unique_ptr<Clip> c = std::move(it->second);
  clips_.erase(it);
  bool ok = !c->failed && c->frames > 0;
  if (c->writer.isOpened()) c->writer.release();
  std::error_code ec;
  if (ok) {
    fs::rename(c->temp, c->path, ec);
    if (ec) {
      spdlog::warn("camera '{}': clip {}: {}", c->camera, c->path.string(), ec.message());
      ok = false;
    }
  }
  if (!ok) fs::remove(c->temp, ec);
  std::lock_guard lock(mu_);
  ++(ok ? stats_[c->camera].written : stats_[c->camera].failed);
}

void ClipWriter::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::map<std::string, ClipStats> ClipWriter::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace vigil::video::detail

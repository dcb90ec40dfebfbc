#pragma once
// The clip thread of the watcher's outputs (watcher_output.h): event clips are encoded here, so a slow disk
// or a long clip never holds up detection, snapshots or the event sinks. Internal to src/video/.

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace vigil::video::detail {

/// One annotated frame, JPEG-encoded once and shared by the pre-capture buffer and every open clip.
using Jpeg = std::shared_ptr<const std::vector<unsigned char>>;

/// Clip counters of one camera.
struct ClipStats {
  int64_t written = 0;         ///< clips finished and in place
  int64_t failed = 0;          ///< clips that could not be written (codec, disk)
  int64_t dropped_frames = 0;  ///< frames left out of clips because the clip queue was full
};

class ClipWriter {
 public:
  /// `capacity` bounds the frames waiting to be encoded; opening and closing a clip are never dropped.
  explicit ClipWriter(size_t capacity);
  ~ClipWriter();

  void start();
  /// Starts the clip `id` at `path` (written as a hidden temporary file until close()) with `frames`.
  void open(const std::string& camera, const std::string& id, const std::string& path, double fps,
            std::vector<Jpeg> frames);
  /// Adds a frame to an open clip; false (and counted for the camera) when the queue is full.
  bool append(const std::string& camera, const std::string& id, Jpeg frame);
  /// Finishes the clip and moves it into place.
  void close(const std::string& camera, const std::string& id);
  /// Encodes everything queued, finishes the open clips and joins the thread. Idempotent.
  void stop();

  std::map<std::string, ClipStats> stats() const;

 private:
  enum class OpKind { kOpen, kAppend, kClose };
  struct Op {
    OpKind kind;
    std::string camera, id, path;
    double fps = 0;
    std::vector<Jpeg> frames;
  };
  struct Clip;

  void push(Op op);
  void run();
  void apply(Op& op);
  void finish(const std::string& id);

  size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Op> ops_;
  size_t queued_frames_ = 0;
  std::map<std::string, ClipStats> stats_;
  bool stopping_ = false;
  std::thread thread_;
  std::map<std::string, std::unique_ptr<Clip>> clips_;  ///< by event id; the clip thread's only
};

}  // namespace vigil::video::detail

// Event records as JSON, and the sinks that write them locally: a JSON lines file, the workspace store, a
// callback. Webhooks are in webhook_sink.cpp.

#include "vigil/video/event_sinks.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/store/events.h"

namespace vigil::video {
namespace {

using ojson = nlohmann::ordered_json;

/// Milliseconds-precise seconds: enough for frame times, and the JSON stays short.
double round_ms(double seconds) {
  return std::round(seconds * 1000) / 1000;
}

ojson box_json(const Box& b) {
  auto r = [](float v) { return std::round(v * 10) / 10; };
  return ojson::array({r(b.x1), r(b.y1), r(b.x2), r(b.y2)});
}

ojson box_record_json(const BoxRecord& b) {
  return {{"frame", b.frame.index},
          {"time", round_ms(b.frame.time)},
          {"box", box_json(b.box)},
          {"score", std::round(b.score * 1000) / 1000}};
}

int64_t to_ms(double seconds) {
  return std::llround(seconds * 1000);
}

class JsonlSink : public EventSink {
 public:
  explicit JsonlSink(std::string file) : file_(std::move(file)) {
    const std::filesystem::path p(file_);
    if (p.has_parent_path()) ensure_dir(p.parent_path());
    out_.open(p, std::ios::binary | std::ios::app);
    if (!out_) throw IoError(fmt::format("{}: cannot open for writing", file_));
  }
  std::string name() const override { return "jsonl " + file_; }
  void write(const WatchEventRecord& r) override {
    out_ << event_json(r, r.record.kind == EventKind::kEnd).dump() << '\n';
    out_.flush();
    std::lock_guard lock(mu_);
    if (out_) {
      ++stats_.written;
    } else {
      ++stats_.failed;
      stats_.last_error = fmt::format("{}: write failed", file_);
      out_.clear();
    }
  }
  SinkStats stats() const override {
    std::lock_guard lock(mu_);
    return stats_;
  }

 private:
  std::string file_;
  std::ofstream out_;
  mutable std::mutex mu_;
  SinkStats stats_;
};

class StoreSink : public EventSink {
 public:
  explicit StoreSink(const std::string& workspace) : log_(Workspace(workspace)) {}
  std::string name() const override { return "store"; }
  void write(const WatchEventRecord& r) override {
    const store::EventRow row = event_row(r, true);
    try {
      log_.upsert(row);
      std::lock_guard lock(mu_);
      ++stats_.written;
    } catch (const std::exception& ex) {  // a busy or full disk loses this record, never the pipeline
      std::lock_guard lock(mu_);
      ++stats_.failed;
      stats_.last_error = ex.what();
    }
  }
  SinkStats stats() const override {
    std::lock_guard lock(mu_);
    return stats_;
  }

 private:
  store::EventLog log_;
  mutable std::mutex mu_;
  SinkStats stats_;
};

class CallbackSink : public EventSink {
 public:
  CallbackSink(std::string name, std::function<void(const WatchEventRecord&)> fn)
      : name_(std::move(name)), fn_(std::move(fn)) {}
  std::string name() const override { return name_; }
  void write(const WatchEventRecord& r) override {
    fn_(r);
    std::lock_guard lock(mu_);
    ++stats_.written;
  }
  SinkStats stats() const override {
    std::lock_guard lock(mu_);
    return stats_;
  }

 private:
  std::string name_;
  std::function<void(const WatchEventRecord&)> fn_;
  mutable std::mutex mu_;
  SinkStats stats_;
};

}  // namespace

ojson event_json(const WatchEventRecord& r, bool with_boxes) {
  const Event& e = r.record.event;
  ojson ev = {{"id", e.id},
              {"camera", e.camera},
              {"label", e.label},
              {"class_id", e.class_id},
              {"track_id", e.track_id},
              {"zones", e.zones},
              {"current_zones", e.current_zones},
              {"start_time", round_ms(e.start.time)},
              {"start_frame", e.start.index},
              {"last_time", round_ms(e.last.time)},
              {"end_time", e.end_time ? ojson(round_ms(*e.end_time)) : ojson(nullptr)},
              {"end_reason", e.ended() ? ojson(to_string(e.end_reason)) : ojson(nullptr)},
              {"top_score", std::round(e.top_score * 1000) / 1000},
              {"best", box_record_json(e.best)},
              {"stationary", e.stationary},
              {"updates", e.updates},
              {"snapshot", r.snapshot.empty() ? ojson(nullptr) : ojson(r.snapshot)},
              {"clip", r.clip.empty() ? ojson(nullptr) : ojson(r.clip)},
              {"model", r.model}};
  if (with_boxes) {
    ojson boxes = ojson::array();
    for (const auto& b : e.boxes) boxes.push_back(box_record_json(b));
    ev["boxes"] = std::move(boxes);
  }
  return {{"type", to_string(r.record.kind)}, {"event", std::move(ev)}};
}

store::EventRow event_row(const WatchEventRecord& r, bool with_boxes) {
  const Event& e = r.record.event;
  store::EventRow row;
  row.id = e.id;
  row.camera = e.camera;
  row.label = e.label;
  row.track_id = e.track_id;
  row.start_ms = to_ms(e.start.time);
  row.end_ms = e.end_time ? to_ms(*e.end_time) : 0;
  row.end_reason = e.ended() ? to_string(e.end_reason) : "";
  row.top_score = e.top_score;
  row.zones = e.zones;
  row.snapshot = r.snapshot;
  row.model = r.model;
  row.data_json = event_json(r, with_boxes).dump();
  return row;
}

std::unique_ptr<EventSink> make_jsonl_sink(const std::string& file) {
  return std::make_unique<JsonlSink>(file);
}

std::unique_ptr<EventSink> make_store_sink(const std::string& workspace) {
  VIGIL_CHECK(!workspace.empty(), "outputs.store: expected a workspace to store events in, got none");
  return std::make_unique<StoreSink>(workspace);
}

std::unique_ptr<EventSink> make_callback_sink(std::string name,
                                              std::function<void(const WatchEventRecord&)> fn) {
  return std::make_unique<CallbackSink>(std::move(name), std::move(fn));
}

}  // namespace vigil::video

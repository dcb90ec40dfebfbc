#pragma once
/// Where the watcher's event records go. The watcher hands every record, in order, to its sinks on one output
/// thread (never the detection thread): the workspace store, a JSON lines file, webhooks (each with its own
/// sender thread, bounded queue, retries with back-off and an HMAC-SHA256 signature), or a callback (the
/// command line's live printout, and later the server's event stream).

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "vigil/store/events.h"
#include "vigil/video/events.h"
#include "vigil/video/watch_config.h"

namespace vigil::video {

/// An event record with what the watcher adds to the rule engine's.
struct WatchEventRecord {
  EventRecord record;
  std::string snapshot;  ///< the best frame's JPEG ("" when snapshots are off)
  std::string clip;      ///< where the event's clip is (being) written ("" when clips are off)
  std::string model;     ///< what detected it
};

/// {"type": "start"|"update"|"end", "event": {id, camera, label, class_id, track_id, zones, current_zones,
///  start_time, last_time, end_time (null while open), end_reason, top_score, best: {frame, time, box,
///  score}, stationary, updates, snapshot, clip, model[, boxes: [{frame, time, box, score}]]}}. Times are
///  Unix seconds.
nlohmann::ordered_json event_json(const WatchEventRecord& r, bool with_boxes);

/// The record's event as the store keeps it (store/events.h): times in Unix milliseconds, the whole
/// event_json() (with the track's boxes when `with_boxes`) as data_json. What the store sink upserts, and
/// what the server's event stream sends in the shape of GET /v1/events.
store::EventRow event_row(const WatchEventRecord& r, bool with_boxes);

/// How a sink is doing.
struct SinkStats {
  int64_t written = 0;  ///< records delivered
  int64_t failed = 0;   ///< records given up on (after retries, for webhooks)
  int64_t dropped = 0;  ///< records dropped from a full queue
  int64_t retries = 0;  ///< extra attempts (webhooks)
  int64_t queued = 0;   ///< waiting now (webhooks)
  std::string last_error;
};

/// A destination of event records. write() is called on one thread, in record order, and must not block for
/// long (a slow destination queues and returns).
class EventSink {
 public:
  virtual ~EventSink() = default;
  /// "store", "jsonl <file>", "webhook <url>", ...
  virtual std::string name() const = 0;
  virtual void write(const WatchEventRecord& record) = 0;
  /// Delivers what is still queued, waiting up to `drain_seconds`, then stops. Called once, at the end.
  virtual void close(double drain_seconds) {}
  virtual SinkStats stats() const = 0;
};

/// Appends one event_json() line per record (boxes on end records only) and flushes each line.
std::unique_ptr<EventSink> make_jsonl_sink(const std::string& file);

/// Upserts each record's event into the workspace store's events table (store/events.h).
std::unique_ptr<EventSink> make_store_sink(const std::string& workspace);

/// Calls `fn` for each record (on the output thread).
std::unique_ptr<EventSink> make_callback_sink(std::string name,
                                              std::function<void(const WatchEventRecord&)> fn);

/// POSTs event_json() (boxes on end records) to config.url with Content-Type application/json,
/// X-Vigil-Event: <kind>, X-Vigil-Delivery: <event id>:<kind>:<update number> and, with a secret,
/// X-Vigil-Signature: sha256=<hex HMAC-SHA256 of the body>. A sender thread works through a bounded queue in
/// order; a failed attempt (connection error, timeout, 408, 429 or 5xx) is retried after retry_initial
/// seconds, doubling up to retry_max, at most max_attempts times; other 4xx answers are not retried.
std::unique_ptr<EventSink> make_webhook_sink(const WebhookConfig& config);

/// The delivery engine under webhook sinks, for any JSON body (the server's drift alerts use it too): a
/// sender thread, a bounded queue, retries with back-off and the HMAC signature, as make_webhook_sink says.
/// `kind` goes out as X-Vigil-Event, `id` as X-Vigil-Delivery. config.kinds is not consulted here.
class WebhookSender {
 public:
  explicit WebhookSender(const WebhookConfig& config);
  ~WebhookSender();
  WebhookSender(const WebhookSender&) = delete;
  WebhookSender& operator=(const WebhookSender&) = delete;
  /// Queues one delivery; never blocks on the network.
  void send(std::string kind, std::string id, std::string body);
  /// Delivers what is queued, waiting up to `drain_seconds`, then stops (idempotent).
  void close(double drain_seconds);
  SinkStats stats() const;
  const std::string& url() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Lower-case hex HMAC-SHA256 of `body` under `key` (OpenSSL's libcrypto).
std::string hmac_sha256_hex(const std::string& key, const std::string& body);

}  // namespace vigil::video

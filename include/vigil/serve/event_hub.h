#pragma once
/// Fan-out of the watcher's event records to server-sent-event clients (GET /v1/events/stream). The watcher's
/// output thread publishes; each subscriber has its own bounded queue, so a slow client loses its oldest
/// messages (and is told how many) instead of slowing the watcher or the other clients. A short history of
/// the last messages lets a client that reconnects with Last-Event-ID resume without gaps.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace vigil::serve {

/// One published message: an SSE record.
struct HubMessage {
  uint64_t id = 0;    ///< 1, 2, 3, ... in publication order (the SSE `id:` field)
  std::string event;  ///< the SSE `event:` field: "start", "update", "end"
  std::string data;   ///< one line of JSON (the SSE `data:` field)
};

struct EventHubOptions {
  size_t queue_capacity = 256;  ///< messages waiting per subscriber, at most (then the oldest are lost)
  size_t history = 256;         ///< recent messages kept for Last-Event-ID resumption
  /// Throws InvalidArgument naming the field.
  void validate() const;
};

/// What a subscriber gets from one next() call.
struct HubBatch {
  std::vector<HubMessage> messages;
  uint64_t lost = 0;    ///< messages dropped from this subscriber's full queue since the last call
  bool closed = false;  ///< the hub was closed: no more messages will come
};

class EventHub;

/// One client's queue. Thread-safe; owned by the client's handler, held weakly by the hub.
class HubSubscriber {
 public:
  /// Waits up to `timeout` for messages (returns at once when some are waiting, some were lost, or the hub is
  /// closed) and takes everything waiting.
  HubBatch next(std::chrono::milliseconds timeout);

 private:
  friend class EventHub;
  void push(const HubMessage& m, size_t capacity);
  void close();

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<HubMessage> queue_;
  uint64_t lost_ = 0;
  bool closed_ = false;
};

class EventHub {
 public:
  explicit EventHub(EventHubOptions options = {});

  /// Hands `data` to every subscriber; never blocks on a subscriber. Returns the message's id.
  uint64_t publish(std::string event, std::string data);
  /// A new subscriber. With `last_id` (the client's Last-Event-ID), the messages after it that are still in
  /// the history are queued first (older ones count as lost).
  std::shared_ptr<HubSubscriber> subscribe(std::optional<uint64_t> last_id = std::nullopt);
  /// Wakes every subscriber with closed = true; later subscribers start closed. Idempotent.
  void close();
  /// Subscribers still alive.
  size_t subscribers();
  /// The id of the last message published (0 before the first).
  uint64_t last_id();

 private:
  EventHubOptions options_;
  std::mutex mu_;
  uint64_t next_id_ = 1;
  bool closed_ = false;
  std::deque<HubMessage> history_;
  std::vector<std::weak_ptr<HubSubscriber>> subscribers_;
};

/// One SSE record: "id: N\nevent: E\ndata: D\n\n" (a `data` with newlines becomes several data lines).
std::string format_sse(const HubMessage& m);

}  // namespace vigil::serve

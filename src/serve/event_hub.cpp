// The event fan-out of the server-sent event stream: bounded per-subscriber queues, a resumption history.

#include "vigil/serve/event_hub.h"

#include <fmt/format.h>

#include <algorithm>

#include "vigil/core/error.h"

namespace vigil::serve {

void EventHubOptions::validate() const {
  VIGIL_CHECK(queue_capacity >= 1, "queue_capacity: expected >= 1, got {}", queue_capacity);
}

HubBatch HubSubscriber::next(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return !queue_.empty() || lost_ > 0 || closed_; });
  HubBatch batch;
  batch.messages.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.end()));
  queue_.clear();
  batch.lost = lost_;
  lost_ = 0;
  batch.closed = closed_;
  return batch;
}

void HubSubscriber::push(const HubMessage& m, size_t capacity) {
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= capacity) {
      queue_.pop_front();  // the client is behind: the newest records matter more than the oldest
      ++lost_;
    }
    queue_.push_back(m);
  }
  cv_.notify_one();
}

void HubSubscriber::close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  cv_.notify_all();
}

EventHub::EventHub(EventHubOptions options) : options_(options) {
  options_.validate();
}

uint64_t EventHub::publish(std::string event, std::string data) {
  std::lock_guard lock(mu_);
  HubMessage m{next_id_++, std::move(event), std::move(data)};
  if (options_.history > 0) {
    history_.push_back(m);
    if (history_.size() > options_.history) history_.pop_front();
  }
  // Each push takes only that subscriber's own lock, briefly: the publisher never waits for a client.
  subscribers_.erase(std::remove_if(subscribers_.begin(), subscribers_.end(),
                                    [](const auto& weak) { return weak.expired(); }),
                     subscribers_.end());
  for (const auto& weak : subscribers_)
    if (auto s = weak.lock()) s->push(m, options_.queue_capacity);
  return m.id;
}

std::shared_ptr<HubSubscriber> EventHub::subscribe(std::optional<uint64_t> last_id) {
  auto s = std::make_shared<HubSubscriber>();
  std::lock_guard lock(mu_);
  if (closed_) {
    s->close();
    return s;
  }
  if (last_id && *last_id + 1 < next_id_) {
    const uint64_t first_kept = history_.empty() ? next_id_ : history_.front().id;
    if (*last_id + 1 < first_kept) {
      std::lock_guard slock(s->mu_);
      s->lost_ = first_kept - *last_id - 1;
    }
    for (const auto& m : history_)
      if (m.id > *last_id) s->push(m, options_.queue_capacity);
  }
  subscribers_.push_back(s);
  return s;
}

void EventHub::close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  for (auto& weak : subscribers_)
    if (auto s = weak.lock()) s->close();
  subscribers_.clear();
}

size_t EventHub::subscribers() {
  std::lock_guard lock(mu_);
  return static_cast<size_t>(
      std::count_if(subscribers_.begin(), subscribers_.end(), [](const auto& w) { return !w.expired(); }));
}

uint64_t EventHub::last_id() {
  std::lock_guard lock(mu_);
  return next_id_ - 1;
}

std::string format_sse(const HubMessage& m) {
  std::string out = fmt::format("id: {}\nevent: {}\n", m.id, m.event);
  size_t start = 0;
  while (true) {
    const size_t nl = m.data.find('\n', start);
    out += "data: ";
    out.append(m.data, start, nl == std::string::npos ? std::string::npos : nl - start);
    out += '\n';
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  out += '\n';
  return out;
}

}  // namespace vigil::serve

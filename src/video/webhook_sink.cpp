// Webhooks: event records POSTed as signed JSON from a sender thread per webhook, so a slow or dead receiver
// delays only its own queue, never detection or the other sinks. cpp-httplib stays in this file.

#include <fmt/format.h>
#include <httplib.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "vigil/core/error.h"
#include "vigil/core/strings.h"
#include "vigil/video/event_sinks.h"

namespace vigil::video {
namespace {

using Clock = std::chrono::steady_clock;

struct Delivery {
  std::string body;
  std::string kind;
  std::string id;  ///< X-Vigil-Delivery
};

/// "http://host:port/path?q" -> {"http://host:port", "/path?q"}.
std::pair<std::string, std::string> split_url(const std::string& url) {
  const auto scheme_end = url.find("://");
  const auto path_start = url.find('/', scheme_end == std::string::npos ? 0 : scheme_end + 3);
  if (path_start == std::string::npos) return {url, "/"};
  return {url.substr(0, path_start), url.substr(path_start)};
}

/// What one attempt came to.
enum class Outcome { kDelivered, kRetry, kRejected };

}  // namespace

struct WebhookSender::Impl {
  explicit Impl(const WebhookConfig& config) : config_(config), secret_(config.resolved_secret()) {
    config_.validate();
    std::tie(base_, path_) = split_url(config_.url);
    thread_ = std::thread([this] { run(); });
  }
  ~Impl() { close(0); }

  void send(std::string kind, std::string id, std::string body) {
    Delivery d{std::move(body), std::move(kind), std::move(id)};
    std::lock_guard lock(mu_);
    if (closing_) return;
    if (queue_.size() >= static_cast<size_t>(config_.queue_capacity)) {
      queue_.pop_front();  // the receiver is far behind: the newest records matter most
      ++stats_.dropped;
    }
    queue_.push_back(std::move(d));
    cv_.notify_all();
  }

  void close(double drain_seconds) {
    {
      std::lock_guard lock(mu_);
      if (!closing_) {
        closing_ = true;
        deadline_ = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(std::max(0.0, drain_seconds)));
      }
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

  SinkStats stats() const {
    std::lock_guard lock(mu_);
    SinkStats s = stats_;
    s.queued = static_cast<int64_t>(queue_.size()) + (in_flight_ ? 1 : 0);
    return s;
  }

  /// True when the sender must give up: closing and past the drain deadline.
  bool expired() const { return closing_ && Clock::now() >= deadline_; }

  Outcome post(const Delivery& d, std::string& error) {
    httplib::Client client(base_);
    const auto timeout = std::chrono::duration<double>(config_.timeout);
    const auto sec = static_cast<time_t>(timeout.count());
    const auto usec = static_cast<time_t>((timeout.count() - sec) * 1e6);
    client.set_connection_timeout(sec, usec);
    client.set_read_timeout(sec, usec);
    client.set_write_timeout(sec, usec);
    httplib::Headers headers = {
        {"X-Vigil-Event", d.kind}, {"X-Vigil-Delivery", d.id}, {"User-Agent", "vigil"}};
    if (!secret_.empty()) headers.emplace("X-Vigil-Signature", "sha256=" + hmac_sha256_hex(secret_, d.body));
    const auto res = client.Post(path_, headers, d.body, "application/json");
    if (!res) {
      error = fmt::format("{}: {}", config_.url, httplib::to_string(res.error()));
      return Outcome::kRetry;
    }
    if (res->status >= 200 && res->status < 300) return Outcome::kDelivered;
    error = fmt::format("{}: HTTP {}", config_.url, res->status);
    const bool transient = res->status == 408 || res->status == 429 || res->status >= 500;
    return transient ? Outcome::kRetry : Outcome::kRejected;
  }

  /// Delivers one record with retries; false when it was given up.
  bool deliver(const Delivery& d) {
    double backoff = config_.retry_initial;
    for (int attempt = 1;; ++attempt) {
      std::string error;
      const Outcome outcome = post(d, error);
      if (outcome == Outcome::kDelivered) return true;
      std::unique_lock lock(mu_);
      stats_.last_error = error;
      if (outcome == Outcome::kRejected || attempt >= config_.max_attempts || expired()) {
        spdlog::warn("webhook {}: gave up on {} after {} attempt(s): {}", config_.url, d.id, attempt, error);
        return false;
      }
      ++stats_.retries;
      const auto wait = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(backoff));
      // Sleeps the back-off, cut short only when a stop's drain time runs out.
      cv_.wait_for(lock, wait, [&] { return expired(); });
      if (expired()) return false;
      backoff = std::min(backoff * 2, config_.retry_max);
    }
  }

  void run() {
    for (;;) {
      Delivery d;
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return closing_ || !queue_.empty(); });
        if (queue_.empty() || expired()) {
          stats_.failed += static_cast<int64_t>(queue_.size());  // never delivered: stopped first
          if (!queue_.empty()) stats_.last_error = "stopped before delivery";
          queue_.clear();
          return;
        }
        d = std::move(queue_.front());
        queue_.pop_front();
        in_flight_ = true;
      }
      const bool ok = deliver(d);
      std::lock_guard lock(mu_);
      in_flight_ = false;
      ++(ok ? stats_.written : stats_.failed);
    }
  }

  WebhookConfig config_;
  std::string secret_, base_, path_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Delivery> queue_;
  bool in_flight_ = false;
  bool closing_ = false;
  Clock::time_point deadline_;
  SinkStats stats_;
  std::thread thread_;
};

WebhookSender::WebhookSender(const WebhookConfig& config) : impl_(std::make_unique<Impl>(config)) {}
WebhookSender::~WebhookSender() = default;
void WebhookSender::send(std::string kind, std::string id, std::string body) {
  impl_->send(std::move(kind), std::move(id), std::move(body));
}
void WebhookSender::close(double drain_seconds) {
  impl_->close(drain_seconds);
}
SinkStats WebhookSender::stats() const {
  return impl_->stats();
}
const std::string& WebhookSender::url() const {
  return impl_->config_.url;
}

namespace {

/// Event records through a WebhookSender: the kinds the config asks for, one delivery id per record.
class WebhookSink : public EventSink {
 public:
  explicit WebhookSink(const WebhookConfig& config) : kinds_(config.kinds), sender_(config) {}
  ~WebhookSink() override { sender_.close(0); }
  std::string name() const override { return "webhook " + sender_.url(); }
  void write(const WatchEventRecord& r) override {
    const std::string kind = to_string(r.record.kind);
    if (std::find(kinds_.begin(), kinds_.end(), kind) == kinds_.end()) return;
    sender_.send(kind, fmt::format("{}:{}:{}", r.record.event.id, kind, r.record.event.updates),
                 event_json(r, r.record.kind == EventKind::kEnd).dump());
  }
  void close(double drain_seconds) override { sender_.close(drain_seconds); }
  SinkStats stats() const override { return sender_.stats(); }

 private:
  std::vector<std::string> kinds_;
  WebhookSender sender_;
};

}  // namespace

std::string hmac_sha256_hex(const std::string& key, const std::string& body) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  const unsigned char* out =
      HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
           reinterpret_cast<const unsigned char*>(body.data()), body.size(), digest, &length);
  VIGIL_ASSERT(out != nullptr, "HMAC-SHA256 failed");
  std::string hex;
  hex.reserve(2 * length);
  for (unsigned int i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

std::unique_ptr<EventSink> make_webhook_sink(const WebhookConfig& config) {
  return std::make_unique<WebhookSink>(config);
}

}  // namespace vigil::video

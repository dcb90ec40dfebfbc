#include "vigil/serve/registry_notifier.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>

#include "vigil/core/clock.h"
#include "vigil/core/error.h"
#include "vigil/store/store.h"
#include "vigil/video/event_sinks.h"
#include "vigil/video/watch_config.h"

namespace vigil::serve {

RegistryNotifier::RegistryNotifier(RegistryNotifierOptions options) : options_(std::move(options)) {
  VIGIL_CHECK(!options_.workspace.empty(),
              "registry_webhook: registry events are read from a workspace store");
  VIGIL_CHECK(options_.poll_s > 0, "expected registry webhook poll_s > 0, got {}", options_.poll_s);
  if (options_.claimant.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof(host) - 1);
    options_.claimant = fmt::format("{}:{}", host, ::getpid());
  }
  video::WebhookConfig w;
  w.url = options_.url;
  w.secret_env = options_.secret_env;
  sender_ = std::make_unique<video::WebhookSender>(w);  // validates the URL and the secret's variable
}

RegistryNotifier::~RegistryNotifier() {
  stop(0);
}

nlohmann::json RegistryNotifier::body(const std::string& event, int64_t id, int64_t time_ms,
                                      const std::string& payload_json) {
  const auto dot = event.rfind('.');
  nlohmann::json data = nlohmann::json::parse(payload_json, nullptr, /*allow_exceptions=*/false);
  if (data.is_discarded()) data = nlohmann::json::object();
  return {{"entity", event.substr(0, dot)},
          {"action", dot == std::string::npos ? std::string() : event.substr(dot + 1)},
          {"timestamp", format_utc_ms(time_ms)},
          {"event", event},
          {"event_id", id},
          {"data", std::move(data)}};
}

void RegistryNotifier::start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { run(); });
}

void RegistryNotifier::stop(double drain_seconds) {
  done_ = true;
  if (thread_.joinable()) thread_.join();
  if (sender_) sender_->close(drain_seconds);
}

nlohmann::json RegistryNotifier::stats() const {
  const video::SinkStats s = sender_->stats();
  return {{"url", sender_->url()},
          {"claimed", claimed_.load()},
          {"delivered", s.written},
          {"failed", s.failed},
          {"dropped", s.dropped}};
}

// Polling, like the alias follower: one indexed read per interval works on SQLite and PostgreSQL alike and
// sees changes made by any process. The claim is a conditional UPDATE, so two replicas reading the same new
// row deliver it once between them.
void RegistryNotifier::run() {
  std::unique_ptr<store::Store> st;
  int64_t after = 0;
  const int64_t since = unix_now_ms() - static_cast<int64_t>(options_.replay_s * 1000);
  bool failing = false;
  auto next = std::chrono::steady_clock::now();
  while (!done_) {
    if (std::chrono::steady_clock::now() < next) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      continue;
    }
    next = std::chrono::steady_clock::now() +
           std::chrono::milliseconds(static_cast<int64_t>(options_.poll_s * 1000));
    try {
      if (!st) {
        store::StoreOptions so;
        so.reap_on_open = false;
        st = std::make_unique<store::Store>(Workspace(options_.workspace), so);
      }
      for (;;) {
        const auto events = st->registry_events(after, since, 100);
        for (const auto& e : events) {
          after = e.id;
          if (!e.claimed_by.empty() || !st->claim_registry_event(e.id, options_.claimant)) continue;
          ++claimed_;
          sender_->send(e.event, fmt::format("registry:{}", e.id),
                        body(e.event, e.id, e.time_ms, e.payload_json).dump());
        }
        if (events.size() < 100 || done_) break;
      }
      failing = false;
    } catch (const std::exception& e) {
      // Said once per failing stretch; the next read opens the store afresh and resumes after `after`.
      if (!failing) spdlog::warn("serve: reading registry events failed: {}", e.what());
      failing = true;
      st.reset();
    }
  }
}

}  // namespace vigil::serve

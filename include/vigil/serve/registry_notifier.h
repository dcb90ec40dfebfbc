#pragma once
/// Registry webhooks inside `vigil serve` (MLflow's registry webhooks, for a store that any process may
/// change): every change of the registry is a row of the store's registry_events outbox, written in the
/// transaction of the change by whoever made it (`vigil models`, `vigil train --register`, a retrain job's
/// promotion, PUT /v1/registry/.../aliases). This notifier polls the outbox, claims each new event (so of
/// several replicas sharing the store exactly one delivers it) and POSTs it through the signed, retried
/// webhook sender the camera events and drift alerts use.

#include <nlohmann/json.hpp>

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "vigil/core/workspace.h"

namespace vigil::video {
class WebhookSender;
}

namespace vigil::serve {

struct RegistryNotifierOptions {
  std::string workspace;
  std::string url;          ///< POST each registry event here
  std::string secret_env;   ///< HMAC key for X-Vigil-Signature from this environment variable
  double poll_s = 1;        ///< seconds between reads of the outbox
  double replay_s = 86400;  ///< at start, undelivered events up to this old are still sent
  std::string claimant;     ///< this server's name in claimed_by ("" = host:pid)
};

class RegistryNotifier {
 public:
  /// Validates the URL and the secret's variable now (InvalidArgument naming the option).
  explicit RegistryNotifier(RegistryNotifierOptions options);
  ~RegistryNotifier();
  RegistryNotifier(const RegistryNotifier&) = delete;
  RegistryNotifier& operator=(const RegistryNotifier&) = delete;

  void start();
  /// Stops polling and gives queued deliveries up to `drain_seconds` (idempotent).
  void stop(double drain_seconds = 2);
  /// {url, claimed, delivered, failed, dropped}: for /v1/monitor and the log.
  nlohmann::json stats() const;

  /// The body POSTed for one event: {"entity", "action", "timestamp", "data"} as MLflow's deliveries, with
  /// vigil's event id beside them.
  static nlohmann::json body(const std::string& event, int64_t id, int64_t time_ms,
                             const std::string& payload_json);

 private:
  void run();

  RegistryNotifierOptions options_;
  std::unique_ptr<video::WebhookSender> sender_;
  std::atomic<bool> done_{false};
  std::atomic<int64_t> claimed_{0};
  std::thread thread_;
};

}  // namespace vigil::serve

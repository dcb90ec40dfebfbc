#pragma once
// A real webhook receiver for tests: an HTTP server on a free loopback port that records every POST (body and
// the X-Vigil-* headers) and can fail the first N of them, as a flaky receiver would.

#include <httplib.h>

#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace vigil::testing {

/// One request the receiver got.
struct ReceivedRequest {
  std::string path, body, signature, event, delivery;
};

/// A real HTTP server on 127.0.0.1 (any free port) that records every POST and answers the first
/// `failures` of them with HTTP 500.
class WebhookReceiver {
 public:
  explicit WebhookReceiver(int failures = 0) : failures_(failures) {
    server_.Post(R"(/.*)", [this](const httplib::Request& req, httplib::Response& res) {
      std::lock_guard lock(mu_);
      requests_.push_back({req.path, req.body, req.get_header_value("X-Vigil-Signature"),
                           req.get_header_value("X-Vigil-Event"), req.get_header_value("X-Vigil-Delivery")});
      if (failures_ > 0) {
        --failures_;
        res.status = 500;
        res.set_content("try again", "text/plain");
        return;
      }
      res.set_content("{\"ok\":true}", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });  // bound and listening already
  }
  ~WebhookReceiver() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }
  std::string url(const std::string& path = "/hook") const {
    return "http://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::vector<ReceivedRequest> requests() const {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  int failures_;
  mutable std::mutex mu_;
  std::vector<ReceivedRequest> requests_;
  std::thread thread_;
};

}  // namespace vigil::testing

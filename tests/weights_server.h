#pragma once
// A real HTTP server on a loopback port (cpp-httplib) standing in for download.pytorch.org in the published
// weights tests, plus the generator of the files it serves (tests/unit/model/gen_published_weights.py). Each
// file name gets a reply: the whole body, the body cut off mid-way (connection closed), or a stall.

#include <fmt/format.h>
#include <httplib.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "tests_util.h"

namespace vigil::testing {

/// How the server answers for one file name.
struct WeightsReply {
  enum class Kind { kWhole, kDropHalfway, kStall };
  std::string body;
  Kind kind = Kind::kWhole;
};

class WeightsServer {
 public:
  using Files = std::map<std::string, WeightsReply>;  ///< file name -> reply; other names get a 404
  explicit WeightsServer(Files files) : files_(std::move(files)) {
    server_.Get(R"(/(.+))", [this](const httplib::Request& req, httplib::Response& res) { serve(req, res); });
    port_ = server_.bind_to_any_port("127.0.0.1");
    if (port_ <= 0) throw std::runtime_error("cannot bind a loopback port for the weights server");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    // stop() before the accept loop runs would leave it running for ever.
    while (!server_.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~WeightsServer() { stop(); }
  WeightsServer(const WeightsServer&) = delete;
  WeightsServer& operator=(const WeightsServer&) = delete;

  /// "http://127.0.0.1:PORT/"
  std::string base_url() const { return fmt::format("http://127.0.0.1:{}/", port_); }
  /// Requests received for `name` so far.
  int requests(const std::string& name) {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_[name];
  }
  /// Closes the port: later connections are refused, as on a machine without network.
  void stop() {
    stopping_ = true;
    if (thread_.joinable()) {
      server_.stop();
      thread_.join();
    }
  }

 private:
  void serve(const httplib::Request& req, httplib::Response& res) {
    const std::string name = req.matches[1];
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++requests_[name];
    }
    auto it = files_.find(name);
    if (it == files_.end()) {
      res.status = 404;
      res.set_content("no such file", "text/plain");
      return;
    }
    const WeightsReply& reply = it->second;
    if (reply.kind == WeightsReply::Kind::kWhole) {
      res.set_content(reply.body, "application/octet-stream");
      return;
    }
    // Content-Length announces the whole file; the provider then stops early and httplib closes the
    // connection, which a client sees as a transfer cut off mid-body.
    const std::string* body = &reply.body;
    const bool stall = reply.kind == WeightsReply::Kind::kStall;
    res.set_content_provider(
        body->size(), "application/octet-stream",
        [this, body, stall](size_t offset, size_t length, httplib::DataSink& sink) {
          if (offset >= body->size() / 2) return false;
          if (stall && offset > 0) {
            const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
            while (!stopping_ && std::chrono::steady_clock::now() < until)
              std::this_thread::sleep_for(std::chrono::milliseconds(20));
            return false;
          }
          const size_t n = std::min<size_t>({length, 64 * 1024, body->size() / 2 - offset});
          sink.write(body->data() + offset, stall ? std::min<size_t>(n, 256) : n);
          return true;
        });
  }

  Files files_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::mutex mu_;
  std::map<std::string, int> requests_;
};

/// Runs gen_published_weights.py for `archs` into `dir`; returns the file names (ARCH-<sha256[:8]>.pth), or
/// an empty list when it fails (`output` then says why).
inline std::vector<std::string> generate_published_like(const std::string& python, const fs::path& dir,
                                                        const std::vector<std::string>& archs,
                                                        std::string* output = nullptr) {
  const fs::path list = dir / "names.txt";
  std::string cmd = fmt::format("{} '{}/tests/unit/model/gen_published_weights.py' '{}'", python,
                                VIGIL_SOURCE_DIR, dir.string());
  for (const auto& a : archs) cmd += " " + a;
  auto [code, out] =
      run_shell(fmt::format("{{ {} > '{}'; }}", cmd, list.string()));  // run_shell keeps stderr
  if (output != nullptr) *output = out;
  std::vector<std::string> names;
  if (code != 0) return names;
  std::ifstream in(list);
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) names.push_back(line);
  }
  if (names.size() != archs.size()) names.clear();
  return names;
}

/// Sets an environment variable for the life of the object, restoring the old value (or its absence) after.
class ScopedEnv {
 public:
  ScopedEnv(std::string name, const std::string& value) : name_(std::move(name)) {
    if (const char* old = std::getenv(name_.c_str())) old_ = old, had_ = true;
    if (value.empty()) {
      unsetenv(name_.c_str());
    } else {
      setenv(name_.c_str(), value.c_str(), 1);
    }
  }
  ~ScopedEnv() {
    if (had_) {
      setenv(name_.c_str(), old_.c_str(), 1);
    } else {
      unsetenv(name_.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_, old_;
  bool had_ = false;
};

}  // namespace vigil::testing

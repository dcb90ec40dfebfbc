// Two `vigil serve` replicas behind a real nginx running the shipped deploy/nginx/nginx.conf (only its
// upstream file and port are the test's). They share one workspace's registry folder and one store (the
// workspace's SQLite file, or a real PostgreSQL cluster through VIGIL_STORE, as in deploy/compose.yaml): an
// alias moved in the middle of a load test loses no request and reaches both replicas; killing a replica
// mid-load loses at most the requests it had in flight; request ids and vigil's own error answers pass
// through nginx.

#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>

#include "../pg_server.h"
#include "serve_util.h"
#include "vigil/store/store.h"

namespace {

using json = nlohmann::json;
using vigil::testing::ServerProcess;
using vigil::testing::TempDir;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

int free_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

std::string find_nginx() {
  for (const char* p : {"/usr/sbin/nginx", "/usr/bin/nginx"})
    if (fs::exists(p)) return p;
  return "";
}

/// nginx in the foreground with deploy/nginx/nginx.conf, its upstream file listing `ports`, on a free port.
class Nginx {
 public:
  Nginx(const std::string& binary, const fs::path& dir, const std::vector<int>& ports) : dir_(dir) {
    fs::create_directories(dir / "logs");
    std::string conf = vigil::read_file(fs::path(VIGIL_SOURCE_DIR) / "deploy/nginx/nginx.conf");
    port_ = free_port();
    const std::string listen = "listen 8080;";
    const auto at = conf.find(listen);
    if (at == std::string::npos) throw std::runtime_error("deploy/nginx/nginx.conf has no 'listen 8080;'");
    conf.replace(at, listen.size(), fmt::format("listen 127.0.0.1:{};", port_));
    vigil::write_file_atomic(dir / "nginx.conf", conf);
    std::string upstream = "upstream vigil {\n  least_conn;\n";
    for (int p : ports) upstream += fmt::format("  server 127.0.0.1:{} max_fails=1 fail_timeout=10s;\n", p);
    upstream += "  keepalive 32;\n}\n";
    vigil::write_file_atomic(dir / "vigil-upstream.conf", upstream);
    const std::string cmd =
        fmt::format("exec '{}' -p '{}' -c '{}' -e stderr -g 'daemon off; pid {};' > '{}' 2>&1 < /dev/null",
                    binary, dir.string(), (dir / "nginx.conf").string(), (dir / "nginx.pid").string(),
                    (dir / "nginx.log").string());
    pid_ = fork();
    if (pid_ == 0) {
      execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    const auto deadline = Clock::now() + std::chrono::seconds(30);
    while (Clock::now() < deadline) {
      httplib::Client c("127.0.0.1", port_);
      if (c.Get("/nginx-probe")) return;  // any answer: nginx is listening
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    port_ = -1;
  }
  ~Nginx() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }
  int port() const { return port_; }
  std::string log() const { return vigil::read_file(dir_ / "nginx.log"); }

 private:
  fs::path dir_;
  pid_t pid_ = -1;
  int port_ = -1;
};

/// Requests through nginx from `threads` clients until stop() (or `max_requests`): every outcome counted.
class Load {
 public:
  Load(int port, std::string image, int threads, int max_requests) : image_(std::move(image)) {
    for (int t = 0; t < threads; ++t)
      workers_.emplace_back([this, port, max_requests] {
        httplib::Client c("127.0.0.1", port);
        c.set_read_timeout(120, 0);
        while (!stop_ && sent_.fetch_add(1) < max_requests) {
          auto r = c.Post("/v1/predict", image_, "image/jpeg");
          std::lock_guard lock(mutex_);
          if (r && r->status == 200) {
            ++ok_;
            versions_.push_back(json::parse(r->body)["model"]["version"].get<std::string>());
          } else {
            failures_.push_back(r ? fmt::format("HTTP {}: {}", r->status, r->body.substr(0, 200))
                                  : fmt::format("no answer ({})", httplib::to_string(r.error())));
          }
        }
      });
  }
  ~Load() { stop(); }
  void stop() {
    stop_ = true;
    for (auto& w : workers_)
      if (w.joinable()) w.join();
  }
  int answered() {
    std::lock_guard lock(mutex_);
    return ok_ + static_cast<int>(failures_.size());
  }
  int ok() const { return ok_; }
  const std::vector<std::string>& failures() const { return failures_; }
  const std::vector<std::string>& versions() const { return versions_; }

 private:
  std::string image_;
  std::atomic<bool> stop_{false};
  std::atomic<int> sent_{0};
  std::mutex mutex_;
  int ok_ = 0;
  std::vector<std::string> failures_, versions_;
  std::vector<std::thread> workers_;
};

std::string served_version(int port) {
  httplib::Client c("127.0.0.1", port);
  auto r = c.Get("/v1/models");
  if (!r || r->status != 200) return "";
  return json::parse(r->body)["models"][0]["version"].get<std::string>();
}

class ServeReplicas : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    nginx_ = find_nginx();
    if (nginx_.empty()) GTEST_SKIP() << "nginx is not installed (scripts/install-deps.sh installs it)";
    if (GetParam() == "postgresql") {
      std::string why;
      bool absent = false;
      auto* pg = vigil::testing::PgServer::get(why, absent);
      if (absent) GTEST_SKIP() << why;
      ASSERT_NE(pg, nullptr) << why;
      // The replicas and this test's Store objects all read it (flags would win; there are none).
      setenv("VIGIL_STORE", pg->create_database().c_str(), 1);
    }
    ws_ = tmp_ / "ws";
    vigil::testing::seed_masks_registry(tmp_.path(), ws_, 30);
    vigil::testing::write_image(tmp_ / "face.jpg", 160, 160, 5);
    image_ = vigil::read_file(tmp_ / "face.jpg");
  }
  void TearDown() override { unsetenv("VIGIL_STORE"); }

  /// Two replicas and nginx in front of them.
  struct Cluster {
    std::unique_ptr<ServerProcess> a, b;
    std::unique_ptr<Nginx> nginx;
  };
  void start_cluster(Cluster& c, const std::string& extra = "") {
    c.a = replica("a", extra);
    c.b = replica("b", extra);
    ASSERT_TRUE(c.a->running()) << c.a->log();
    ASSERT_TRUE(c.b->running()) << c.b->log();
    c.nginx = std::make_unique<Nginx>(nginx_, tmp_ / "nginx", std::vector<int>{c.a->port(), c.b->port()});
    ASSERT_GT(c.nginx->port(), 0) << c.nginx->log();
  }
  std::unique_ptr<ServerProcess> replica(const std::string& name, const std::string& extra = "") {
    return std::make_unique<ServerProcess>(
        "--model masks@production --follow-alias-s 1 --instances 1 --threads-per-instance 1 --http-threads "
        "4 " +
            extra,
        tmp_ / name, "serve", ws_);
  }

  TempDir tmp_;
  fs::path ws_;
  std::string nginx_, image_;
};

TEST_P(ServeReplicas, AnAliasMoveUnderLoadLosesNoRequestAndReachesEveryReplica) {
  Cluster cluster;
  ASSERT_NO_FATAL_FAILURE(start_cluster(cluster));
  auto& a = cluster.a;
  auto& b = cluster.b;
  Nginx& nginx = *cluster.nginx;

  // Request ids pass through both ways; vigil's own refusals arrive as vigil wrote them.
  httplib::Client c("127.0.0.1", nginx.port());
  c.set_read_timeout(60, 0);
  auto given = c.Post("/v1/predict", {{"X-Request-Id", "replica-test-0001"}}, image_, "image/jpeg");
  ASSERT_TRUE(given);
  EXPECT_EQ(given->status, 200) << given->body;
  EXPECT_EQ(given->get_header_value("X-Request-Id"), "replica-test-0001");
  EXPECT_EQ(json::parse(given->body)["request_id"], "replica-test-0001");
  auto fresh = c.Post("/v1/predict", image_, "image/jpeg");
  ASSERT_TRUE(fresh);
  EXPECT_EQ(fresh->get_header_value("X-Request-Id").size(), 32u) << "nginx's $request_id, 32 hex digits";
  auto bad = c.Post("/v1/predict", std::string("not an image"), "image/jpeg");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 415);  // vigil's answer to a body that is not an image
  EXPECT_TRUE(json::parse(bad->body, nullptr, false).contains("code")) << bad->body;

  Load load(nginx.port(), image_, 4, 100000);
  while (load.answered() < 40 && load.failures().empty())
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  vigil::store::Store{vigil::Workspace(ws_)}.set_alias("masks", "production", 2);
  const auto moved = Clock::now();
  double both_s = -1;
  while (Clock::now() - moved < std::chrono::seconds(60)) {
    if (served_version(a->port()) == "2" && served_version(b->port()) == "2") {
      both_s = std::chrono::duration<double>(Clock::now() - moved).count();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  const int at_switch = load.answered();
  while (load.answered() < at_switch + 40) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  load.stop();

  ASSERT_GE(both_s, 0) << "both replicas should serve version 2 within 60 s of the alias move\n"
                       << a->log() << b->log();
  std::printf(
      "alias move -> both replicas on version 2 in %.2f s (follow interval 1 s); %d requests, 0 failed\n",
      both_s, load.ok());
  EXPECT_TRUE(load.failures().empty()) << load.failures().size() << " failed, first: " << load.failures()[0];
  // Both versions answered during the test, and the last answers are the new version's.
  const auto& v = load.versions();
  ASSERT_GE(v.size(), 80u);
  EXPECT_EQ(v.front(), "1");
  EXPECT_EQ(v.back(), "2");
  EXPECT_TRUE(std::all_of(v.end() - 8, v.end(), [](const std::string& s) { return s == "2"; }));

  // /v1/stats?scope=all: every replica's answers from the shared prediction log; the default is one
  // replica's.
  auto stats = [](int port, const std::string& query) {
    httplib::Client c("127.0.0.1", port);
    auto r = c.Get("/v1/stats" + query);
    return r && r->status == 200 ? json::parse(r->body) : json();
  };
  const int total = load.ok() + 2;  // and the two requests before the load
  json all_a, all_b;
  for (int i = 0; i < 100; ++i) {  // the other replica's writer may still hold its last rows
    all_a = stats(a->port(), "?scope=all");
    all_b = stats(b->port(), "?scope=all");
    if (all_a.value("predictions", 0) >= total && all_b.value("predictions", 0) >= total) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(all_a.value("predictions", 0), total) << all_a.dump();
  EXPECT_EQ(all_b.value("predictions", 0), total) << all_b.dump();
  EXPECT_EQ(all_a["scope"], "all");
  const int own_a = stats(a->port(), "").value("predictions", 0),
            own_b = stats(b->port(), "").value("predictions", 0);
  EXPECT_GT(own_a, 0);
  EXPECT_GT(own_b, 0);  // least_conn spread the load
  EXPECT_EQ(own_a + own_b, total);
  httplib::Client direct("127.0.0.1", a->port());
  auto bad_scope = direct.Get("/v1/stats?scope=cluster");
  ASSERT_TRUE(bad_scope);
  EXPECT_EQ(bad_scope->status, 400);
}

TEST_P(ServeReplicas, KillingAReplicaLosesOnlyItsInFlightRequests) {
  Cluster cluster;
  ASSERT_NO_FATAL_FAILURE(start_cluster(cluster));
  auto& a = cluster.a;
  auto& b = cluster.b;
  Nginx& nginx = *cluster.nginx;

  constexpr int kClients = 4;
  Load load(nginx.port(), image_, kClients, 100000);
  while (load.answered() < 60) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  b->signal(SIGKILL);
  EXPECT_GE(b->wait_exit(30), 0);
  const int at_kill = load.answered();
  while (load.answered() < at_kill + 120) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  load.stop();

  std::printf("replica killed under load: %d answered, %zu failed (at most %d were in flight)\n",
              load.answered(), load.failures().size(), kClients);
  EXPECT_LE(load.failures().size(), static_cast<size_t>(kClients))
      << "first failure: " << (load.failures().empty() ? "" : load.failures()[0]);
  for (const auto& f : load.failures()) EXPECT_NE(f.find("HTTP 502"), std::string::npos) << f;
  EXPECT_TRUE(a->running());
  // The survivor answers everything afterwards.
  httplib::Client c("127.0.0.1", nginx.port());
  for (int i = 0; i < 10; ++i) {
    auto r = c.Post("/v1/predict", image_, "image/jpeg");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200) << r->body;
  }
}

/// Overload is the replica's answer, not nginx's: a 503 with Retry-After reaches the client as vigil wrote
/// it, and nginx does not hand the refused request to the other replica (which would refuse it too, or worse,
/// take a request its client already gave up on).
TEST_P(ServeReplicas, OverloadReachesTheClientWithRetryAfterAndIsNotRetried) {
  Cluster cluster;
  ASSERT_NO_FATAL_FAILURE(start_cluster(cluster, "--queue-capacity 4"));
  httplib::Client c("127.0.0.1", cluster.nginx->port());
  c.set_read_timeout(60, 0);
  httplib::MultipartFormDataItems parts;
  for (int i = 0; i < 5; ++i) parts.push_back({"files", image_, fmt::format("{}.jpg", i), "image/jpeg"});
  auto full = c.Post("/v1/predict/batch", parts);  // five images cannot fit a queue of four
  ASSERT_TRUE(full);
  EXPECT_EQ(full->status, 503) << full->body;
  EXPECT_EQ(json::parse(full->body, nullptr, false).value("code", ""), "overloaded") << full->body;
  EXPECT_EQ(full->get_header_value("Retry-After"), "1");
  int refused = 0;
  for (const auto* r : {cluster.a.get(), cluster.b.get()}) {
    httplib::Client direct("127.0.0.1", r->port());
    const std::string metrics = direct.Get("/metrics")->body;
    if (metrics.find("vigil_rejected_total{reason=\"queue_full\"} 1") != std::string::npos) ++refused;
  }
  EXPECT_EQ(refused, 1) << "exactly one replica saw the request";
}

INSTANTIATE_TEST_SUITE_P(Stores, ServeReplicas, ::testing::Values("sqlite", "postgresql"),
                         [](const auto& info) { return info.param; });

}  // namespace

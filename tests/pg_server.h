#pragma once
// A throwaway PostgreSQL cluster for tests, one per test binary: initdb into a temporary folder, started on
// first use with only a unix socket in that folder (no TCP port to collide with), a fresh database per
// test, stopped (pg_ctl stop -m fast) when the binary's tests end. Needs Debian's postgresql package;
// PgServer::get() says why when it is absent. initdb refuses to run as root, so as root the server runs as
// the `postgres` user (the package creates it).

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "tests_util.h"

namespace vigil::testing {

class PgServer {
 public:
  /// The binary's cluster, started on first call; nullptr when it cannot be had, with the reason in `why`
  /// and `absent` true when PostgreSQL simply is not installed (skip) rather than failing to start (fail).
  static PgServer* get(std::string& why, bool& absent) {
    auto& s = slot();
    if (!s.server && s.why.empty()) start(s);
    why = s.why;
    absent = s.absent;
    return s.server.get();
  }
  /// Stops the cluster (the global environment does this once all tests ran).
  static void stop() { slot().server.reset(); }

  ~PgServer() { as_owner(bin_ / "pg_ctl", "-D " + data().string() + " -m fast -w stop"); }

  /// Creates an empty database and returns its libpq URL.
  std::string create_database() {
    const std::string name = "vigil_test_" + std::to_string(++databases_);
    const auto [rc, out] =
        run_shell(fmt_cmd(bin_ / "createdb", "-h " + socket_dir().string() + " -p 5432 -U vigil " + name));
    if (rc != 0)
      ADD_FAILURE() << "createdb " << name << " failed: " << out << "\nserver log:\n"
                    << run_shell("cat " + (dir_ / "server.log").string()).second;
    return url(name);
  }
  std::string url(const std::string& database) const {
    return "postgresql://vigil@/" + database + "?host=" + socket_dir().string() + "&port=5432";
  }
  /// Runs SQL through psql in the database at `url`; exit code and output (rows as a|b lines).
  std::pair<int, std::string> psql(const std::string& url, const std::string& sql) const {
    return run_shell(fmt_cmd(bin_ / "psql", quote(url) + " -v ON_ERROR_STOP=1 -Atqc " + quote(sql)));
  }

 private:
  struct Slot {
    std::unique_ptr<PgServer> server;
    std::string why;
    bool absent = false;
  };
  static Slot& slot() {
    static Slot s;
    return s;
  }

  static std::filesystem::path find_bin() {
    std::filesystem::path best;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator("/usr/lib/postgresql", ec)) {
      const auto bin = e.path() / "bin";
      if (std::filesystem::exists(bin / "initdb") && std::filesystem::exists(bin / "pg_ctl") &&
          (best.empty() || bin.string() > best.string()))
        best = bin;
    }
    return best;
  }

  static void start(Slot& s) {
    auto bin = find_bin();
    if (bin.empty()) {
      s.absent = true;
      s.why =
          "PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb) absent: apt-get install postgresql";
      return;
    }
    if (geteuid() == 0 && run_shell("id -u postgres").first != 0) {
      s.absent = true;
      s.why = "running as root and there is no `postgres` user to run the test server as";
      return;
    }
    std::unique_ptr<PgServer> pg(new PgServer(std::move(bin)));
    std::filesystem::create_directories(pg->socket_dir());
    if (geteuid() == 0) run_shell("chown -R postgres " + pg->dir_.path().string());
    auto [rc, out] =
        pg->as_owner(pg->bin_ / "initdb",
                     "-D " + pg->data().string() + " -A trust -U vigil -E UTF8 --no-locale --no-sync");
    if (rc != 0) {
      s.why = "initdb failed: " + out;
      pg->started_ = false;
      return;
    }
    // The C collation orders text byte by byte, as SQLite does; fsync is pointless for a throwaway cluster.
    write_text(pg->data() / "conf.d.conf", "listen_addresses = ''\nport = 5432\nunix_socket_directories = '" +
                                               pg->socket_dir().string() + "'\nfsync = off\n");
    std::ofstream(pg->data() / "postgresql.conf", std::ios::app) << "\ninclude 'conf.d.conf'\n";
    if (geteuid() == 0) run_shell("chown -R postgres " + pg->data().string());
    std::tie(rc, out) =
        pg->as_owner(pg->bin_ / "pg_ctl",
                     "-D " + pg->data().string() + " -l " + (pg->dir_ / "server.log").string() + " -w start");
    if (rc != 0) {
      s.why = "pg_ctl start failed: " + out;
      pg->started_ = false;
      return;
    }
    s.server = std::move(pg);
  }

  explicit PgServer(std::filesystem::path bin) : bin_(std::move(bin)) {}

  std::filesystem::path data() const { return dir_ / "data"; }
  std::filesystem::path socket_dir() const { return dir_ / "sock"; }

  static std::string quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
  }
  static std::string fmt_cmd(const std::filesystem::path& exe, const std::string& args) {
    return exe.string() + " " + args;
  }
  /// Runs a server program as the cluster's owner (postgres when we are root).
  std::pair<int, std::string> as_owner(const std::filesystem::path& exe, const std::string& args) const {
    if (!started_) return {0, ""};
    const std::string cmd = fmt_cmd(exe, args);
    return run_shell(geteuid() == 0 ? "runuser -u postgres -- " + cmd : cmd);
  }

  std::filesystem::path bin_;
  TempDir dir_;
  bool started_ = true;  ///< false once start failed: nothing to stop
  int databases_ = 0;
};

/// Stops the cluster after the last test of the binary.
class PgEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { PgServer::stop(); }
};
inline ::testing::Environment* const kPgEnvironment = ::testing::AddGlobalTestEnvironment(new PgEnvironment);

}  // namespace vigil::testing

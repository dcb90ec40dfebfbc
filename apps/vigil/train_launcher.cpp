#include "train_launcher.h"

#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>

#include "vigil/core/error.h"
#include "vigil/core/interrupt.h"
#include "vigil/core/strings.h"

extern char** environ;

namespace vigil::cli {
namespace {

/// Ranks still running this long after being asked to stop (SIGTERM, which a rank treats as Ctrl-C; its next
/// collective fails anyway, its peer being gone) are killed, so a stuck rank cannot keep the command alive.
constexpr auto kStopGrace = std::chrono::seconds(10);

const std::vector<std::string> kRankVariables = {"RANK",        "WORLD_SIZE",       "LOCAL_RANK",
                                                 "MASTER_ADDR", "LOCAL_WORLD_SIZE", "MASTER_PORT"};

/// A port free on loopback now (torchrun's way; another process could take it before rank 0 binds it, in
/// which case rank 0 fails naming the address).
int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw IoError(fmt::format("cannot open a socket: {}", std::strerror(errno)));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0;
  const int err = errno;
  ::close(fd);
  if (!ok) throw IoError(fmt::format("cannot find a free loopback port: {}", std::strerror(err)));
  return ntohs(addr.sin_port);
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  out.reserve(v.size() + 1);
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

/// The environment of rank `rank`: ours without any rank variables, plus torchrun's for this run.
std::vector<std::string> rank_environment(int rank, int nproc, int port) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    const std::string name = entry.substr(0, entry.find('='));
    if (std::find(kRankVariables.begin(), kRankVariables.end(), name) == kRankVariables.end())
      env.push_back(entry);
  }
  env.push_back(fmt::format("RANK={}", rank));
  env.push_back(fmt::format("LOCAL_RANK={}", rank));
  env.push_back(fmt::format("WORLD_SIZE={}", nproc));
  env.push_back(fmt::format("LOCAL_WORLD_SIZE={}", nproc));
  env.push_back("MASTER_ADDR=127.0.0.1");
  env.push_back(fmt::format("MASTER_PORT={}", port));
  return env;
}

std::string describe(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    return fmt::format("was killed by signal {} ({})", sig, strsignal(sig));
  }
  return fmt::format("exited with status {}", WEXITSTATUS(status));
}

struct Rank {
  pid_t pid = -1;
  bool running = false;
  int status = 0;
  bool stopped = false;  ///< still running when stop_ranks asked it to stop: whatever it did then is ours

  bool ok() const {
    return WIFEXITED(status) &&
           (WEXITSTATUS(status) == 0 || WEXITSTATUS(status) == static_cast<int>(ExitCode::kInterrupted));
  }
};

/// Asks the running ranks to stop, then kills those still there after kStopGrace.
void stop_ranks(std::vector<Rank>& ranks) {
  // Ranks that ended by themselves already (a rank killed at the same time as its peer failed) keep their
  // own status: they are reported, not counted as stopped.
  for (auto& r : ranks) {
    if (r.running && ::waitpid(r.pid, &r.status, WNOHANG) == r.pid) r.running = false;
  }
  for (auto& r : ranks) {
    if (!r.running) continue;
    r.stopped = true;
    ::kill(r.pid, SIGTERM);
  }
  const auto deadline = std::chrono::steady_clock::now() + kStopGrace;
  for (auto& r : ranks) {
    while (r.running) {
      int status = 0;
      const pid_t got = ::waitpid(r.pid, &status, WNOHANG);
      if (got == r.pid) {
        r.running = false;
        r.status = status;
      } else if (std::chrono::steady_clock::now() >= deadline) {
        ::kill(r.pid, SIGKILL);
        ::waitpid(r.pid, &r.status, 0);
        r.running = false;
      } else {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  }
}

/// After a rank failed: stops the others and reports every rank that failed by itself (a rank whose peer died
/// fails too, so the one that died is named beside it). A death by signal is an Unavailable; otherwise the
/// first failed rank's exit status is returned.
int fail(std::vector<Rank>& ranks) {
  stop_ranks(ranks);
  std::vector<std::string> failed;
  int code = 0;
  bool signalled = false;
  for (size_t r = 0; r < ranks.size(); ++r) {
    const Rank& k = ranks[r];
    if (k.ok() || k.stopped) continue;
    failed.push_back(fmt::format("rank {} of {} (pid {}) {}", r, ranks.size(), k.pid, describe(k.status)));
    signalled = signalled || WIFSIGNALED(k.status);
    if (code == 0 && WIFEXITED(k.status)) code = WEXITSTATUS(k.status);
  }
  const std::string what =
      fmt::format("data-parallel training failed: {}; the other ranks were stopped", join(failed, "; "));
  if (signalled || code == 0) throw Unavailable(what);
  spdlog::error("{}", what);
  return code;
}

}  // namespace

std::vector<std::string> command_line_without_nproc() {
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  const std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::string> args;
  for (size_t start = 0; start < raw.size();) {
    const size_t end = raw.find('\0', start);
    args.push_back(raw.substr(start, end == std::string::npos ? std::string::npos : end - start));
    if (end == std::string::npos) break;
    start = end + 1;
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--nproc") {
      ++i;  // and its value
    } else if (args[i].rfind("--nproc=", 0) != 0) {
      out.push_back(args[i]);
    }
  }
  return out;
}

int launch_local_ranks(int nproc, const std::vector<std::string>& args) {
  VIGIL_CHECK(nproc >= 1, "expected --nproc >= 1, got {}", nproc);
  VIGIL_CHECK(!args.empty(), "expected a command line to start the ranks with, got none");
  const int port = free_port();
  spdlog::info("starting {} ranks on this machine (rendezvous 127.0.0.1:{})", nproc, port);
  std::vector<std::string> argv = args;
  argv[0] = "vigil";
  auto arg_ptrs = c_strings(argv);
  std::vector<std::vector<std::string>> envs;
  std::vector<std::vector<char*>> env_ptrs;
  for (int r = 0; r < nproc; ++r) envs.push_back(rank_environment(r, nproc, port));
  for (auto& e : envs) env_ptrs.push_back(c_strings(e));  // built before fork: only exec-safe calls after

  std::vector<Rank> ranks(static_cast<size_t>(nproc));
  std::fflush(nullptr);
  for (int r = 0; r < nproc; ++r) {
    const pid_t pid = ::fork();
    if (pid < 0) {
      stop_ranks(ranks);
      throw IoError(fmt::format("cannot start rank {}: {}", r, std::strerror(errno)));
    }
    if (pid == 0) {
      ::execve("/proc/self/exe", arg_ptrs.data(), env_ptrs[static_cast<size_t>(r)].data());
      dprintf(2, "vigil: cannot start rank %d: %s\n", r, std::strerror(errno));
      _exit(127);
    }
    ranks[static_cast<size_t>(r)] = Rank{pid, true, 0};
  }

  bool forwarded = false;
  for (size_t running = ranks.size(); running > 0;) {
    if (interrupt_requested() && !forwarded) {
      // Ctrl-C in a terminal reaches every rank already; a signal sent to this process alone must be passed
      // on. Each rank stops at the same step (the all-reduce carries the request) and rank 0 saves it.
      for (const auto& r : ranks) {
        if (r.running) ::kill(r.pid, SIGINT);
      }
      forwarded = true;
    }
    int status = 0;
    const pid_t pid = ::waitpid(-1, &status, WNOHANG);
    if (pid <= 0) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
      continue;
    }
    for (auto& r : ranks) {
      if (r.pid != pid) continue;
      r.running = false;
      r.status = status;
      --running;
      if (!r.ok()) return fail(ranks);
    }
  }
  for (const auto& r : ranks) {
    if (WEXITSTATUS(r.status) != 0) return WEXITSTATUS(r.status);  // interrupted
  }
  return 0;
}

}  // namespace vigil::cli

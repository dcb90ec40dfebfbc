// fork/exec helpers for stage commands and git.

#include "vigil/pipeline/process.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <thread>

#include "vigil/core/error.h"
#include "vigil/core/interrupt.h"

extern char** environ;

namespace vigil::pipeline {

namespace {

std::vector<std::string> child_environment(const ShellCommand& cmd) {
  std::map<std::string, std::string> env;
  for (char** e = environ; e && *e; ++e) {
    std::string kv(*e);
    const auto eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : cmd.env) env[k] = v;
  if (!cmd.prepend_path.empty()) {
    const auto it = env.find("PATH");
    const std::string rest = it == env.end() ? "/usr/local/bin:/usr/bin:/bin" : it->second;
    env["PATH"] = cmd.prepend_path.string() + (rest.empty() ? "" : ":" + rest);
  }
  std::vector<std::string> out;
  for (const auto& [k, v] : env) out.push_back(k + "=" + v);
  return out;
}

std::vector<char*> c_strings(std::vector<std::string>& v) {
  std::vector<char*> out;
  for (auto& s : v) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

// Waits for `pid`, forwarding one SIGTERM when vigil is asked to stop meanwhile. Polls rather than blocking
// in waitpid: a Ctrl-C that lands before the wait starts would not interrupt a blocking waitpid, and the
// command would run to its end.
int wait_child(pid_t pid) {
  bool forwarded = false;
  while (true) {
    int status = 0;
    const pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) return decode_status(status);
    if (r < 0 && errno != EINTR)
      throw IoError(fmt::format("waiting for a child process failed: {}", std::strerror(errno)));
    if (interrupt_requested() && !forwarded) {
      kill(pid, SIGTERM);
      forwarded = true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace

int run_shell(const ShellCommand& cmd) {
  std::vector<std::string> env = child_environment(cmd);
  std::vector<std::string> argv = {"/bin/sh", "-c", cmd.command};
  auto envp = c_strings(env);
  auto args = c_strings(argv);
  const std::string cwd = cmd.cwd.string();
  std::fflush(nullptr);  // our buffered output must come before the child's
  const pid_t pid = fork();
  if (pid < 0) throw IoError(fmt::format("cannot start '{}': {}", cmd.command, std::strerror(errno)));
  if (pid == 0) {
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) {
      dprintf(2, "vigil: cannot enter %s: %s\n", cwd.c_str(), std::strerror(errno));
      _exit(127);
    }
    execve("/bin/sh", args.data(), envp.data());
    dprintf(2, "vigil: cannot run /bin/sh: %s\n", std::strerror(errno));
    _exit(127);
  }
  return wait_child(pid);
}

std::pair<int, std::string> run_capture(const std::vector<std::string>& argv_in,
                                        const std::filesystem::path& cwd) {
  int fds[2];
  if (pipe(fds) != 0) throw IoError(fmt::format("cannot create a pipe: {}", std::strerror(errno)));
  std::vector<std::string> argv = argv_in;
  auto args = c_strings(argv);
  const std::string dir = cwd.string();
  std::fflush(nullptr);
  const pid_t pid = fork();
  if (pid < 0) throw IoError(fmt::format("cannot start '{}': {}", argv_in.front(), std::strerror(errno)));
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    const int devnull = open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      dup2(devnull, 0);
      dup2(devnull, 2);
    }
    if (!dir.empty() && chdir(dir.c_str()) != 0) _exit(127);
    execvp(args[0], args.data());
    _exit(127);
  }
  close(fds[1]);
  std::string out;
  char buf[65536];
  while (true) {
    const ssize_t n = read(fds[0], buf, sizeof(buf));
    if (n > 0) {
      out.append(buf, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  close(fds[0]);
  return {wait_child(pid), out};
}

std::filesystem::path self_exe_dir() {
  std::error_code ec;
  auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::filesystem::path() : exe.parent_path();
}

}  // namespace vigil::pipeline

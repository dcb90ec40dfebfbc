#pragma once
// A real `vigil serve` child process on a free port, and model files to serve (fresh seeded weights saved
// with vigil's own model-file writer), for the serving tests.

#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "tests_util.h"
#include "vigil/core/fs.h"
#include "vigil/model/model_file.h"
#include "vigil/nn/zoo.h"
#include "vigil/store/store.h"

namespace vigil::testing {

/// Writes a model file of `arch` with fresh weights from `seed`.
inline fs::path make_model_file(const fs::path& file, const std::string& arch,
                                const std::vector<std::string>& classes, uint64_t seed) {
  torch::manual_seed(seed);
  const model::ModelInfo info = model::default_model_info(arch, classes);
  nn::ModelArgs args;
  args.num_classes = info.num_classes();
  auto module = nn::make_model(arch, args);
  model::save_model(file, info, *module);
  return file;
}

/// A registry in workspace `ws` with two versions of `masks` (mask_small_cnn with different weights, seeds
/// seed + 1 and seed + 2, written to dir/m1.ckpt and dir/m2.ckpt) and production -> 1.
inline void seed_masks_registry(const fs::path& dir, const fs::path& ws, uint64_t seed) {
  store::Store s{Workspace(ws)};
  for (int k = 1; k <= 2; ++k) {
    const auto file = make_model_file(dir / fmt::format("m{}.ckpt", k), "mask_small_cnn",
                                      {"with_mask", "without_mask"}, seed + static_cast<uint64_t>(k));
    store::NewModelVersion v;
    v.name = "masks";
    v.arch = "mask_small_cnn";
    v.task = "classification";
    s.register_model_file(v, file);
  }
  s.set_alias("masks", "production", 1);
}

/// `vigil serve ARGS --port 0` (or another serving `command`, e.g. `ui`) in the background, in `workspace`
/// (default: DIR/ws); stops it (SIGTERM, then SIGKILL) when destroyed.
class ServerProcess {
 public:
  ServerProcess(const std::string& args, const fs::path& dir, const std::string& command = "serve",
                const fs::path& workspace = {})
      : dir_(dir) {
    fs::create_directories(dir);
    const fs::path port_file = dir / "port";
    fs::remove(port_file);
    log_ = dir / "server.log";
    const std::string cmd =
        fmt::format("exec '{}' --workspace '{}' {} --port 0 --port-file '{}' {} > '{}' 2>&1 < /dev/null",
                    VIGIL_BINARY, (workspace.empty() ? dir / "ws" : workspace).string(), command,
                    port_file.string(), args, log_.string());
    pid_ = fork();
    if (pid_ == 0) {
      execl("/bin/sh", "sh", "-c", cmd.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    while (std::chrono::steady_clock::now() < deadline) {
      if (fs::exists(port_file) && fs::file_size(port_file) > 0) {
        port_ = std::stoi(read_file(port_file));
        return;
      }
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      if (wait_exit(30) < 0) {
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
      }
    }
  }
  bool running() const { return pid_ > 0 && port_ > 0; }
  int port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string log() const { return fs::exists(log_) ? read_file(log_) : ""; }
  /// Exit code of a server that already ended, or of one stopped by signal() + wait_exit().
  int exit_code() const { return exit_code_; }
  void signal(int sig) const { kill(pid_, sig); }
  /// Waits up to `seconds` for the process to end; returns its exit code or -1.
  int wait_exit(int seconds) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (pid_ > 0 && std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        pid_ = -1;
        return exit_code_;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return pid_ > 0 ? -1 : exit_code_;
  }
  /// Resident memory of the server from /proc, in MiB.
  double rss_mib() const {
    std::ifstream in(fmt::format("/proc/{}/status", pid_));  // /proc files report size 0: stream them
    const std::string status((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const auto pos = status.find("VmRSS:");
    return pos == std::string::npos ? 0 : std::stod(status.substr(pos + 6)) / 1024;
  }

 private:
  fs::path dir_, log_;
  pid_t pid_ = -1;
  int port_ = -1;
  int exit_code_ = -1;
};

}  // namespace vigil::testing

#pragma once
/// Child processes for pipelines: stage commands through /bin/sh, and captured commands such as `git show`.

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace vigil::pipeline {

/// A shell command to run for a stage.
struct ShellCommand {
  std::string command;
  std::filesystem::path cwd;
  std::vector<std::pair<std::string, std::string>> env;  ///< set or override in the child
  std::filesystem::path prepend_path;                    ///< put first on PATH (empty: PATH unchanged)
};

/// Runs `/bin/sh -c command` in `cwd`; the child inherits stdin, stdout and stderr. Returns the exit status,
/// or 128 + signal when a signal ended it. While waiting, a Ctrl-C / SIGTERM seen by vigil (core/interrupt.h)
/// is passed on to the child as SIGTERM, so the caller can stop once it has exited. Throws IoError when the
/// process cannot be started.
int run_shell(const ShellCommand& cmd);

/// Runs `argv` (no shell) in `cwd`, capturing stdout; stderr is discarded. Returns {exit status, stdout}; an
/// executable that cannot be started gives status 127.
std::pair<int, std::string> run_capture(const std::vector<std::string>& argv,
                                        const std::filesystem::path& cwd);

/// The folder of the running executable (/proc/self/exe), so `vigil` in a stage command runs this binary.
std::filesystem::path self_exe_dir();

}  // namespace vigil::pipeline

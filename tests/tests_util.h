#pragma once
// Shared test helpers: temporary folders, the ../shared data location, and running the real vigil binary.

#include <gtest/gtest.h>

#include <filesystem>
#include <optional>
#include <string>

namespace vigil::testing {

namespace fs = std::filesystem;

/// A fresh directory removed when the object dies.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& p) const { return path_ / p; }

 private:
  fs::path path_;
};

/// ../shared/datasets/<name> when present (VIGIL_SHARED_DIR or <source>/../shared), else nullopt.
std::optional<fs::path> shared_dataset(const std::string& name);

/// Debian's python3 with torchvision (the reference for parity tests), or nullopt when it is missing.
/// (A python3 earlier on PATH, e.g. pyenv's, may lack torch: /usr/bin/python3 is tried first.)
std::optional<std::string> reference_python();

/// Runs a command through the shell; returns its exit code and stdout+stderr.
std::pair<int, std::string> run_shell(const std::string& command);

/// Writes bytes to a file, creating parent folders.
void write_text(const fs::path& path, const std::string& content);

/// Writes a real JPEG/PNG (by extension) of the given size with some structure in it.
void write_image(const fs::path& path, int width, int height, int seed = 0);

struct CommandResult {
  int exit_code = -1;
  std::string out;  ///< stdout
  std::string err;  ///< stderr
};
/// Runs the built `vigil` binary with arguments (shell-quoted here), capturing output.
CommandResult run_vigil(const std::string& args, const fs::path& workspace);

}  // namespace vigil::testing

/// Skips the current test when python3-torchvision is absent.
#define VIGIL_REQUIRE_TORCHVISION(var)                                         \
  auto var##_opt = ::vigil::testing::reference_python();                       \
  if (!var##_opt) GTEST_SKIP() << "python3 with torchvision absent; skipping"; \
  const std::string var = *var##_opt

/// Skips the current test when a shared dataset is absent (fresh clone).
#define VIGIL_REQUIRE_SHARED(var, name)                                                 \
  auto var##_opt = ::vigil::testing::shared_dataset(name);                              \
  if (!var##_opt) GTEST_SKIP() << "../shared/datasets/" << name << " absent; skipping"; \
  const auto var = *var##_opt

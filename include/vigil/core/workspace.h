#pragma once
/// The workspace: where everything a command makes lands (dataset store, runs, registry, logs).
/// Default `./.vigil/`; `--workspace` or the VIGIL_WORKSPACE environment variable move it.

#include <filesystem>
#include <string>

namespace vigil {

class Workspace {
 public:
  /// Resolution order: explicit path (CLI) > $VIGIL_WORKSPACE > ./.vigil
  static Workspace resolve(const std::string& cli_value = "");
  explicit Workspace(std::filesystem::path root) : root_(std::move(root)) {}

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path objects_dir() const { return root_ / "store" / "objects"; }
  std::filesystem::path datasets_dir() const { return root_ / "datasets"; }
  std::filesystem::path logs_dir() const { return root_ / "logs"; }
  std::filesystem::path runs_dir() const { return root_ / "runs"; }
  /// Creates the folders; throws IoError naming the path on failure.
  void ensure() const;

 private:
  std::filesystem::path root_;
};

}  // namespace vigil

#pragma once
// Helpers of the tests that run an examples/<name> pipeline with `vigil repro` (pipeline_*_test.cpp).

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "tests_util.h"
#include "vigil/core/config.h"

namespace vigil::testing {

namespace fs = std::filesystem;

/// Stage names a repro's output says it ran, in order.
inline std::vector<std::string> ran_stages(const std::string& out) {
  std::vector<std::string> stages;
  const std::regex re("Running stage '([a-z_]+)'");
  for (auto it = std::sregex_iterator(out.begin(), out.end(), re); it != std::sregex_iterator(); ++it)
    stages.push_back((*it)[1]);
  return stages;
}

/// `vigil repro ARGS` in `project`: exit code and stdout + stderr.
inline std::pair<int, std::string> repro(const fs::path& project, const std::string& args = "") {
  return run_shell(fmt::format("cd '{}' && '{}' repro {} 2>&1", project.string(), VIGIL_BINARY, args));
}

/// Copies examples/<name>/dvc.yaml and its params.yaml into `project`, applying `overrides` ("a.b=value",
/// the value parsed as YAML) to the params: the examples point at ../../../shared from their own folder, and
/// a test runs them on data it found or made elsewhere, or with a cheaper recipe.
inline void copy_example(const std::string& name, const fs::path& project,
                         const std::vector<std::string>& overrides) {
  const fs::path example = fs::path(VIGIL_SOURCE_DIR) / "examples" / name;
  fs::create_directories(project);
  fs::copy_file(example / "dvc.yaml", project / "dvc.yaml", fs::copy_options::overwrite_existing);
  YAML::Node params = config::build_tree({(example / "params.yaml").string(), overrides, ""});
  YAML::Emitter out;
  out << params;
  write_text(project / "params.yaml", std::string(out.c_str()) + "\n");
}

}  // namespace vigil::testing

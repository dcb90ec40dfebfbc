#include "vigil/core/workspace.h"

#include <cstdlib>

#include "vigil/core/fs.h"

namespace vigil {

Workspace Workspace::resolve(const std::string& cli_value) {
  if (!cli_value.empty()) return Workspace(std::filesystem::absolute(cli_value));
  if (const char* env = std::getenv("VIGIL_WORKSPACE"); env && *env) {
    return Workspace(std::filesystem::absolute(env));
  }
  return Workspace(std::filesystem::absolute(".vigil"));
}

void Workspace::ensure() const {
  for (const auto& d : {root_, objects_dir(), datasets_dir(), logs_dir(), runs_dir()}) ensure_dir(d);
}

}  // namespace vigil

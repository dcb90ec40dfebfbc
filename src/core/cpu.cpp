#include "vigil/core/cpu.h"

#include <cstdlib>
#include <fstream>

#include "vigil/core/strings.h"

namespace vigil {

CpuInfo cpu_info() {
  CpuInfo info;
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  bool have_flags = false;
  while (std::getline(cpuinfo, line)) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    if (starts_with(line, "model name") && info.model.empty())
      info.model = std::string(trim(line.substr(colon + 1)));
    if ((starts_with(line, "flags") || starts_with(line, "Features")) && !have_flags) {
      for (auto& f : split_ws(line.substr(colon + 1))) info.flags.insert(std::move(f));
      have_flags = true;
    }
  }
  if (info.model.empty()) info.model = "unknown CPU";
  if (const char* forced = std::getenv("VIGIL_CPU_FLAGS")) {
    info.flags.clear();
    for (auto& f : split_ws(forced)) info.flags.insert(std::move(f));
    info.flags_overridden = true;
  }
  return info;
}

bool cpu_has(std::string_view flag) {
  return cpu_info().flags.count(std::string(flag)) > 0;
}

}  // namespace vigil

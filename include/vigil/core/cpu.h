#pragma once
/// What the CPU can run: its model name and instruction-set flags, as the kernel reports them.

#include <set>
#include <string>
#include <string_view>

namespace vigil {

struct CpuInfo {
  std::string model;              ///< "model name" of /proc/cpuinfo ("unknown CPU" when absent)
  std::set<std::string> flags;    ///< the "flags" (x86) or "Features" (ARM) of the first processor
  bool flags_overridden = false;  ///< true when VIGIL_CPU_FLAGS replaced them

  /// Whether bfloat16 runs at full speed: AVX512_BF16 or AMX-BF16 (oneDNN emulates it elsewhere, slower
  /// than float32). What `--precision bf16` requires (nn/precision.h).
  bool has_bf16() const { return flags.count("avx512_bf16") > 0 || flags.count("amx_bf16") > 0; }
  /// Whether 8-bit dot products run at full speed: AVX512_VNNI, AVX_VNNI or AMX-INT8 (oneDNN's int8 kernels
  /// are no faster than float32 without them). What `--precision int8` requires (nn/quantize.h).
  bool has_int8_dot() const {
    return flags.count("avx512_vnni") > 0 || flags.count("avx_vnni") > 0 || flags.count("amx_int8") > 0;
  }
};

/// Reads /proc/cpuinfo now. When VIGIL_CPU_FLAGS is set, its space-separated words replace the flags: tests
/// simulate a CPU without an instruction set that way (an empty value is a CPU with no extensions at all).
CpuInfo cpu_info();

/// Whether the CPU reports `flag` (cpu_info's flags, so VIGIL_CPU_FLAGS counts).
bool cpu_has(std::string_view flag);

}  // namespace vigil

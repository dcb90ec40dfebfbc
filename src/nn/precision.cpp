#include "vigil/nn/precision.h"

#include <ATen/Context.h>
#include <ATen/autocast_mode.h>
#include <fmt/format.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/linear.h>

#include <algorithm>

#include "vigil/core/cpu.h"
#include "vigil/core/error.h"

namespace vigil::nn {

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::kFp32;
  if (name == "bf16") return Precision::kBf16;
  if (name == "int8") return Precision::kInt8;
  throw InvalidArgument(fmt::format("expected precision fp32, bf16 or int8, got '{}'", name));
}

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::kBf16:
      return "bf16";
    case Precision::kInt8:
      return "int8";
    case Precision::kFp32:
      break;
  }
  return "fp32";
}

namespace {

/// The refusal of a precision this CPU has none of `instructions` for.
[[noreturn]] void refuse_cpu(const CpuInfo& cpu, const char* instructions, const char* precision) {
  throw InvalidArgument(fmt::format(
      "expected a CPU with the {} instructions for precision {}, got {}{} without "
      "any: use precision fp32",
      instructions, precision, cpu.model, cpu.flags_overridden ? " (flags from VIGIL_CPU_FLAGS)" : ""));
}

}  // namespace

void check_precision_supported(Precision p) {
  if (p == Precision::kFp32) return;
  const CpuInfo cpu = cpu_info();
  if (p == Precision::kBf16) {
    if (!cpu.has_bf16()) refuse_cpu(cpu, "avx512_bf16 or amx_bf16", "bf16");
    return;
  }
  const auto& engines = at::globalContext().supportedQEngines();
  VIGIL_CHECK(std::find(engines.begin(), engines.end(), at::QEngine::ONEDNN) != engines.end(),
              "expected a LibTorch built with the oneDNN quantised engine for precision int8, got one "
              "without it: use precision fp32");
  if (!cpu.has_int8_dot()) refuse_cpu(cpu, "avx512_vnni, avx_vnni or amx_int8", "int8");
}

int convert_weights_to_bf16(torch::nn::Module& root) {
  int converted = 0;
  for (const auto& module : root.modules()) {
    const bool compute = module->as<torch::nn::Conv2dImpl>() || module->as<torch::nn::Conv1dImpl>() ||
                         module->as<torch::nn::LinearImpl>();
    if (!compute) continue;
    for (auto& p : module->named_parameters(/*recurse=*/false)) {
      torch::Tensor t = p.value();
      if (!t.defined() || t.scalar_type() != torch::kFloat32) continue;
      const auto format = t.dim() == 4 && t.is_contiguous(torch::MemoryFormat::ChannelsLast)
                              ? torch::MemoryFormat::ChannelsLast
                              : torch::MemoryFormat::Contiguous;
      t.set_data(t.to(torch::kBFloat16).contiguous(format));
      ++converted;
    }
  }
  return converted;
}

PrecisionGuard::PrecisionGuard(Precision p) {
  if (p != Precision::kBf16) return;
  active_ = true;
  was_enabled_ = at::autocast::is_cpu_enabled();
  was_dtype_ = at::autocast::get_autocast_cpu_dtype();
  at::autocast::set_autocast_cpu_dtype(at::kBFloat16);
  at::autocast::set_cpu_enabled(true);
}

PrecisionGuard::~PrecisionGuard() {
  if (!active_) return;
  at::autocast::set_cpu_enabled(was_enabled_);
  at::autocast::set_autocast_cpu_dtype(was_dtype_);
  if (!was_enabled_) at::autocast::clear_cache();
}

}  // namespace vigil::nn

// `vigil doctor`: what this machine gives vigil, and what would make it slow.

#include <ATen/Parallel.h>
#include <fmt/core.h>
#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <torch/version.h>
#include <opencv2/core.hpp>

#include <chrono>
#include <fstream>
#include <set>
#include <sstream>

#include "cli.h"
#include "vigil/core/blas.h"
#include "vigil/core/cpu.h"
#include "vigil/core/strings.h"
#include "vigil/core/thread_pool.h"

namespace vigil::cli {

namespace {

/// The BLAS libraries mapped into this process after a matmul, resolved through Debian's alternatives.
std::set<std::string> loaded_blas() {
  std::set<std::string> out;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    auto pos = line.find('/');
    if (pos == std::string::npos) continue;
    std::string path = line.substr(pos);
    auto name = std::filesystem::path(path).filename().string();
    if (name.find("blas") == std::string::npos && name.find("mkl") == std::string::npos) continue;
    std::error_code ec;
    auto real = std::filesystem::canonical(path, ec);
    out.insert(ec ? path : real.string());
  }
  return out;
}

double matmul_gflops() {
  auto a = torch::rand({512, 512});
  auto b = torch::rand({512, 512});
  torch::mm(a, b);  // warm-up
  auto t0 = std::chrono::steady_clock::now();
  int reps = 0;
  double elapsed = 0;
  while (elapsed < 0.3) {
    torch::mm(a, b);
    ++reps;
    elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return 2.0 * 512 * 512 * 512 * reps / elapsed / 1e9;
}

std::string cpu_flags(const CpuInfo& cpu) {
  const std::set<std::string> wanted = {"sse4_2",   "avx",      "avx2",        "fma",         "f16c",
                                        "avx512f",  "avx512bw", "avx512_vnni", "avx512_bf16", "amx_tile",
                                        "amx_bf16", "neon",     "asimd"};
  std::vector<std::string> shown;
  for (const auto& f : cpu.flags)
    if (wanted.count(f)) shown.push_back(f);
  return fmt::format("{} [{}]{}", cpu.model, join(shown, " "),
                     cpu.flags_overridden ? " (flags from VIGIL_CPU_FLAGS)" : "");
}

/// The "Media I/O" and "Video I/O" lines of OpenCV's build information.
std::vector<std::string> opencv_codecs() {
  std::istringstream info(cv::getBuildInformation());
  std::vector<std::string> out;
  std::string line;
  bool in_section = false;
  while (std::getline(info, line)) {
    auto t = std::string(trim(line));
    if (t == "Media I/O:" || t == "Video I/O:") {
      in_section = true;
      continue;
    }
    if (in_section && (t.empty() || t.back() == ':')) in_section = false;
    if (in_section) out.push_back(t);
  }
  return out;
}

int run_doctor(int default_threads) {
  int warnings = 0;
  auto warn = [&](const std::string& m) {
    fmt::print("  WARNING: {}\n", m);
    ++warnings;
  };
  fmt::print("vigil {}\n", VIGIL_VERSION);
  const CpuInfo cpu = cpu_info();
  fmt::print("cpu: {}\n", cpu_flags(cpu));
  fmt::print("  precision bf16: {}\n", cpu.has_bf16()
                                           ? "available (--precision bf16 for predict, evaluate, serve)"
                                           : "not available (needs avx512_bf16 or amx_bf16)");
  fmt::print("  precision int8: {}\n",
             cpu.has_int8_dot() ? "available for ResNet backbones (--precision int8 --calibration IMAGES)"
                                : "not available (needs avx512_vnni, avx_vnni or amx_int8)");
  fmt::print("cores: {}\n", hardware_threads());
  fmt::print("libtorch: {}.{}.{}\n", TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR, TORCH_VERSION_PATCH);
  fmt::print("  intra-op threads: {} (libtorch default here: {})\n", at::get_num_threads(), default_threads);
  fmt::print("  inter-op threads: {}\n", at::get_num_interop_threads());
  fmt::print("  cuda available: {}\n", torch::cuda::is_available() ? "yes" : "no");
  if (default_threads == 1 && hardware_threads() > 1) {
    fmt::print(
        "  note: libtorch defaults to 1 thread on this {}-core machine; vigil sets {} (use --threads)\n",
        hardware_threads(), at::get_num_threads());
  }
  if (at::get_num_threads() == 1 && hardware_threads() > 1) {
    warn(fmt::format("libtorch runs 1 thread on a {}-core machine", hardware_threads()));
  }
  double gflops = matmul_gflops();
  auto blas = loaded_blas();
  fmt::print("blas: {}\n", blas.empty() ? "none mapped" : join({blas.begin(), blas.end()}, ", "));
  fmt::print("  matmul 512x512: {:.1f} GFLOP/s\n", gflops);
  if (const int n = blas_threads(); n > 0)
    fmt::print("  openblas threads: {} (vigil serve times 1 against this for its model: --blas-threads)\n",
               n);
  bool reference = false;
  for (const auto& b : blas) reference = reference || b.find("/blas/") != std::string::npos;
  if (reference) {
    warn(
        "the reference BLAS is in use (~30x slower matmul); install libopenblas0-pthread "
        "(scripts/install-deps.sh does)");
  }
  fmt::print("opencv: {}\n", CV_VERSION);
  for (const auto& c : opencv_codecs()) fmt::print("  {}\n", c);
  fmt::print("{}\n", warnings ? fmt::format("{} warning(s)", warnings) : std::string("all good"));
  return 0;
}

}  // namespace

void register_doctor(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand(
      "doctor", "check the machine: libtorch threads, BLAS in use, OpenCV codecs, CPU flags");
  sub->callback([&ctx] { ctx.action = [&ctx] { return run_doctor(ctx.torch_default_threads); }; });
}

int configure_threads(int requested) {
  const int before = at::get_num_threads();
  const int n = requested > 0 ? requested : static_cast<int>(hardware_threads());
  if (before != n) at::set_num_threads(n);
  return before;
}

}  // namespace vigil::cli

#include <fmt/core.h>
#include <torch/version.h>
#include <opencv2/core/version.hpp>

#include "cli.h"

namespace vigil::cli {

void register_version(CLI::App& app, Context& ctx) {
  auto* sub = app.add_subcommand("version", "print vigil's version and the versions of its main libraries");
  sub->callback([&ctx] {
    ctx.action = [] {
      fmt::print("vigil {}\n", VIGIL_VERSION);
      fmt::print("libtorch {}.{}.{}\n", TORCH_VERSION_MAJOR, TORCH_VERSION_MINOR, TORCH_VERSION_PATCH);
      fmt::print("opencv {}\n", CV_VERSION);
      return 0;
    };
  });
}

}  // namespace vigil::cli

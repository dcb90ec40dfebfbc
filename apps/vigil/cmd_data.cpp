#include "cli.h"

namespace vigil::cli {
void register_data(CLI::App& app, Context& ctx) {}
}  // namespace vigil::cli

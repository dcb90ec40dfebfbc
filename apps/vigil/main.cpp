// vigil: one binary from labelled images to a served, watched visual-safety detector.
// main only parses, sets up logging and threads, dispatches, and maps errors to the documented exit codes.

#include <spdlog/spdlog.h>

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "cli.h"
#include "vigil/core/error.h"
#include "vigil/core/interrupt.h"
#include "vigil/core/log.h"

int main(int argc, char** argv) {
  using namespace vigil;
  cli::Context ctx;
  CLI::App app{"vigil: datasets, training, evaluation, serving and monitoring of visual-safety detectors"};
  app.set_version_flag("--version", std::string(VIGIL_VERSION));
  app.require_subcommand(1);
  app.add_option("--workspace", ctx.workspace_arg,
                 "workspace folder (default ./.vigil, or $VIGIL_WORKSPACE)");
  std::string store_url;
  app.add_option("--store", store_url,
                 "tracking store: sqlite:PATH or postgresql://... (default <workspace>/vigil.db, or "
                 "$VIGIL_STORE)");
  // Containers configure by environment: the variables count only where the flag is absent.
  app.add_option("--threads", ctx.threads, "LibTorch and worker threads (default: every core)")
      ->check(CLI::NonNegativeNumber)
      ->envname("VIGIL_THREADS");
  app.add_option("--log-level", ctx.log_level, "trace, debug, info, warn, error, off")
      ->envname("VIGIL_LOG_LEVEL");

  cli::register_version(app, ctx);
  cli::register_doctor(app, ctx);
  cli::register_data(app, ctx);
  cli::register_weights(app, ctx);
  cli::register_predict(app, ctx);
  cli::register_train(app, ctx);
  cli::register_evaluate(app, ctx);
  cli::register_serve(app, ctx);
  cli::register_watch(app, ctx);
  cli::register_events(app, ctx);
  cli::register_monitor(app, ctx);
  cli::register_retrain(app, ctx);
  cli::register_runs(app, ctx);
  cli::register_models(app, ctx);
  cli::register_ui(app, ctx);
  cli::register_pipeline(app, ctx);
  cli::register_store(app, ctx);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : static_cast<int>(ExitCode::kUsage);
  }
  // Every Store reads $VIGIL_STORE when its options name no URL, and child processes (a retrain's `vigil
  // train`) inherit it: setting it here reaches them all, and the flag wins over the environment.
  if (!store_url.empty()) ::setenv("VIGIL_STORE", store_url.c_str(), 1);

  try {
    LogOptions log;
    log.level = ctx.log_level;
    if (ctx.uses_workspace) log.log_dir = ctx.workspace().logs_dir();
    init_logging(log);
    spdlog::debug("vigil {} started", VIGIL_VERSION);
    install_interrupt_handlers();
    if (!ctx.action) return 0;
    ctx.torch_default_threads = cli::configure_threads(ctx.threads);
    return ctx.action();
  } catch (const InternalError& e) {
    spdlog::error("{}\nThis is a bug in vigil; please report it with the command you ran.", e.what());
    return static_cast<int>(ExitCode::kInternal);
  } catch (const Error& e) {
    spdlog::error("{}", e.what());
    return static_cast<int>(exit_code_for(e.code()));
  } catch (const std::exception& e) {
    spdlog::error("unexpected error: {}", e.what());
    return static_cast<int>(ExitCode::kInternal);
  }
}

// `vigil train`: train a classifier or detector from a YAML config into a tracked run folder; Ctrl-C saves
// the exact position and `--resume` continues from it.

#include <fmt/core.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <thread>

#include "cli.h"
#include "train_launcher.h"
#include "vigil/core/fs.h"
#include "vigil/train/trainer.h"

namespace vigil::cli {

namespace {

struct TrainArgs {
  std::string resume;
  int nproc = 0;              ///< > 1: start that many ranks on this machine
  double dist_timeout = 300;  ///< seconds a rank waits for another before the run fails
};

/// A rank of a data-parallel run shares the machine's cores with the other ranks on it (LOCAL_WORLD_SIZE,
/// set by --nproc and torchrun) unless threads were asked for.
int threads_per_rank() {
  const char* v = std::getenv("LOCAL_WORLD_SIZE");
  const int local = v != nullptr ? std::max(1, std::atoi(v)) : 1;
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / local);
}

void print_interrupted(const Context& ctx, const train::TrainResult& r) {
  const std::string where = r.batch_in_epoch > 0 ? fmt::format("in epoch {} after {} batch(es)",
                                                               r.epochs_completed + 1, r.batch_in_epoch)
                                                 : fmt::format("after epoch {}", r.epochs_completed);
  fmt::print(
      stderr,
      "\ninterrupted {} ({} iterations); the position is saved in {}\nresume with:\n  vigil --workspace '{}' "
      "train --resume '{}'\n",
      where, r.iterations, to_utf8(r.last_checkpoint),
      to_utf8(std::filesystem::absolute(ctx.workspace().root())),
      to_utf8(std::filesystem::absolute(r.run_dir)));
}

void print_finished(const train::TrainResult& r) {
  const std::string why = r.early_stopped         ? fmt::format(" (stopped early on {})", r.stop_metric)
                          : r.time_budget_reached ? std::string(" (time budget reached)")
                                                  : std::string();
  const std::string speed =
      r.train_seconds > 0
          ? fmt::format(", {:.1f} img/s training", static_cast<double>(r.train_images) / r.train_seconds)
          : std::string();
  fmt::print("trained {}: {} epochs, {} iterations in {:.0f} s{}{}\n", r.run_name, r.epochs_completed,
             r.iterations, r.seconds, speed, why);
  for (const auto& [key, value] : r.last_metrics) {
    if (key != "epoch") fmt::print("  {:<24} {:.5g}\n", key, value);
  }
  fmt::print("run folder {}\n", to_utf8(r.run_dir));
  if (!r.run_id.empty())
    fmt::print("tracked as run {} (vigil runs show {})\n", r.run_id, r.run_id.substr(0, 8));
  if (!r.best_checkpoint.empty()) {
    if (r.best_epoch > 0) {
      fmt::print("best weights {} (epoch {}, {} {:.5g})\n", to_utf8(r.best_checkpoint), r.best_epoch,
                 r.metric, r.best_metric);
    } else {
      fmt::print("best weights {} (the last epoch: no epoch had a finite {})\n", to_utf8(r.best_checkpoint),
                 r.metric);
    }
  }
  fmt::print("last weights {}\n", to_utf8(r.last_checkpoint));
}

int run_train(const Context& ctx, const TrainArgs& a) {
  auto dist = train::DistributedOptions::from_env();
  if (a.nproc > 1) {
    VIGIL_CHECK(!dist.enabled(),
                "expected --nproc without WORLD_SIZE in the environment (a torchrun-style start gives every "
                "process its rank already), got --nproc {} and WORLD_SIZE={}",
                a.nproc, dist.world_size);
    return launch_local_ranks(a.nproc, command_line_without_nproc());
  }
  dist.timeout_seconds = a.dist_timeout;
  train::TrainControl control;
  control.code_version = VIGIL_VERSION;
  control.distributed = dist;
  control.progress = dist.is_main();  // one progress display, rank 0's
  std::unique_ptr<train::Trainer> trainer;
  if (!a.resume.empty()) {
    VIGIL_CHECK(ctx.config.file.empty(),
                "expected no --config with --resume (a resumed run keeps its saved options), got --config {}",
                ctx.config.file);
    trainer = train::Trainer::resume(ctx.workspace(), a.resume, ctx.config_source().overrides, control);
  } else {
    auto options = ctx.options<train::TrainOptions>();
    if (options.threads == 0 && ctx.threads > 0) options.threads = ctx.threads;
    if (options.threads == 0 && dist.enabled()) options.threads = threads_per_rank();
    trainer = std::make_unique<train::Trainer>(ctx.workspace(), std::move(options), control);
  }
  const auto result = trainer->run();
  if (result.interrupted) {
    if (dist.is_main()) print_interrupted(ctx, result);
    return static_cast<int>(ExitCode::kInterrupted);
  }
  if (dist.is_main()) print_finished(result);  // the other ranks wrote nothing to report
  return 0;
}

}  // namespace

void register_train(CLI::App& app, Context& ctx) {
  static TrainArgs a;
  auto* sub = app.add_subcommand("train", "train a classifier or detector on a stored dataset split");
  add_config_options(sub, ctx);
  sub->add_option("--resume", a.resume,
                  "continue a run exactly where it stopped: its folder, its name, or a checkpoint in it");
  sub->add_option(
         "--nproc", a.nproc,
         "train data-parallel in N processes on this machine (c10d + Gloo); data.batch_size stays the "
         "global batch, split over them")
      ->check(CLI::Range(1, 256));
  sub->add_option("--dist-timeout", a.dist_timeout,
                  "data-parallel: seconds a process waits for another before the run fails naming it")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  add_override(sub, ctx, "--name", "name", "run name (folder <workspace>/runs/<name>)");
  add_override(sub, ctx, "--device", "device", "cpu, cuda or cuda:N");
  add_override(sub, ctx, "--threads", "threads", "LibTorch threads (0 = every core)");
  add_override(sub, ctx, "--epochs", "epochs", "passes over the training data");
  sub->footer(
      "Options come from --config FILE, then --set key=value, then flags; unknown keys are errors. Examples "
      "in examples/train/. Data-parallel training: --nproc N on one machine, or torchrun's variables (RANK, "
      "WORLD_SIZE, MASTER_ADDR, MASTER_PORT, LOCAL_WORLD_SIZE) set for each process of the same command.");
  sub->callback([&ctx] {
    ctx.uses_workspace = true;
    ctx.action = [&ctx] { return run_train(ctx, a); };
  });
}

}  // namespace vigil::cli

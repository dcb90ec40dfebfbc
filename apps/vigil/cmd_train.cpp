// `vigil train`: train a classifier or detector from a YAML config into a tracked run folder; Ctrl-C saves
// the exact position and `--resume` continues from it.

#include <fmt/core.h>

#include <cmath>
#include <memory>

#include "cli.h"
#include "vigil/core/fs.h"
#include "vigil/train/trainer.h"

namespace vigil::cli {

namespace {

struct TrainArgs {
  std::string resume;
};

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
  train::TrainControl control;
  control.code_version = VIGIL_VERSION;
  std::unique_ptr<train::Trainer> trainer;
  if (!a.resume.empty()) {
    VIGIL_CHECK(ctx.config.file.empty(),
                "expected no --config with --resume (a resumed run keeps its saved options), got --config {}",
                ctx.config.file);
    trainer = train::Trainer::resume(ctx.workspace(), a.resume, ctx.config_source().overrides, control);
  } else {
    auto options = ctx.options<train::TrainOptions>();
    if (options.threads == 0 && ctx.threads > 0) options.threads = ctx.threads;
    trainer = std::make_unique<train::Trainer>(ctx.workspace(), std::move(options), control);
  }
  const auto result = trainer->run();
  if (result.interrupted) {
    print_interrupted(ctx, result);
    return static_cast<int>(ExitCode::kInterrupted);
  }
  print_finished(result);
  return 0;
}

}  // namespace

void register_train(CLI::App& app, Context& ctx) {
  static TrainArgs a;
  auto* sub = app.add_subcommand("train", "train a classifier or detector on a stored dataset split");
  add_config_options(sub, ctx);
  sub->add_option("--resume", a.resume,
                  "continue a run exactly where it stopped: its folder, its name, or a checkpoint in it");
  add_override(sub, ctx, "--name", "name", "run name (folder <workspace>/runs/<name>)");
  add_override(sub, ctx, "--device", "device", "cpu, cuda or cuda:N");
  add_override(sub, ctx, "--threads", "threads", "LibTorch threads (0 = every core)");
  add_override(sub, ctx, "--epochs", "epochs", "passes over the training data");
  sub->footer(
      "Options come from --config FILE, then --set key=value, then flags; unknown keys are errors. Examples "
      "in "
      "examples/train/.");
  sub->callback([&ctx] {
    ctx.uses_workspace = true;
    ctx.action = [&ctx] { return run_train(ctx, a); };
  });
}

}  // namespace vigil::cli

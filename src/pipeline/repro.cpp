// The repro loop (dvc/repo/reproduce.py _reproduce_stage, dvc/stage/__init__.py Stage.reproduce / run,
// dvc/stage/run.py cmd_run) and the lock update after each stage (dvc/dvcfile.py Lockfile.dump).

#include "vigil/pipeline/repro.h"

#include <fmt/format.h>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/interrupt.h"
#include "vigil/pipeline/process.h"

namespace vigil::pipeline {

namespace fs = std::filesystem;

namespace {

// Stage.remove_outs: outputs go before the command runs, unless they persist.
void remove_outs(const StageDef& stage) {
  for (const auto& o : stage.outs) {
    if (o.persist) continue;
    std::error_code ec;
    fs::remove_all(stage.resolve(o.path), ec);
    if (ec)
      throw IoError(
          fmt::format("stage '{}': cannot remove output '{}': {}", stage.name, o.path, ec.message()));
  }
}

void run_commands(Project& project, const StageDef& stage, const ReproOptions& options,
                  const MessageSink& sink) {
  sink(fmt::format("Running stage '{}':", stage.name));
  for (const auto& command : stage.commands) {
    sink(fmt::format("> {}", command));
    if (options.dry) continue;
    ShellCommand sh;
    sh.command = command;
    sh.cwd = stage.wdir_path;
    sh.env = {{"DVC_ROOT", project.pipeline().root.string()}, {"DVC_STAGE", stage.name}};
    sh.prepend_path = self_exe_dir();
    const int status = run_shell(sh);
    project
        .forget_hashes();  // the command may have rewritten anything within the file system's time resolution
    if (interrupt_requested()) {
      throw Interrupted(fmt::format(
          "interrupted while running stage '{}'; its dvc.lock entry was left as it was", stage.name));
    }
    if (status != 0) {
      throw DataError(fmt::format("failed to reproduce '{}': failed to run: {}, exited with {}", stage.name,
                                  command, status));
    }
  }
}

// Records the stage and writes dvc.lock at once, so a later failure keeps this stage's new state.
void record(Project& project, const StageDef& stage, const MessageSink& sink) {
  LockStage snapshot;
  try {
    snapshot = project.snapshot(stage);
  } catch (const NotFound& e) {
    throw DataError(fmt::format("failed to reproduce '{}': {}", stage.name, e.what()));
  }
  Lockfile& lock = project.lock();
  const auto& p = project.pipeline();
  std::error_code ec;
  const bool existed = fs::exists(p.lock_path, ec);
  const bool changed = lock.set(stage.name, std::move(snapshot));
  lock.retain(p.stage_names());
  const std::string name = p.display(p.lock_path);
  if (!existed) {
    sink(fmt::format("Generating lock file '{}'", name));
  } else if (changed) {
    sink(fmt::format("Updating lock file '{}'", name));
  }
  const std::string text = lockfile_text(lock);
  if (!existed || text != read_file(p.lock_path)) write_file_atomic(p.lock_path, text);
}

}  // namespace

void ReproOptions::validate() const {
  VIGIL_CHECK(!file.empty(), "expected a pipeline file (--file), got an empty path");
  for (const auto& t : targets) VIGIL_CHECK(!t.empty(), "expected stage names, got an empty one");
  VIGIL_CHECK(!(single_item && targets.empty()), "expected stage names with --single-item, got none");
}

ReproResult reproduce(const ReproOptions& options, const MessageSink& sink) {
  options.validate();
  Project project(options.file);
  const auto plan = project.graph().plan(options.targets, options.single_item);
  project.check_inputs(plan);
  ReproResult result;
  for (const auto& name : plan) {
    if (interrupt_requested()) throw Interrupted("interrupted before stage '" + name + "'");
    const StageDef& stage = project.pipeline().stage(name);
    if (stage.frozen)
      sink(fmt::format("stage: '{}' is frozen. Its dependencies are not going to be reproduced.", name));
    const bool changed = options.force || project.status(stage).changed();
    if (!changed) {
      sink(fmt::format("Stage '{}' didn't change, skipping", name));
      result.skipped.push_back(name);
      sink("");
      continue;
    }
    if (stage.frozen) {
      // A frozen stage never runs its command: DVC only checks its outputs and records them.
      sink(fmt::format("Verifying outputs in frozen stage: '{}'", name));
    } else {
      if (!options.dry) remove_outs(stage);
      run_commands(project, stage, options, sink);
    }
    result.ran.push_back(name);
    if (!options.dry) {
      record(project, stage, sink);
      result.lock_written = true;
    }
    sink("");
  }
  return result;
}

std::vector<StageStatus> pipeline_status(const fs::path& file) {
  Project project(file);
  std::vector<StageStatus> out;
  for (const auto& s : project.pipeline().stages) out.push_back(project.status(s));
  return out;
}

}  // namespace vigil::pipeline

#pragma once
// `vigil train --nproc N`: the torchrun of one machine. Starts N copies of this command as the ranks of a
// data-parallel run and supervises them.

#include <string>
#include <vector>

namespace vigil::cli {

/// This process's command line (from /proc/self/cmdline) without `--nproc N` / `--nproc=N`.
std::vector<std::string> command_line_without_nproc();

/// Runs `args` (a vigil command line, args[0] ignored: this binary is run) as ranks 0..nproc-1 with
/// torchrun's variables (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR=127.0.0.1, a free
/// MASTER_PORT) and waits for them. Ctrl-C is forwarded to every rank (rank 0 saves the position). When a
/// rank fails, the others are stopped and the command fails naming the rank and how it ended: its exit code
/// is returned, a death by signal is an Unavailable. Returns 0 when every rank succeeded, 130 when the run
/// was interrupted.
int launch_local_ranks(int nproc, const std::vector<std::string>& args);

}  // namespace vigil::cli

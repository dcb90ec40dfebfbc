#pragma once
// Internal to the trainer: the process group of a data-parallel run. c10d and Gloo stay inside
// distributed.cpp (their headers need gloo's and a USE_C10D_GLOO define that nothing else should see).

#include <torch/types.h>

#include <memory>
#include <string>
#include <vector>

#include "vigil/train/trainer.h"

namespace vigil::train::detail {

/// One rank's membership of a run's Gloo process group. Every failure (a rank that never comes, a peer
/// that died, a collective past the timeout) is an Unavailable naming this rank, what it was doing and the
/// timeout, so a lost rank fails the job instead of hanging it.
class Distributed {
 public:
  /// Joins the group: rank 0 starts the TCP store at master_addr:master_port, every rank waits up to the
  /// timeout for the others.
  explicit Distributed(const DistributedOptions& options);
  ~Distributed();
  Distributed(const Distributed&) = delete;
  Distributed& operator=(const Distributed&) = delete;

  int rank() const;
  int world_size() const;
  bool is_main() const { return rank() == 0; }

  /// Overwrites `tensors` (any dtypes, layouts) with rank 0's, in place, without recording autograd.
  void broadcast(const std::vector<torch::Tensor>& tensors, const char* what);
  /// Sums a 1-D CPU tensor over the ranks, in place.
  void all_reduce_sum(torch::Tensor& flat, const char* what);
  /// Rank 0's `value` under `key`, on every rank (rank 0 gets its own back). The others wait with no
  /// bound while rank 0's store answers: rank 0 may validate for longer than the timeout, and if it dies
  /// its store's connection closes, which ends the wait at once.
  std::string share(const std::string& key, const std::string& value);
  /// Returns once every rank has called it.
  void barrier();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

/// Whether this build can train data-parallel (gloo's headers were found when it was compiled).
bool distributed_available();

}  // namespace vigil::train::detail

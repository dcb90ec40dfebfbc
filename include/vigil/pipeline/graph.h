#pragma once
/// The stage graph (dvc/repo/graph.py build_graph, check_acyclic; dvc/repo/reproduce.py plan_repro): stage A
/// depends on stage B when a dependency path of A equals, lies inside, or contains an output path of B. Two
/// stages declaring the same output, or outputs nested in one another, are errors; so is a cycle. A frozen
/// stage is cut from its upstream when planning, as DVC does.

#include <string>
#include <vector>

#include "vigil/pipeline/dvcfile.h"

namespace vigil::pipeline {

class StageGraph {
 public:
  /// Builds and checks the graph. Throws InvalidArgument naming the stages and paths for a duplicated or
  /// overlapping output, and the stages of a cycle.
  explicit StageGraph(const Pipeline& pipeline);

  /// Stages `stage` depends on directly, in dvc.yaml order.
  const std::vector<std::string>& upstream(const std::string& stage) const;
  /// Stages depending on `stage` directly, in dvc.yaml order.
  std::vector<std::string> downstream(const std::string& stage) const;
  /// Execution order: `targets` (all stages when empty) and, unless `single_item`, everything they depend on,
  /// upstream first; ties keep dvc.yaml order. Throws NotFound for an unknown target.
  std::vector<std::string> plan(const std::vector<std::string>& targets, bool single_item = false) const;
  /// The stage whose output is `path` or contains it, if any.
  const StageDef* producer_of(const std::filesystem::path& abs_path) const;

  /// Readable listing: every stage with the stages it depends on.
  std::string to_text() const;
  /// Graphviz, edges from a stage to the stages that use its outputs (as `dvc dag --dot`).
  std::string to_dot() const;
  /// A Mermaid flowchart (as `dvc dag --mermaid`).
  std::string to_mermaid() const;

 private:
  void check_outputs() const;
  void check_acyclic() const;
  size_t index_of(const std::string& name) const;

  const Pipeline& pipeline_;
  std::vector<std::vector<std::string>> upstream_;  // by stage index
};

/// True when `a` equals `b` or lies inside it (both absolute and normal).
bool path_isin_or_eq(const std::filesystem::path& a, const std::filesystem::path& b);

}  // namespace vigil::pipeline

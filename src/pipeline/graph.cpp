// Stage graph construction, checks and rendering.

#include "vigil/pipeline/graph.h"

#include <fmt/format.h>

#include <algorithm>
#include <functional>

#include "vigil/core/error.h"
#include "vigil/core/strings.h"

namespace vigil::pipeline {

namespace fs = std::filesystem;

bool path_isin_or_eq(const fs::path& a, const fs::path& b) {
  auto ai = a.begin(), bi = b.begin();
  for (; bi != b.end(); ++ai, ++bi) {
    if (bi->empty() && std::next(bi) == b.end()) break;  // trailing separator
    if (ai == a.end() || *ai != *bi) return false;
  }
  return true;
}

namespace {

bool overlaps(const fs::path& a, const fs::path& b) {
  return path_isin_or_eq(a, b) || path_isin_or_eq(b, a);
}

std::string quoted_list(const std::vector<std::string>& names) {
  std::vector<std::string> q;
  for (const auto& n : names) q.push_back("'" + n + "'");
  return join(q, ", ");
}

}  // namespace

StageGraph::StageGraph(const Pipeline& pipeline) : pipeline_(pipeline), upstream_(pipeline.stages.size()) {
  check_outputs();
  const auto& stages = pipeline_.stages;
  for (size_t a = 0; a < stages.size(); ++a) {
    for (size_t b = 0; b < stages.size(); ++b) {
      bool depends = false;
      for (const auto& dep : stages[a].deps) {
        for (const auto& out : stages[b].outs)
          depends = depends || overlaps(stages[a].resolve(dep), stages[b].resolve(out.path));
      }
      // A params file produced by another stage is a dependency on it too.
      for (const auto& prm : stages[a].params) {
        for (const auto& out : stages[b].outs)
          depends = depends || overlaps(stages[a].resolve(prm.file), stages[b].resolve(out.path));
      }
      if (depends) upstream_[a].push_back(stages[b].name);
    }
  }
  check_acyclic();
}

void StageGraph::check_outputs() const {
  struct Owned {
    fs::path path;
    std::string text, stage;
  };
  std::vector<Owned> all;
  for (const auto& s : pipeline_.stages) {
    for (const auto& o : s.outs) {
      const fs::path abs = s.resolve(o.path);
      for (const auto& other : all) {
        if (other.path == abs) {
          throw InvalidArgument(fmt::format("{}: output '{}' is declared by two stages: '{}' and '{}'",
                                            pipeline_.display(pipeline_.file), pipeline_.display(abs),
                                            other.stage, s.name));
        }
        if (overlaps(other.path, abs)) {
          throw InvalidArgument(
              fmt::format("{}: the output paths '{}' (stage '{}') and '{}' (stage '{}') overlap: one lies "
                          "inside the other",
                          pipeline_.display(pipeline_.file), pipeline_.display(other.path), other.stage,
                          pipeline_.display(abs), s.name));
        }
      }
      all.push_back({abs, o.path, s.name});
    }
  }
}

void StageGraph::check_acyclic() const {
  const size_t n = pipeline_.stages.size();
  std::vector<int> state(n, 0);  // 0 new, 1 on the stack, 2 done
  std::vector<size_t> stack;
  std::function<void(size_t)> visit = [&](size_t i) {
    state[i] = 1;
    stack.push_back(i);
    for (const auto& up : upstream_[i]) {
      const size_t j = index_of(up);
      if (state[j] == 1) {
        std::vector<std::string> cycle;
        for (auto it = std::find(stack.begin(), stack.end(), j); it != stack.end(); ++it)
          cycle.push_back(pipeline_.stages[*it].name);
        throw InvalidArgument(fmt::format("{}: pipeline has a cycle involving: {}",
                                          pipeline_.display(pipeline_.file), quoted_list(cycle)));
      }
      if (state[j] == 0) visit(j);
    }
    stack.pop_back();
    state[i] = 2;
  };
  for (size_t i = 0; i < n; ++i)
    if (state[i] == 0) visit(i);
}

size_t StageGraph::index_of(const std::string& name) const {
  for (size_t i = 0; i < pipeline_.stages.size(); ++i)
    if (pipeline_.stages[i].name == name) return i;
  pipeline_.stage(name);  // throws NotFound listing the stages
  return 0;
}

const std::vector<std::string>& StageGraph::upstream(const std::string& stage) const {
  return upstream_[index_of(stage)];
}

std::vector<std::string> StageGraph::downstream(const std::string& stage) const {
  std::vector<std::string> out;
  for (size_t i = 0; i < upstream_.size(); ++i) {
    const auto& up = upstream_[i];
    if (std::find(up.begin(), up.end(), stage) != up.end()) out.push_back(pipeline_.stages[i].name);
  }
  return out;
}

std::vector<std::string> StageGraph::plan(const std::vector<std::string>& targets, bool single_item) const {
  std::vector<std::string> roots = targets.empty() ? pipeline_.stage_names() : targets;
  for (const auto& t : roots) index_of(t);
  if (single_item) return roots;
  std::vector<bool> seen(pipeline_.stages.size(), false);
  std::vector<std::string> order;
  // Post-order DFS (networkx.dfs_postorder_nodes in DVC): upstream first. A frozen stage does not pull in its
  // upstream (dvc/repo/reproduce.py _remove_frozen_stages).
  std::function<void(size_t)> visit = [&](size_t i) {
    seen[i] = true;
    if (!pipeline_.stages[i].frozen) {
      for (const auto& up : upstream_[i]) {
        const size_t j = index_of(up);
        if (!seen[j]) visit(j);
      }
    }
    order.push_back(pipeline_.stages[i].name);
  };
  for (const auto& t : roots) {
    const size_t i = index_of(t);
    if (!seen[i]) visit(i);
  }
  return order;
}

const StageDef* StageGraph::producer_of(const fs::path& abs_path) const {
  for (const auto& s : pipeline_.stages)
    for (const auto& o : s.outs)
      if (path_isin_or_eq(abs_path, s.resolve(o.path))) return &s;
  return nullptr;
}

std::string StageGraph::to_text() const {
  std::string out;
  for (const auto& name : plan({})) {
    const auto& up = upstream(name);
    out += up.empty() ? fmt::format("{}\n", name) : fmt::format("{}  <- {}\n", name, join(up, ", "));
  }
  return out;
}

std::string StageGraph::to_dot() const {
  std::string out = "strict digraph  {\n";
  for (const auto& s : pipeline_.stages) out += fmt::format("\"{}\";\n", s.name);
  for (const auto& s : pipeline_.stages)
    for (const auto& up : upstream(s.name)) out += fmt::format("\"{}\" -> \"{}\";\n", up, s.name);
  return out + "}\n";
}

std::string StageGraph::to_mermaid() const {
  std::string out = "flowchart TD\n";
  for (size_t i = 0; i < pipeline_.stages.size(); ++i)
    out += fmt::format("\tnode{}[\"{}\"]\n", i + 1, pipeline_.stages[i].name);
  for (size_t i = 0; i < pipeline_.stages.size(); ++i)
    for (const auto& up : upstream_[i]) out += fmt::format("\tnode{}-->node{}\n", index_of(up) + 1, i + 1);
  return out;
}

}  // namespace vigil::pipeline

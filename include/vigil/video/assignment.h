#pragma once
/// Minimum-cost bipartite matching (the Hungarian method, O(n^3)) with a cost limit, as ByteTrack calls
/// lap.lapjv(cost, extend_cost=True, cost_limit=limit): a row may stay unmatched, and a pair is only ever
/// matched when its cost is at most the limit.

#include <utility>
#include <vector>

namespace vigil::video {

/// Which rows went to which columns, and who was left over. Indices are into the cost matrix.
struct Assignment {
  std::vector<std::pair<int, int>> matches;  ///< (row, column), ascending row
  std::vector<int> unmatched_rows;
  std::vector<int> unmatched_cols;
};

/// Rows x cols costs, row-major; +infinity (or NaN) forbids a pair (an IoU or class gate). Minimises the
/// total cost where leaving a row or a column unmatched costs cost_limit / 2, so no matched pair costs more
/// than cost_limit.
Assignment linear_assignment(const std::vector<double>& cost, int rows, int cols, double cost_limit);

}  // namespace vigil::video

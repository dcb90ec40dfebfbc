#include "vigil/video/assignment.h"

#include <cmath>
#include <limits>

#include "vigil/core/error.h"

namespace vigil::video {
namespace {

// Hungarian method with row and column potentials (Kuhn-Munkres in its O(n^3) shortest augmenting path
// form) on a square matrix. Returns, for each row, its column.
std::vector<int> solve_square(const std::vector<double>& a, int n) {
  const double inf = std::numeric_limits<double>::infinity();
  // 1-based as in the textbook form; column 0 is the virtual start of each augmenting path.
  std::vector<double> u(n + 1, 0), v(n + 1, 0), min_v(n + 1);
  std::vector<int> row_of(n + 1, 0), way(n + 1, 0);
  std::vector<char> used(n + 1);
  for (int i = 1; i <= n; ++i) {
    row_of[0] = i;
    int j0 = 0;
    std::fill(min_v.begin(), min_v.end(), inf);
    std::fill(used.begin(), used.end(), 0);
    do {
      used[j0] = 1;
      const int i0 = row_of[j0];
      double delta = inf;
      int j1 = 0;
      for (int j = 1; j <= n; ++j) {
        if (used[j]) continue;
        const double cur = a[static_cast<size_t>((i0 - 1) * n + (j - 1))] - u[i0] - v[j];
        if (cur < min_v[j]) {
          min_v[j] = cur;
          way[j] = j0;
        }
        if (min_v[j] < delta) {
          delta = min_v[j];
          j1 = j;
        }
      }
      for (int j = 0; j <= n; ++j) {
        if (used[j]) {
          u[row_of[j]] += delta;
          v[j] -= delta;
        } else {
          min_v[j] -= delta;
        }
      }
      j0 = j1;
    } while (row_of[j0] != 0);
    do {
      const int j1 = way[j0];
      row_of[j0] = row_of[j1];
      j0 = j1;
    } while (j0 != 0);
  }
  std::vector<int> col_of(n, -1);
  for (int j = 1; j <= n; ++j)
    if (row_of[j] > 0) col_of[row_of[j] - 1] = j - 1;
  return col_of;
}

}  // namespace

Assignment linear_assignment(const std::vector<double>& cost, int rows, int cols, double cost_limit) {
  VIGIL_CHECK(rows >= 0 && cols >= 0 && cost.size() == static_cast<size_t>(rows) * static_cast<size_t>(cols),
              "expected a {}x{} cost matrix ({} values), got {} values", rows, cols, rows * cols,
              cost.size());
  VIGIL_CHECK(std::isfinite(cost_limit) && cost_limit >= 0, "expected a finite cost_limit >= 0, got {}",
              cost_limit);
  // Extend to (rows + cols) square, as lapjv's extend_cost: every row gets a private "unmatched" column and
  // every column a private "unmatched" row, each at cost_limit / 2; dummy meets dummy for free. A real pair
  // then wins only when its cost is below the two halves it replaces.
  const int n = rows + cols;
  double total = 0;
  for (double c : cost)
    if (std::isfinite(c)) total += std::abs(c);
  const double big = 2 * (total + cost_limit * n) + 1;  // more than any assignment without it
  std::vector<double> a(static_cast<size_t>(n) * n, big);
  auto cell = [&](int r, int c) -> double& { return a[static_cast<size_t>(r) * n + c]; };
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      const double x = cost[static_cast<size_t>(r) * cols + c];
      if (std::isfinite(x)) cell(r, c) = x;
    }
    cell(r, cols + r) = cost_limit / 2;
  }
  for (int c = 0; c < cols; ++c) {
    cell(rows + c, c) = cost_limit / 2;
    for (int r = 0; r < rows; ++r) cell(rows + c, cols + r) = 0;
  }
  const std::vector<int> col_of = solve_square(a, n);
  Assignment out;
  std::vector<char> col_used(cols, 0);
  for (int r = 0; r < rows; ++r) {
    const int c = col_of[r];
    const double x = c >= 0 && c < cols ? cost[static_cast<size_t>(r) * cols + c] : NAN;
    if (std::isfinite(x) && x <= cost_limit) {
      out.matches.emplace_back(r, c);
      col_used[c] = 1;
    } else {
      out.unmatched_rows.push_back(r);
    }
  }
  for (int c = 0; c < cols; ++c)
    if (!col_used[c]) out.unmatched_cols.push_back(c);
  return out;
}

}  // namespace vigil::video

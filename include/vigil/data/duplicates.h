#pragma once
/// Exact (same bytes) and near (perceptual hash within a Hamming distance) duplicate detection.

#include <utility>
#include <vector>

#include "vigil/data/dataset.h"

namespace vigil::data {

struct DuplicateGroups {
  /// Per sample, its group id in [0, n_groups). Every sample is in exactly one group; a sample without
  /// duplicates is a group of one. Ids are numbered in order of each group's first sample.
  std::vector<int> group_of;
  /// (first, other) with first < other. Within a set of identical files each one is paired with the first
  /// occurrence only (k - 1 pairs for k copies), which is enough to connect the group.
  std::vector<std::pair<int, int>> exact_pairs;
  /// Every pair with phash distance <= max_hamming whose bytes differ (exact copies are not repeated here),
  /// i < j, sorted.
  std::vector<std::pair<int, int>> near_pairs;
  int n_groups = 0;
  /// Groups with more than one sample.
  int multi_groups() const;
};

/// Exact duplicates share a non-empty Sample::hash. Near duplicates are inspected, decodable images whose
/// Sample::check.phash differ in at most `max_hamming` bits (max_hamming < 0 disables near detection).
/// Groups are the connected components of both pair kinds. Runs in roughly O(n + candidates) rather than
/// O(n^2), by multi-index hashing (see duplicates.cpp).
DuplicateGroups find_duplicates(const Dataset& ds, int max_hamming);

}  // namespace vigil::data

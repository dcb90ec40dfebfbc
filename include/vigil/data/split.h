#pragma once
/// Train/val/test splitting: deterministic for a seed, stratified by class, and duplicate-group aware so
/// near-duplicates never straddle splits (which would leak training images into evaluation).

#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "vigil/data/dataset.h"

namespace vigil::data {

struct SplitOptions {
  double val = 0.2;   ///< fraction of samples for validation
  double test = 0.0;  ///< fraction of samples for test
  uint64_t seed = 0;
  bool stratify = true;             ///< keep class proportions in every split
  bool group_duplicates = true;     ///< exact and near duplicates go to one split together
  int near_duplicate_distance = 8;  ///< phash bits for grouping (-1: exact duplicates only)
  std::string mode = "random";  ///< random | folders (keep Sample::split from train/val/test folders) | lists
  /// mode lists (the default random turns into lists when one is given): text files naming the validation /
  /// test samples, one per line (blank lines and # comments
  /// skipped); the rest is trained on. A line matches the sample whose path it equals or ends with, or that
  /// ends with it (so "with_mask/3.jpg", "3.jpg" or an absolute path to the image all work) — e.g. the
  /// validation list another tool trained with, for comparisons on the same split.
  std::string val_list, test_list;
  template <class V>
  void visit(V& v) {
    v("val", val, "fraction of samples for validation");
    v("test", test, "fraction of samples for test");
    v("seed", seed, "random seed (same seed, same split)");
    v("stratify", stratify, "keep class proportions in every split");
    v("group_duplicates", group_duplicates, "keep exact and near duplicates in one split");
    v("near_duplicate_distance", near_duplicate_distance,
      "largest perceptual-hash distance (bits) grouped as a near duplicate; -1: exact duplicates only");
    v("mode", mode, "random, folders to keep the train/val/test folders the data came in, or lists");
    v("val_list", val_list, "mode lists: file naming the validation samples, one per line");
    v("test_list", test_list, "mode lists: file naming the test samples, one per line");
  }
  /// Throws InvalidArgument: fractions in [0, 1) with val + test < 1, distance in -1..64, known mode.
  void validate() const;
};

struct SplitResult {
  std::vector<int> train, val, test;  ///< sample indices, sorted
  size_t groups = 0;                  ///< duplicate groups with more than one sample
  size_t grouped_samples = 0;         ///< samples in those groups
  size_t straddling_groups = 0;       ///< of those, groups whose samples sit in more than one split
  std::string mode;
  /// Class name (detection: every class present in the image, or "(empty)"; classification: the label, or
  /// "(unlabelled)") -> samples in train, val, test.
  std::map<std::string, std::array<size_t, 3>> class_counts;
  /// Counts per split and per class per split, and the duplicate-group figures.
  nlohmann::json summary() const;
};

/// Splits ds per `opt`. Random mode: groups (see duplicates.h) are the unit placed; each group is stratified
/// under the rarest class any of its samples carries, groups are shuffled per stratum with a portable
/// Fisher-Yates over std::mt19937_64, and placed to meet per-class targets (rounded with the remainder
/// carried across classes, so every class is within one sample of its share when groups are single samples).
/// Folders mode: Sample::split is kept; a sample outside train/val/test is a DataError listing them, and
/// duplicate groups straddling the folders are counted (not moved). Lists mode: val_list / test_list place
/// their samples (a line that names no sample, or several, is a DataError with the file and line; a sample in
/// both lists too), straddling duplicate groups are counted, not moved. The split is only as good as the
/// inspection: near-duplicate grouping uses Sample::check.phash (see inspect.h).
SplitResult split_dataset(const Dataset& ds, const SplitOptions& opt);
/// As above, with groups the caller knows: samples sharing a non-negative `extra_groups[i]` (one id per
/// sample, -1 for none) are placed together, joined with the duplicate groups — e.g. ClipGrouping::clip_of,
/// so the frames of one clip never straddle train/val. The group counts in the result include them; in
/// folders mode they are counted as straddling when the folders split them.
SplitResult split_dataset(const Dataset& ds, const SplitOptions& opt, const std::vector<int>& extra_groups);

/// Positions in ds.samples of the sample files a split lists (SplitFiles::train/val/test), in list order.
/// A file that is not a sample (a split made for another version) is a DataError starting with `where`.
std::vector<int> split_sample_indices(const Dataset& ds, const std::vector<std::string>& files,
                                      const std::string& where);

}  // namespace vigil::data

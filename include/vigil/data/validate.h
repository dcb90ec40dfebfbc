#pragma once
/// Dataset validation (a report of every problem) and sanitizing (the usable copy for training).

#include <nlohmann/json.hpp>

#include <map>
#include <string>
#include <vector>

#include "vigil/data/dataset.h"

namespace vigil::data {

struct ValidateOptions {
  std::string out_of_image =
      "clip";  ///< boxes beyond the image: "clip" them (warning) or "reject" them (error)
  int near_duplicate_distance = 8;  ///< phash bits; -1 disables near-duplicate detection (see split.h)
  double min_box_size = 1.0;        ///< boxes narrower or lower than this many pixels are degenerate
  double clip_tolerance = 0.0;      ///< overshoot up to this many pixels is rounding noise: clipped silently
  template <class V>
  void visit(V& v) {
    v("out_of_image", out_of_image, "boxes beyond the image: clip (warning) or reject (error, box dropped)");
    v("near_duplicate_distance", near_duplicate_distance,
      "largest perceptual-hash distance (bits) reported as a near duplicate; -1 disables");
    v("min_box_size", min_box_size, "smallest box width/height in pixels");
    v("clip_tolerance", clip_tolerance, "pixels a box may overshoot the image without being reported");
  }
  /// Throws InvalidArgument ("expected ..., got ...") for an unknown out_of_image, a negative size or
  /// tolerance, or a distance outside -1..64.
  void validate() const;
};

/// What validate() found. Issue kinds: the reader's own kinds (from Dataset::issues), the image problems
/// (empty_file, not_an_image, truncated, too_large, unreadable), nan_box, negative_box, degenerate_box,
/// box_outside, unknown_class, empty_image, exact_duplicate, near_duplicate, no_samples, not_inspected.
struct ValidationReport {
  /// kind -> severity name -> number of issues.
  std::map<std::string, std::map<std::string, size_t>> counts;
  std::vector<Issue> issues;
  size_t images = 0;         ///< samples
  size_t usable_images = 0;  ///< samples whose image decodes (or was not inspected)
  size_t boxes = 0;
  size_t empty_images = 0;   ///< detection images without any box
  double empty_share = 0.0;  ///< empty_images / images
  size_t exact_duplicate_groups = 0;
  size_t near_duplicate_pairs = 0;

  nlohmann::json to_json() const;
  /// A summary table (counts by kind and severity), the empty share, then the issues grouped by kind.
  /// At most `max_per_kind` issues are listed per kind (0 = all); a capped kind ends with
  /// "... and N more, see report.json".
  std::string to_text(size_t max_per_kind = 50) const;
  bool has_errors() const;
  size_t errors() const;
  size_t warnings() const;
};

/// Pure analysis of an inspected dataset (see inspect.h): includes ds.issues and adds what it finds.
/// Severity rule: an error is something sanitize() drops (or a dataset that cannot be used at all), a
/// warning is fixed automatically or only suspicious, info is context.
ValidationReport validate(const Dataset& ds, const ValidateOptions& opt);

/// The usable copy for training: drops samples whose image does not decode or whose classification label is
/// out of range, and boxes that are NaN, negative, degenerate, of an unknown class, or out of the image
/// (clipped instead when opt.out_of_image == "clip" and something usable remains). Every dropped item is
/// appended to *dropped (when not null) as an Issue.
Dataset sanitize(const Dataset& ds, const ValidateOptions& opt, std::vector<Issue>* dropped);

}  // namespace vigil::data

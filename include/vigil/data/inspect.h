#pragma once
/// Image inspection: decode every sample's image once, with checks, and record what was found.

#include <cstdint>

#include "vigil/core/progress.h"
#include "vigil/data/dataset.h"
#include "vigil/data/formats.h"

namespace vigil::data {

struct InspectOptions {
  int threads = 0;                   ///< 0 = hardware concurrency
  int64_t max_pixels = 100'000'000;  ///< larger images are reported as too_large without being decoded
  template <class V>
  void visit(V& v) {
    v("threads", threads, "decoding threads (0 = all cores)");
    v("max_pixels", max_pixels, "largest image accepted, in pixels (decompression-bomb guard)");
  }
  void validate() const;
};

/// Decodes every sample's image in parallel and fills Sample::check (inspected, problem_kind/problem as the
/// decoder reports them: empty_file, not_an_image, truncated, too_large, unreadable; type; phash), the real
/// width/height, and Sample::bytes / Sample::hash (sha256) when they are empty. A missing file is
/// "unreadable". When an annotation gave another size, a "size_mismatch" warning is added to ds.issues and
/// the decoded size wins. Never throws for bad images (only for bad options); the result does not depend on
/// the thread count.
void inspect_images(Dataset& ds, const ImageSource& images, const InspectOptions& opt,
                    Progress* progress = nullptr);

}  // namespace vigil::data

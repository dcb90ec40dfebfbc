#pragma once
/// Synthetic datasets for tests and demos: textured backgrounds with drawn shapes, one shape per class, with
/// exact tight boxes. The same options (seed included) always produce the same bytes.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "vigil/core/progress.h"

namespace vigil::data {

struct SynthOptions {
  std::string task = "detection";  ///< "detection" (COCO) or "classification" (class folders)
  int images = 64;
  int width = 320, height = 240;
  int classes = 3;              ///< shapes used, in order: circle, square, triangle, cross, ring, ...
  int max_objects = 4;          ///< detection: objects per non-empty image are 1..max_objects
  double empty_fraction = 0.1;  ///< detection: probability that an image has no object
  uint64_t seed = 0;

  template <class V>
  void visit(V& v) {
    v("task", task, "detection or classification");
    v("images", images, "number of images");
    v("width", width, "image width in pixels");
    v("height", height, "image height in pixels");
    v("classes", classes, "number of classes (shapes)");
    v("max_objects", max_objects, "detection: most objects in one image");
    v("empty_fraction", empty_fraction, "detection: fraction of images without objects");
    v("seed", seed, "random seed; the same seed gives the same files");
  }
  void validate() const;
};

/// Names of the shapes synthesize() can draw, in class order.
const std::vector<std::string>& synth_class_names();

/// Writes a dataset to `out` (created if needed) and returns its format name. Detection: COCO, i.e.
/// out/images/NNNNNN.jpg + out/annotations.json ("coco"). Classification: out/<class>/NNNNNN.jpg
/// ("imagefolder"). Throws IoError when a file cannot be written.
std::string synthesize(const SynthOptions& o, const std::filesystem::path& out, Progress* progress = nullptr);

}  // namespace vigil::data

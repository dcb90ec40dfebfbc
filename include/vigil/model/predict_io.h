#pragma once
/// What `vigil predict` reads and writes around a Predictor: the input list (files, folders, list files),
/// deterministic shards, and the output records (JSON lines, COCO results, names of drawn images).

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>
#include <utility>
#include <vector>

#include "vigil/model/predict.h"

namespace vigil::model {

/// True for the image extensions folders are searched for (.jpg .jpeg .png .bmp .webp .tif .tiff),
/// case-insensitively.
bool is_image_extension(const std::filesystem::path& path);

/// Expands paths into the sorted, de-duplicated list of images to predict. A path is a file (taken whatever
/// its extension), a folder (searched recursively for image extensions) or `@FILE`, a list file like those in
/// `list_files`: one path per line (files or folders, relative to the current directory), blank lines and
/// `#` comments ignored. A path given on the command line that does not exist is a NotFound error; one inside
/// a list file is kept and reported as unreadable when predicted. No image at all -> DataError.
/// PredictInput::index is the position in the returned list.
std::vector<PredictInput> collect_inputs(const std::vector<std::string>& paths,
                                         const std::vector<std::string>& list_files);

/// "i/n" (0 <= i < n) -> {i, n}; anything else -> InvalidArgument.
std::pair<int, int> parse_shard(const std::string& text);

/// Every n-th input starting at i (inputs are sorted, so shards of one list never overlap and cover it).
std::vector<PredictInput> shard_inputs(const std::vector<PredictInput>& inputs, int index, int count);

/// One JSON line: classifiers {"image", "width", "height", "label", "class_id", "score", "probs": {name: p}};
/// detectors {"image", "width", "height", "detections": [{"box": [x1, y1, x2, y2], "score", "label",
/// "class_id"}]}. Floats are written with float precision.
nlohmann::ordered_json prediction_json(const Prediction& prediction, const ModelInfo& info);

/// COCO results entries of one image: {"image_id", "category_id" (the label index), "bbox": [x, y, w, h],
/// "score"} per box.
std::vector<nlohmann::ordered_json> coco_results(const Prediction& prediction, int64_t image_id);

/// COCO image ids for a full (unsharded) input list: the numeric file stems when every stem is a distinct
/// integer (COCO's own file names), else the input positions.
std::vector<int64_t> coco_image_ids(const std::vector<PredictInput>& inputs);

/// File names for drawn images, one per input of the full (unsharded) list: the input's file name, or, when
/// another input shares it, the name with a short hash of the full path appended; extensions other than
/// .jpg/.jpeg/.png become .png.
std::vector<std::string> drawn_file_names(const std::vector<PredictInput>& inputs);

}  // namespace vigil::model

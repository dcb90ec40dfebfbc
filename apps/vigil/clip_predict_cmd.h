#pragma once
// `vigil predict` with a clip classifier: windows of T frames cut from video files and frame folders, one
// result per window.

#include <functional>
#include <string>
#include <vector>

#include "vigil/data/clips.h"
#include "vigil/model/model_file.h"
#include "vigil/model/predict.h"

namespace vigil::cli {

/// How windows are cut (the window length is the model file's clip_length).
struct ClipPredictSettings {
  int stride = 0;        ///< frames between window starts; 0 = the clip length (no overlap)
  int frame_stride = 1;  ///< videos: take every k-th frame
  std::string pattern = data::kDefaultFramePattern;  ///< frame folders: group 1 = clip id, 2 = frame number
};

/// Totals of a clip prediction run.
struct ClipPredictSummary {
  size_t sources = 0, windows = 0, frames = 0;
};

/// Predicts every window of each path: a folder is a set of frames grouped into clips by the pattern (every
/// clip gives its windows; a clip shorter than T one window padded with its last frame); any other file is
/// read as a video (cv::VideoCapture). Hands one JSON object per window to `emit`, in path, clip and time
/// order: source, clip (folders), window, frames (numbers in the clip, or indices in the video), padded,
/// label, class_id, score, probs. An image file alone is refused (one frame is not a clip); a video that
/// cannot be opened is a DataError, a missing path NotFound.
ClipPredictSummary predict_clip_paths(model::LoadedModel model, const std::vector<std::string>& paths,
                                      const model::PredictOptions& options,
                                      const ClipPredictSettings& settings,
                                      const std::function<void(const std::string& json)>& emit);

}  // namespace vigil::cli

#include "clip_predict_cmd.h"

#include <fmt/format.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cstdlib>
#include <map>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/data/clip_loader.h"
#include "vigil/model/clip_predict.h"
#include "vigil/model/predict_io.h"

namespace vigil::cli {
namespace {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

constexpr size_t kFolderCacheBytes = size_t{512} << 20;

/// A float as the shortest decimal that reads back to it (as prediction_json writes scores).
double tidy(float value) {
  return std::strtod(fmt::format("{}", value).c_str(), nullptr);
}

void add_result(ordered_json& j, const model::ClipPrediction& p, const model::ModelInfo& info) {
  j["label"] = p.label;
  j["class_id"] = p.class_id;
  j["score"] = tidy(p.score);
  ordered_json probs = ordered_json::object();
  for (size_t k = 0; k < p.probs.size(); ++k)
    probs[k < info.class_names.size() ? info.class_names[k] : fmt::format("class_{}", k)] = tidy(p.probs[k]);
  j["probs"] = std::move(probs);
}

/// A folder of frames: every image under it, grouped into clips by the pattern.
void predict_folder(model::ClipPredictor& predictor, const fs::path& folder, const model::PredictOptions& po,
                    const ClipPredictSettings& settings, const std::function<void(const std::string&)>& emit,
                    ClipPredictSummary& summary) {
  data::Dataset ds;
  ds.task = data::Task::kClassification;
  ds.root = folder;
  ds.classes = predictor.info().class_names;
  for (const auto& rel : list_files_recursive(folder)) {
    if (!model::is_image_extension(rel)) continue;
    data::Sample s;
    s.file = to_utf8(rel);
    s.label = 0;  // unknown: one stand-in label, so a clip is one segment and its windows run through it all
    ds.samples.push_back(std::move(s));
  }
  if (ds.samples.empty())
    throw DataError(fmt::format("{}: no image files (frames) in this folder", to_utf8(folder)));
  data::ClipOptions co;
  co.pattern = settings.pattern;
  co.clip_length = predictor.clip_length();
  co.stride = settings.stride;
  co.short_segments = "pad";  // a clip shorter than T still gets a result
  const data::ClipGrouping g = data::group_clips(ds, co);
  std::vector<int> windows(g.windows.size());
  for (size_t w = 0; w < windows.size(); ++w) windows[w] = static_cast<int>(w);
  data::LoaderOptions lo;
  lo.batch_size = po.batch_size;
  lo.threads = po.decode_threads;
  lo.prefetch_batches = std::max(1, po.prefetch_batches);
  lo.shuffle = false;
  lo.augment = false;
  const auto& pre = predictor.preprocess_options();
  lo.image_width = pre.width;
  lo.image_height = pre.height;
  lo.mean = pre.mean;
  lo.std = pre.std;
  lo.normalize = true;
  data::ClipLoader loader(ds, nullptr, g, windows, lo, {},
                          std::make_shared<data::FrameCache>(kFolderCacheBytes));
  std::vector<int> window_in_clip(g.windows.size());
  std::map<int, int> per_clip;
  for (size_t w = 0; w < g.windows.size(); ++w)
    window_in_clip[w] = per_clip[g.segments[g.windows[w].segment].clip]++;
  while (auto batch = loader.next()) {
    const auto predictions = predictor.predict(batch->images);
    for (size_t i = 0; i < batch->size(); ++i) {
      const int w = batch->indices[i];
      const auto& win = g.windows[w];
      const auto& clip = g.clips[g.segments[win.segment].clip];
      ordered_json j;
      j["source"] = to_utf8(folder);
      j["clip"] = clip.id;
      j["window"] = window_in_clip[w];
      ordered_json frames = ordered_json::array();
      for (int s : win.samples) {
        const auto k = std::find(clip.samples.begin(), clip.samples.end(), s) - clip.samples.begin();
        frames.push_back(clip.frames[static_cast<size_t>(k)]);
      }
      j["frames"] = std::move(frames);
      j["first"] = ds.samples[win.samples.front()].file;
      j["last"] = ds.samples[win.samples.back()].file;
      j["padded"] = win.padded;
      add_result(j, predictions[i], predictor.info());
      emit(j.dump());
      ++summary.windows;
    }
  }
  if (loader.skipped() > 0) {
    std::string files;
    for (const auto& f : loader.skipped_frames()) files += "\n  " + f;
    throw DataError(fmt::format("{}: {} window(s) not predicted, frames unreadable:{}", to_utf8(folder),
                                loader.skipped(), files));
  }
  summary.frames += ds.samples.size();
}

void predict_video(model::ClipPredictor& predictor, const fs::path& video, const model::PredictOptions& po,
                   const ClipPredictSettings& settings, const std::function<void(const std::string&)>& emit,
                   ClipPredictSummary& summary) {
  data::VideoClipOptions vo;
  vo.clip_length = predictor.clip_length();
  vo.frame_stride = settings.frame_stride;
  vo.window_stride = settings.stride;
  vo.short_video = "pad";
  std::vector<torch::Tensor> pending;
  std::vector<ordered_json> heads;
  auto flush = [&] {
    if (pending.empty()) return;
    const auto predictions = predictor.predict(torch::stack(pending));
    for (size_t i = 0; i < pending.size(); ++i) {
      add_result(heads[i], predictions[i], predictor.info());
      emit(heads[i].dump());
      ++summary.windows;
    }
    pending.clear();
    heads.clear();
  };
  int window = 0;
  data::read_video_clips(video, vo, [&](data::VideoClip&& clip) {
    std::vector<torch::Tensor> frames;
    for (const auto& f : clip.frames) frames.push_back(predictor.preprocess(f));
    pending.push_back(torch::stack(frames));
    ordered_json j;
    j["source"] = to_utf8(video);
    j["window"] = window++;
    j["frames"] = clip.frame_indices;
    j["padded"] = clip.padded;
    heads.push_back(std::move(j));
    summary.frames += clip.frames.size() - static_cast<size_t>(clip.padded);
    if (pending.size() >= static_cast<size_t>(po.batch_size)) flush();
    return true;
  });
  flush();
  if (window == 0) throw DataError(fmt::format("{}: no frame could be read from this video", to_utf8(video)));
}

}  // namespace

ClipPredictSummary predict_clip_paths(model::LoadedModel model, const std::vector<std::string>& paths,
                                      const model::PredictOptions& options,
                                      const ClipPredictSettings& settings,
                                      const std::function<void(const std::string& json)>& emit) {
  VIGIL_CHECK(!paths.empty(), "expected video files or folders of frames, got none");
  VIGIL_CHECK(settings.stride >= 0, "expected --clip-stride >= 0 (0: the clip length), got {}",
              settings.stride);
  VIGIL_CHECK(settings.frame_stride >= 1, "expected --frame-stride >= 1, got {}", settings.frame_stride);
  model::ClipPredictor predictor(std::move(model), options);
  ClipPredictSummary summary;
  for (const auto& p : paths) {
    const fs::path path(p);
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
      predict_folder(predictor, path, options, settings, emit, summary);
    } else {
      if (!fs::exists(path, ec)) throw NotFound(fmt::format("{}: no such file or directory", p));
      VIGIL_CHECK(!model::is_image_extension(path),
                  "expected a video file or a folder of frames for clip model '{}' (windows of {} frames), "
                  "got the single image {}",
                  predictor.info().arch, predictor.clip_length(), p);
      predict_video(predictor, path, options, settings, emit, summary);
    }
    ++summary.sources;
  }
  return summary;
}

}  // namespace vigil::cli

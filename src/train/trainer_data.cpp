#include "trainer_data.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <unordered_map>

#include "vigil/core/error.h"
#include "vigil/core/hash.h"
#include "vigil/core/strings.h"
#include "vigil/data/augment.h"
#include "vigil/data/split.h"

namespace vigil::train::detail {
namespace {

constexpr uint64_t kResampleStream = 0x5245534D504C45ull;

const std::vector<std::string>& split_list(const data::SplitFiles& files, const std::string& which) {
  if (which == "train") return files.train;
  if (which == "val") return files.val;
  return files.test;
}

/// Group of a training sample for balancing: its label (classification) or, for detection, the rarest class
/// in the image; images without objects form their own group (-1).
std::vector<int> balance_groups(const data::Dataset& ds, const std::vector<int>& train) {
  std::map<int, size_t> images_with;
  for (int i : train) {
    std::set<int> present;
    for (const auto& b : ds.samples[i].boxes) present.insert(b.class_id);
    for (int c : present) ++images_with[c];
  }
  std::vector<int> groups;
  groups.reserve(train.size());
  for (int i : train) {
    const auto& s = ds.samples[i];
    if (ds.task == data::Task::kClassification) {
      groups.push_back(s.label);
      continue;
    }
    int rarest = -1;
    for (const auto& b : s.boxes) {
      if (rarest < 0 || images_with[b.class_id] < images_with[rarest]) rarest = b.class_id;
    }
    groups.push_back(rarest);
  }
  return groups;
}

void fill_balance(RunData& run, const TrainOptions& options) {
  if (options.data.balance == "none") return;
  std::vector<int> groups;
  if (run.clips) {
    for (int w : run.train) groups.push_back(run.clips->windows[w].label);
  } else {
    groups = balance_groups(run.ds, run.train);
  }
  std::map<int, size_t> count;
  for (int g : groups) ++count[g];
  if (options.data.balance == "weights") {
    // sklearn's "balanced": n_samples / (n_classes * count); a class absent from training gets weight 0.
    const double n = static_cast<double>(run.train.size());
    const double k = static_cast<double>(run.ds.classes.size());
    run.weights.assign(run.ds.classes.size(), 0.0);
    for (size_t c = 0; c < run.ds.classes.size(); ++c) {
      auto it = count.find(static_cast<int>(c));
      if (it != count.end()) run.weights[c] = n / (k * static_cast<double>(it->second));
    }
    return;
  }
  run.sample_p.reserve(groups.size());
  for (int g : groups) run.sample_p.push_back(1.0 / static_cast<double>(count[g]));
}

void check_task(const RunData& run, const TrainOptions& options, const std::string& display) {
  const auto& spec = nn::find_model(options.model.arch);
  if (spec.task != run.ds.task) {
    throw InvalidArgument(fmt::format("expected a {} dataset for model '{}', got {} ({} dataset)",
                                      data::task_name(spec.task), spec.name, display,
                                      data::task_name(run.ds.task)));
  }
}

/// Refuses a split that puts frames of one clip in both lists: a clip model validated on clips it trained on
/// measures memory, not skill (the accident data's train/ and val/ folders do exactly that).
void check_clips_whole(const RunData& run, const data::ClipGrouping& g, const TrainOptions& options,
                       const std::string& where) {
  const auto& d = options.data;
  std::vector<size_t> in_train(g.clips.size()), in_val(g.clips.size());
  for (int i : run.train) ++in_train[static_cast<size_t>(g.clip_of[i])];
  for (int i : run.val) ++in_val[static_cast<size_t>(g.clip_of[i])];
  std::vector<std::string> leaks;
  for (size_t c = 0; c < g.clips.size(); ++c) {
    if (in_train[c] > 0 && in_val[c] > 0)
      leaks.push_back(
          fmt::format("{} ({} in '{}', {} in '{}')", g.clips[c].id, in_train[c], d.train, in_val[c], d.val));
  }
  if (leaks.empty()) return;
  const size_t shown = std::min<size_t>(leaks.size(), 6);
  throw DataError(fmt::format(
      "{} puts frames of {} of its {} clips in both its '{}' and '{}' lists: {}{}. A clip model validated "
      "on clips it trained on measures memory, not skill. Make a split that keeps every clip whole (same "
      "clips.pattern): `vigil data split {} --group-clips --name clips`, then train with data.split: clips",
      where, leaks.size(), g.clips.size(), d.train, d.val,
      join(std::vector<std::string>(leaks.begin(), leaks.begin() + shown), "; "),
      leaks.size() > shown ? fmt::format("; ... and {} more", leaks.size() - shown) : "", run.version.name));
}

/// The windows whose every frame is in `samples`, in grouping order.
std::vector<int> windows_within(const data::ClipGrouping& g, const std::vector<int>& samples, size_t& cut) {
  std::vector<char> listed(g.clip_of.size(), 0);
  for (int i : samples) listed[static_cast<size_t>(i)] = 1;
  std::vector<int> out;
  for (size_t w = 0; w < g.windows.size(); ++w) {
    size_t in = 0;
    for (int i : g.windows[w].samples) in += listed[static_cast<size_t>(i)];
    if (in == g.windows[w].samples.size()) {
      out.push_back(static_cast<int>(w));
    } else if (in > 0) {
      ++cut;  // the split lists part of it (its other frames are in no list, or in the test list)
    }
  }
  return out;
}

/// Clip models: groups the dataset's frames into clips and windows and turns the split's sample lists into
/// window lists.
void group_run_clips(RunData& run, const TrainOptions& options, const std::string& where) {
  const auto& d = options.data;
  auto g = std::make_shared<data::ClipGrouping>(data::group_clips(run.ds, d.clips));
  check_clips_whole(run, *g, options, where);
  size_t cut = 0;
  const size_t train_frames = run.train.size(), val_frames = run.val.size();
  run.train = windows_within(*g, run.train, cut);
  run.val = windows_within(*g, run.val, cut);
  spdlog::info("clips of {}: {}; windows of {} frames every {}: {} train ({} frames), {} val ({} frames){}",
               where, g->summary().dump(), d.clips.clip_length, d.clips.effective_stride(), run.train.size(),
               train_frames, run.val.size(), val_frames,
               cut > 0 ? fmt::format(", {} windows with frames outside both lists left out", cut) : "");
  for (const auto& [list, name] : {std::pair{&run.train, &d.train}, std::pair{&run.val, &d.val}}) {
    if (list->size() >= (name == &d.train ? 2u : 1u)) continue;
    throw DataError(fmt::format(
        "{} gives {} window(s) of {} frames in its '{}' list ({} segments shorter than that were {}); lower "
        "data.clips.clip_length, set data.clips.short_segments: pad, or split with more clips there",
        where, list->size(), d.clips.clip_length, *name, g->short_segments,
        d.clips.short_segments == "drop" ? "dropped" : "padded"));
  }
  run.frame_cache = std::make_shared<data::FrameCache>(static_cast<size_t>(d.clip_cache_mb) << 20);
  run.clips = std::move(g);
}

}  // namespace

RunData load_run_data(const Workspace& ws, const TrainOptions& options, const std::string& dataset_ref) {
  const auto& d = options.data;
  data::DatasetStore store(ws);
  RunData run;
  run.version = store.resolve(dataset_ref);
  run.ds = store.load(run.version);
  run.images = store.image_source();
  const std::string display = run.version.name + "@" + run.version.short_id();
  if (run.ds.samples.empty()) throw DataError(fmt::format("dataset {} has no samples", display));
  if (run.ds.classes.empty()) throw DataError(fmt::format("dataset {} has no classes", display));
  check_task(run, options, display);
  const auto files = store.load_split(run.version, d.split);
  const std::string where = fmt::format("split '{}' of {}", d.split, display);
  run.train = data::split_sample_indices(run.ds, split_list(files, d.train), where);
  run.val = data::split_sample_indices(run.ds, split_list(files, d.val), where);
  if (nn::find_model(options.model.arch).clip_length > 0) group_run_clips(run, options, where);
  if (run.train.size() < 2) {
    throw DataError(
        fmt::format("{} has {} sample(s) in its '{}' list; training needs at least 2 (make a split "
                    "with more data: `vigil data split {} --name {}`)",
                    where, run.train.size(), d.train, run.version.name, d.split));
  }
  if (run.val.empty()) {
    throw DataError(
        fmt::format("{} has no samples in its '{}' list, so nothing to validate on; split with a "
                    "validation share: `vigil data split {} --val 0.2 --name {}`",
                    where, d.val, run.version.name, d.split));
  }
  fill_balance(run, options);
  return run;
}

int classifier_input_size(const TrainOptions& options, const nn::ModelSpec& spec) {
  return options.data.image_size > 0 ? options.data.image_size : spec.preprocess.width;
}

data::LoaderOptions loader_options(const TrainOptions& options, const nn::ModelSpec& spec, bool train,
                                   size_t samples) {
  const auto& d = options.data;
  data::LoaderOptions lo;
  lo.batch_size = train || d.val_batch_size == 0 ? d.batch_size : d.val_batch_size;
  lo.threads = d.threads > 0 ? d.threads : options.threads;
  lo.prefetch_batches = d.prefetch_batches;
  lo.shuffle = train;
  // A last batch of one sample breaks batch norm in train mode; dropping the remainder of a shuffled epoch
  // loses nothing for good (the next epoch draws other samples).
  lo.drop_last = train && samples > static_cast<size_t>(lo.batch_size);
  lo.seed = options.seed;
  lo.augment = train && d.augment;
  lo.cache = d.cache;
  lo.cache_mb = d.cache_mb;
  if (spec.task == data::Task::kClassification) {
    lo.image_width = lo.image_height = classifier_input_size(options, spec);
    lo.mean = spec.preprocess.mean;
    lo.std = spec.preprocess.std;
    lo.normalize = true;
  } else {
    lo.min_size = d.min_size;
    lo.max_size = d.max_size;
    lo.normalize = false;  // detectors normalise inside, like torchvision
    // Training images are cached at the size the detector resizes them to, so the augmentations work on
    // the image the model will see rather than on a full-size one.
    // SSD squeezes every image to one square (min = max): only its short side is bounded, so neither axis
    // is shrunk below what the squeeze keeps.
    // With several training sizes (model.detector.min_size) the cache keeps the largest.
    auto pre = nn::model_preprocess(spec.name, options.model.detector);
    for (const auto s : options.model.detector.min_size)
      pre.min_size = std::max(pre.min_size, static_cast<int>(s));
    lo.cache_min_size = pre.min_size;
    lo.cache_max_size = pre.max_size == pre.min_size ? 0 : pre.max_size;
  }
  return lo;
}

RunLoader::RunLoader(std::unique_ptr<data::DataLoader> images) : images_(std::move(images)) {}

RunLoader::RunLoader(std::unique_ptr<data::ClipLoader> clips, std::shared_ptr<data::FrameCache> cache)
    : clips_(std::move(clips)), cache_(std::move(cache)) {}

RunLoader::~RunLoader() {
  if (!cache_) return;
  const auto s = cache_->stats();
  if (s.hits + s.misses == 0) return;
  spdlog::info("clip frames: {} kept in memory ({:.0f} of {:.0f} MiB), {} reads from memory, {} decodes",
               s.frames, static_cast<double>(s.bytes) / (1 << 20), static_cast<double>(s.budget) / (1 << 20),
               s.hits, s.misses);
}

void RunLoader::start_epoch(int epoch) {
  if (images_) {
    images_->start_epoch(epoch);
  } else {
    clips_->start_epoch(epoch);
  }
}

std::optional<data::Batch> RunLoader::next() {
  return images_ ? images_->next() : clips_->next();
}

size_t RunLoader::batches_per_epoch() const {
  return images_ ? images_->batches_per_epoch() : clips_->batches_per_epoch();
}

size_t RunLoader::skipped() const {
  return images_ ? images_->skipped() : clips_->skipped();
}

std::unique_ptr<RunLoader> make_run_loader(const RunData& run, const TrainOptions& options,
                                           const data::LoaderOptions& lo, bool train) {
  const auto& d = options.data;
  const std::vector<int>& list = train ? run.train : run.val;
  if (run.clips) {
    auto loader = std::make_unique<data::ClipLoader>(run.ds, run.images, *run.clips, list, lo,
                                                     d.classification_augment, run.frame_cache);
    // Only the training loader reports the cache: both share it, and training outlives validation.
    return std::make_unique<RunLoader>(std::move(loader), train ? run.frame_cache : nullptr);
  }
  if (!train)
    return std::make_unique<RunLoader>(std::make_unique<data::DataLoader>(run.ds, run.images, list, lo));
  return std::make_unique<RunLoader>(std::make_unique<data::DataLoader>(
      run.ds, run.images, list, lo, d.detection_augment, d.classification_augment));
}

data::Dataset resampled_epoch(const RunData& run, uint64_t seed, int epoch) {
  VIGIL_ASSERT(run.sample_p.size() == run.train.size(), "resampling weights missing");
  std::vector<double> cumulative(run.sample_p.size());
  double total = 0;
  for (size_t i = 0; i < run.sample_p.size(); ++i) cumulative[i] = total += run.sample_p[i];
  std::mt19937_64 rng(splitmix64(splitmix64(seed, kResampleStream), static_cast<uint64_t>(epoch)));
  data::Dataset out;
  out.task = run.ds.task;
  out.format = run.ds.format;
  out.root = run.ds.root;
  out.classes = run.ds.classes;
  out.samples.reserve(run.train.size());
  for (size_t n = 0; n < run.train.size(); ++n) {
    const double u = data::uniform01(rng) * total;
    auto it = std::upper_bound(cumulative.begin(), cumulative.end(), u);
    const size_t pick = std::min(static_cast<size_t>(it - cumulative.begin()), cumulative.size() - 1);
    out.samples.push_back(run.ds.samples[run.train[pick]]);
  }
  return out;
}

}  // namespace vigil::train::detail

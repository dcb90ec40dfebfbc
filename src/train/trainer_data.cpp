#include "trainer_data.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <unordered_map>

#include "vigil/core/error.h"
#include "vigil/core/hash.h"
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
  const auto groups = balance_groups(run.ds, run.train);
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
  if (spec.task == data::Task::kClassification) {
    lo.image_width = lo.image_height = classifier_input_size(options, spec);
    lo.mean = spec.preprocess.mean;
    lo.std = spec.preprocess.std;
    lo.normalize = true;
  } else {
    lo.min_size = d.min_size;
    lo.max_size = d.max_size;
    lo.normalize = false;  // detectors normalise inside, like torchvision
  }
  return lo;
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

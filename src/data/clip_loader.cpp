#include "vigil/data/clip_loader.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>

#include "vigil/core/error.h"
#include "vigil/core/hash.h"
#include "vigil/core/thread_pool.h"
#include "vigil/image/decode.h"

namespace vigil::data {

namespace {

// Random streams of their own, apart from DataLoader's, so a window and a sample with one index differ.
constexpr uint64_t kWindowShuffleStream = 0x434C495053485546ull;
constexpr uint64_t kWindowStream = 0x434C495057494E44ull;
constexpr size_t kKeptSkipReasons = 20;

/// BGR uint8 HWC -> RGB float CHW into `dst` (3 * h * w floats), with the arithmetic of loader.cpp's
/// to_tensor, so a window's frame is bit-identical to classification_input() of the same image.
void bgr_to_chw(const cv::Mat& bgr, const PreprocessOptions& o, float* dst) {
  const int h = bgr.rows, w = bgr.cols;
  std::vector<cv::Mat> planes;
  cv::split(bgr, planes);
  for (int c = 0; c < 3; ++c) {
    double alpha = 1.0 / 255, beta = 0;
    if (o.normalize) {
      alpha /= o.std[c];
      beta = -o.mean[c] / o.std[c];
    }
    cv::Mat plane(h, w, CV_32F, dst + static_cast<int64_t>(c) * h * w);
    planes[2 - c].convertTo(plane, CV_32F, alpha, beta);
  }
}

/// One window, converted; `ok` false when it was skipped.
struct Item {
  bool ok = false;
  int window = -1;
  torch::Tensor frames;  ///< [T, 3, H, W]
  int64_t target = 0;
};

struct Slot {
  std::vector<Item> items;
  size_t remaining = 0;
  bool ready = false;
  Batch batch;
};

}  // namespace

// ---- FrameCache ------------------------------------------------------------------------------------------

struct FrameCache::Impl {
  mutable std::mutex mu;
  std::unordered_map<int, cv::Mat> frames;
  size_t budget = 0, bytes = 0, refused = 0;
  mutable std::atomic<size_t> hits{0}, misses{0};
};

FrameCache::FrameCache(size_t budget_bytes) : impl_(std::make_unique<Impl>()) {
  impl_->budget = budget_bytes;
}

FrameCache::~FrameCache() = default;

cv::Mat FrameCache::get(int sample, cv::Size size) const {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    auto it = impl_->frames.find(sample);
    if (it != impl_->frames.end() && it->second.size() == size) {
      ++impl_->hits;
      return it->second;  // shares the pixels; the reference count is atomic
    }
  }
  ++impl_->misses;
  return {};
}

bool FrameCache::put(int sample, const cv::Mat& frame) {
  VIGIL_ASSERT(frame.type() == CV_8UC3 && frame.isContinuous(),
               "FrameCache takes continuous 8-bit BGR frames");
  const size_t n = frame.total() * frame.elemSize();
  std::lock_guard<std::mutex> lk(impl_->mu);
  if (impl_->frames.count(sample)) return true;  // another worker decoded it too: same pixels
  if (impl_->bytes + n > impl_->budget) {
    ++impl_->refused;
    return false;
  }
  impl_->frames.emplace(sample, frame);
  impl_->bytes += n;
  return true;
}

FrameCache::Stats FrameCache::stats() const {
  std::lock_guard<std::mutex> lk(impl_->mu);
  Stats s;
  s.frames = impl_->frames.size();
  s.bytes = impl_->bytes;
  s.budget = impl_->budget;
  s.hits = impl_->hits.load();
  s.misses = impl_->misses.load();
  s.refused = impl_->refused;
  return s;
}

// ---- ClipLoader ------------------------------------------------------------------------------------------

struct ClipLoader::Impl {
  const Dataset& ds;
  ImageSource images;
  const ClipGrouping& grouping;
  std::vector<int> windows;
  LoaderOptions o;
  PreprocessOptions pre;
  ClassificationAugmentOptions ca;
  std::shared_ptr<FrameCache> cache;
  int frames_per_window = 0;

  std::mutex mu;
  std::condition_variable work_cv, ready_cv;
  std::vector<std::thread> workers;
  bool stop = false;
  bool started = false;
  uint64_t generation = 0;  ///< bumped by start_epoch so results of an abandoned epoch are discarded
  int epoch = 0;
  std::vector<int> order;  ///< this epoch's window indices, in delivery order
  size_t epoch_windows = 0;
  size_t next_task = 0;
  size_t deliver = 0;
  std::map<size_t, Slot> slots;
  std::exception_ptr error;

  mutable std::mutex bad_mu;  ///< guards the two below
  std::set<int> bad_samples;  ///< frames already found unusable: later windows skip them without a retry
  std::vector<std::string> skip_reasons;
  std::atomic<size_t> skipped{0};

  Impl(const Dataset& d, ImageSource im, const ClipGrouping& g, std::vector<int> w, LoaderOptions lo,
       ClassificationAugmentOptions cao, std::shared_ptr<FrameCache> c)
      : ds(d),
        images(std::move(im)),
        grouping(g),
        windows(std::move(w)),
        o(std::move(lo)),
        pre(o.preprocess(false)),
        ca(cao),
        cache(std::move(c)) {}

  size_t batches() const {
    const size_t n = shard_size(windows.size(), o.shard_count), bs = static_cast<size_t>(o.batch_size);
    return o.drop_last ? n / bs : (n + bs - 1) / bs;
  }
  size_t batch_len(size_t b) const {
    const size_t bs = static_cast<size_t>(o.batch_size);
    return std::min(bs, epoch_windows - b * bs);
  }
  bool has_task() const {
    return started && next_task < epoch_windows &&
           next_task / static_cast<size_t>(o.batch_size) < deliver + static_cast<size_t>(o.prefetch_batches);
  }

  void reset_epoch(int e);
  void worker_loop();
  void finish_item(std::unique_lock<std::mutex>& lk, uint64_t gen, size_t b, size_t j, Item item);
  Item load(int window, int e);
  cv::Mat frame(int sample);
  Batch collate(std::vector<Item> items) const;
};

void ClipLoader::Impl::reset_epoch(int e) {
  ++generation;
  epoch = e;
  slots.clear();
  next_task = 0;
  deliver = 0;
  error = nullptr;
  started = true;
  order = windows;
  if (o.shuffle) {
    // Fisher-Yates with our own draws, as DataLoader: std::shuffle differs between standard libraries.
    std::mt19937_64 rng(splitmix64(splitmix64(o.seed, kWindowShuffleStream), static_cast<uint64_t>(e)));
    for (size_t i = order.size(); i > 1; --i) {
      const auto j = std::min(i - 1, static_cast<size_t>(uniform01(rng) * static_cast<double>(i)));
      std::swap(order[i - 1], order[j]);
    }
  }
  order = shard_of(order, o.shard_rank, o.shard_count);
  epoch_windows = std::min(order.size(), batches() * static_cast<size_t>(o.batch_size));
}

void ClipLoader::Impl::worker_loop() {
  std::unique_lock<std::mutex> lk(mu);
  for (;;) {
    work_cv.wait(lk, [&] { return stop || has_task(); });
    if (stop) return;
    const size_t t = next_task++;
    const size_t bs = static_cast<size_t>(o.batch_size), b = t / bs, j = t % bs;
    Slot& slot = slots[b];
    if (slot.items.empty()) {
      slot.items.resize(batch_len(b));
      slot.remaining = slot.items.size();
    }
    const uint64_t gen = generation;
    const int window = order[t], e = epoch;
    lk.unlock();
    Item item;
    try {
      item = load(window, e);
    } catch (...) {
      lk.lock();
      if (gen == generation && !error) error = std::current_exception();
      ready_cv.notify_all();
      continue;
    }
    lk.lock();
    finish_item(lk, gen, b, j, std::move(item));
  }
}

void ClipLoader::Impl::finish_item(std::unique_lock<std::mutex>& lk, uint64_t gen, size_t b, size_t j,
                                   Item item) {
  if (gen != generation) return;
  Slot& slot = slots[b];
  slot.items[j] = std::move(item);
  if (--slot.remaining > 0) return;
  std::vector<Item> items = std::move(slot.items);
  lk.unlock();
  Batch batch;
  std::exception_ptr err;
  try {
    batch = collate(std::move(items));
  } catch (...) {
    err = std::current_exception();
  }
  lk.lock();
  if (gen != generation) return;
  if (err) error = err;
  Slot& done = slots[b];
  done.batch = std::move(batch);
  done.ready = true;
  ready_cv.notify_all();
}

/// The frame of `sample` resized to the output size: from the cache, else decoded (and offered to it).
/// Throws DataError when the image cannot be used.
cv::Mat ClipLoader::Impl::frame(int sample) {
  const cv::Size size(o.image_width, o.image_height);
  if (cache) {
    cv::Mat hit = cache->get(sample, size);
    if (!hit.empty()) return hit;
  }
  const Sample& s = ds.samples[sample];
  const std::string file = images ? images(s).string() : (ds.root / s.file).string();
  image::Decoded dec = image::decode_file(file);
  if (!dec.ok()) throw DataError(fmt::format("{}: {}: {}", file, dec.error.kind_name(), dec.error.detail));
  // The validation input's resize (classification_input): bilinear, the whole image.
  cv::Mat small;
  cv::resize(dec.bgr, small, size, 0, 0, cv::INTER_LINEAR);
  if (cache) cache->put(sample, small);
  return small;
}

Item ClipLoader::Impl::load(int window, int e) {
  Item item;
  item.window = window;
  const ClipWindow& w = grouping.windows[window];
  const int n_classes = static_cast<int>(ds.classes.size());
  if (w.label < 0 || w.label >= n_classes) {
    throw DataError(fmt::format("window {} of clip '{}' has label {}, not a class index in [0, {})", window,
                                grouping.clips[grouping.segments[w.segment].clip].id, w.label, n_classes));
  }
  {
    std::lock_guard<std::mutex> lk(bad_mu);
    for (int s : w.samples) {
      if (bad_samples.count(s)) {
        ++skipped;
        return item;
      }
    }
  }
  const int64_t t = static_cast<int64_t>(w.samples.size()), h = o.image_height, wd = o.image_width;
  item.frames = torch::empty({t, 3, h, wd}, torch::kFloat32);
  float* out = item.frames.data_ptr<float>();
  // One draw per window: every frame gets a generator in the same state, so the same crop, flip, rotation
  // and brightness (the frames share one size, so the draws cannot diverge).
  const uint64_t seed = splitmix64(splitmix64(splitmix64(o.seed, kWindowStream), static_cast<uint64_t>(e)),
                                   static_cast<uint64_t>(window));
  for (int64_t k = 0; k < t; ++k) {
    const int sample = w.samples[static_cast<size_t>(k)];
    cv::Mat img;
    try {
      img = frame(sample);
    } catch (const DataError& ex) {
      // A bad frame must not end training, and must not vanish silently either.
      std::lock_guard<std::mutex> lk(bad_mu);
      if (bad_samples.insert(sample).second) {
        spdlog::warn("clip loader: skipping the windows of frame {}", ex.what());
        if (skip_reasons.size() < kKeptSkipReasons) skip_reasons.push_back(ex.what());
      }
      ++skipped;
      return Item{false, window, {}, 0};
    }
    if (o.augment && ca.enabled) {
      std::mt19937_64 rng(seed);
      img = augment_classification(img, ca, o.image_width, o.image_height, rng);
    }
    bgr_to_chw(img, pre, out + k * 3 * h * wd);
  }
  item.target = w.label;
  item.ok = true;
  return item;
}

Batch ClipLoader::Impl::collate(std::vector<Item> items) const {
  Batch batch;
  std::vector<torch::Tensor> clips;
  std::vector<int64_t> targets;
  for (auto& it : items) {
    if (!it.ok) continue;
    batch.indices.push_back(it.window);
    clips.push_back(std::move(it.frames));
    targets.push_back(it.target);
  }
  if (!clips.empty()) {
    batch.images = torch::stack(clips);
    batch.targets =
        torch::from_blob(targets.data(), {static_cast<int64_t>(targets.size())}, torch::kInt64).clone();
  }
  return batch;
}

ClipLoader::ClipLoader(const Dataset& ds, ImageSource images, const ClipGrouping& grouping,
                       std::vector<int> windows, LoaderOptions o, ClassificationAugmentOptions ca,
                       std::shared_ptr<FrameCache> cache) {
  o.validate();
  ca.validate();
  const int n = static_cast<int>(grouping.windows.size());
  for (int w : windows) VIGIL_CHECK(w >= 0 && w < n, "expected window indices in [0, {}), got {}", n, w);
  VIGIL_CHECK(grouping.clip_of.size() == ds.samples.size(),
              "expected a clip grouping of this dataset ({} samples), got one of {} samples",
              ds.samples.size(), grouping.clip_of.size());
  const size_t threads = o.threads > 0 ? static_cast<size_t>(o.threads) : hardware_threads();
  impl_ = std::make_unique<Impl>(ds, std::move(images), grouping, std::move(windows), std::move(o), ca,
                                 std::move(cache));
  impl_->workers.reserve(threads);
  for (size_t i = 0; i < threads; ++i) impl_->workers.emplace_back([this] { impl_->worker_loop(); });
}

ClipLoader::~ClipLoader() {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->stop = true;
  }
  impl_->work_cv.notify_all();
  for (auto& w : impl_->workers) w.join();
}

void ClipLoader::start_epoch(int epoch) {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->reset_epoch(epoch);
  }
  impl_->work_cv.notify_all();
}

std::optional<Batch> ClipLoader::next() {
  Impl& m = *impl_;
  std::unique_lock<std::mutex> lk(m.mu);
  if (!m.started) {
    m.reset_epoch(0);
    m.work_cv.notify_all();
  }
  for (;;) {
    if (m.deliver >= m.batches()) return std::nullopt;
    m.ready_cv.wait(lk, [&] {
      auto it = m.slots.find(m.deliver);
      return m.error || (it != m.slots.end() && it->second.ready);
    });
    if (m.error) std::rethrow_exception(std::exchange(m.error, nullptr));
    auto it = m.slots.find(m.deliver);
    Batch batch = std::move(it->second.batch);
    m.slots.erase(it);
    ++m.deliver;
    m.work_cv.notify_all();              // the prefetch window moved on
    if (batch.size() > 0) return batch;  // a batch whose every window was skipped is passed over
  }
}

size_t ClipLoader::batches_per_epoch() const {
  return impl_->batches();
}

size_t ClipLoader::skipped() const {
  return impl_->skipped.load();
}

std::vector<std::string> ClipLoader::skipped_frames() const {
  std::lock_guard<std::mutex> lk(impl_->bad_mu);
  return impl_->skip_reasons;
}

}  // namespace vigil::data

#include "vigil/data/loader.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <fstream>
#include <limits>
#include <map>
#include <mutex>
#include <thread>

#include "vigil/core/error.h"
#include "vigil/core/hash.h"
#include "vigil/core/thread_pool.h"
#include "vigil/image/decode.h"

namespace vigil::data {

namespace {

constexpr uint64_t kShuffleStream = 0x53485546464C45ull;  // keeps the shuffle apart from sample streams
constexpr uint64_t kMosaicStream = 0x4D4F53414943ull;     // a sample's mosaic draws, apart from its others

/// One decoded, augmented, converted sample; `ok` false when it was skipped.
struct Item {
  bool ok = false;
  int index = -1;
  torch::Tensor image, boxes, labels;
  int64_t target = 0;
};

/// A batch being assembled. Items are stored by position so the batch does not depend on finishing order.
struct Slot {
  std::vector<Item> items;
  size_t remaining = 0;
  bool ready = false;
  Batch batch;
};

/// The size torchvision's GeneralizedRCNNTransform resizes to. The scale is computed in float32 as there
/// (it divides tensors) and the output size is floor(size * scale) in double, as F.interpolate does.
cv::Size detection_size(int w, int h, int min_size, int max_size) {
  if (min_size <= 0 && max_size <= 0) return {w, h};
  const float short_side = static_cast<float>(std::min(w, h)), long_side = static_cast<float>(std::max(w, h));
  float scale = std::numeric_limits<float>::infinity();
  if (min_size > 0) scale = static_cast<float>(min_size) / short_side;
  if (max_size > 0) scale = std::min(scale, static_cast<float>(max_size) / long_side);
  const double s = scale;
  return {std::max(1, static_cast<int>(std::floor(w * s))), std::max(1, static_cast<int>(std::floor(h * s)))};
}

void resize_detection(cv::Mat& img, std::vector<Box>& boxes, int min_size, int max_size) {
  const cv::Size size = detection_size(img.cols, img.rows, min_size, max_size);
  if (size == img.size()) return;
  const float rx = static_cast<float>(size.width) / img.cols, ry = static_cast<float>(size.height) / img.rows;
  cv::resize(img, img, size, 0, 0, cv::INTER_LINEAR);
  for (auto& b : boxes) {
    b.x1 *= rx;
    b.x2 *= rx;
    b.y1 *= ry;
    b.y2 *= ry;
  }
}

/// BGR uint8 HWC -> RGB float CHW, scaled to 0..1 and optionally normalised, in one pass per channel written
/// straight into the tensor's memory.
torch::Tensor to_tensor(const cv::Mat& bgr, const PreprocessOptions& o) {
  const int h = bgr.rows, w = bgr.cols;
  auto t = torch::empty({3, h, w}, torch::kFloat32);
  std::vector<cv::Mat> planes;
  cv::split(bgr, planes);
  for (int c = 0; c < 3; ++c) {
    double alpha = 1.0 / 255, beta = 0;
    if (o.normalize) {
      alpha /= o.std[c];
      beta = -o.mean[c] / o.std[c];
    }
    cv::Mat dst(h, w, CV_32F, t.data_ptr<float>() + static_cast<int64_t>(c) * h * w);
    planes[2 - c].convertTo(dst, CV_32F, alpha, beta);  // convertTo keeps dst's buffer: same size and type
  }
  return t;
}

/// Clips boxes to the image and drops empty ones, with a warning: a box outside its image is a data error.
void sanitize_boxes(std::vector<Box>& boxes, int w, int h, const std::string& file) {
  const size_t before = boxes.size();
  for (auto& b : boxes) {
    b.x1 = std::clamp(b.x1, 0.0f, static_cast<float>(w));
    b.x2 = std::clamp(b.x2, 0.0f, static_cast<float>(w));
    b.y1 = std::clamp(b.y1, 0.0f, static_cast<float>(h));
    b.y2 = std::clamp(b.y2, 0.0f, static_cast<float>(h));
  }
  std::erase_if(boxes, [](const Box& b) { return b.width() <= 0 || b.height() <= 0; });
  if (boxes.size() != before) {
    spdlog::warn("loader: {}: dropped {} empty box(es) (outside the {}x{} image or degenerate)", file,
                 before - boxes.size(), w, h);
  }
}

/// Bytes of memory the system can still give (MemAvailable), 0 when unknown.
size_t available_memory() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  size_t kb = 0;
  std::string unit;
  while (in >> key >> kb >> unit) {
    if (key == "MemAvailable:") return kb * 1024;
  }
  return 0;
}

/// Decoded images by sample index, with the scale applied to them (so boxes follow). Filled by the workers on
/// first use, read lock-free afterwards would need care; a mutex is cheap beside a decode.
class ImageCache {
 public:
  struct Entry {
    cv::Mat bgr;
    float sx = 1, sy = 1;  ///< cached size / decoded size
    bool exact = false;    ///< classification without augmentation: already the output image
  };
  ImageCache(size_t samples, size_t budget) : entries_(samples), budget_(budget) {}

  bool get(int index, Entry& out) const {
    std::lock_guard<std::mutex> lk(mu_);
    const Entry& e = entries_[static_cast<size_t>(index)];
    if (e.bgr.empty()) return false;
    out = e;
    return true;
  }
  void put(int index, Entry e) {
    const size_t bytes = e.bgr.total() * e.bgr.elemSize();
    std::lock_guard<std::mutex> lk(mu_);
    Entry& slot = entries_[static_cast<size_t>(index)];
    if (!slot.bgr.empty() || bytes_ + bytes > budget_) return;  // full: later images are decoded each time
    bytes_ += bytes;
    ++count_;
    slot = std::move(e);
  }
  std::pair<size_t, size_t> size() const {
    std::lock_guard<std::mutex> lk(mu_);
    return {count_, bytes_};
  }

 private:
  mutable std::mutex mu_;
  std::vector<Entry> entries_;
  size_t budget_;
  size_t bytes_ = 0, count_ = 0;
};

void boxes_to_tensors(const std::vector<Box>& boxes, Item& item) {
  const auto n = static_cast<int64_t>(boxes.size());
  item.boxes = torch::empty({n, 4}, torch::kFloat32);
  item.labels = torch::empty({n}, torch::kInt64);
  float* pb = item.boxes.data_ptr<float>();
  int64_t* pl = item.labels.data_ptr<int64_t>();
  for (int64_t i = 0; i < n; ++i) {
    const Box& b = boxes[i];
    pb[4 * i + 0] = b.x1;
    pb[4 * i + 1] = b.y1;
    pb[4 * i + 2] = b.x2;
    pb[4 * i + 3] = b.y2;
    pl[i] = b.class_id + 1;  // torchvision detectors reserve 0 for background
  }
}

}  // namespace

void LoaderOptions::validate() const {
  VIGIL_CHECK(batch_size >= 1, "expected batch_size >= 1, got {}", batch_size);
  VIGIL_CHECK(threads >= 0 && threads <= 1024, "expected threads in [0, 1024], got {}", threads);
  VIGIL_CHECK(prefetch_batches >= 1, "expected prefetch_batches >= 1, got {}", prefetch_batches);
  VIGIL_CHECK(min_size >= 0 && max_size >= 0, "expected min_size and max_size >= 0, got {} and {}", min_size,
              max_size);
  VIGIL_CHECK(image_width >= 1 && image_height >= 1, "expected a positive image size, got {}x{}", image_width,
              image_height);
  VIGIL_CHECK(cache == "auto" || cache == "none", "expected cache auto or none, got '{}'", cache);
  VIGIL_CHECK(cache_mb >= 0 && cache_min_size >= 0 && cache_max_size >= 0,
              "expected cache_mb, cache_min_size and cache_max_size >= 0, got {}, {} and {}", cache_mb,
              cache_min_size, cache_max_size);
  VIGIL_CHECK(mean.size() == 3 && std.size() == 3, "expected 3 values in mean and std, got {} and {}",
              mean.size(), std.size());
  for (double s : std) VIGIL_CHECK(s > 0, "expected positive std values, got {}", s);
  VIGIL_CHECK(shard_count >= 1 && shard_rank >= 0 && shard_rank < shard_count,
              "expected shard_rank in [0, shard_count) and shard_count >= 1, got {} and {}", shard_rank,
              shard_count);
}

size_t shard_size(size_t n, int count) {
  const auto c = static_cast<size_t>(count);
  return (n + c - 1) / c;
}

std::vector<int> shard_of(const std::vector<int>& order, int rank, int count) {
  if (count <= 1 || order.empty()) return order;
  const auto c = static_cast<size_t>(count);
  const size_t padded = shard_size(order.size(), count) * c;
  std::vector<int> out;
  out.reserve(padded / c);
  for (size_t i = static_cast<size_t>(rank); i < padded; i += c) out.push_back(order[i % order.size()]);
  return out;
}

struct DataLoader::Impl {
  const Dataset& ds;
  ImageSource images;
  std::vector<int> indices;
  LoaderOptions o;
  PreprocessOptions pre;  ///< o's preprocessing fields, for the dataset's task
  DetectionAugmentOptions da;
  ClassificationAugmentOptions ca;

  std::mutex mu;
  std::condition_variable work_cv, ready_cv;
  std::vector<std::thread> workers;
  bool stop = false;
  bool started = false;
  uint64_t generation = 0;  ///< bumped by start_epoch so results of an abandoned epoch are discarded
  int epoch = 0;
  std::vector<int> order;    ///< this epoch's sample indices, in delivery order
  size_t epoch_samples = 0;  ///< samples handed out this epoch (drop_last removes the tail)
  size_t next_task = 0;      ///< next position in `order` to hand to a worker
  size_t deliver = 0;        ///< next batch next() returns
  std::map<size_t, Slot> slots;
  std::exception_ptr error;
  mutable std::atomic<size_t> skipped{0};
  std::unique_ptr<ImageCache> cache;  ///< null with cache "none"

  Impl(const Dataset& d, ImageSource im, std::vector<int> idx, LoaderOptions lo, DetectionAugmentOptions dao,
       ClassificationAugmentOptions cao)
      : ds(d),
        images(std::move(im)),
        indices(std::move(idx)),
        o(std::move(lo)),
        pre(o.preprocess(d.task == Task::kDetection)),
        da(dao),
        ca(cao) {
    if (o.cache != "none") {
      const size_t budget = o.cache_mb > 0 ? static_cast<size_t>(o.cache_mb) << 20 : available_memory() / 4;
      cache = std::make_unique<ImageCache>(d.samples.size(), budget);
    }
  }

  size_t batches() const {
    const size_t n = shard_size(indices.size(), o.shard_count), bs = static_cast<size_t>(o.batch_size);
    return o.drop_last ? n / bs : (n + bs - 1) / bs;
  }
  size_t batch_len(size_t b) const {
    const size_t bs = static_cast<size_t>(o.batch_size);
    return std::min(bs, epoch_samples - b * bs);
  }
  bool has_task() const {
    return started && next_task < epoch_samples &&
           next_task / static_cast<size_t>(o.batch_size) < deliver + static_cast<size_t>(o.prefetch_batches);
  }

  void reset_epoch(int e);
  void worker_loop();
  void finish_item(std::unique_lock<std::mutex>& lk, uint64_t gen, size_t b, size_t j, Item item);
  Item load(int index, int e) const;
  std::string file_of(const Sample& s) const;
  ImageCache::Entry decoded(const Sample& s, const std::string& file) const;
  /// The sample's cached (or freshly decoded) image, a copy the caller may change.
  ImageCache::Entry cached(int index, const std::string& file) const;
  /// A detection sample's image and its checked boxes, scaled as the cache scaled the image.
  MosaicPart detection_part(int index, const std::string& file) const;
  void load_detection(cv::Mat img, std::vector<Box> boxes, std::mt19937_64& rng, Item& item) const;
  Batch collate(std::vector<Item> items) const;
};

void DataLoader::Impl::reset_epoch(int e) {
  ++generation;
  epoch = e;
  slots.clear();
  next_task = 0;
  deliver = 0;
  error = nullptr;
  started = true;
  order = indices;
  if (o.shuffle) {
    // Fisher-Yates with our own draws: std::shuffle's use of the generator differs between stdlibs.
    std::mt19937_64 rng(splitmix64(splitmix64(o.seed, kShuffleStream), static_cast<uint64_t>(e)));
    for (size_t i = order.size(); i > 1; --i) {
      const auto j = std::min(i - 1, static_cast<size_t>(uniform01(rng) * static_cast<double>(i)));
      std::swap(order[i - 1], order[j]);
    }
  }
  order = shard_of(order, o.shard_rank, o.shard_count);
  epoch_samples = std::min(order.size(), batches() * static_cast<size_t>(o.batch_size));
}

void DataLoader::Impl::worker_loop() {
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
    const int index = order[t], e = epoch;
    lk.unlock();
    Item item = load(index, e);
    lk.lock();
    finish_item(lk, gen, b, j, std::move(item));
  }
}

/// Stores an item; the worker that completes a batch collates it (outside the lock) and marks it ready.
void DataLoader::Impl::finish_item(std::unique_lock<std::mutex>& lk, uint64_t gen, size_t b, size_t j,
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

std::string DataLoader::Impl::file_of(const Sample& s) const {
  return images ? images(s).string() : (ds.root / s.file).string();
}

ImageCache::Entry DataLoader::Impl::cached(int index, const std::string& file) const {
  ImageCache::Entry img;
  if (!cache || !cache->get(index, img)) {
    img = decoded(ds.samples[index], file);
    if (cache) cache->put(index, img);
  }
  // Augmentations may work in place (a flip): the cached pixels are never handed out.
  img.bgr = img.bgr.clone();
  return img;
}

MosaicPart DataLoader::Impl::detection_part(int index, const std::string& file) const {
  ImageCache::Entry img = cached(index, file);
  MosaicPart part;
  part.boxes = ds.samples[index].boxes;
  sanitize_boxes(part.boxes, static_cast<int>(std::lround(img.bgr.cols / img.sx)),
                 static_cast<int>(std::lround(img.bgr.rows / img.sy)), file);
  for (auto& b : part.boxes) {
    b.x1 *= img.sx;
    b.x2 *= img.sx;
    b.y1 *= img.sy;
    b.y2 *= img.sy;
  }
  part.bgr = std::move(img.bgr);
  return part;
}

Item DataLoader::Impl::load(int index, int e) const {
  Item item;
  item.index = index;
  const Sample& s = ds.samples[index];
  std::string file = s.file;
  try {
    file = file_of(s);
    const uint64_t stream =
        splitmix64(splitmix64(o.seed, static_cast<uint64_t>(e)), static_cast<uint64_t>(index));
    std::mt19937_64 rng(stream);
    if (ds.task == Task::kDetection) {
      MosaicPart part = detection_part(index, file);
      if (o.augment && da.enabled && da.mosaic > 0) {
        // The mosaic has its own stream, so turning it on leaves every other draw of the sample as it was.
        std::mt19937_64 mrng(splitmix64(stream, kMosaicStream));
        if (bernoulli(mrng, da.mosaic)) {
          std::vector<MosaicPart> parts;
          parts.push_back(std::move(part));
          for (int k = 0; k < 3; ++k) {
            const int other = indices[static_cast<size_t>(
                std::min(uniform01(mrng) * static_cast<double>(indices.size()), indices.size() - 1.0))];
            parts.push_back(detection_part(other, file_of(ds.samples[other])));
          }
          part = mosaic4(parts, da.min_visible, mrng);
        }
      }
      load_detection(std::move(part.bgr), std::move(part.boxes), rng, item);
    } else {
      ImageCache::Entry img = cached(index, file);
      const int n_classes = static_cast<int>(ds.classes.size());
      if (s.label < 0 || s.label >= n_classes) {
        throw DataError(fmt::format("label {} is not a class index in [0, {})", s.label, n_classes));
      }
      ClassificationAugmentOptions plain;
      plain.enabled = false;
      const cv::Mat out = img.exact ? img.bgr
                                    : augment_classification(img.bgr, o.augment ? ca : plain, o.image_width,
                                                             o.image_height, rng);
      item.image = to_tensor(out, pre);
      item.target = s.label;
    }
    item.ok = true;
  } catch (const std::exception& ex) {
    // A bad sample must not end training, and must not vanish silently either.
    spdlog::warn("loader: skipping {}: {}", file, ex.what());
    ++skipped;
    item = Item{};
    item.index = index;
  }
  return item;
}

/// A sample's image as the cache keeps it: decoded, and shrunk when augmentation follows (see
/// LoaderOptions::cache) or, for classification without augmentation, already the output image.
ImageCache::Entry DataLoader::Impl::decoded(const Sample& s, const std::string& file) const {
  image::Decoded dec = image::decode_file(file);
  if (!dec.ok()) throw DataError(fmt::format("{}: {}", dec.error.kind_name(), dec.error.detail));
  ImageCache::Entry e;
  e.bgr = std::move(dec.bgr);
  (void)s;
  cv::Size target = e.bgr.size();
  if (ds.task == Task::kClassification) {
    if (!o.augment) {
      ClassificationAugmentOptions plain;
      plain.enabled = false;
      std::mt19937_64 unused(0);
      e.bgr = augment_classification(e.bgr, plain, o.image_width, o.image_height, unused);
      e.exact = true;
      return e;
    }
    target = detection_size(e.bgr.cols, e.bgr.rows, 2 * std::max(o.image_width, o.image_height), 0);
  } else if (o.augment) {
    const int lo = o.min_size > 0 ? o.min_size : o.cache_min_size;
    const int hi = o.min_size > 0 || o.max_size > 0 ? o.max_size : o.cache_max_size;
    target = detection_size(e.bgr.cols, e.bgr.rows, lo, hi);
  }
  if (target.width < e.bgr.cols && target.height < e.bgr.rows) {  // shrink only, never enlarge
    e.sx = static_cast<float>(target.width) / static_cast<float>(e.bgr.cols);
    e.sy = static_cast<float>(target.height) / static_cast<float>(e.bgr.rows);
    cv::resize(e.bgr, e.bgr, target, 0, 0, cv::INTER_AREA);
  }
  return e;
}

void DataLoader::Impl::load_detection(cv::Mat img, std::vector<Box> boxes, std::mt19937_64& rng,
                                      Item& item) const {
  if (o.augment) augment_detection(img, boxes, da, rng);
  resize_detection(img, boxes, o.min_size, o.max_size);
  item.image = to_tensor(img, pre);
  boxes_to_tensors(boxes, item);
}

Batch DataLoader::Impl::collate(std::vector<Item> items) const {
  Batch batch;
  std::vector<torch::Tensor> imgs;
  std::vector<int64_t> targets;
  for (auto& it : items) {
    if (!it.ok) continue;
    batch.indices.push_back(it.index);
    if (ds.task == Task::kDetection) {
      batch.image_list.push_back(std::move(it.image));
      batch.boxes.push_back(std::move(it.boxes));
      batch.labels.push_back(std::move(it.labels));
    } else {
      imgs.push_back(std::move(it.image));
      targets.push_back(it.target);
    }
  }
  if (!imgs.empty()) {
    batch.images = torch::stack(imgs);
    batch.targets =
        torch::from_blob(targets.data(), {static_cast<int64_t>(targets.size())}, torch::kInt64).clone();
  }
  return batch;
}

DataLoader::DataLoader(const Dataset& ds, ImageSource images, std::vector<int> indices, LoaderOptions o,
                       DetectionAugmentOptions da, ClassificationAugmentOptions ca) {
  o.validate();
  da.validate();
  ca.validate();
  const int n = static_cast<int>(ds.samples.size());
  for (int i : indices) VIGIL_CHECK(i >= 0 && i < n, "expected sample indices in [0, {}), got {}", n, i);
  const size_t threads = o.threads > 0 ? static_cast<size_t>(o.threads) : hardware_threads();
  impl_ = std::make_unique<Impl>(ds, std::move(images), std::move(indices), std::move(o), da, ca);
  impl_->workers.reserve(threads);
  for (size_t i = 0; i < threads; ++i) impl_->workers.emplace_back([this] { impl_->worker_loop(); });
}

DataLoader::~DataLoader() {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->stop = true;
  }
  impl_->work_cv.notify_all();
  for (auto& w : impl_->workers) w.join();
}

void DataLoader::start_epoch(int epoch) {
  {
    std::lock_guard<std::mutex> lk(impl_->mu);
    impl_->reset_epoch(epoch);
  }
  impl_->work_cv.notify_all();
}

std::optional<Batch> DataLoader::next() {
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
    if (batch.size() > 0) return batch;  // a batch whose every sample was skipped is passed over
  }
}

size_t DataLoader::batches_per_epoch() const {
  return impl_->batches();
}

size_t DataLoader::skipped() const {
  return impl_->skipped.load();
}

std::pair<size_t, size_t> DataLoader::cached() const {
  return impl_->cache ? impl_->cache->size() : std::pair<size_t, size_t>{0, 0};
}

PreprocessOptions LoaderOptions::preprocess(bool detection) const {
  PreprocessOptions p;
  if (detection) {
    p.min_size = min_size;
    p.max_size = max_size;
  } else {
    p.width = image_width;
    p.height = image_height;
  }
  p.mean = mean;
  p.std = std;
  p.normalize = normalize;
  return p;
}

torch::Tensor image_to_tensor(const cv::Mat& bgr, const PreprocessOptions& o) {
  VIGIL_CHECK(bgr.type() == CV_8UC3 && !bgr.empty(),
              "expected a non-empty 8-bit BGR image, got type {} {}x{}", bgr.type(), bgr.cols, bgr.rows);
  return to_tensor(bgr, o);
}

torch::Tensor classification_input(const cv::Mat& bgr, const PreprocessOptions& o) {
  VIGIL_CHECK(o.width >= 1 && o.height >= 1, "expected a classifier input size, got {}x{}", o.width,
              o.height);
  ClassificationAugmentOptions plain;
  plain.enabled = false;
  std::mt19937_64 unused_rng(0);
  return to_tensor(augment_classification(bgr, plain, o.width, o.height, unused_rng), o);
}

}  // namespace vigil::data

// The clip loader (data/clip_loader.h): window batches [B, T, 3, H, W] in time order, the same batches for
// any thread count and with or without the frame cache, one augmentation draw per window, validation frames
// equal to the classifier's input, frames decoded once within the cache budget, and unreadable frames skipped
// and named.

#include "vigil/data/clip_loader.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <numeric>
#include <set>

#include "tests_util.h"
#include "vigil/core/error.h"
#include "vigil/image/decode.h"

namespace vigil::data {
namespace {

namespace fs = std::filesystem;
using vigil::testing::TempDir;

constexpr int kSide = 32;

/// Frame `f` of a clip: a grey level that encodes the frame number (10 * f) plus an off-centre mark, so a
/// flip or crop changes the pixels. `same` draws every frame alike (grey 100).
cv::Mat frame_image(int f, bool same) {
  cv::Mat img(48, 64, CV_8UC3, cv::Scalar::all(same ? 100 : 10 * f));
  cv::rectangle(img, cv::Rect(4, 6, 14, 10), cv::Scalar(0, 200, 255), cv::FILLED);
  return img;
}

/// Clips "a" (class 0, frames 1-12) and "b" (class 1, frames 1-9) as PNGs named <clip>_<n>.png in class
/// folders; `same` makes every frame of a clip the same picture.
Dataset clip_dataset(const TempDir& dir, bool same = false) {
  Dataset ds;
  ds.task = Task::kClassification;
  ds.root = dir.path();
  ds.classes = {"moving", "static"};
  const std::vector<std::tuple<std::string, int, int>> clips = {{"a", 0, 12}, {"b", 1, 9}};
  for (const auto& [id, label, n] : clips) {
    for (int f = 1; f <= n; ++f) {
      Sample s;
      s.file = ds.classes[label] + "/" + id + "_" + std::to_string(f) + ".png";
      s.label = label;
      fs::create_directories((dir / s.file).parent_path());
      cv::imwrite((dir / s.file).string(), frame_image(f, same));
      ds.samples.push_back(s);
    }
  }
  return ds;
}

ClipOptions clip_options(int t, int stride) {
  ClipOptions o;
  o.clip_length = t;
  o.stride = stride;
  return o;
}

LoaderOptions loader_options(bool train, int threads = 1) {
  LoaderOptions o;
  o.batch_size = 3;
  o.threads = threads;
  o.prefetch_batches = 2;
  o.shuffle = train;
  o.augment = train;
  o.seed = 11;
  o.image_width = o.image_height = kSide;
  o.normalize = true;
  return o;
}

std::vector<int> all_windows(const ClipGrouping& g) {
  std::vector<int> v(g.windows.size());
  std::iota(v.begin(), v.end(), 0);
  return v;
}

/// The frame number of `sample` in its clip.
int64_t frame_number(const ClipGrouping& g, int sample) {
  const Clip& c = g.clips[g.clip_of[sample]];
  const auto k = std::find(c.samples.begin(), c.samples.end(), sample) - c.samples.begin();
  return c.frames[static_cast<size_t>(k)];
}

std::vector<Batch> drain(ClipLoader& loader, int epoch) {
  loader.start_epoch(epoch);
  std::vector<Batch> out;
  while (auto b = loader.next()) out.push_back(std::move(*b));
  return out;
}

void expect_same_batches(const std::vector<Batch>& a, const std::vector<Batch>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].indices, b[i].indices) << "batch " << i;
    EXPECT_TRUE(torch::equal(a[i].images, b[i].images)) << "batch " << i;
    EXPECT_TRUE(torch::equal(a[i].targets, b[i].targets)) << "batch " << i;
  }
}

TEST(ClipLoader, BatchesAreWindowsOfTFramesInTimeOrderWithTheirLabels) {
  TempDir dir;
  const Dataset ds = clip_dataset(dir);
  const ClipGrouping g = group_clips(ds, clip_options(4, 2));  // a: starts 0,2,4,6,8; b: 0,2,4
  ASSERT_EQ(g.windows.size(), 8u);
  auto lo = loader_options(false);
  lo.normalize = false;  // pixel values on 0..1 read back the frame number
  ClipLoader loader(ds, nullptr, g, all_windows(g), lo);
  EXPECT_EQ(loader.batches_per_epoch(), 3u);
  const auto batches = drain(loader, 0);
  ASSERT_EQ(batches.size(), 3u);
  std::vector<int> seen;
  for (const auto& b : batches) {
    ASSERT_EQ(b.images.dim(), 5);
    EXPECT_EQ(b.images.size(1), 4);
    EXPECT_EQ(b.images.size(2), 3);
    EXPECT_EQ(b.images.size(3), kSide);
    EXPECT_EQ(b.images.size(4), kSide);
    for (size_t i = 0; i < b.size(); ++i) {
      const ClipWindow& w = g.windows[b.indices[i]];
      EXPECT_EQ(b.targets[i].item<int64_t>(), w.label);
      for (int t = 0; t < 4; ++t) {
        // The bottom-right pixel is the frame's grey, 10 * its frame number; consecutive frames are one
        // apart.
        const float v = b.images[i][t][0][kSide - 1][kSide - 1].item<float>();
        EXPECT_NEAR(v * 255, 10 * frame_number(g, w.samples[t]), 1e-3) << "window " << b.indices[i];
        if (t > 0) {
          EXPECT_EQ(frame_number(g, w.samples[t]), frame_number(g, w.samples[t - 1]) + 1) << "time order";
        }
      }
      seen.push_back(b.indices[i]);
    }
  }
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(seen, all_windows(g));
}

TEST(ClipLoader, SameBatchesForAnyThreadCountAndWithOrWithoutTheCache) {
  TempDir dir;
  const Dataset ds = clip_dataset(dir);
  const ClipGrouping g = group_clips(ds, clip_options(4, 1));
  ClipLoader one(ds, nullptr, g, all_windows(g), loader_options(true, 1));
  ClipLoader three(ds, nullptr, g, all_windows(g), loader_options(true, 3), {},
                   std::make_shared<FrameCache>(size_t{64} << 20));
  for (int epoch : {0, 1}) {
    const auto a = drain(one, epoch), b = drain(three, epoch);
    expect_same_batches(a, b);
  }
  // Shuffled and augmented per epoch: epoch 0 and epoch 1 differ.
  const auto e0 = drain(one, 0), e1 = drain(one, 1);
  bool differ = false;
  for (size_t i = 0; i < e0.size(); ++i) differ |= !torch::equal(e0[i].images, e1[i].images);
  EXPECT_TRUE(differ);
}

TEST(ClipLoader, OneAugmentationDrawPerWindowAppliesToEveryFrame) {
  TempDir dir;
  const Dataset ds = clip_dataset(dir, /*same=*/true);
  const ClipGrouping g = group_clips(ds, clip_options(4, 4));
  ClassificationAugmentOptions ca;
  ca.rotation_deg = 30;
  ca.hflip = 0.5;
  ClipLoader augmented(ds, nullptr, g, all_windows(g), loader_options(true), ca);
  ClipLoader plain(ds, nullptr, g, all_windows(g), loader_options(false));
  const auto batches = drain(augmented, 0);
  const torch::Tensor reference = drain(plain, 0).front().images[0][0];
  size_t windows = 0, changed = 0;
  std::set<std::string> distinct;
  for (const auto& b : batches) {
    for (size_t i = 0; i < b.size(); ++i, ++windows) {
      const auto clip = b.images[i];
      for (int t = 1; t < clip.size(0); ++t)
        EXPECT_TRUE(torch::equal(clip[t], clip[0])) << "window " << b.indices[i] << " frame " << t;
      changed += torch::equal(clip[0], reference) ? 0 : 1;
      distinct.insert(std::to_string(clip[0].sum().item<double>()));
    }
  }
  EXPECT_EQ(changed, windows) << "every window is augmented";
  EXPECT_GT(distinct.size(), 1u) << "each window has its own draw";
}

TEST(ClipLoader, ValidationFramesEqualTheClassifierInputOfTheSameImage) {
  TempDir dir;
  const Dataset ds = clip_dataset(dir);
  const ClipGrouping g = group_clips(ds, clip_options(3, 3));
  const auto lo = loader_options(false);
  ClipLoader loader(ds, nullptr, g, all_windows(g), lo);
  const auto batches = drain(loader, 0);
  const PreprocessOptions pre = lo.preprocess(false);
  for (const auto& b : batches) {
    for (size_t i = 0; i < b.size(); ++i) {
      const ClipWindow& w = g.windows[b.indices[i]];
      for (size_t t = 0; t < w.samples.size(); ++t) {
        const auto img = image::decode_file((dir / ds.samples[w.samples[t]].file).string());
        ASSERT_TRUE(img.ok());
        EXPECT_TRUE(torch::equal(b.images[i][static_cast<int64_t>(t)], classification_input(img.bgr, pre)));
      }
    }
  }
}

TEST(ClipLoader, FramesAreDecodedOnceWhileTheyFitTheCacheBudget) {
  TempDir dir;
  const Dataset ds = clip_dataset(dir);
  const ClipGrouping g = group_clips(ds, clip_options(4, 1));  // overlapping windows: frames reused
  size_t frame_refs = 0;
  std::set<int> unique;
  for (const auto& w : g.windows) {
    frame_refs += w.samples.size();
    unique.insert(w.samples.begin(), w.samples.end());
  }
  auto cache = std::make_shared<FrameCache>(size_t{64} << 20);
  ClipLoader loader(ds, nullptr, g, all_windows(g), loader_options(true, 1), {}, cache);
  drain(loader, 0);
  auto s = cache->stats();
  EXPECT_EQ(s.misses, unique.size()) << "one decode per frame";
  EXPECT_EQ(s.hits, frame_refs - unique.size());
  EXPECT_EQ(s.frames, unique.size());
  EXPECT_EQ(s.bytes, unique.size() * kSide * kSide * 3);
  drain(loader, 1);
  EXPECT_EQ(cache->stats().misses, unique.size()) << "the second epoch decodes nothing";

  // A budget of three frames keeps three, refuses the rest, and changes no batch.
  auto small = std::make_shared<FrameCache>(3 * kSide * kSide * 3);
  ClipLoader bounded(ds, nullptr, g, all_windows(g), loader_options(true, 2), {}, small);
  ClipLoader uncached(ds, nullptr, g, all_windows(g), loader_options(true, 1));
  expect_same_batches(drain(bounded, 0), drain(uncached, 0));
  s = small->stats();
  EXPECT_EQ(s.frames, 3u);
  EXPECT_LE(s.bytes, s.budget);
  EXPECT_GT(s.refused, 0u);
}

TEST(ClipLoader, AWindowWithAnUnreadableFrameIsSkippedAndTheFileNamed) {
  TempDir dir;
  const Dataset ds = clip_dataset(dir);
  const ClipGrouping g = group_clips(ds, clip_options(4, 4));  // a: 1-4, 5-8, 9-12; b: 1-4, 5-8
  vigil::testing::write_text(dir / "moving" / "a_6.png", "not a picture");
  ClipLoader loader(ds, nullptr, g, all_windows(g), loader_options(false, 2));
  const auto batches = drain(loader, 0);
  size_t windows = 0;
  for (const auto& b : batches) windows += b.size();
  EXPECT_EQ(windows, g.windows.size() - 1);
  EXPECT_EQ(loader.skipped(), 1u);
  ASSERT_EQ(loader.skipped_frames().size(), 1u);
  EXPECT_NE(loader.skipped_frames()[0].find("a_6.png"), std::string::npos) << loader.skipped_frames()[0];
}

TEST(ClipLoader, RefusesWindowsOutsideTheGroupingAndAGroupingOfAnotherDataset) {
  TempDir dir;
  const Dataset ds = clip_dataset(dir);
  const ClipGrouping g = group_clips(ds, clip_options(4, 4));
  EXPECT_THROW(ClipLoader(ds, nullptr, g, {0, static_cast<int>(g.windows.size())}, loader_options(false)),
               InvalidArgument);
  Dataset fewer = ds;
  fewer.samples.pop_back();
  EXPECT_THROW(ClipLoader(fewer, nullptr, g, {0}, loader_options(false)), InvalidArgument);
}

}  // namespace
}  // namespace vigil::data

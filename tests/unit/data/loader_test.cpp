#include "vigil/data/loader.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <chrono>
#include <numeric>

#include "tests_util.h"
#include "vigil/core/config.h"
#include "vigil/core/error.h"

namespace vigil::data {
namespace {

namespace fs = std::filesystem;
using vigil::testing::TempDir;
using vigil::testing::write_image;
using vigil::testing::write_text;

/// n JPEGs of varying size under dir, each with two boxes (classes 0 and 1).
Dataset detection_dataset(const TempDir& dir, int n) {
  Dataset ds;
  ds.task = Task::kDetection;
  ds.root = dir.path();
  ds.classes = {"gun", "knife"};
  for (int i = 0; i < n; ++i) {
    Sample s;
    s.file = "img/" + std::to_string(i) + ".jpg";
    s.width = 100 + 10 * (i % 5);
    s.height = 60 + 8 * (i % 3);
    write_image(dir / s.file, s.width, s.height, i);
    s.boxes.push_back(Box{5, 5, 40, 30, 0});
    s.boxes.push_back(Box{50, 20, 90, 55, 1});
    ds.samples.push_back(s);
  }
  return ds;
}

Dataset classification_dataset(const TempDir& dir, int n) {
  Dataset ds;
  ds.task = Task::kClassification;
  ds.root = dir.path();
  ds.classes = {"mask", "no_mask", "bad_mask"};
  for (int i = 0; i < n; ++i) {
    Sample s;
    s.file = ds.classes[i % 3] + "/" + std::to_string(i) + ".png";
    s.label = i % 3;
    write_image(dir / s.file, 80 + i, 70, i);
    ds.samples.push_back(s);
  }
  return ds;
}

std::vector<int> all_indices(const Dataset& ds) {
  std::vector<int> v(ds.samples.size());
  std::iota(v.begin(), v.end(), 0);
  return v;
}

std::vector<Batch> drain(DataLoader& loader, int epoch) {
  loader.start_epoch(epoch);
  std::vector<Batch> out;
  while (auto b = loader.next()) out.push_back(std::move(*b));
  return out;
}

TEST(Loader, DetectionBatchesHaveTorchvisionShapesAndLabels) {
  TempDir dir;
  const Dataset ds = detection_dataset(dir, 5);
  LoaderOptions o;
  o.batch_size = 2;
  o.threads = 2;
  o.augment = false;
  o.shuffle = false;
  o.min_size = 320;
  o.max_size = 640;
  DataLoader loader(ds, {}, all_indices(ds), o);
  EXPECT_EQ(loader.batches_per_epoch(), 3u);
  const auto batches = drain(loader, 0);
  ASSERT_EQ(batches.size(), 3u);
  EXPECT_EQ(batches[2].size(), 1u);
  const Batch& b = batches[0];
  ASSERT_EQ(b.image_list.size(), 2u);
  EXPECT_FALSE(b.images.defined());
  // Sample 0 is 100x60: scale = min(320 / 60, 640 / 100) = 5.333 -> floor(533.3) x floor(320.0), as
  // GeneralizedRCNNTransform; boxes scale by the size ratios (533 / 100, 320 / 60).
  const auto& img = b.image_list[0];
  EXPECT_EQ(img.sizes(), (std::vector<int64_t>{3, 320, 533}));
  EXPECT_EQ(img.dtype(), torch::kFloat32);
  EXPECT_GE(img.min().item<float>(), 0.0f);
  EXPECT_LE(img.max().item<float>(), 1.0f);
  EXPECT_EQ(b.boxes[0].sizes(), (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(b.boxes[0].dtype(), torch::kFloat32);
  EXPECT_NEAR(b.boxes[0][1][2].item<float>(), 90 * 5.33f, 1e-3);
  EXPECT_NEAR(b.boxes[0][1][3].item<float>(), 55 * 320 / 60.0f, 1e-3);
  EXPECT_EQ(b.labels[0].dtype(), torch::kInt64);
  EXPECT_EQ(b.labels[0][0].item<int64_t>(), 1) << "class 0 -> label 1 (0 is background)";
  EXPECT_EQ(b.labels[0][1].item<int64_t>(), 2);
  EXPECT_EQ(b.indices, (std::vector<int>{0, 1}));
}

TEST(Loader, MosaicMixesFourTrainingImagesDeterministically) {
  // Each sample has two boxes; a mosaic is the s x s window (s = the first image's longer side) of four
  // images around a centre it always contains, so its boxes come from several samples.
  TempDir dir;
  const Dataset ds = detection_dataset(dir, 8);
  LoaderOptions o;
  o.batch_size = 4;
  o.threads = 2;
  o.seed = 3;
  DetectionAugmentOptions da;
  da.hflip = 0;
  da.scale_min = da.scale_max = 1;
  da.crop_prob = 0;
  da.brightness = da.contrast = da.saturation = da.hue = 0;
  da.min_visible = 0.2;
  da.mosaic = 1;
  DataLoader loader(ds, {}, all_indices(ds), o, da);
  size_t most_boxes = 0;
  const auto mosaics = drain(loader, 0);
  for (const auto& b : mosaics) {
    for (size_t i = 0; i < b.size(); ++i) {
      const auto& img = b.image_list[i];
      const int64_t side = std::max(ds.samples[b.indices[i]].width, ds.samples[b.indices[i]].height);
      EXPECT_EQ(img.size(1), side);
      EXPECT_EQ(img.size(2), side);
      most_boxes = std::max(most_boxes, static_cast<size_t>(b.boxes[i].size(0)));
      if (b.boxes[i].numel() > 0) {
        EXPECT_GE(b.boxes[i].min().item<float>(), 0.0f);
        EXPECT_LE(b.boxes[i].max().item<float>(), static_cast<float>(side));
      }
    }
  }
  EXPECT_GT(most_boxes, 2u);
  // One thread or two, the same mosaics (each sample's draws are its own stream).
  o.threads = 1;
  DataLoader again(ds, {}, all_indices(ds), o, da);
  const auto repeat = drain(again, 0);
  ASSERT_EQ(repeat.size(), mosaics.size());
  for (size_t k = 0; k < repeat.size(); ++k) {
    for (size_t i = 0; i < repeat[k].size(); ++i) {
      EXPECT_TRUE(torch::equal(repeat[k].image_list[i], mosaics[k].image_list[i]));
      EXPECT_TRUE(torch::equal(repeat[k].boxes[i], mosaics[k].boxes[i]));
    }
  }
  // Off (the default), images keep their own size and their two boxes.
  da.mosaic = 0;
  DataLoader plain(ds, {}, all_indices(ds), o, da);
  for (const auto& b : drain(plain, 0)) {
    for (size_t i = 0; i < b.size(); ++i) {
      EXPECT_EQ(b.image_list[i].size(2), ds.samples[b.indices[i]].width);
      EXPECT_EQ(b.boxes[i].size(0), 2);
    }
  }
}

TEST(Loader, PixelsAreRgbAndNormalisedOnRequest) {
  TempDir dir;
  Dataset ds = detection_dataset(dir, 1);
  cv::Mat red(20, 30, CV_8UC3, cv::Scalar(0, 0, 255));  // BGR red
  cv::imwrite((dir / ds.samples[0].file).string(), red);
  ds.samples[0].boxes.clear();
  LoaderOptions o;
  o.augment = false;
  o.threads = 1;
  {
    DataLoader loader(ds, {}, {0}, o);
    const auto img = drain(loader, 0).at(0).image_list.at(0);
    EXPECT_NEAR(img[0][5][5].item<float>(), 1.0f, 0.02) << "channel 0 is red";
    EXPECT_NEAR(img[2][5][5].item<float>(), 0.0f, 0.02);
  }
  o.normalize = true;
  DataLoader loader(ds, {}, {0}, o);
  const auto batch = drain(loader, 0).at(0);
  const auto img = batch.image_list.at(0);
  EXPECT_NEAR(img[0][5][5].item<float>(), (1.0 - 0.485) / 0.229, 0.1);
  EXPECT_NEAR(img[1][5][5].item<float>(), (0.0 - 0.456) / 0.224, 0.1);
  EXPECT_EQ(batch.boxes.at(0).sizes(), (std::vector<int64_t>{0, 4}));
}

TEST(Loader, ClassificationBatchesStackImagesAndTargets) {
  TempDir dir;
  const Dataset ds = classification_dataset(dir, 7);
  LoaderOptions o;
  o.batch_size = 4;
  o.threads = 2;
  o.image_width = 64;
  o.image_height = 48;
  o.normalize = true;
  o.drop_last = true;
  DataLoader loader(ds, {}, all_indices(ds), o);
  EXPECT_EQ(loader.batches_per_epoch(), 1u);
  const auto batches = drain(loader, 0);
  ASSERT_EQ(batches.size(), 1u);
  const Batch& b = batches[0];
  EXPECT_EQ(b.images.sizes(), (std::vector<int64_t>{4, 3, 48, 64}));
  EXPECT_EQ(b.images.dtype(), torch::kFloat32);
  EXPECT_EQ(b.targets.sizes(), (std::vector<int64_t>{4}));
  EXPECT_EQ(b.targets.dtype(), torch::kInt64);
  for (size_t i = 0; i < b.size(); ++i) {
    EXPECT_EQ(b.targets[i].item<int64_t>(), ds.samples[b.indices[i]].label);
  }
}

TEST(Loader, EverySampleExactlyOncePerEpochAndShuffledPerEpoch) {
  TempDir dir;
  const Dataset ds = detection_dataset(dir, 23);
  std::vector<int> subset;
  for (int i = 0; i < 23; i += 2) subset.push_back(i);  // a split: not every sample
  LoaderOptions o;
  o.batch_size = 5;
  o.threads = 3;
  o.prefetch_batches = 2;
  DataLoader loader(ds, {}, subset, o);
  std::vector<std::vector<int>> orders;
  for (int epoch = 0; epoch < 2; ++epoch) {
    std::vector<int> seen;
    for (const auto& b : drain(loader, epoch)) {
      EXPECT_EQ(b.image_list.size(), b.size());
      seen.insert(seen.end(), b.indices.begin(), b.indices.end());
    }
    orders.push_back(seen);
    std::sort(seen.begin(), seen.end());
    EXPECT_EQ(seen, subset) << "epoch " << epoch;
  }
  EXPECT_NE(orders[0], orders[1]) << "each epoch is shuffled differently";
  EXPECT_FALSE(loader.next().has_value()) << "the epoch is over";
}

TEST(Loader, ShardOfFollowsDistributedSampler) {
  const std::vector<int> order = {7, 3, 9, 1, 4};
  // Padded to 6 by repeating the start (7), then every second position: torch's DistributedSampler.
  EXPECT_EQ(shard_of(order, 0, 2), (std::vector<int>{7, 9, 4}));
  EXPECT_EQ(shard_of(order, 1, 2), (std::vector<int>{3, 1, 7}));
  EXPECT_EQ(shard_of(order, 0, 1), order);
  EXPECT_EQ(shard_size(5, 2), 3u);
  EXPECT_EQ(shard_size(6, 3), 2u);
}

TEST(Loader, ShardsSplitEachGlobalBatchOfTheSameShuffle) {
  TempDir dir;
  const Dataset ds = classification_dataset(dir, 24);
  LoaderOptions o;
  o.batch_size = 6;
  o.threads = 2;
  o.image_width = o.image_height = 16;
  o.seed = 4;
  DataLoader whole(ds, {}, all_indices(ds), o);
  const auto global = drain(whole, 1);
  o.batch_size = 3;
  o.shard_count = 2;
  std::vector<std::vector<Batch>> shards;
  for (int r = 0; r < 2; ++r) {
    o.shard_rank = r;
    DataLoader shard(ds, {}, all_indices(ds), o);
    EXPECT_EQ(shard.batches_per_epoch(), 4u);
    shards.push_back(drain(shard, 1));
  }
  ASSERT_EQ(global.size(), 4u);
  for (size_t b = 0; b < global.size(); ++b) {
    ASSERT_EQ(shards[0].size(), 4u);
    ASSERT_EQ(shards[1].size(), 4u);
    // Global batch b = positions 6b..6b+5 of the epoch; rank r holds the positions of its parity.
    std::vector<int> merged;
    for (size_t j = 0; j < 3; ++j) {
      merged.push_back(shards[0][b].indices[j]);
      merged.push_back(shards[1][b].indices[j]);
    }
    EXPECT_EQ(merged, global[b].indices) << "batch " << b;
    // The same sample gets the same pixels whichever shard reads it (per-sample streams).
    EXPECT_TRUE(torch::equal(shards[1][b].images[0], global[b].images[1])) << "batch " << b;
  }
}

TEST(Loader, SameBatchesForOneAndTwoThreads) {
  TempDir dir;
  const Dataset ds = detection_dataset(dir, 12);
  LoaderOptions o;
  o.batch_size = 3;
  o.seed = 11;
  o.min_size = 128;
  o.max_size = 256;
  DetectionAugmentOptions strong;
  strong.crop_prob = 1;
  strong.hue = 0.1;
  auto run = [&](int threads) {
    o.threads = threads;
    DataLoader loader(ds, {}, all_indices(ds), o, strong);
    return drain(loader, 1);
  };
  const auto one = run(1), two = run(2);
  ASSERT_EQ(one.size(), two.size());
  for (size_t i = 0; i < one.size(); ++i) {
    ASSERT_EQ(one[i].indices, two[i].indices);
    for (size_t j = 0; j < one[i].size(); ++j) {
      EXPECT_TRUE(torch::equal(one[i].image_list[j], two[i].image_list[j])) << "batch " << i << " item " << j;
      EXPECT_TRUE(torch::equal(one[i].boxes[j], two[i].boxes[j]));
      EXPECT_TRUE(torch::equal(one[i].labels[j], two[i].labels[j]));
    }
  }
  // And the augmentation stream depends on the epoch: same sample, different pixels.
  o.threads = 2;
  o.shuffle = false;
  DataLoader loader(ds, {}, all_indices(ds), o, strong);
  const auto e1 = drain(loader, 1), e2 = drain(loader, 2);
  ASSERT_EQ(e1[0].indices, e2[0].indices);
  const auto &a = e1[0].image_list[0], &b = e2[0].image_list[0];
  EXPECT_FALSE(a.sizes() == b.sizes() && torch::equal(a, b));
}

TEST(Loader, CorruptImageIsSkippedAndCounted) {
  TempDir dir;
  Dataset ds = detection_dataset(dir, 6);
  write_text(dir / ds.samples[2].file, "this is not a jpeg");
  ds.samples[4].file = "img/missing.jpg";
  LoaderOptions o;
  o.batch_size = 4;
  o.threads = 2;
  o.shuffle = false;
  DataLoader loader(ds, {}, all_indices(ds), o);
  const auto batches = drain(loader, 0);
  std::vector<int> seen;
  for (const auto& b : batches) seen.insert(seen.end(), b.indices.begin(), b.indices.end());
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 3, 5}));
  EXPECT_EQ(loader.skipped(), 2u);
  EXPECT_EQ(batches.at(0).size(), 3u) << "the batch shrinks instead of stopping";
}

TEST(Loader, ImageSourceMapsSamplesToFiles) {
  TempDir dir;
  Dataset ds = detection_dataset(dir, 3);
  const fs::path root = ds.root;
  ds.root = "/nonexistent";
  LoaderOptions o;
  o.threads = 1;
  DataLoader loader(
      ds, [&](const Sample& s) { return root / s.file; }, all_indices(ds), o);
  EXPECT_EQ(drain(loader, 0).at(0).size(), 3u);
  EXPECT_EQ(loader.skipped(), 0u);
}

TEST(Loader, DestroyingMidEpochReturnsPromptly) {
  TempDir dir;
  const Dataset ds = detection_dataset(dir, 4);
  std::vector<int> many;
  for (int i = 0; i < 2000; ++i) many.push_back(i % 4);
  LoaderOptions o;
  o.batch_size = 2;
  o.threads = 2;
  o.min_size = 600;
  o.max_size = 1000;
  const auto start = std::chrono::steady_clock::now();
  {
    DataLoader loader(ds, {}, many, o);
    ASSERT_TRUE(loader.next().has_value());
    loader.start_epoch(1);  // restarting mid-epoch must not hang either
    ASSERT_TRUE(loader.next().has_value());
  }
  // Not a speed assertion: a hang would take forever, a clean stop takes a few decodes.
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}

TEST(Loader, RejectsBadOptionsAndIndices) {
  TempDir dir;
  const Dataset ds = detection_dataset(dir, 2);
  LoaderOptions o;
  o.batch_size = 0;
  EXPECT_THROW(DataLoader(ds, {}, {0}, o), InvalidArgument);
  EXPECT_THROW(DataLoader(ds, {}, {0, 2}, LoaderOptions{}), InvalidArgument);
  o = {};
  o.mean = {0.5};
  EXPECT_THROW(o.validate(), InvalidArgument);
  LoaderOptions from_yaml;
  config::bind(YAML::Load("batch_size: 2\nmean: [0.5, 0.5, 0.5]\nnormalize: true\n"), from_yaml);
  EXPECT_EQ(from_yaml.batch_size, 2);
  EXPECT_EQ(from_yaml.mean, (std::vector<double>{0.5, 0.5, 0.5}));
  EXPECT_TRUE(from_yaml.normalize);
}

// Decode once: after the first epoch the images come from memory (so they survive their files' removal),
// the cached pixels without augmentation are exactly an uncached loader's, and a budget too small for an
// image keeps decoding it.
TEST(LoaderCache, LaterEpochsDecodeNothingAndUncachedPixelsAreIdentical) {
  TempDir dir;
  const Dataset det = detection_dataset(dir, 6);
  const Dataset cls = classification_dataset(dir, 6);
  for (const Dataset* ds : {&det, &cls}) {
    LoaderOptions o;
    o.batch_size = 3;
    o.threads = 2;
    o.augment = false;
    o.shuffle = false;
    o.image_width = o.image_height = 32;
    o.cache = "none";
    DataLoader plain(*ds, {}, all_indices(*ds), o);
    o.cache = "auto";
    DataLoader cached(*ds, {}, all_indices(*ds), o);
    const auto expected = drain(plain, 0);
    ASSERT_EQ(drain(cached, 0).size(), expected.size());
    EXPECT_EQ(cached.cached().first, 6u);
    EXPECT_GT(cached.cached().second, 0u);
    for (const auto& s : ds->samples) fs::remove(dir / s.file);
    const auto again = drain(cached, 1);
    ASSERT_EQ(again.size(), expected.size());
    EXPECT_EQ(cached.skipped(), 0u);
    for (size_t b = 0; b < expected.size(); ++b) {
      if (ds->task == Task::kDetection) {
        for (size_t i = 0; i < expected[b].size(); ++i) {
          EXPECT_TRUE(torch::equal(again[b].image_list[i], expected[b].image_list[i]));
          EXPECT_TRUE(torch::equal(again[b].boxes[i], expected[b].boxes[i]));
        }
      } else {
        EXPECT_TRUE(torch::equal(again[b].images, expected[b].images));
      }
    }
    EXPECT_EQ(drain(plain, 1).size(), 0u) << "without the cache the removed files are skipped";
    EXPECT_EQ(plain.skipped(), 6u);
  }
}

TEST(LoaderCache, AugmentedDetectionWorksOnTheShrunkImageWithBoxesInStep) {
  TempDir dir;
  Dataset ds;
  ds.task = Task::kDetection;
  ds.root = dir.path();
  ds.classes = {"gun"};
  Sample s;
  s.file = "big.png";
  s.width = 1200;
  s.height = 800;
  cv::Mat img(800, 1200, CV_8UC3, cv::Scalar(0, 0, 0));
  cv::rectangle(img, cv::Rect(300, 200, 400, 300), cv::Scalar(255, 255, 255), cv::FILLED);
  cv::imwrite((dir / s.file).string(), img);
  s.boxes.push_back(Box{300, 200, 700, 500, 0});
  ds.samples.push_back(s);
  LoaderOptions o;
  o.threads = 1;
  o.batch_size = 1;
  o.cache_min_size = 320;
  o.cache_max_size = 640;
  DetectionAugmentOptions da;
  da.hflip = 0;
  da.scale_min = da.scale_max = 1.0;
  da.crop_prob = 0;
  da.brightness = da.contrast = da.saturation = da.hue = 0;
  DataLoader loader(ds, {}, {0}, o, da);
  for (int epoch = 0; epoch < 2; ++epoch) {
    const auto b = drain(loader, epoch).at(0);
    const auto& t = b.image_list.at(0);
    // Shrunk as the detector would: scale min(320 / 800, 640 / 1200) = 0.4 -> 480 x 320.
    EXPECT_EQ(t.sizes(), (std::vector<int64_t>{3, 320, 480}));
    const auto box = b.boxes.at(0);
    EXPECT_NEAR(box[0][0].item<float>(), 120, 0.5);
    EXPECT_NEAR(box[0][3].item<float>(), 200, 0.5);
    // The box still frames the white rectangle in the shrunk pixels.
    EXPECT_GT(t[0][100][200].item<float>(), 0.9f);
    EXPECT_LT(t[0][60][100].item<float>(), 0.1f);
  }
  EXPECT_EQ(loader.cached().first, 1u);
  EXPECT_EQ(loader.cached().second, 480u * 320u * 3u);
}

}  // namespace
}  // namespace vigil::data

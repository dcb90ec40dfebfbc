#include "vigil/data/synth.h"

#include <nlohmann/json.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <cmath>
#include <random>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/data/augment.h"
#include "vigil/image/decode.h"

namespace vigil::data {

namespace {

constexpr int kJpegQuality = 92;

/// splitmix64 finaliser: decorrelates (seed, index) pairs so image i's content does not depend on how many
/// images come before it.
uint64_t mix(uint64_t seed, uint64_t index) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (index + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

int rand_int(std::mt19937_64& rng, int lo, int hi) {  // inclusive
  if (hi <= lo) return lo;
  return std::min(hi, lo + static_cast<int>(uniform01(rng) * (hi - lo + 1)));
}

cv::Scalar random_colour(std::mt19937_64& rng, int s_lo, int s_hi, int v_lo, int v_hi) {
  cv::Mat hsv(1, 1, CV_8UC3,
              cv::Scalar(rand_int(rng, 0, 179), rand_int(rng, s_lo, s_hi), rand_int(rng, v_lo, v_hi)));
  cv::Mat bgr;
  cv::cvtColor(hsv, bgr, cv::COLOR_HSV2BGR);
  const auto p = bgr.at<cv::Vec3b>(0, 0);
  return {static_cast<double>(p[0]), static_cast<double>(p[1]), static_cast<double>(p[2])};
}

/// Noise + a two-colour gradient + random lines, so a detector cannot find objects by "anything not flat".
/// The noise comes from cv::RNG (OpenCV's own generator), which is the same on every platform.
cv::Mat background(int w, int h, std::mt19937_64& rng) {
  const cv::Scalar c0 = random_colour(rng, 10, 90, 60, 200), c1 = random_colour(rng, 10, 90, 60, 200);
  const double gx = uniform(rng, -1, 1), gy = uniform(rng, -1, 1);
  cv::Mat img(h, w, CV_8UC3);
  for (int y = 0; y < h; ++y) {
    auto* row = img.ptr<cv::Vec3b>(y);
    for (int x = 0; x < w; ++x) {
      const double t =
          std::clamp(0.5 + 0.5 * (gx * (x - w / 2.0) / w + gy * (y - h / 2.0) / h) * 2, 0.0, 1.0);
      for (int c = 0; c < 3; ++c) row[x][c] = cv::saturate_cast<uint8_t>(c0[c] + (c1[c] - c0[c]) * t);
    }
  }
  cv::Mat noise(h, w, CV_16SC3);
  cv::RNG cv_rng(rng());
  cv_rng.fill(noise, cv::RNG::NORMAL, cv::Scalar::all(0), cv::Scalar::all(uniform(rng, 6, 20)));
  cv::GaussianBlur(noise, noise, cv::Size(3, 3), 0);
  cv::Mat img16;
  img.convertTo(img16, CV_16SC3);
  img16 += noise;
  img16.convertTo(img, CV_8UC3);
  const int lines = rand_int(rng, 4, 14);
  for (int i = 0; i < lines; ++i) {
    const cv::Point a(rand_int(rng, 0, w - 1), rand_int(rng, 0, h - 1));
    const cv::Point b(rand_int(rng, 0, w - 1), rand_int(rng, 0, h - 1));
    cv::line(img, a, b, random_colour(rng, 0, 60, 40, 220), rand_int(rng, 1, 3), cv::LINE_AA);
  }
  return img;
}

std::vector<cv::Point> regular_polygon(cv::Point c, int r, int n, double phase, double inner = 0) {
  std::vector<cv::Point> pts;
  const int steps = inner > 0 ? 2 * n : n;
  for (int i = 0; i < steps; ++i) {
    const double rr = (inner > 0 && i % 2 == 1) ? r * inner : r;
    const double a = phase + 2 * CV_PI * i / steps;
    pts.emplace_back(c.x + static_cast<int>(std::lround(rr * std::cos(a))),
                     c.y + static_cast<int>(std::lround(rr * std::sin(a))));
  }
  return pts;
}

/// Draws shape `cls` of radius r centred at c into a binary mask (no anti-aliasing, so the mask is exact).
void draw_shape(cv::Mat& mask, int cls, cv::Point c, int r) {
  const cv::Scalar on(255);
  const int t = std::max(2, r / 3);
  switch (cls) {
    case 0:
      cv::circle(mask, c, r, on, cv::FILLED, cv::LINE_8);
      break;
    case 1:
      cv::rectangle(mask, c - cv::Point(r * 4 / 5, r * 4 / 5), c + cv::Point(r * 4 / 5, r * 4 / 5), on,
                    cv::FILLED);
      break;
    case 2:
      cv::fillConvexPoly(mask, regular_polygon(c, r, 3, -CV_PI / 2), on, cv::LINE_8);
      break;
    case 3:
      cv::rectangle(mask, c - cv::Point(r, t / 2), c + cv::Point(r, t / 2), on, cv::FILLED);
      cv::rectangle(mask, c - cv::Point(t / 2, r), c + cv::Point(t / 2, r), on, cv::FILLED);
      break;
    case 4:
      cv::circle(mask, c, r - t / 2, on, t, cv::LINE_8);
      break;
    case 5:
      cv::fillConvexPoly(mask, regular_polygon(c, r, 4, 0), on, cv::LINE_8);
      break;
    case 6: {
      const std::vector<std::vector<cv::Point>> star{regular_polygon(c, r, 5, -CV_PI / 2, 0.45)};
      cv::fillPoly(mask, star, on, cv::LINE_8);
      break;
    }
    default:
      cv::fillConvexPoly(mask, regular_polygon(c, r, 6, 0), on, cv::LINE_8);
      break;
  }
}

struct Object {
  int cls = 0;
  cv::Rect box;  ///< tight around the drawn pixels
};

/// Paints one object of class `cls` at a spot not overlapping `taken`; returns false when none was found.
bool place_object(cv::Mat& img, int cls, int r_lo, int r_hi, std::vector<Object>& taken,
                  std::mt19937_64& rng) {
  const int r = rand_int(rng, r_lo, r_hi);
  const cv::Scalar colour = random_colour(rng, 200, 255, 180, 255);
  for (int attempt = 0; attempt < 30; ++attempt) {
    const cv::Point c(rand_int(rng, r + 1, img.cols - r - 2), rand_int(rng, r + 1, img.rows - r - 2));
    // A margin keeps objects apart, so every box holds one object and its edges are clear of the others.
    constexpr int kGap = 6;
    const cv::Rect guess(c.x - r - kGap, c.y - r - kGap, 2 * (r + kGap) + 1, 2 * (r + kGap) + 1);
    const bool overlaps =
        std::any_of(taken.begin(), taken.end(), [&](const Object& o) { return (o.box & guess).area() > 0; });
    if (overlaps) continue;
    cv::Mat mask = cv::Mat::zeros(img.size(), CV_8U);
    draw_shape(mask, cls, c, r);
    img.setTo(colour, mask);
    taken.push_back({cls, cv::boundingRect(mask)});
    return true;
  }
  return false;
}

void write_jpeg(const cv::Mat& img, const fs::path& path) {
  write_file_atomic(path, image::encode(img, "jpg", kJpegQuality));
}

nlohmann::json coco_skeleton(const SynthOptions& o) {
  nlohmann::json j;
  j["info"] = {{"description", "vigil synthetic shapes"}, {"seed", o.seed}};
  j["images"] = nlohmann::json::array();
  j["annotations"] = nlohmann::json::array();
  j["categories"] = nlohmann::json::array();
  for (int k = 0; k < o.classes; ++k) {
    j["categories"].push_back({{"id", k + 1}, {"name", synth_class_names()[k]}, {"supercategory", "shape"}});
  }
  return j;
}

std::string synth_detection(const SynthOptions& o, const fs::path& out, Progress* progress) {
  ensure_dir(out / "images");
  nlohmann::json coco = coco_skeleton(o);
  const int side = std::min(o.width, o.height);
  const int r_lo = std::max(4, side / 14), r_hi = std::max(r_lo, side / 6);
  int64_t ann_id = 1;
  for (int i = 0; i < o.images; ++i) {
    std::mt19937_64 rng(mix(o.seed, static_cast<uint64_t>(i)));
    cv::Mat img = background(o.width, o.height, rng);
    std::vector<Object> objects;
    const bool empty = bernoulli(rng, o.empty_fraction);
    const int n = empty ? 0 : rand_int(rng, 1, o.max_objects);
    for (int k = 0; k < n; ++k) place_object(img, rand_int(rng, 0, o.classes - 1), r_lo, r_hi, objects, rng);
    const std::string name = fmt::format("{:06d}.jpg", i);
    write_jpeg(img, out / "images" / name);
    coco["images"].push_back({{"id", i + 1}, {"file_name", name}, {"width", o.width}, {"height", o.height}});
    for (const auto& obj : objects) {
      const auto& b = obj.box;
      coco["annotations"].push_back({{"id", ann_id++},
                                     {"image_id", i + 1},
                                     {"category_id", obj.cls + 1},
                                     {"bbox", {b.x, b.y, b.width, b.height}},
                                     {"area", b.area()},
                                     {"iscrowd", 0}});
    }
    if (progress) progress->advance();
  }
  write_file_atomic(out / "annotations.json", coco.dump(1) + "\n");
  return "coco";
}

std::string synth_classification(const SynthOptions& o, const fs::path& out, Progress* progress) {
  for (int k = 0; k < o.classes; ++k) ensure_dir(out / synth_class_names()[k]);
  const int side = std::min(o.width, o.height);
  const int r_lo = std::max(4, side / 5), r_hi = std::max(r_lo, side * 2 / 5);
  for (int i = 0; i < o.images; ++i) {
    std::mt19937_64 rng(mix(o.seed, static_cast<uint64_t>(i)));
    cv::Mat img = background(o.width, o.height, rng);
    const int cls = i % o.classes;
    std::vector<Object> objects;
    place_object(img, cls, r_lo, r_hi, objects, rng);
    write_jpeg(img, out / synth_class_names()[cls] / fmt::format("{:06d}.jpg", i));
    if (progress) progress->advance();
  }
  return "imagefolder";
}

}  // namespace

const std::vector<std::string>& synth_class_names() {
  static const std::vector<std::string> kNames{"circle", "square",  "triangle", "cross",
                                               "ring",   "diamond", "star",     "hexagon"};
  return kNames;
}

void SynthOptions::validate() const {
  const Task t = parse_task(task);  // throws InvalidArgument naming the valid tasks
  VIGIL_CHECK(images >= 1, "expected images >= 1, got {}", images);
  VIGIL_CHECK(width >= 32 && height >= 32 && width <= 8192 && height <= 8192,
              "expected width and height in [32, 8192], got {}x{}", width, height);
  const int max_classes = static_cast<int>(synth_class_names().size());
  const int min_classes = t == Task::kClassification ? 2 : 1;
  VIGIL_CHECK(classes >= min_classes && classes <= max_classes, "expected classes in [{}, {}] for {}, got {}",
              min_classes, max_classes, task, classes);
  VIGIL_CHECK(max_objects >= 1 && max_objects <= 64, "expected max_objects in [1, 64], got {}", max_objects);
  VIGIL_CHECK(empty_fraction >= 0 && empty_fraction <= 1, "expected empty_fraction in [0, 1], got {}",
              empty_fraction);
}

std::string synthesize(const SynthOptions& o, const std::filesystem::path& out, Progress* progress) {
  o.validate();
  ensure_dir(out);
  return parse_task(o.task) == Task::kDetection ? synth_detection(o, out, progress)
                                                : synth_classification(o, out, progress);
}

}  // namespace vigil::data

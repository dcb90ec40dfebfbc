#include "vigil/data/stats.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <utility>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/image/plot.h"

namespace vigil::data {
namespace {

// COCO's size bins, on box area in pixels.
constexpr double kSmallArea = 32.0 * 32.0;
constexpr double kMediumArea = 96.0 * 96.0;

double percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  double pos = q * static_cast<double>(sorted.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos)), hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - static_cast<double>(lo));
}

void add_box(DatasetStats& s, const Box& b) {
  double w = b.width(), h = b.height();
  if (!(w > 0) || !(h > 0)) {
    ++s.degenerate_boxes;
    return;
  }
  double area = w * h;
  s.box_widths.push_back(w);
  s.box_heights.push_back(h);
  s.box_sqrt_areas.push_back(std::sqrt(area));
  s.box_aspects.push_back(w / h);
  if (area < kSmallArea) {
    ++s.boxes_small;
  } else if (area < kMediumArea) {
    ++s.boxes_medium;
  } else {
    ++s.boxes_large;
  }
}

void add_detection_sample(DatasetStats& s, const Sample& sample) {
  size_t n = sample.boxes.size();
  if (s.objects_per_image.size() <= n) s.objects_per_image.resize(n + 1, 0);
  ++s.objects_per_image[n];
  std::vector<bool> present(s.classes.size(), false);
  for (const auto& b : sample.boxes) {
    if (b.class_id >= 0 && static_cast<size_t>(b.class_id) < s.classes.size()) {
      ++s.classes[b.class_id].boxes;
      present[b.class_id] = true;
    } else {
      ++s.bad_class_boxes;
    }
    add_box(s, b);
  }
  for (size_t c = 0; c < present.size(); ++c) s.classes[c].images += present[c];
}

std::string fmt_summary(const ValueSummary& v) {
  if (v.count == 0) return "none";
  return fmt::format("min {:.1f}  median {:.1f}  mean {:.1f}  max {:.1f}  (p5 {:.1f}, p95 {:.1f})", v.min,
                     v.median, v.mean, v.max, v.p5, v.p95);
}

double pct(int64_t part, int64_t whole) {
  return whole > 0 ? 100.0 * part / whole : 0.0;
}

}  // namespace

ValueSummary ValueSummary::of(std::vector<double> values) {
  ValueSummary s;
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  s.count = static_cast<int64_t>(values.size());
  s.min = values.front();
  s.max = values.back();
  s.mean = std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
  s.p5 = percentile(values, 0.05);
  s.median = percentile(values, 0.5);
  s.p95 = percentile(values, 0.95);
  return s;
}

nlohmann::json ValueSummary::to_json() const {
  return {{"count", count}, {"min", min},       {"max", max}, {"mean", mean},
          {"p5", p5},       {"median", median}, {"p95", p95}};
}

DatasetStats compute_stats(const Dataset& ds) {
  DatasetStats s;
  s.task = ds.task;
  s.n_images = static_cast<int64_t>(ds.samples.size());
  for (const auto& name : ds.classes) s.classes.push_back(ClassCount{name, 0, 0});
  std::map<std::string, SplitCount> splits;
  for (const auto& sample : ds.samples) {
    s.n_boxes += static_cast<int64_t>(sample.boxes.size());
    if (ds.task == Task::kDetection) {
      add_detection_sample(s, sample);
    } else if (sample.label >= 0 && static_cast<size_t>(sample.label) < s.classes.size()) {
      ++s.classes[sample.label].images;
    } else {
      ++s.unlabelled_images;
    }
    if (sample.width > 0 && sample.height > 0) {
      s.image_widths.push_back(sample.width);
      s.image_heights.push_back(sample.height);
    } else {
      ++s.unknown_size_images;
    }
    if (!sample.split.empty()) {
      auto& sc = splits[sample.split];
      sc.split = sample.split;
      ++sc.images;
      sc.boxes += static_cast<int64_t>(sample.boxes.size());
    }
  }
  for (auto& [name, sc] : splits) s.splits.push_back(sc);
  return s;
}

nlohmann::json DatasetStats::to_json() const {
  nlohmann::json j;
  j["task"] = task_name(task);
  j["n_images"] = n_images;
  j["n_boxes"] = n_boxes;
  j["classes"] = nlohmann::json::array();
  for (const auto& c : classes) {
    nlohmann::json cj = {{"name", c.name}, {"images", c.images}};
    if (task == Task::kDetection) cj["boxes"] = c.boxes;
    j["classes"].push_back(cj);
  }
  j["splits"] = nlohmann::json::array();
  for (const auto& sc : splits)
    j["splits"].push_back({{"split", sc.split}, {"images", sc.images}, {"boxes", sc.boxes}});
  j["images"] = {{"width", ValueSummary::of(image_widths).to_json()},
                 {"height", ValueSummary::of(image_heights).to_json()},
                 {"unknown_size", unknown_size_images}};
  if (task == Task::kClassification) {
    j["unlabelled_images"] = unlabelled_images;
    return j;
  }
  j["objects_per_image"] = objects_per_image;
  j["bad_class_boxes"] = bad_class_boxes;
  j["boxes"] = {{"width", ValueSummary::of(box_widths).to_json()},
                {"height", ValueSummary::of(box_heights).to_json()},
                {"sqrt_area", ValueSummary::of(box_sqrt_areas).to_json()},
                {"aspect_ratio", ValueSummary::of(box_aspects).to_json()},
                {"degenerate", degenerate_boxes},
                {"coco_sizes", {{"small", boxes_small}, {"medium", boxes_medium}, {"large", boxes_large}}}};
  return j;
}

std::string DatasetStats::to_text() const {
  bool det = task == Task::kDetection;
  std::string out = fmt::format("{} dataset: {} images", task_name(task), n_images);
  if (det) out += fmt::format(", {} boxes", n_boxes);
  out += "\n\n";
  size_t width = 5;
  for (const auto& c : classes) width = std::max(width, c.name.size());
  out += det ? fmt::format("  {:<{}}  {:>8} {:>7}  {:>8}\n", "class", width, "boxes", "%", "images")
             : fmt::format("  {:<{}}  {:>8} {:>7}\n", "class", width, "images", "%");
  for (const auto& c : classes) {
    out += det ? fmt::format("  {:<{}}  {:>8} {:>6.1f}%  {:>8}\n", c.name, width, c.boxes,
                             pct(c.boxes, n_boxes), c.images)
               : fmt::format("  {:<{}}  {:>8} {:>6.1f}%\n", c.name, width, c.images, pct(c.images, n_images));
  }
  if (!det && unlabelled_images > 0)
    out += fmt::format("  ({} images without a valid label)\n", unlabelled_images);
  if (det && bad_class_boxes > 0)
    out += fmt::format("  ({} boxes with an unknown class id)\n", bad_class_boxes);
  if (!splits.empty()) {
    out += "\nsplits:";
    for (const auto& sc : splits) {
      out += det ? fmt::format("  {} {} images / {} boxes", sc.split, sc.images, sc.boxes)
                 : fmt::format("  {} {} images", sc.split, sc.images);
    }
    out += "\n";
  }
  if (det) {
    int64_t empty = objects_per_image.empty() ? 0 : objects_per_image[0];
    out += fmt::format("\nobjects per image: {:.2f} on average, max {}, {} images without boxes\n",
                       n_images > 0 ? static_cast<double>(n_boxes) / n_images : 0.0,
                       objects_per_image.empty() ? 0 : objects_per_image.size() - 1, empty);
    int64_t sized = boxes_small + boxes_medium + boxes_large;
    out += fmt::format("box sizes (COCO): small {} ({:.1f}%), medium {} ({:.1f}%), large {} ({:.1f}%)\n",
                       boxes_small, pct(boxes_small, sized), boxes_medium, pct(boxes_medium, sized),
                       boxes_large, pct(boxes_large, sized));
    out += fmt::format("box sqrt(area) px: {}\n", fmt_summary(ValueSummary::of(box_sqrt_areas)));
    out += fmt::format("box aspect (w/h):  {}\n", fmt_summary(ValueSummary::of(box_aspects)));
    if (degenerate_boxes > 0)
      out += fmt::format("  ({} boxes with zero width or height left out)\n", degenerate_boxes);
  }
  out +=
      fmt::format("\nimage width px:  {}\nimage height px: {}\n", fmt_summary(ValueSummary::of(image_widths)),
                  fmt_summary(ValueSummary::of(image_heights)));
  if (unknown_size_images > 0) {
    out += fmt::format("  ({} images of unknown size (width 0) are left out of the image size statistics)\n",
                       unknown_size_images);
  }
  return out;
}

namespace {

image::PlotSpec plot_spec(std::string title, std::string xlabel, std::string ylabel) {
  image::PlotSpec spec;
  spec.title = std::move(title), spec.xlabel = std::move(xlabel), spec.ylabel = std::move(ylabel);
  return spec;
}

std::vector<std::string> class_names(const DatasetStats& s) {
  std::vector<std::string> out;
  for (const auto& c : s.classes) out.push_back(c.name);
  return out;
}

// Objects per image as bars 0..N, with the tail folded into a last "N+" bar so the chart stays readable.
void objects_per_image_chart(const DatasetStats& s, const fs::path& png) {
  constexpr size_t kMaxBars = 20;
  std::vector<std::string> labels;
  std::vector<double> values;
  for (size_t n = 0; n < s.objects_per_image.size(); ++n) {
    if (n < kMaxBars) {
      labels.push_back(std::to_string(n));
      values.push_back(static_cast<double>(s.objects_per_image[n]));
    } else {
      if (n == kMaxBars) labels.push_back(fmt::format("{}+", kMaxBars)), values.push_back(0);
      values.back() += static_cast<double>(s.objects_per_image[n]);
    }
  }
  image::bar_chart(labels, values, plot_spec("Objects per image", "boxes in the image", "images"), png);
}

}  // namespace

std::vector<fs::path> write_stats_plots(const DatasetStats& s, const fs::path& dir) {
  ensure_dir(dir);
  std::vector<fs::path> out;
  bool det = s.task == Task::kDetection;
  std::vector<double> counts;
  for (const auto& c : s.classes) counts.push_back(static_cast<double>(det ? c.boxes : c.images));
  out.push_back(dir / "class_counts.png");
  image::bar_chart(class_names(s), counts,
                   plot_spec(det ? "Boxes per class" : "Images per class", "class", det ? "boxes" : "images"),
                   out.back());
  if (det) {
    out.push_back(dir / "objects_per_image.png");
    objects_per_image_chart(s, out.back());
    out.push_back(dir / "box_sizes.png");
    image::histogram(s.box_sqrt_areas, 30,
                     plot_spec(fmt::format("Box size: {} small, {} medium, {} large (COCO)", s.boxes_small,
                                           s.boxes_medium, s.boxes_large),
                               "sqrt(box area), px", "boxes"),
                     out.back());
    out.push_back(dir / "box_aspect.png");
    image::histogram(s.box_aspects, 30, plot_spec("Box aspect ratio", "width / height", "boxes"), out.back());
  }
  out.push_back(dir / "image_sizes.png");
  std::string title = s.unknown_size_images > 0
                          ? fmt::format("Image sizes ({} of unknown size not shown)", s.unknown_size_images)
                          : std::string("Image sizes");
  image::scatter(s.image_widths, s.image_heights, plot_spec(title, "width, px", "height, px"), out.back());
  return out;
}

}  // namespace vigil::data

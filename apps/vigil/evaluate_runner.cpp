#include "evaluate_runner.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/eval/classification_metrics.h"
#include "vigil/eval/coco_json.h"
#include "vigil/eval/detection_report.h"
#include "vigil/eval/report.h"
#include "vigil/eval/sample_drawing.h"
#include "vigil/model/predict_io.h"

namespace vigil::cli {
namespace fs = std::filesystem;

namespace {

constexpr const char* kBackground = "__background__";

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return "[" + out + "]";
}

/// Predicts every input; missing or undecodable images end the evaluation with the full list.
std::vector<model::Prediction> predict_all(model::Predictor& predictor, const EvaluationInput& input,
                                           Progress* progress) {
  std::vector<model::PredictInput> inputs;
  std::vector<std::string> missing;
  for (size_t i = 0; i < input.samples.size(); ++i) {
    const auto& sample = input.dataset->samples[input.samples[i]];
    const fs::path path = input.images(sample);
    if (!fs::exists(path)) missing.push_back(fmt::format("{} ({})", sample.file, to_utf8(path)));
    inputs.push_back({to_utf8(path), i});
  }
  auto listing = [](const std::vector<std::string>& items) {
    std::string out;
    for (size_t i = 0; i < items.size() && i < 20; ++i) out += "\n  " + items[i];
    if (items.size() > 20) out += fmt::format("\n  ... and {} more", items.size() - 20);
    return out;
  };
  if (!missing.empty()) {
    throw NotFound(
        fmt::format("{} image(s) of the evaluated samples are missing:{}", missing.size(), listing(missing)));
  }
  std::vector<model::Prediction> out(inputs.size());
  std::vector<std::string> failed;
  model::predict_files(
      predictor, inputs,
      [&](const model::Prediction& p, const cv::Mat&) {
        if (!p.ok()) failed.push_back(input.dataset->samples[input.samples[p.index]].file + ": " + p.error);
        out[p.index] = p;
      },
      false, progress);
  if (!failed.empty()) {
    throw DataError(fmt::format("{} image(s) could not be predicted (fix or drop them, then split again):{}",
                                failed.size(), listing(failed)));
  }
  return out;
}

/// Gallery order: images with the most mistakes first, then correct ones, so both kinds are shown.
std::vector<size_t> gallery_order(const std::vector<size_t>& mistakes, int count) {
  std::vector<size_t> bad, good;
  for (size_t i = 0; i < mistakes.size(); ++i) (mistakes[i] > 0 ? bad : good).push_back(i);
  std::stable_sort(bad.begin(), bad.end(), [&](size_t a, size_t b) { return mistakes[a] > mistakes[b]; });
  const size_t n = static_cast<size_t>(std::max(count, 0));
  const size_t take_good = std::min(good.size(), std::max(n / 3, n - std::min(n, bad.size())));
  std::vector<size_t> out(bad.begin(), bad.begin() + static_cast<long>(std::min(bad.size(), n - take_good)));
  // Correct images spread over the split rather than its first few files.
  for (size_t k = 0; k < take_good; ++k) out.push_back(good[k * good.size() / take_good]);
  return out;
}

/// Adds one gallery picture: a detection's ground truth beside its prediction (drawn over each other, a box
/// the model got right would hide the ground truth it matched), or the bare image of a classification.
void add_picture(std::vector<eval::GalleryItem>& items, const fs::path& image, const eval::ImageMatch* match,
                 std::string caption, std::string tag) {
  eval::SampleDrawingOptions drawing;
  drawing.truth_beside_prediction = match != nullptr;
  auto drawn = match ? eval::draw_sample_file(image, match->truth, match->predictions, drawing)
                     : eval::draw_sample_file(image, {}, {}, drawing);
  if (!drawn.is_ok()) {
    spdlog::warn("report gallery: {}", drawn.status().message());
    return;
  }
  items.push_back({std::move(drawn.value()), std::move(caption), std::move(tag)});
}

void finish(EvaluationReport& r, const eval::HtmlReport& report, const fs::path& out) {
  r.out = out;
  r.metrics_file = out / "metrics.json";
  r.report_file = out / "report.html";
  write_file_atomic(r.metrics_file, r.metrics.dump(2) + "\n");
  report.write(r.report_file);
}

nlohmann::ordered_json ordered(const nlohmann::json& flat) {
  nlohmann::ordered_json out;
  for (const auto& [k, v] : flat.items()) out[k] = v;
  return out;
}

EvaluationReport evaluate_detector(const std::vector<model::Prediction>& predictions,
                                   const EvaluationInput& input, const EvaluateOptions& options) {
  const auto& ds = *input.dataset;
  const eval::DetectionData gt = eval::detection_data_from_dataset(ds, input.samples);
  // Through the same COCO results records `vigil predict --format coco` writes, so a pycocotools run on
  // detections.json scores exactly these numbers.
  nlohmann::json results = nlohmann::json::array();
  for (const auto& p : predictions) {
    for (const auto& r : model::coco_results(p, input.samples[p.index]))
      results.push_back(nlohmann::json::parse(r.dump()));
  }
  eval::DetectionData data = gt;
  data.detections = eval::parse_coco_results(results, gt, "predictions");
  ensure_dir(input.out);
  eval::write_coco_ground_truth(input.out / "ground_truth.json", gt);
  write_file_atomic(input.out / "detections.json", results.dump() + "\n");

  const auto evaluation = eval::evaluate_detections(data, {options.confusion_conf, options.confusion_iou});
  EvaluationReport r;
  r.images = predictions.size();
  r.metrics = ordered(eval::metrics_json(evaluation.coco, evaluation.ultralytics));
  r.metrics["fitness"] = eval::detection_fitness(evaluation.coco);
  r.summary = eval::detection_summary(evaluation);
  const auto plots = eval::write_detection_plots(evaluation, input.out / "plots");

  eval::HtmlReport report("Detection evaluation");
  report.add_metadata(input.metadata);
  eval::add_detection_sections(report, evaluation, plots);
  if (options.gallery > 0) {
    std::map<int64_t, std::vector<eval::GtBox>> truth;
    std::map<int64_t, std::vector<eval::DetBox>> dets;
    for (const auto& g : data.ground_truth) truth[g.image_id].push_back(g);
    for (const auto& d : data.detections) dets[d.image_id].push_back(d);
    const double conf = evaluation.ultralytics.operating_conf;
    std::vector<eval::ImageMatch> matches;
    std::vector<size_t> mistakes;
    for (int s : input.samples) {
      matches.push_back(eval::match_image(truth[s], dets[s], data.categories, conf));
      mistakes.push_back(matches.back().false_positives + matches.back().misses);
    }
    std::vector<eval::GalleryItem> items;
    for (size_t i : gallery_order(mistakes, options.gallery)) {
      const auto& m = matches[i];
      const auto& sample = ds.samples[input.samples[i]];
      const std::string tag = m.misses > 0 ? "miss" : (m.false_positives > 0 ? "fp" : "tp");
      add_picture(items, input.images(sample), &m,
                  fmt::format("{}: {} TP, {} FP, {} missed", sample.file, m.true_positives, m.false_positives,
                              m.misses),
                  tag);
    }
    auto legend = eval::detection_legend();
    legend.push_back(
        {"found", eval::kFoundTruthColour, "found: a ground-truth box a prediction matched (left)"});
    report.add_heading("Samples");
    report.add_text(
        "Ground truth (left: blue where a prediction found it, orange where none did) beside the prediction "
        "(right: green true positives, red false positives), images with the most mistakes first, then a "
        "spread of correct ones.");
    report.add_gallery(
        fmt::format("Ground truth beside prediction (boxes scoring at least {:.3f}, IoU 0.5)", conf), items,
        legend, 440);
  }
  finish(r, report, input.out);
  return r;
}

EvaluationReport evaluate_classifier(const std::vector<model::Prediction>& predictions,
                                     const EvaluationInput& input, const EvaluateOptions& options) {
  const auto& ds = *input.dataset;
  std::vector<eval::ClassificationSample> samples;
  for (const auto& p : predictions) {
    samples.push_back(
        {ds.samples[input.samples[p.index]].label, std::vector<double>(p.probs.begin(), p.probs.end())});
  }
  const auto metrics = eval::compute_classification_metrics(samples, ds.classes);
  EvaluationReport r;
  r.images = predictions.size();
  r.metrics = ordered(metrics.to_json());
  r.summary = fmt::format("accuracy {:.4f} over {} images\n{:<24} {:>9} {:>9} {:>9} {:>8}\n",
                          metrics.accuracy, metrics.samples, "class", "precision", "recall", "F1", "support");
  for (const auto& c : metrics.per_class) {
    r.summary += fmt::format("{:<24} {:>9.4f} {:>9.4f} {:>9.4f} {:>8}\n", c.name, c.prf.precision,
                             c.prf.recall, c.prf.f1, c.support);
  }
  r.summary += fmt::format("{:<24} {:>9.4f} {:>9.4f} {:>9.4f}\nECE {:.4f}, log loss {:.4f}\n", "macro",
                           metrics.macro.precision, metrics.macro.recall, metrics.macro.f1, metrics.ece,
                           metrics.log_loss);
  const auto plots = eval::write_classification_plots(metrics, input.out / "plots");
  eval::HtmlReport report("Classification evaluation");
  report.add_metadata(input.metadata);
  eval::add_classification_sections(report, metrics, plots);
  if (options.gallery > 0) {
    std::vector<size_t> wrong;
    for (const auto& p : predictions)
      wrong.push_back(p.class_id != ds.samples[input.samples[p.index]].label ? 1 : 0);
    std::vector<eval::GalleryItem> items;
    for (size_t i : gallery_order(wrong, options.gallery)) {
      const auto& p = predictions[i];
      const auto& sample = ds.samples[input.samples[i]];
      add_picture(items, input.images(sample), nullptr,
                  fmt::format("{}: true {}, predicted {} ({:.2f})", sample.file, ds.classes[sample.label],
                              p.label, p.score),
                  wrong[i] ? "wrong" : "correct");
    }
    report.add_gallery("Samples", items, eval::classification_legend());
  }
  finish(r, report, input.out);
  return r;
}

}  // namespace

void EvaluateOptions::validate() const {
  VIGIL_CHECK(split == "train" || split == "val" || split == "test" || split == "all",
              "expected split train, val, test or all, got '{}'", split);
  VIGIL_CHECK(!split_name.empty(), "expected a split_name, got an empty one");
  VIGIL_CHECK(gallery >= 0 && gallery <= 500, "expected gallery in [0, 500], got {}", gallery);
  VIGIL_CHECK(confusion_conf >= 0 && confusion_conf <= 1, "expected confusion_conf in [0, 1], got {}",
              confusion_conf);
  VIGIL_CHECK(confusion_iou >= 0 && confusion_iou <= 1, "expected confusion_iou in [0, 1], got {}",
              confusion_iou);
  // int8 without calibration images calibrates on the dataset's training split (cmd_evaluate.cpp).
  model::PredictOptions p = predict;
  if (p.calibration.empty()) p.calibration = "(the training split)";
  p.validate();
}

void check_classes(const model::ModelInfo& model, const data::Dataset& dataset) {
  std::vector<std::string> names = model.class_names;
  if (model.task == data::Task::kDetection && !names.empty() && names.front() == kBackground)
    names.erase(names.begin());
  if (names != dataset.classes) {
    throw DataError(fmt::format(
        "the model's classes {} differ from the dataset's {}: evaluate on data labelled with the model's "
        "classes, in the same order",
        joined(names), joined(dataset.classes)));
  }
  if (model.task != dataset.task) {
    throw DataError(fmt::format("expected a {} dataset for the {} model '{}', got a {} dataset",
                                data::task_name(model.task), data::task_name(model.task), model.arch,
                                data::task_name(dataset.task)));
  }
}

EvaluationReport evaluate_model(model::Predictor& predictor, const EvaluationInput& input,
                                const EvaluateOptions& options, Progress* progress) {
  options.validate();
  VIGIL_ASSERT(input.dataset, "evaluate_model needs a dataset");
  check_classes(predictor.info(), *input.dataset);
  if (input.samples.empty()) {
    throw DataError(
        fmt::format("split '{}' of the dataset has no samples: nothing to evaluate", options.split));
  }
  const auto predictions = predict_all(predictor, input, progress);
  return predictor.is_detector() ? evaluate_detector(predictions, input, options)
                                 : evaluate_classifier(predictions, input, options);
}

EvaluationReport evaluate_coco_files(const fs::path& ground_truth, const fs::path& results,
                                     const fs::path& out, const EvaluateOptions& options,
                                     const std::vector<std::pair<std::string, std::string>>& metadata) {
  options.validate();
  eval::DetectionData data = eval::read_coco_ground_truth(ground_truth);
  data.detections = eval::read_coco_results(results, data);
  VIGIL_CHECK(!data.image_ids.empty(), "expected images in the ground truth {}, got none",
              to_utf8(ground_truth));
  const auto evaluation = eval::evaluate_detections(data, {options.confusion_conf, options.confusion_iou});
  EvaluationReport r;
  r.images = data.image_ids.size();
  r.metrics = ordered(eval::metrics_json(evaluation.coco, evaluation.ultralytics));
  r.metrics["fitness"] = eval::detection_fitness(evaluation.coco);
  r.summary = eval::detection_summary(evaluation);
  ensure_dir(out);
  const auto plots = eval::write_detection_plots(evaluation, out / "plots");
  eval::HtmlReport report("Detection evaluation");
  report.add_metadata(metadata);
  eval::add_detection_sections(report, evaluation, plots);
  finish(r, report, out);
  return r;
}

}  // namespace vigil::cli

#include "vigil/data/validate.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>

#include "vigil/core/error.h"
#include "vigil/data/duplicates.h"
#include "vigil/image/phash.h"

namespace vigil::data {

void ValidateOptions::validate() const {
  VIGIL_CHECK(out_of_image == "clip" || out_of_image == "reject",
              "expected out_of_image 'clip' or 'reject', got '{}'", out_of_image);
  VIGIL_CHECK(near_duplicate_distance >= -1 && near_duplicate_distance <= 64,
              "expected near_duplicate_distance in -1..64 bits (-1 disables), got {}",
              near_duplicate_distance);
  // isfinite first so NaN (which compares false with everything) is refused too.
  VIGIL_CHECK(std::isfinite(min_box_size) && min_box_size >= 0, "expected min_box_size >= 0 pixels, got {}",
              min_box_size);
  VIGIL_CHECK(std::isfinite(clip_tolerance) && clip_tolerance >= 0,
              "expected clip_tolerance >= 0 pixels, got {}", clip_tolerance);
}

namespace {

/// What one box check decided. An empty kind with drop == false means "keep `fixed`, nothing to report"
/// (e.g. clipped within the tolerance).
struct BoxVerdict {
  std::string kind;
  Severity severity = Severity::kError;
  std::string message;
  bool drop = false;
  Box fixed;
};

std::string class_label(const Dataset& ds, int id) {
  if (id >= 0 && id < static_cast<int>(ds.classes.size())) return ds.classes[id];
  return fmt::format("class id {}", id);
}

std::string box_text(const Box& b) {
  return fmt::format("[{:g}, {:g}, {:g}, {:g}]", b.x1, b.y1, b.x2, b.y2);
}

/// The file a box issue points at: the label file when there is one (that is what needs fixing).
const std::string& box_issue_file(const Sample& s) {
  return s.label_file.empty() ? s.file : s.label_file;
}

BoxVerdict reject(std::string kind, std::string message) {
  BoxVerdict v;
  v.kind = std::move(kind);
  v.message = std::move(message);
  v.drop = true;
  return v;
}

std::optional<BoxVerdict> check_outside(const Box& b, const Sample& s, const std::string& what,
                                        const ValidateOptions& opt) {
  const float w = static_cast<float>(s.width), h = static_cast<float>(s.height);
  const float left = std::max(0.f, -b.x1), top = std::max(0.f, -b.y1);
  const float right = std::max(0.f, b.x2 - w), bottom = std::max(0.f, b.y2 - h);
  const float worst = std::max({left, top, right, bottom});
  if (worst <= 0) return std::nullopt;
  BoxVerdict v;
  v.fixed = b;
  v.fixed.x1 = std::clamp(b.x1, 0.f, w), v.fixed.x2 = std::clamp(b.x2, 0.f, w);
  v.fixed.y1 = std::clamp(b.y1, 0.f, h), v.fixed.y2 = std::clamp(b.y2, 0.f, h);
  const std::string where = fmt::format(
      "{} extends beyond the {}x{} image by {:g} px (left {:g}, top {:g}, right {:g}, bottom {:g})", what,
      s.width, s.height, worst, left, top, right, bottom);
  if (v.fixed.width() < opt.min_box_size || v.fixed.height() < opt.min_box_size) {
    return reject("box_outside",
                  where + fmt::format("; less than min_box_size ({:g} px) would remain after clipping",
                                      opt.min_box_size));
  }
  if (worst <= opt.clip_tolerance) return v;  // rounding noise: clip without a report
  if (opt.out_of_image == "reject") return reject("box_outside", where + "; rejected (out_of_image: reject)");
  v.kind = "box_outside";
  v.severity = Severity::kWarning;
  v.message = where + fmt::format("; clipped to {}", box_text(v.fixed));
  return v;
}

/// Checks one box in the order that names the root cause first; nullopt when the box is fine as it is.
std::optional<BoxVerdict> check_box(const Dataset& ds, const Sample& s, size_t index,
                                    const ValidateOptions& opt) {
  const Box& b = s.boxes[index];
  const std::string what =
      fmt::format("box {} {} ({}) of {}", index + 1, box_text(b), class_label(ds, b.class_id), s.file);
  if (!std::isfinite(b.x1) || !std::isfinite(b.y1) || !std::isfinite(b.x2) || !std::isfinite(b.y2)) {
    return reject("nan_box", what + " has a non-finite coordinate");
  }
  if (b.x2 < b.x1 || b.y2 < b.y1) {
    return reject("negative_box", what + " has x2 < x1 or y2 < y1 (negative width or height)");
  }
  if (b.class_id < 0 || b.class_id >= static_cast<int>(ds.classes.size())) {
    return reject("unknown_class", fmt::format("{} has class id {} but the dataset has {} classes", what,
                                               b.class_id, ds.classes.size()));
  }
  if (b.width() < opt.min_box_size || b.height() < opt.min_box_size) {
    return reject("degenerate_box", fmt::format("{} is {:g}x{:g} px, smaller than min_box_size {:g}", what,
                                                b.width(), b.height(), opt.min_box_size));
  }
  if (s.width > 0 && s.height > 0) return check_outside(b, s, what, opt);
  return std::nullopt;
}

bool image_unusable(const Sample& s) {
  return s.check.inspected && !s.check.problem_kind.empty();
}

bool label_out_of_range(const Dataset& ds, const Sample& s) {
  return ds.task == Task::kClassification && (s.label < 0 || s.label >= static_cast<int>(ds.classes.size()));
}

std::string label_message(const Dataset& ds, const Sample& s) {
  if (s.label < 0) return fmt::format("{} has no class label", s.file);
  return fmt::format("{} has label id {} but the dataset has {} classes", s.file, s.label, ds.classes.size());
}

void check_sample(const Dataset& ds, const Sample& s, const ValidateOptions& opt, ValidationReport& r) {
  if (image_unusable(s)) {
    r.issues.push_back({s.check.problem_kind, Severity::kError, s.file, 0, s.check.problem});
  }
  if (label_out_of_range(ds, s)) {
    r.issues.push_back({"unknown_class", Severity::kError, s.file, 0, label_message(ds, s)});
  }
  if (ds.task != Task::kDetection) return;
  if (s.boxes.empty()) {
    ++r.empty_images;
    r.issues.push_back({"empty_image", Severity::kInfo, s.file, 0,
                        "no boxes: a background image (it teaches the detector where not to fire)"});
  }
  for (size_t i = 0; i < s.boxes.size(); ++i) {
    auto v = check_box(ds, s, i, opt);
    if (v && !v->kind.empty()) r.issues.push_back({v->kind, v->severity, box_issue_file(s), 0, v->message});
  }
}

void add_duplicates(const Dataset& ds, const ValidateOptions& opt, ValidationReport& r) {
  const DuplicateGroups dup = find_duplicates(ds, opt.near_duplicate_distance);
  std::set<int> exact_firsts;
  for (auto [a, b] : dup.exact_pairs) {
    exact_firsts.insert(a);
    r.issues.push_back({"exact_duplicate", Severity::kWarning, ds.samples[b].file, 0,
                        fmt::format("{} has the same bytes as {}", ds.samples[b].file, ds.samples[a].file)});
  }
  r.exact_duplicate_groups = exact_firsts.size();
  r.near_duplicate_pairs = dup.near_pairs.size();
  for (auto [a, b] : dup.near_pairs) {
    const Sample &sa = ds.samples[a], &sb = ds.samples[b];
    std::string msg = fmt::format("{} looks like {} (phash distance {} of 64 bits)", sb.file, sa.file,
                                  image::hamming(sa.check.phash, sb.check.phash));
    if (ds.task == Task::kClassification && sa.label != sb.label) {
      msg += fmt::format("; labelled differently: {} vs {}", class_label(ds, sb.label),
                         class_label(ds, sa.label));
    }
    r.issues.push_back({"near_duplicate", Severity::kWarning, sb.file, 0, std::move(msg)});
  }
}

}  // namespace

ValidationReport validate(const Dataset& ds, const ValidateOptions& opt) {
  opt.validate();
  ValidationReport r;
  r.issues = ds.issues;
  r.images = ds.samples.size();
  r.boxes = ds.box_count();
  if (ds.samples.empty()) {
    r.issues.push_back({"no_samples", Severity::kError, "", 0, "the dataset has no samples"});
  }
  size_t not_inspected = 0;
  for (const Sample& s : ds.samples) {
    if (!image_unusable(s)) ++r.usable_images;
    if (!s.check.inspected) ++not_inspected;
    check_sample(ds, s, opt, r);
  }
  if (not_inspected > 0) {
    r.issues.push_back(
        {"not_inspected", Severity::kWarning, "", 0,
         fmt::format("{} of {} images were not decoded: image problems and near duplicates were "
                     "not checked for them",
                     not_inspected, ds.samples.size())});
  }
  add_duplicates(ds, opt, r);
  r.empty_share = r.images ? static_cast<double>(r.empty_images) / static_cast<double>(r.images) : 0.0;
  for (const Issue& i : r.issues) ++r.counts[i.kind][severity_name(i.severity)];
  return r;
}

namespace {
size_t count_severity(const std::vector<Issue>& issues, Severity sev) {
  return static_cast<size_t>(
      std::count_if(issues.begin(), issues.end(), [sev](const Issue& i) { return i.severity == sev; }));
}
}  // namespace

bool ValidationReport::has_errors() const {
  return errors() > 0;
}
size_t ValidationReport::errors() const {
  return count_severity(issues, Severity::kError);
}
size_t ValidationReport::warnings() const {
  return count_severity(issues, Severity::kWarning);
}

nlohmann::json ValidationReport::to_json() const {
  nlohmann::json j;
  j["summary"] = {{"images", images},
                  {"usable_images", usable_images},
                  {"boxes", boxes},
                  {"empty_images", empty_images},
                  {"empty_share", empty_share},
                  {"exact_duplicate_groups", exact_duplicate_groups},
                  {"near_duplicate_pairs", near_duplicate_pairs},
                  {"errors", errors()},
                  {"warnings", warnings()},
                  {"infos", count_severity(issues, Severity::kInfo)}};
  j["counts"] = counts;
  auto& list = j["issues"] = nlohmann::json::array();
  for (const Issue& i : issues) {
    list.push_back({{"kind", i.kind},
                    {"severity", severity_name(i.severity)},
                    {"file", i.file},
                    {"line", i.line},
                    {"message", i.message}});
  }
  return j;
}

namespace {

/// Worst severity first, then by name, so the text starts with what blocks training.
std::vector<std::string> kinds_in_report_order(const std::vector<Issue>& issues) {
  std::map<std::string, int> worst;
  for (const Issue& i : issues) worst[i.kind] = std::max(worst[i.kind], static_cast<int>(i.severity));
  std::vector<std::string> kinds;
  for (const auto& [k, _] : worst) kinds.push_back(k);
  std::stable_sort(kinds.begin(), kinds.end(),
                   [&](const std::string& a, const std::string& b) { return worst[a] > worst[b]; });
  return kinds;
}

std::string issue_line(const Issue& i) {
  std::string where = i.file.empty() ? "(dataset)" : i.file;
  if (i.line > 0) where += fmt::format(":{}", i.line);
  return fmt::format("  {} [{}] {}\n", where, severity_name(i.severity), i.message);
}

}  // namespace

std::string ValidationReport::to_text(size_t max_per_kind) const {
  std::string out =
      fmt::format("{} images ({} usable), {} boxes: {} errors, {} warnings, {} info\n", images, usable_images,
                  boxes, errors(), warnings(), count_severity(issues, Severity::kInfo));
  out += fmt::format("empty images: {} ({:.1f}% of images)\n", empty_images, 100.0 * empty_share);
  out += fmt::format("exact duplicate groups: {}, near-duplicate pairs: {}\n", exact_duplicate_groups,
                     near_duplicate_pairs);
  const auto kinds = kinds_in_report_order(issues);
  if (kinds.empty()) return out + "no issues found\n";
  size_t width = 4;
  for (const auto& k : kinds) width = std::max(width, k.size());
  out += fmt::format("\n{:<{}}  {:>7}  {:>7}  {:>7}\n", "kind", width, "error", "warning", "info");
  for (const auto& k : kinds) {
    const auto& c = counts.at(k);
    auto n = [&](const char* sev) { return c.count(sev) ? c.at(sev) : size_t{0}; };
    out += fmt::format("{:<{}}  {:>7}  {:>7}  {:>7}\n", k, width, n("error"), n("warning"), n("info"));
  }
  for (const auto& k : kinds) {
    std::vector<const Issue*> of_kind;
    for (const Issue& i : issues) {
      if (i.kind == k) of_kind.push_back(&i);
    }
    out += fmt::format("\n{} ({}):\n", k, of_kind.size());
    const size_t shown = max_per_kind == 0 ? of_kind.size() : std::min(max_per_kind, of_kind.size());
    for (size_t i = 0; i < shown; ++i) out += issue_line(*of_kind[i]);
    if (shown < of_kind.size())
      out += fmt::format("  ... and {} more, see report.json\n", of_kind.size() - shown);
  }
  return out;
}

Dataset sanitize(const Dataset& ds, const ValidateOptions& opt, std::vector<Issue>* dropped) {
  opt.validate();
  auto drop = [&](std::string kind, const std::string& file, std::string message) {
    if (dropped) dropped->push_back({std::move(kind), Severity::kError, file, 0, "dropped: " + message});
  };
  Dataset out = ds;
  out.samples.clear();
  for (const Sample& s : ds.samples) {
    if (image_unusable(s)) {
      drop(s.check.problem_kind, s.file, fmt::format("image {}: {}", s.file, s.check.problem));
      continue;
    }
    if (label_out_of_range(ds, s)) {
      drop("unknown_class", s.file, label_message(ds, s));
      continue;
    }
    Sample kept = s;
    kept.boxes.clear();
    for (size_t i = 0; i < s.boxes.size(); ++i) {
      auto v = check_box(ds, s, i, opt);
      if (!v) {
        kept.boxes.push_back(s.boxes[i]);
      } else if (v->drop) {
        drop(v->kind, box_issue_file(s), v->message);
      } else {
        kept.boxes.push_back(v->fixed);
      }
    }
    out.samples.push_back(std::move(kept));
  }
  return out;
}

}  // namespace vigil::data

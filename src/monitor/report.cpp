#include "vigil/monitor/report.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>

#include "vigil/core/clock.h"
#include "vigil/core/error.h"
#include "vigil/core/html.h"

namespace vigil::monitor {

namespace {

using nlohmann::json;

/// What one log row answered: its labels, and how many boxes (detectors).
struct Answer {
  std::vector<std::string> labels;
  std::vector<double> scores;  ///< a classifier's top-1 score, a detector's box scores
  std::optional<double> boxes;
  std::vector<double> embedding;  ///< empty when the row has none
};

Answer answer_of(const store::PredictionRow& row) {
  Answer a;
  const json out = json::parse(row.output_json, nullptr, false);
  if (!out.is_object()) return a;
  if (out.contains("label") && out["label"].is_string()) a.labels.push_back(out["label"].get<std::string>());
  if (out.contains("score") && out["score"].is_number()) a.scores.push_back(out["score"].get<double>());
  if (out.contains("embedding") && out["embedding"].is_array()) {
    for (const auto& v : out["embedding"]) {
      if (!v.is_number()) {
        a.embedding.clear();
        break;
      }
      a.embedding.push_back(v.get<double>());
    }
  }
  if (out.contains("boxes") && out["boxes"].is_array()) {
    a.boxes = static_cast<double>(out["boxes"].size());
    for (const auto& b : out["boxes"]) {
      if (b.is_object() && b.contains("label") && b["label"].is_string()) a.labels.push_back(b["label"]);
      if (b.is_object() && b.contains("score") && b["score"].is_number()) a.scores.push_back(b["score"]);
    }
  }
  return a;
}

double pct(double v) {
  return std::round(v * 1000) / 10;
}

/// One column's chart: reference and current shares side by side per bin, as inline SVG.
std::string bars_svg(const ColumnDrift& c) {
  const auto& s = c.shares;
  const size_t n = s.labels.size();
  if (n == 0) return "";
  double top = 0;
  for (size_t i = 0; i < n; ++i) top = std::max({top, s.reference[i], s.current[i]});
  if (top <= 0) top = 1;
  const int w = 420, h = 120, pad = 4;
  const double slot = static_cast<double>(w) / static_cast<double>(n);
  std::string svg =
      fmt::format(R"(<svg width="{}" height="{}" viewBox="0 0 {} {}" role="img">)", w, h + 14, w, h + 14);
  for (size_t i = 0; i < n; ++i) {
    const double x = slot * static_cast<double>(i);
    const double bw = std::max(1.0, slot / 2 - 1);
    const double hr = (h - pad) * s.reference[i] / top, hc = (h - pad) * s.current[i] / top;
    svg += fmt::format(
        R"(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="#8aa4c8"><title>{} reference {}%</title></rect>)",
        x, h - hr, bw, hr, html_escape(s.labels[i]), pct(s.reference[i]));
    svg += fmt::format(
        R"(<rect x="{:.1f}" y="{:.1f}" width="{:.1f}" height="{:.1f}" fill="#e07b39"><title>{} current {}%</title></rect>)",
        x + bw, h - hc, bw, hc, html_escape(s.labels[i]), pct(s.current[i]));
  }
  svg += fmt::format(R"(<text x="0" y="{}" font-size="10">{}</text>)", h + 12, html_escape(s.labels.front()));
  if (n > 1)
    svg += fmt::format(R"(<text x="{}" y="{}" font-size="10" text-anchor="end">{}</text>)", w, h + 12,
                       html_escape(s.labels.back()));
  return svg + "</svg>";
}

/// The embeddings' verdict and their mean per component, reference against current, as bars.
std::string embedding_html(const EmbeddingDrift& e) {
  const bool p_like = e.method == EmbeddingMethod::kModel;
  std::string html = fmt::format(
      R"(<h2>Image embeddings</h2><p><b class="{}">{}</b>: method {} ({}), score {:.4g} {} {:.4g}{}; {} numbers per image from the model's backbone, {} reference and {} current images.</p>)",
      e.drifted ? "drift" : "ok", e.drifted ? "EMBEDDING DRIFT" : "no embedding drift", to_string(e.method),
      p_like ? "ROC AUC of a classifier told to separate the two" : "Evidently's embedding method", e.score,
      e.drifted ? "&gt;" : "&le;", e.threshold, e.bootstrap ? " (bootstrap threshold)" : "", e.dims,
      e.reference_size, e.current_size);
  ColumnDrift means;
  means.column = "mean embedding";
  double lo = 0;
  for (size_t d = 0; d < e.dims; ++d) lo = std::min({lo, e.reference_mean[d], e.current_mean[d]});
  for (size_t d = 0; d < e.dims; ++d) {  // shifted to start at 0, so negative components still show as bars
    means.shares.labels.push_back(fmt::format("component {}", d));
    means.shares.reference.push_back(e.reference_mean[d] - lo);
    means.shares.current.push_back(e.current_mean[d] - lo);
  }
  return html + "<p>Mean per component (shifted to start at 0):</p>" + bars_svg(means) + "\n";
}

}  // namespace

void DriftReportOptions::validate() const {
  VIGIL_CHECK(drift_share > 0 && drift_share <= 1, "drift_share: expected a share in (0, 1], got {}",
              drift_share);
  VIGIL_CHECK(!threshold || *threshold > 0, "threshold: expected > 0, got {}", threshold.value_or(0));
  embedding.validate();
}

DriftReport drift_report(const Profile& reference, const std::vector<store::PredictionRow>& current,
                         const DriftReportOptions& options) {
  options.validate();
  DriftReport r;
  r.reference = reference.source;
  r.reference_rows = reference.rows.size();
  r.current_rows = current.size();
  for (const auto& row : current) {
    const json fb = json::parse(row.feedback_json.empty() ? "null" : row.feedback_json, nullptr, false);
    if (fb.is_object() && fb.contains("correct") && fb["correct"].is_boolean()) {
      ++r.feedback.total;
      r.feedback.correct += fb["correct"].get<bool>() ? 1 : 0;
    }
  }
  if (r.feedback.total > 0)
    r.feedback.accuracy = static_cast<double>(r.feedback.correct) / static_cast<double>(r.feedback.total);
  r.enough_data = current.size() >= std::max<size_t>(options.min_current, 1);
  r.drift.drift_share = options.drift_share;
  if (!r.enough_data) return r;

  const ColumnTestOptions column_options{options.test, options.threshold};
  std::vector<ColumnDrift> columns;
  std::vector<ImageStats> cur_stats;
  for (const auto& row : current) {
    const json in = json::parse(row.input_json, nullptr, false);
    if (in.is_object() && in.contains("brightness")) cur_stats.push_back(image_stats_from_json(in));
  }
  VIGIL_CHECK(!cur_stats.empty(), "none of the {} logged predictions has input statistics", current.size());
  for (const auto& name : image_stat_names()) {
    std::vector<double> ref, cur;
    for (const auto& p : reference.rows) ref.push_back(image_stat(p.stats, name));
    for (const auto& s : cur_stats) cur.push_back(image_stat(s, name));
    // A categorical-only test asked for by name applies to the label column alone.
    const bool numeric_test = !options.test || *options.test != StatTest::kChiSquare;
    columns.push_back(test_numerical(name, ref, cur, numeric_test ? column_options : ColumnTestOptions{}));
  }
  // The answers: against the model's own answers on the reference images when the profile has them (the
  // output distribution), else against the reference data's labels.
  bool with_outputs = !reference.rows.empty();
  for (const auto& p : reference.rows) with_outputs = with_outputs && p.output.has_value();
  std::vector<std::string> ref_labels, cur_labels;
  std::vector<double> ref_boxes, cur_boxes, ref_scores, cur_scores;
  for (const auto& p : reference.rows) {
    const auto& labels = with_outputs ? p.output->labels : p.labels;
    ref_labels.insert(ref_labels.end(), labels.begin(), labels.end());
    ref_boxes.push_back(static_cast<double>(labels.size()));
    if (with_outputs) ref_scores.insert(ref_scores.end(), p.output->scores.begin(), p.output->scores.end());
  }
  bool detector = false;
  std::vector<std::vector<double>> ref_embeddings, cur_embeddings;
  for (const auto& p : reference.rows)
    if (p.output && !p.output->embedding.empty()) ref_embeddings.push_back(p.output->embedding);
  for (const auto& row : current) {
    Answer a = answer_of(row);
    // Rows of another width (a model with another backbone under the same name) are not comparable.
    if (!a.embedding.empty() && !ref_embeddings.empty() &&
        a.embedding.size() == ref_embeddings.front().size())
      cur_embeddings.push_back(std::move(a.embedding));
    cur_labels.insert(cur_labels.end(), a.labels.begin(), a.labels.end());
    cur_scores.insert(cur_scores.end(), a.scores.begin(), a.scores.end());
    if (a.boxes) {
      detector = true;
      cur_boxes.push_back(*a.boxes);
    }
  }
  const bool label_test_fits =
      !options.test || (*options.test != StatTest::kKs && *options.test != StatTest::kWasserstein);
  if (!ref_labels.empty() && !cur_labels.empty())
    columns.push_back(test_categorical("label", ref_labels, cur_labels,
                                       label_test_fits ? column_options : ColumnTestOptions{}));
  if (detector && reference.task == "detection")
    columns.push_back(test_numerical("boxes_per_image", ref_boxes, cur_boxes, column_options));
  const bool numeric_fits = !options.test || *options.test != StatTest::kChiSquare;
  if (!ref_scores.empty() && !cur_scores.empty())
    columns.push_back(
        test_numerical("score", ref_scores, cur_scores, numeric_fits ? column_options : ColumnTestOptions{}));
  r.drift = dataset_drift(std::move(columns), options.drift_share);
  if (ref_embeddings.size() >= 2 && cur_embeddings.size() >= 2)
    r.embedding = embedding_drift(ref_embeddings, cur_embeddings, options.embedding);
  return r;
}

json to_json(const DriftReport& r) {
  json columns = json::array();
  for (const auto& c : r.drift.columns) {
    json shares = json::array();
    for (size_t i = 0; i < c.shares.labels.size(); ++i)
      shares.push_back({{"bin", c.shares.labels[i]},
                        {"reference", c.shares.reference[i]},
                        {"current", c.shares.current[i]}});
    columns.push_back({{"column", c.column},
                       {"kind", c.kind == ColumnKind::kNumerical ? "numerical" : "categorical"},
                       {"test", to_string(c.test)},
                       {"score", c.score},
                       {"score_is_p_value", is_p_value(c.test)},
                       {"threshold", c.threshold},
                       {"drifted", c.drifted},
                       {"reference_size", c.reference_size},
                       {"current_size", c.current_size},
                       {"distribution", std::move(shares)}});
  }
  json j = {{"model", r.model},
            {"version", r.version},
            {"since", r.since_ms ? json(format_utc_ms(r.since_ms)) : json()},
            {"until", r.until_ms ? json(format_utc_ms(r.until_ms)) : json()},
            {"reference", r.reference},
            {"reference_rows", r.reference_rows},
            {"current_rows", r.current_rows},
            {"enough_data", r.enough_data},
            {"dataset_drift", r.drift.drifted},
            {"drift_share", r.drift.share},
            {"drift_share_threshold", r.drift.drift_share},
            {"drifted_columns", r.drift.drifted_columns},
            {"columns", std::move(columns)},
            {"feedback", {{"total", r.feedback.total}, {"correct", r.feedback.correct}}}};
  j["feedback"]["accuracy"] = r.feedback.accuracy ? json(*r.feedback.accuracy) : json();
  j["embedding"] = r.embedding ? to_json(*r.embedding) : json();
  j["embedding_drift"] = r.embedding && r.embedding->drifted;
  j["drift_detected"] = r.enough_data && r.drifted();
  return j;
}

std::string to_html(const DriftReport& r) {
  std::string verdict;
  if (!r.enough_data)
    verdict = fmt::format("not enough data: {} logged predictions", r.current_rows);
  else
    verdict = fmt::format("{}: {} of {} columns drifted ({:.0f}%, threshold {:.0f}%)",
                          r.drift.drifted ? "DATASET DRIFT" : "no dataset drift", r.drift.drifted_columns,
                          r.drift.columns.size(), 100 * r.drift.share, 100 * r.drift.drift_share);
  std::string html = fmt::format(
      R"(<!doctype html><html><head><meta charset="utf-8"><title>vigil drift report: {}</title>
<style>body{{font-family:sans-serif;margin:2em;color:#222}} table{{border-collapse:collapse}}
td,th{{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left;vertical-align:middle}}
.drift{{color:#b00;font-weight:bold}} .ok{{color:#070}} .legend span{{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px}}</style>
</head><body><h1>Drift report: {}{}</h1>
<p><b class="{}">{}</b></p>
<p>Reference: {} ({} images). Current: {} logged predictions{}{}.</p>
<p>Feedback: {}</p>
<p class="legend"><span style="background:#8aa4c8"></span>reference<span style="background:#e07b39"></span>current</p>
<table><tr><th>column</th><th>test</th><th>score</th><th>threshold</th><th>drift</th><th>distributions</th></tr>
)",
      html_escape(r.model), html_escape(r.model), r.version.empty() ? "" : " v" + html_escape(r.version),
      r.drift.drifted ? "drift" : "ok", html_escape(verdict), html_escape(r.reference), r.reference_rows,
      r.current_rows, r.since_ms ? " since " + format_utc_ms(r.since_ms) : "",
      r.until_ms ? " until " + format_utc_ms(r.until_ms) : "",
      r.feedback.accuracy
          ? fmt::format("{} answers marked, accuracy {:.1f}%", r.feedback.total, 100 * *r.feedback.accuracy)
          : "none yet");
  for (const auto& c : r.drift.columns) {
    html += fmt::format(
        R"(<tr><td>{}</td><td>{}</td><td>{:.4g}</td><td>{} {}</td><td class="{}">{}</td><td>{}</td></tr>)",
        html_escape(c.column), to_string(c.test), c.score, is_p_value(c.test) ? "p &lt;" : "&ge;",
        c.threshold, c.drifted ? "drift" : "ok", c.drifted ? "drift" : "no", bars_svg(c));
    html += "\n";
  }
  html += "</table>\n";
  if (r.embedding) html += embedding_html(*r.embedding);
  html += "</body></html>\n";
  return html;
}

}  // namespace vigil::monitor

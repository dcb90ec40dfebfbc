#include "vigil/eval/report.h"

#include "vigil/core/base64.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <set>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/eval/sample_drawing.h"
#include "vigil/image/decode.h"

namespace vigil::eval {
namespace {

// Inline so the file needs nothing else; print-friendly, readable on narrow screens.
constexpr const char* kCss = R"css(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#222;background:#fafafa}
header{background:#263238;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:1.6em}
nav.toc{padding:8px 32px;background:#eceff1;font-size:.9em}
nav.toc a{margin-right:16px;color:#1565c0;text-decoration:none}
main{padding:8px 32px 32px;max-width:1400px}
h2{border-bottom:2px solid #cfd8dc;padding-bottom:4px;margin-top:32px}
h3{margin:20px 0 8px}
table{border-collapse:collapse;margin:8px 0 16px;background:#fff;font-size:.92em}
th,td{border:1px solid #cfd8dc;padding:4px 10px;text-align:left}
th{background:#eceff1}
td.num{text-align:right;font-variant-numeric:tabular-nums}
table.metadata th{width:10em}
figure{margin:12px 0 24px}
figure img{max-width:100%;height:auto;border:1px solid #cfd8dc;background:#fff}
figcaption{font-size:.9em;color:#555;margin-top:4px}
.legend{display:flex;flex-wrap:wrap;gap:18px;margin:6px 0 12px;font-size:.9em}
.legend .swatch{display:inline-block;width:14px;height:14px;margin-right:6px;vertical-align:middle;
border-radius:2px}
.gallery{display:grid;grid-template-columns:repeat(auto-fill,minmax(220px,1fr));gap:12px}
.gallery figure{margin:0;background:#fff;border:4px solid #999;border-radius:4px;padding:4px}
.gallery figure img{border:0;width:100%}
.gallery figcaption{word-break:break-all}
footer{padding:12px 32px;color:#888;font-size:.8em}
)css";

bool is_tag(std::string_view s) {
  return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || c == '-' || c == '_';
  });
}

// Only "#rgb", "#rrggbb" or a bare colour name can reach a style attribute, so no text can leave it.
bool is_css_colour(std::string_view s) {
  if (s.size() == 4 || s.size() == 7) {
    if (s[0] == '#' && std::all_of(s.begin() + 1, s.end(), [](unsigned char c) { return std::isxdigit(c); }))
      return true;
  }
  return !s.empty() && s.size() <= 32 &&
         std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isalpha(c); });
}

std::string mime_type(std::string_view bytes) {
  auto type = image::sniff_type(bytes);
  VIGIL_CHECK(type == image::ImageType::kPng || type == image::ImageType::kJpeg,
              "expected PNG or JPEG bytes for a report image, got {} ({} bytes)", image::type_name(type),
              bytes.size());
  return type == image::ImageType::kPng ? "image/png" : "image/jpeg";
}

std::string data_uri(std::string_view bytes) {
  return "data:" + mime_type(bytes) + ";base64," + base64_encode(bytes);
}

std::string format_json_value(const nlohmann::json& v) {
  if (v.is_null()) return "n/a";
  if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
  if (v.is_number_float()) {
    double d = v.get<double>();
    return std::isfinite(d) ? fmt::format("{:.4f}", d) : "n/a";
  }
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

// Numbers align right; anything else (names, "n/a") left.
bool looks_numeric(const std::string& s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isdigit(c) || c == '.' || c == '-' || c == '+' || c == 'e';
  });
}

std::string cell(const std::string& text, const char* tag = "td") {
  const char* cls = looks_numeric(text) && std::string_view(tag) == "td" ? " class=\"num\"" : "";
  return fmt::format("<{}{}>{}</{}>", tag, cls, html_escape(text), tag);
}

std::string key_value_table(const std::vector<std::pair<std::string, std::string>>& rows, const char* cls) {
  std::string out = fmt::format("<table class=\"{}\">\n", cls);
  for (const auto& [k, v] : rows) out += "<tr>" + cell(k, "th") + cell(v) + "</tr>\n";
  return out + "</table>\n";
}

std::string fmt_metric(double v) {
  return std::isfinite(v) ? fmt::format("{:.4f}", v) : "n/a";
}

}  // namespace

std::vector<LegendEntry> detection_legend() {
  return {{"tp", kTruePositiveColour, "true positive: a prediction matching a ground-truth box"},
          {"fp", kFalsePositiveColour, "false positive: a prediction matching no ground-truth box"},
          {"miss", kMissedColour, "missed: a ground-truth box no prediction matched"}};
}

std::vector<LegendEntry> classification_legend() {
  return {{"correct", kTruePositiveColour, "predicted class is the true class"},
          {"wrong", kFalsePositiveColour, "predicted class differs from the true class"}};
}

HtmlReport::HtmlReport(std::string title) : title_(std::move(title)) {
  VIGIL_CHECK(!title_.empty(), "expected a non-empty report title, got \"\"");
}

HtmlReport& HtmlReport::add_metadata(const std::vector<std::pair<std::string, std::string>>& rows) {
  body_ += key_value_table(rows, "metadata");
  return *this;
}

HtmlReport& HtmlReport::add_heading(const std::string& text) {
  body_ += fmt::format("<h2 id=\"section-{}\">{}</h2>\n", headings_.size(), html_escape(text));
  headings_.push_back(text);
  return *this;
}

HtmlReport& HtmlReport::add_text(const std::string& text) {
  body_ += "<p>" + html_escape(text) + "</p>\n";
  return *this;
}

HtmlReport& HtmlReport::add_key_values(const std::string& title,
                                       const std::vector<std::pair<std::string, std::string>>& rows) {
  if (!title.empty()) body_ += "<h3>" + html_escape(title) + "</h3>\n";
  body_ += key_value_table(rows, "metrics");
  return *this;
}

HtmlReport& HtmlReport::add_metrics(const std::string& title, const nlohmann::json& flat) {
  VIGIL_CHECK(flat.is_object(), "expected a JSON object of metrics, got {}", flat.type_name());
  std::vector<std::pair<std::string, std::string>> rows;
  for (const auto& [k, v] : flat.items()) rows.emplace_back(k, format_json_value(v));
  return add_key_values(title, rows);
}

HtmlReport& HtmlReport::add_table(const Table& table) {
  for (size_t r = 0; r < table.rows.size(); ++r) {
    VIGIL_CHECK(table.rows[r].size() == table.columns.size(),
                "expected {} cells in row {} of table '{}', got {}", table.columns.size(), r, table.title,
                table.rows[r].size());
  }
  if (!table.title.empty()) body_ += "<h3>" + html_escape(table.title) + "</h3>\n";
  body_ += "<table class=\"data\">\n<tr>";
  for (const auto& c : table.columns) body_ += cell(c, "th");
  body_ += "</tr>\n";
  for (const auto& row : table.rows) {
    body_ += "<tr>";
    for (const auto& c : row) body_ += cell(c);
    body_ += "</tr>\n";
  }
  body_ += "</table>\n";
  return *this;
}

HtmlReport& HtmlReport::add_image(const std::string& title, std::string_view bytes) {
  body_ +=
      fmt::format("<figure class=\"plot\"><img src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>\n",
                  data_uri(bytes), html_escape(title), html_escape(title));
  return *this;
}

HtmlReport& HtmlReport::add_image_file(const std::string& title, const fs::path& path) {
  return add_image(title, read_file(path));
}

HtmlReport& HtmlReport::add_gallery(const std::string& title, const std::vector<GalleryItem>& items,
                                    const std::vector<LegendEntry>& legend, int min_cell_px) {
  VIGIL_CHECK(min_cell_px >= 80 && min_cell_px <= 2000,
              "expected a gallery cell width in [80, 2000] px, got {}", min_cell_px);
  std::vector<std::string> tags;
  for (const auto& e : legend) {
    VIGIL_CHECK(is_tag(e.tag), "expected a legend tag of letters, digits, '-' or '_', got '{}'", e.tag);
    VIGIL_CHECK(is_css_colour(e.colour), "expected a legend colour like #2ca02c or a colour name, got '{}'",
                e.colour);
    tags.push_back(e.tag);
  }
  auto colour_of = [&](const std::string& tag) -> const std::string* {
    for (const auto& e : legend) {
      if (e.tag == tag) return &e.colour;
    }
    return nullptr;
  };
  std::string html;
  if (!title.empty()) html += "<h3>" + html_escape(title) + "</h3>\n";
  html += "<div class=\"legend\">";
  for (const auto& e : legend) {
    html += fmt::format("<span><span class=\"swatch\" style=\"background:{}\"></span>{}</span>", e.colour,
                        html_escape(e.description.empty() ? e.tag : e.description));
  }
  html += "</div>\n<div class=\"gallery\"";
  if (min_cell_px != 220)
    html += fmt::format(" style=\"grid-template-columns:repeat(auto-fill,minmax({}px,1fr))\"", min_cell_px);
  html += ">\n";
  for (size_t i = 0; i < items.size(); ++i) {
    const auto& it = items[i];
    const std::string* colour = colour_of(it.tag);
    VIGIL_CHECK(colour != nullptr, "expected gallery item {} to have a tag from the legend ({}), got '{}'", i,
                fmt::join(tags, ", "), it.tag);
    html += fmt::format(
        "<figure class=\"tag-{}\" style=\"border-color:{}\"><img src=\"{}\" alt=\"{}\" loading=\"lazy\">"
        "<figcaption>{}</figcaption></figure>\n",
        it.tag, *colour, data_uri(it.image), html_escape(it.caption), html_escape(it.caption));
  }
  body_ += html + "</div>\n";
  return *this;
}

std::string HtmlReport::html() const {
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  // Enforces what the file promises: no scripts and nothing fetched, only inline styles and data: images.
  out +=
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; "
      "style-src 'unsafe-inline'\">\n";
  out += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  out += "<title>" + html_escape(title_) + "</title>\n<style>" + kCss + "</style>\n</head>\n<body>\n";
  out += "<header><h1>" + html_escape(title_) + "</h1></header>\n";
  if (!headings_.empty()) {
    out += "<nav class=\"toc\">";
    for (size_t i = 0; i < headings_.size(); ++i) {
      out += fmt::format("<a href=\"#section-{}\">{}</a>", i, html_escape(headings_[i]));
    }
    out += "</nav>\n";
  }
  out += "<main>\n" + body_ + "</main>\n<footer>Generated by vigil</footer>\n</body>\n</html>\n";
  return out;
}

void HtmlReport::write(const fs::path& path) const {
  write_file_atomic(path, html());
}

void add_classification_sections(HtmlReport& report, const ClassificationMetrics& metrics,
                                 const std::vector<PlotFile>& plots) {
  // Headline numbers in reading order (to_json() sorts its keys); the per-class keys go into the table.
  const nlohmann::json all = metrics.to_json();
  std::vector<std::pair<std::string, std::string>> summary;
  std::vector<std::string> order = {"samples", "accuracy"};
  if (metrics.top_k > 0) order.push_back(fmt::format("top{}_accuracy", metrics.top_k));
  for (const char* k : {"macro/precision", "macro/recall", "macro/f1", "weighted/precision",
                        "weighted/recall", "weighted/f1", "auc", "auc/macro", "ece", "log_loss"}) {
    order.emplace_back(k);
  }
  for (const auto& k : order) {
    if (all.contains(k)) summary.emplace_back(k, format_json_value(all[k]));
  }
  report.add_heading("Metrics").add_key_values("Summary", summary);
  Table t{"Per class", {"class", "precision", "recall", "f1", "support", "auc"}, {}};
  for (const auto& c : metrics.per_class) {
    t.rows.push_back({c.name, fmt_metric(c.prf.precision), fmt_metric(c.prf.recall), fmt_metric(c.prf.f1),
                      std::to_string(c.support), fmt_metric(c.auc)});
  }
  report.add_table(t);
  if (plots.empty()) return;
  report.add_heading("Plots");
  for (const auto& p : plots) report.add_image_file(p.title, p.path);
}

}  // namespace vigil::eval

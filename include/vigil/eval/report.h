#pragma once
/// The evaluation report: one self-contained HTML file (inline CSS, images embedded as base64 data URIs,
/// no scripts, nothing fetched) built section by section. Every text is HTML-escaped; the only values that
/// reach CSS (gallery tags and colours) are checked against strict patterns instead.

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "vigil/core/html.h"
#include "vigil/eval/classification_metrics.h"
#include "vigil/eval/eval_plots.h"

namespace vigil::eval {

/// core/html.h's escaping, by the name eval's pages have always used.
using vigil::html_escape;

/// One picture of the sample gallery.
struct GalleryItem {
  std::string image;    ///< encoded JPEG or PNG bytes (e.g. from draw_sample)
  std::string caption;  ///< e.g. the file name and what went wrong
  std::string tag;      ///< status, a CSS class name: letters, digits, '-' and '_' (e.g. "tp", "fp", "miss")
};

/// What a gallery tag's colour means; items with the tag get a frame in that colour.
struct LegendEntry {
  std::string tag;
  std::string colour;  ///< "#rgb", "#rrggbb" or a CSS colour name (letters only)
  std::string description;
};

/// Legend for detection galleries: tp / fp / miss in the colours draw_sample uses.
std::vector<LegendEntry> detection_legend();
/// Legend for classification galleries: "correct" green, "wrong" red.
std::vector<LegendEntry> classification_legend();

/// A table with a header row; every row must have one cell per column.
struct Table {
  std::string title;
  std::vector<std::string> columns;
  std::vector<std::vector<std::string>> rows;
};

/// Builder of the report. Sections appear in the order they are added; each add_* checks its input and
/// throws InvalidArgument ("expected ..., got ...") on a bad one.
class HtmlReport {
 public:
  explicit HtmlReport(std::string title);

  /// Key/value rows shown under the title: model, dataset, split, date (passed in; nothing reads a clock).
  HtmlReport& add_metadata(const std::vector<std::pair<std::string, std::string>>& rows);
  /// A section heading; later sections belong to it.
  HtmlReport& add_heading(const std::string& text);
  /// A paragraph of plain text.
  HtmlReport& add_text(const std::string& text);
  /// A two-column key/value table.
  HtmlReport& add_key_values(const std::string& title,
                             const std::vector<std::pair<std::string, std::string>>& rows);
  /// A flat JSON object of metrics (e.g. ClassificationMetrics::to_json()) as a key/value table; numbers
  /// are printed with 4 decimals (integers as they are) and null as "n/a".
  HtmlReport& add_metrics(const std::string& title, const nlohmann::json& flat);
  HtmlReport& add_table(const Table& table);
  /// An embedded PNG or JPEG (the type is sniffed from the bytes) with a caption.
  HtmlReport& add_image(const std::string& title, std::string_view bytes);
  /// add_image with a file's bytes (e.g. a plot); throws NotFound / IoError.
  HtmlReport& add_image_file(const std::string& title, const std::filesystem::path& path);
  /// A grid of captioned pictures framed in their tag's colour, with the legend above it. Every item's tag
  /// must appear in the legend; each item also gets the CSS class "tag-<tag>". Cells are at least
  /// `min_cell_px` wide (80..2000; wider for two-panel pictures).
  HtmlReport& add_gallery(const std::string& title, const std::vector<GalleryItem>& items,
                          const std::vector<LegendEntry>& legend, int min_cell_px = 220);

  /// The whole document.
  std::string html() const;
  /// Writes html() atomically (temporary file, then rename); throws IoError naming the path.
  void write(const std::filesystem::path& path) const;

 private:
  std::string title_;
  std::string body_;
  std::vector<std::string> headings_;  ///< for the table of contents; heading i has id "section-i"
};

/// Adds the usual classification sections: headline metrics, the per-class table (precision, recall, F1,
/// support, AUC) and the plots (e.g. from write_classification_plots).
void add_classification_sections(HtmlReport& report, const ClassificationMetrics& metrics,
                                 const std::vector<PlotFile>& plots);

}  // namespace vigil::eval

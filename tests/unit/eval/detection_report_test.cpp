// The detection sections of the HTML report on a hand-built two-class case (person, weapon) whose numbers
// are derived in the comments, read back from the HTML tables the way a reader sees them.
//
//   img 1: person A [0,0,10,10] found by a person box (.9, IoU 1); person B [50,50,10,10] found by nothing.
//   img 2: weapon C [0,0,10,10] found by a weapon box [0,0,10,6.2] (.8): IoU .62, a hit at IoU .50, .55, .60.
//   img 3: a weapon box (.3) on nothing.
//   img 4: weapon D [0,0,10,10] taken for a person (.7, IoU 1).
// COCO, 101 recall points: person reaches recall .5 at precision 1 at every IoU: AP50 = AP50-95 = 51/101.
// Weapon ranks .8 (hit) then .3 (miss): recall .5 at precision 1 where the .62 box counts, so AP50 = 51/101
// and AP50-95 = 3/10 * 51/101 = .1515.
// Confusion (conf > .25, IoU > .45, rows true): person [1, 0, 1], weapon [1, 1, 0], background [0, 1, -].

#include "vigil/eval/detection_report.h"

#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "vigil/core/error.h"

namespace vigil::eval {
namespace {

using Rows = std::vector<std::vector<std::string>>;

GtBox gt(int64_t image, int64_t cat, double x, double y, double w, double h) {
  return {image, cat, x, y, w, h, w * h};
}
DetBox det(int64_t image, int64_t cat, double x, double y, double w, double h, double score) {
  return {image, cat, x, y, w, h, score};
}

DetectionData person_weapon_case() {
  DetectionData d;
  d.image_ids = {1, 2, 3, 4};
  d.categories = {{1, "person"}, {2, "weapon"}};
  d.ground_truth = {gt(1, 1, 0, 0, 10, 10), gt(1, 1, 50, 50, 10, 10), gt(2, 2, 0, 0, 10, 10),
                    gt(4, 2, 0, 0, 10, 10)};
  d.detections = {det(1, 1, 0, 0, 10, 10, 0.9), det(2, 2, 0, 0, 10, 6.2, 0.8),
                  det(3, 2, 100, 100, 10, 10, 0.3), det(4, 1, 0, 0, 10, 10, 0.7)};
  return d;
}

/// The cells of the table whose <h3> title starts with `title`, header row first.
Rows table_after(const std::string& html, const std::string& title) {
  const size_t at = html.find("<h3>" + title);
  EXPECT_NE(at, std::string::npos) << "no table titled " << title;
  if (at == std::string::npos) return {};
  const size_t end = html.find("</table>", at);
  const std::string table = html.substr(at, end - at);
  Rows rows;
  const std::regex row_re("<tr>(.*?)</tr>"), cell_re("<t[dh][^>]*>(.*?)</t[dh]>");
  for (auto r = std::sregex_iterator(table.begin(), table.end(), row_re); r != std::sregex_iterator(); ++r) {
    const std::string row = (*r)[1];
    std::vector<std::string> cells;
    for (auto c = std::sregex_iterator(row.begin(), row.end(), cell_re); c != std::sregex_iterator(); ++c)
      cells.push_back((*c)[1]);
    rows.push_back(cells);
  }
  return rows;
}

TEST(DetectionReport, PerClassTableHasEachClassesAp50AndAp5095) {
  const auto evaluation = evaluate_detections(person_weapon_case());
  HtmlReport report("t");
  add_detection_sections(report, evaluation, {});
  const Rows rows = table_after(report.html(), "Per class");
  ASSERT_EQ(rows.size(), 3u);
  ASSERT_EQ(rows[0],
            (std::vector<std::string>{"class", "instances", "P", "R", "AP50", "AP50-95", "TP", "FP", "FN"}));
  ASSERT_EQ(rows[1].size(), 9u);
  EXPECT_EQ(rows[1][0], "person");
  EXPECT_EQ(rows[1][1], "2");
  EXPECT_EQ(rows[1][4], "0.5050");
  EXPECT_EQ(rows[1][5], "0.5050");
  ASSERT_EQ(rows[2].size(), 9u);
  EXPECT_EQ(rows[2][0], "weapon");
  EXPECT_EQ(rows[2][1], "2");
  EXPECT_EQ(rows[2][4], "0.5050");
  EXPECT_EQ(rows[2][5], "0.1515");
}

TEST(DetectionReport, ConfusionTableHasABackgroundRowAndColumn) {
  ConfusionMatrixOptions options;
  options.conf = 0.25;
  const auto evaluation = evaluate_detections(person_weapon_case(), options);
  HtmlReport report("t");
  add_detection_sections(report, evaluation, {});
  const std::string html = report.html();
  EXPECT_NE(html.find("above 0.25 paired with ground truth at IoU above 0.45"), std::string::npos);
  const Rows rows = table_after(html, "Confusion matrix");
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"true \\ predicted", "person", "weapon", "background"}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"person", "1", "0", "1"}));
  EXPECT_EQ(rows[2], (std::vector<std::string>{"weapon", "1", "1", "0"}));
  EXPECT_EQ(rows[3], (std::vector<std::string>{"background", "0", "1", ""}));

  // A stricter confidence leaves the .3 false alarm out: the background row empties.
  options.conf = 0.5;
  HtmlReport strict("t");
  add_detection_sections(strict, evaluate_detections(person_weapon_case(), options), {});
  EXPECT_EQ(table_after(strict.html(), "Confusion matrix")[3],
            (std::vector<std::string>{"background", "0", "0", ""}));
}

TEST(DetectionReport, ClassWithoutGroundTruthShowsNotAvailable) {
  DetectionData d = person_weapon_case();
  d.categories.push_back({3, "knife"});
  HtmlReport report("t");
  add_detection_sections(report, evaluate_detections(d), {});
  const Rows rows = table_after(report.html(), "Per class");
  ASSERT_EQ(rows.size(), 4u);
  EXPECT_EQ(rows[3][0], "knife");
  EXPECT_EQ(rows[3][1], "0");
  EXPECT_EQ(rows[3][4], "n/a");
  EXPECT_EQ(rows[3][5], "n/a");
}

TEST(DetectionReport, GalleryCellWidthIsCheckedAndApplied) {
  HtmlReport report("t");
  EXPECT_THROW(report.add_gallery("g", {}, detection_legend(), 40), InvalidArgument);
  report.add_gallery("g", {}, detection_legend(), 440);
  EXPECT_NE(report.html().find("minmax(440px,1fr)"), std::string::npos);
}

}  // namespace
}  // namespace vigil::eval

// examples/weapons end to end with `vigil repro` on a small real subset of ../shared/datasets/weapons_cctv
// (every 20th training frame, every 8th validation frame, and every frame whose labels hold a polygon),
// trained for one epoch so the whole pipeline takes a minute or two: ingest reads the Roboflow export with
// its empty label files and polygon lines, validation counts them, and the evaluation report has a per-class
// AP row for each of person and weapon. The full recipe's numbers are in examples/weapons/params.yaml. Skips
// without the data.

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>

#include "pipeline_util.h"
#include "tests_util.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"

namespace {

using json = nlohmann::json;
using vigil::testing::TempDir;
namespace fs = std::filesystem;

bool has_polygon(const fs::path& label) {
  for (const auto& line : vigil::split(vigil::read_file(label), '\n')) {
    if (vigil::split_ws(line).size() > 5) return true;
  }
  return false;
}

/// Copies every `step`-th image of <split>/images (by name) and every image with a polygon label, with their
/// label files (empty ones included), keeping the export's layout and data.yaml.
void copy_subset(const fs::path& from, const fs::path& to, const std::string& split, size_t step) {
  std::vector<fs::path> images;
  for (const auto& e : fs::directory_iterator(from / split / "images")) images.push_back(e.path());
  std::sort(images.begin(), images.end());
  fs::create_directories(to / split / "images");
  fs::create_directories(to / split / "labels");
  for (size_t i = 0; i < images.size(); ++i) {
    const fs::path label = from / split / "labels" / images[i].filename().replace_extension(".txt");
    if (i % step != 0 && !has_polygon(label)) continue;
    fs::copy_file(images[i], to / split / "images" / images[i].filename());
    fs::copy_file(label, to / split / "labels" / label.filename());
  }
  fs::copy_file(from / "data.yaml", to / "data.yaml", fs::copy_options::skip_existing);
}

/// The cells of the <tr> whose first cell is `first`, in the table titled `title` of an HTML report.
std::vector<std::string> report_row(const std::string& html, const std::string& title,
                                    const std::string& first) {
  const size_t at = html.find("<h3>" + title);
  if (at == std::string::npos) return {};
  const std::string table = html.substr(at, html.find("</table>", at) - at);
  const std::regex row_re("<tr>(.*?)</tr>"), cell_re("<t[dh][^>]*>(.*?)</t[dh]>");
  for (auto r = std::sregex_iterator(table.begin(), table.end(), row_re); r != std::sregex_iterator(); ++r) {
    const std::string row = (*r)[1];
    std::vector<std::string> cells;
    for (auto c = std::sregex_iterator(row.begin(), row.end(), cell_re); c != std::sregex_iterator(); ++c)
      cells.push_back((*c)[1]);
    if (!cells.empty() && cells[0] == first) return cells;
  }
  return {};
}

TEST(PipelineWeapons, ReproRunsEndToEndAndTheReportHasPerClassApForPersonAndWeapon) {
  VIGIL_REQUIRE_SHARED(weapons, "weapons_cctv");
  TempDir tmp;
  const fs::path subset = tmp / "weapons_subset";
  copy_subset(weapons, subset, "train", 20);
  copy_subset(weapons, subset, "valid", 8);
  const fs::path project = tmp / "weapons";
  vigil::testing::copy_example(
      "weapons", project,
      {"data.source=" + fs::absolute(subset).string(), "train.epochs=1", "evaluate.gallery=4"});

  auto [rc, out] = vigil::testing::repro(project);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_EQ(vigil::testing::ran_stages(out),
            (std::vector<std::string>{"ingest", "validate", "split", "train", "evaluate", "register"}))
      << out;

  const json dataset = json::parse(vigil::read_file(project / "data/dataset.json"));
  EXPECT_EQ(dataset["format"], "yolo");
  EXPECT_EQ(dataset["classes"], json::array({"person", "weapon"}));
  // Validation read the polygon line as a box (info) and the empty label files as negatives; nothing is an
  // error, so the stage passed.
  const json validation = json::parse(vigil::read_file(project / "reports/validate/report.json"));
  EXPECT_GE(validation["counts"]["polygon_label"]["info"].get<int>(), 1) << validation["counts"].dump();
  EXPECT_GT(validation["summary"]["empty_images"].get<int>(), 0);
  for (const auto& [kind, by_severity] : validation["counts"].items())
    EXPECT_FALSE(by_severity.contains("error")) << kind;

  const json metrics = json::parse(vigil::read_file(project / "reports/eval/metrics.json"));
  const std::string html = vigil::read_file(project / "reports/eval/report.html");
  for (const std::string cls : {"person", "weapon"}) {
    for (const std::string& key : {"coco/AP50/" + cls, "coco/AP/" + cls}) {
      ASSERT_TRUE(metrics.contains(key)) << key << " " << metrics.dump();
      const double v = metrics[key].get<double>();
      EXPECT_TRUE(v >= 0 && v <= 1) << key << " = " << v << " (-1: no ground truth of the class)";
    }
    // class, instances, P, R, AP50, AP50-95, TP, FP, FN
    const auto row = report_row(html, "Per class", cls);
    ASSERT_EQ(row.size(), 9u) << "no per-class AP row for " << cls;
    EXPECT_GT(std::stoi(row[1]), 0) << cls << " has ground truth in the subset's validation frames";
    EXPECT_TRUE(std::regex_match(row[4], std::regex("[01]\\.\\d{4}"))) << cls << " AP50 " << row[4];
    EXPECT_TRUE(std::regex_match(row[5], std::regex("[01]\\.\\d{4}"))) << cls << " AP50-95 " << row[5];
    EXPECT_EQ(fmt::format("{:.4f}", metrics["coco/AP50/" + cls].get<double>()), row[4]) << cls;
  }
  EXPECT_EQ(report_row(html, "Confusion matrix", "background").size(), 4u) << "no background row";
  EXPECT_NE(html.find("Ground truth beside prediction"), std::string::npos);
  EXPECT_NE(html.find("data:image/jpeg;base64,"), std::string::npos) << "no sample pictures";

  const json reg = json::parse(vigil::read_file(project / "models/weapons.json"));
  EXPECT_EQ(reg["name"], "weapons");
  EXPECT_EQ(reg["version"], 1);
  EXPECT_TRUE(reg["metrics"].contains("eval/coco/AP50/weapon")) << reg.dump();
}

}  // namespace

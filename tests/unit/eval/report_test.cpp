#include "vigil/eval/report.h"
#include "vigil/core/base64.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <opencv2/core.hpp>

#include <cstdlib>
#include <set>

#include "tests_util.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/eval/sample_drawing.h"
#include "vigil/image/decode.h"

namespace vigil::eval {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using vigil::testing::TempDir;

// Checks that every element the report writes is closed in order (void elements aside): a small parser
// instead of a regex, so a stray '<' from unescaped text shows up as an unknown or unbalanced tag.
void expect_well_formed(const std::string& html) {
  static const std::set<std::string> kVoid = {"meta", "img", "br"};
  static const std::set<std::string> kKnown = {
      "html", "head",       "meta", "title", "style", "body",   "header", "h1", "h2",
      "h3",   "nav",        "a",    "main",  "table", "tr",     "th",     "td", "figure",
      "img",  "figcaption", "div",  "span",  "p",     "footer", "br"};
  std::vector<std::string> stack;
  size_t pos = 0;
  while ((pos = html.find('<', pos)) != std::string::npos) {
    size_t end = html.find('>', pos);
    ASSERT_NE(end, std::string::npos) << "unterminated tag at " << pos;
    std::string tag = html.substr(pos + 1, end - pos - 1);
    pos = end + 1;
    if (tag.rfind("!DOCTYPE", 0) == 0) continue;
    bool closing = !tag.empty() && tag[0] == '/';
    std::string name =
        tag.substr(closing ? 1 : 0, tag.find_first_of(" \n", closing ? 1 : 0) - (closing ? 1 : 0));
    ASSERT_TRUE(kKnown.count(name)) << "unexpected element <" << tag.substr(0, 60) << ">";
    if (name == "style" && !closing) {
      pos = html.find("</style>", pos);  // CSS may contain '>' selectors
      ASSERT_NE(pos, std::string::npos);
      pos += 8;
      continue;
    }
    if (kVoid.count(name)) continue;
    if (!closing) {
      stack.push_back(name);
    } else {
      ASSERT_FALSE(stack.empty()) << "</" << name << "> closes nothing";
      ASSERT_EQ(stack.back(), name) << "</" << name << "> closes <" << stack.back() << ">";
      stack.pop_back();
    }
  }
  EXPECT_TRUE(stack.empty()) << "unclosed <" << (stack.empty() ? "" : stack.back()) << ">";
}

// Every src="..." value (std::regex recurses per character and overflows the stack on long data URIs).
std::vector<std::string> data_uris(const std::string& html) {
  std::vector<std::string> out;
  const std::string key = "src=\"";
  for (size_t pos = html.find(key); pos != std::string::npos; pos = html.find(key, pos)) {
    pos += key.size();
    size_t end = html.find('"', pos);
    out.push_back(html.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

std::string small_jpeg(int seed) {
  cv::Mat img(60, 80, CV_8UC3, cv::Scalar(40 * seed % 255, 120, 200));
  return image::encode(img, "jpg");
}

TEST(HtmlEscape, EscapesEverySpecialCharacter) {
  EXPECT_EQ(html_escape("<script>alert('x') & \"y\"</script>"),
            "&lt;script&gt;alert(&#39;x&#39;) &amp; &quot;y&quot;&lt;/script&gt;");
  EXPECT_EQ(html_escape("plain ünïcode"), "plain ünïcode");
}

class ReportTest : public ::testing::Test {
 protected:
  // A full classification report: metadata, metrics, per-class table, plots and a gallery.
  HtmlReport build() {
    std::vector<ClassificationSample> s = {{0, {0.7, 0.2, 0.1}}, {0, {0.3, 0.6, 0.1}}, {1, {0.2, 0.5, 0.3}},
                                           {1, {0.3, 0.1, 0.6}}, {2, {0.2, 0.2, 0.6}}, {2, {0.2, 0.5, 0.3}}};
    metrics_ = compute_classification_metrics(s, {"cat", "dog", "<script>alert(1)</script>"});
    plots_ = write_classification_plots(metrics_, tmp_ / "plots");
    HtmlReport r("Evaluation of masks & <friends>");
    r.add_metadata({{"model", "mobilenet_v2 run 7"},
                    {"dataset", "masks@3f2a"},
                    {"split", "test"},
                    {"date", "2024-05-01 12:00"}});
    add_classification_sections(r, metrics_, plots_);
    auto drawn =
        draw_sample(small_jpeg(1), {{5, 5, 40, 40, "gun", false}}, {{30, 20, 70, 50, "gun", 0.8f, false}});
    EXPECT_TRUE(drawn.is_ok());
    r.add_heading("Samples")
        .add_gallery("Mistakes",
                     {{small_jpeg(1), "img_001.jpg: true cat, predicted dog 0.61", "wrong"},
                      {small_jpeg(2), "img_002.jpg", "correct"}},
                     classification_legend())
        .add_gallery("Detections", {{drawn.value(), "a<b>.jpg", "fp"}}, detection_legend());
    return r;
  }
  TempDir tmp_;
  ClassificationMetrics metrics_;
  std::vector<PlotFile> plots_;
};

TEST_F(ReportTest, SectionsTablesAndEscaping) {
  std::string html = build().html();
  expect_well_formed(html);
  EXPECT_THAT(html, HasSubstr("<title>Evaluation of masks &amp; &lt;friends&gt;</title>"));
  EXPECT_THAT(html, HasSubstr("<h1>Evaluation of masks &amp; &lt;friends&gt;</h1>"));
  // Metadata rows.
  EXPECT_THAT(html, HasSubstr("<th>model</th><td>mobilenet_v2 run 7</td>"));
  EXPECT_THAT(html, HasSubstr("<th>date</th><td>2024-05-01 12:00</td>"));
  // Sections with table-of-contents links.
  for (const char* h : {"Metrics", "Plots", "Samples"}) {
    EXPECT_THAT(html, HasSubstr(std::string(">") + h + "</h2>")) << h;
    EXPECT_THAT(html, HasSubstr(std::string("\">") + h + "</a>")) << h;
  }
  // Headline metrics: 3/6 right -> accuracy 0.5000; the top-5 key is present with 3 classes.
  EXPECT_THAT(html, HasSubstr("<th>accuracy</th><td class=\"num\">0.5000</td>"));
  EXPECT_THAT(html, HasSubstr("<th>top5_accuracy</th>"));
  EXPECT_THAT(html, HasSubstr("<th>samples</th><td class=\"num\">6</td>"));
  // ... in reading order, not the alphabetical order of the JSON object.
  EXPECT_LT(html.find("<th>samples</th>"), html.find("<th>accuracy</th>"));
  EXPECT_LT(html.find("<th>accuracy</th>"), html.find("<th>macro/precision</th>"));
  EXPECT_LT(html.find("<th>weighted/f1</th>"), html.find("<th>ece</th>"));
  // Per-class table with its columns; per-class keys stay out of the summary.
  EXPECT_THAT(html, HasSubstr("<th>class</th><th>precision</th><th>recall</th><th>f1</th><th>support</th>"
                              "<th>auc</th>"));
  EXPECT_THAT(html, HasSubstr("<td>cat</td>"));
  EXPECT_THAT(html, Not(HasSubstr("<th>precision/cat</th>")));
  // The hostile class name is escaped everywhere, and no script element exists at all.
  EXPECT_THAT(html, HasSubstr("&lt;script&gt;alert(1)&lt;/script&gt;"));
  EXPECT_THAT(html, Not(HasSubstr("<script")));
  EXPECT_THAT(html, HasSubstr("a&lt;b&gt;.jpg"));
  // Gallery: legend texts, tag classes and colours.
  EXPECT_THAT(html, HasSubstr("class=\"tag-wrong\" style=\"border-color:#d62728\""));
  EXPECT_THAT(html, HasSubstr("class=\"tag-fp\""));
  EXPECT_THAT(html, HasSubstr("predicted class differs from the true class"));
  EXPECT_THAT(html, HasSubstr("missed: a ground-truth box no prediction matched"));
}

TEST_F(ReportTest, SelfContainedWithDataUris) {
  std::string html = build().html();
  // Nothing is fetched: every src is a data URI, no links, no stylesheets, no scripts.
  auto uris = data_uris(html);
  ASSERT_EQ(uris.size(), plots_.size() + 3);  // 4 plots + 3 gallery pictures
  for (const auto& u : uris) EXPECT_EQ(u.rfind("data:image/", 0), 0u) << u.substr(0, 40);
  EXPECT_THAT(html, Not(HasSubstr("http://")));
  EXPECT_THAT(html, Not(HasSubstr("https://")));
  EXPECT_THAT(html, Not(HasSubstr("<link")));
  EXPECT_THAT(html, HasSubstr("Content-Security-Policy"));
  // The first image is the confusion-matrix plot, byte for byte.
  const std::string prefix = "data:image/png;base64,";
  ASSERT_EQ(uris[0].rfind(prefix, 0), 0u);
  EXPECT_EQ(base64_decode(uris[0].substr(prefix.size())), read_file(plots_[0].path));
  // Gallery pictures are JPEGs.
  EXPECT_EQ(uris.back().rfind("data:image/jpeg;base64,", 0), 0u);
}

TEST_F(ReportTest, WritesAtomically) {
  auto path = tmp_ / "out" / "report.html";
  auto report = build();
  report.write(path);
  // Set VIGIL_PLOT_TEST_OUT=/some/dir to keep the report for a look in a browser.
  if (const char* keep = std::getenv("VIGIL_PLOT_TEST_OUT"); keep && *keep)
    report.write(fs::path(keep) / "report.html");
  EXPECT_EQ(read_file(path), report.html());
  // Overwriting replaces the whole file and leaves no temporary file beside it.
  HtmlReport small("second");
  small.write(path);
  EXPECT_EQ(read_file(path), small.html());
  for (const auto& e : fs::directory_iterator(path.parent_path())) {
    EXPECT_EQ(e.path().filename(), "report.html") << "left behind: " << e.path();
  }
  // A parent that is a file cannot hold the report: IoError, and the old file is untouched.
  vigil::testing::write_text(tmp_ / "blocker", "x");
  EXPECT_THROW(small.write(tmp_ / "blocker" / "report.html"), IoError);
  EXPECT_EQ(read_file(path), small.html());
}

TEST(HtmlReport, RejectsBadInput) {
  HtmlReport r("t");
  auto jpeg = small_jpeg(0);
  EXPECT_THROW(r.add_image("x", "not an image"), InvalidArgument);
  EXPECT_THROW(r.add_image("x", ""), InvalidArgument);
  // A tag or colour that could break out of the class / style attribute is refused.
  EXPECT_THROW(r.add_gallery("g", {{jpeg, "c", "a b"}}, {{"a b", "red", "x"}}), InvalidArgument);
  EXPECT_THROW(r.add_gallery("g", {{jpeg, "c", "tp"}}, {{"tp", "red;background:url(x)", "x"}}),
               InvalidArgument);
  EXPECT_THROW(r.add_gallery("g", {{jpeg, "c", "other"}}, detection_legend()), InvalidArgument);
  EXPECT_THROW(r.add_table({"t", {"a", "b"}, {{"1"}}}), InvalidArgument);
  EXPECT_THROW(r.add_metrics("m", nlohmann::json::array()), InvalidArgument);
  EXPECT_THROW(HtmlReport(""), InvalidArgument);
  EXPECT_THROW(r.add_image_file("missing", "/nonexistent/plot.png"), NotFound);
  // Nothing half-added: the document is still valid.
  expect_well_formed(r.html());
}

TEST(HtmlReport, MetricsFormatting) {
  HtmlReport r("t");
  r.add_metrics("m", {{"accuracy", 0.123456}, {"auc/bird", nullptr}, {"samples", 12}, {"name", "<b>"}});
  auto html = r.html();
  EXPECT_THAT(html, HasSubstr("<th>accuracy</th><td class=\"num\">0.1235</td>"));
  EXPECT_THAT(html, HasSubstr("<th>auc/bird</th><td>n/a</td>"));
  EXPECT_THAT(html, HasSubstr("<th>samples</th><td class=\"num\">12</td>"));
  EXPECT_THAT(html, HasSubstr("<td>&lt;b&gt;</td>"));
}

}  // namespace
}  // namespace vigil::eval

// params diff / metrics show formatting and values (without git: params compare with dvc.lock), and how a
// whole params file is tracked.

#include <gtest/gtest.h>

#include "tests_util.h"
#include "vigil/core/fs.h"
#include "vigil/pipeline/params_metrics.h"
#include "vigil/pipeline/repro.h"

namespace {

using namespace vigil::pipeline;
using vigil::testing::TempDir;
using vigil::testing::write_text;

TEST(ParamsMetrics, PythonFormatting) {
  EXPECT_EQ(format_metric_value(Json(0.91234567)), "0.91235");
  EXPECT_EQ(format_metric_value(Json(2.5)), "2.5");
  EXPECT_EQ(format_metric_value(Json(1e-7)), "0.0");
  EXPECT_EQ(format_metric_value(Json(3)), "3");
  EXPECT_EQ(format_metric_value(Json(true)), "True");
  EXPECT_EQ(python_str(Json::parse(R"([1, "a", {"b": null}, 0.5])")), "[1, 'a', {'b': None}, 0.5]");
  const auto flat = flatten(Json::parse(R"({"a": {"b": 1, "c": {"d": [1, 2]}, "e": {}}, "f": "x"})"));
  ASSERT_EQ(flat.size(), 3u);
  EXPECT_EQ(flat[0].first, "a.b");
  EXPECT_EQ(flat[1].first, "a.c.d");
  EXPECT_EQ(flat[2].first, "f");
  EXPECT_EQ(format_table({"Path", "Value"}, {{"params.yaml", "1"}, {"p", "22"}}),
            "Path         Value\nparams.yaml  1\np            22\n");
}

TEST(ParamsMetrics, DiffAgainstLockOutsideGit) {
  TempDir tmp;
  write_text(tmp / "params.yaml", "train:\n  lr: 0.1\n  layers: [8, 16]\nunused: 1\n");
  write_text(tmp / "extra.yaml", "b: 2\na: {x: 1}\n");
  write_text(
      tmp / "dvc.yaml",
      "stages:\n  train:\n    cmd: echo '{\"acc\":0.5,\"nested\":{\"f1\":0.25}}' > m.json\n    params:\n"
      "    - train.lr\n    - train.layers\n    - extra.yaml:\n    metrics:\n    - m.json\n");
  ReproOptions opt;
  opt.file = tmp / "dvc.yaml";
  reproduce(opt, [](const std::string&) {});
  // The whole of extra.yaml is recorded, top-level keys sorted.
  const auto lock = read_lockfile(tmp / "dvc.lock");
  EXPECT_EQ(lock.find("train")->params["extra.yaml"].dump(), R"({"a":{"x":1},"b":2})");

  write_text(tmp / "params.yaml", "train:\n  lr: 0.2\n  layers: [8, 16]\nunused: 5\n");
  write_text(tmp / "extra.yaml", "b: 3\na: {x: 1}\n");
  DiffOptions d;
  d.file = tmp / "dvc.yaml";
  auto diff = params_diff(d);
  EXPECT_EQ(diff.old_label, "dvc.lock");
  // Only what dvc.lock recorded can be compared; `unused` is not tracked.
  EXPECT_EQ(format_diff(diff, false),
            "Path         Param     dvc.lock  workspace\nparams.yaml  train.lr  0.1       0.2\nextra.yaml   "
            "b         2  "
            "       3\n");
  d.all = true;
  diff = params_diff(d);
  EXPECT_EQ(diff.rows.size(), 4u);  // a.x, b, train.layers, train.lr
  EXPECT_EQ(diff_to_json(params_diff(DiffOptions{tmp / "dvc.yaml", "", "", false, false}),
                         false)["params.yaml"]["train.lr"]
                .dump(),
            R"({"old":0.1,"new":0.2})");

  const auto metrics = metrics_show(tmp / "dvc.yaml");
  ASSERT_EQ(metrics.size(), 1u);
  EXPECT_EQ(format_metrics(metrics), "Path    acc  nested.f1\nm.json  0.5  0.25\n");
  EXPECT_EQ(metrics_to_json(metrics)["m.json"]["nested"]["f1"], 0.25);
}

}  // namespace

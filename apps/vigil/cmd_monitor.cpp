// `vigil monitor profile|report`: drift monitoring over the prediction log that `vigil serve` writes. A
// profile is the reference (a dataset's image statistics and labels); a report compares a model's logged
// traffic with it using Evidently's tests and thresholds (monitor/drift_tests.h) and writes JSON and HTML.

#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <map>
#include <memory>

#include "cli.h"
#include "table.h"
#include "vigil/core/clock.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/progress.h"
#include "vigil/core/strings.h"
#include "vigil/model/model_file.h"
#include "vigil/model/predict.h"
#include "vigil/monitor/report.h"
#include "vigil/store/model_ref.h"
#include "vigil/store/prediction_log.h"
#include "vigil/train/run_profile.h"

namespace vigil::cli {

namespace {

namespace fs = std::filesystem;

struct MonitorArgs {
  std::string data, format = "auto", out, profile_model;
  size_t max_images = 0;
  std::string model, version, reference, since = "24h", until, test;
  double threshold = 0, drift_share = 0.5;
  std::string embedding_method = "model";
  double embedding_threshold = 0;
  size_t min_current = 30;
  bool json = false, fail_on_drift = false;
};

/// "24h", "30m", "7d", "90s" before now, or a time (Unix ms, ISO 8601 UTC); "" = no bound.
int64_t time_arg(const std::string& flag, const std::string& text) {
  if (text.empty()) return 0;
  const char unit = text.back();
  const std::map<char, double> seconds = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
  if (seconds.count(unit)) {
    const auto n = parse_double(text.substr(0, text.size() - 1));
    if (n && *n >= 0) return unix_now_ms() - static_cast<int64_t>(*n * seconds.at(unit) * 1000);
  }
  const auto ms = parse_utc_ms(text);
  VIGIL_CHECK(ms.has_value(),
              "{}: expected a duration before now (90s, 30m, 24h, 7d) or a time (Unix ms, ISO 8601 "
              "UTC such as 2026-01-31T08:00:00Z), got '{}'",
              flag, text);
  return *ms;
}

/// `--model`: the model's answer for one reference image, as the server logs it (top-1 class and score, or
/// the boxes' labels and scores at the model's own thresholds).
monitor::ProfilePredict profile_predictor(const Context& ctx, const std::string& spec, std::string& name) {
  if (spec.empty()) return {};
  const auto resolved = store::resolve_model_spec(spec, to_utf8(ctx.workspace().root()));
  name = resolved.name.empty() ? spec : resolved.name + "/" + resolved.version;
  model::PredictOptions options;
  options.embed = true;  // the embedding the server logs for each image, to compare with
  return train::profile_predictor(
      std::make_shared<model::Predictor>(model::load_model(resolved.file), options));
}

int run_profile(const Context& ctx, const MonitorArgs& a) {
  VIGIL_CHECK(!a.out.empty(), "--output: expected the profile file to write");
  std::string model_name;
  const monitor::ProfilePredict predict = profile_predictor(ctx, a.profile_model, model_name);
  std::unique_ptr<Progress> progress;  // made at the first image, when the count is known
  monitor::Profile p = monitor::profile_dataset(
      a.data, a.format, a.max_images,
      [&](size_t, size_t total) {
        if (!progress) progress = std::make_unique<Progress>("profile", total, "img");
        progress->advance();
      },
      predict);
  if (progress) progress->finish();
  p.model = model_name;
  write_file_atomic(a.out, monitor::to_json(p).dump() + "\n");
  fmt::print("profiled {} images of {} ({}, {} classes{}{}) -> {}\n", p.rows.size(), a.data, p.task,
             p.classes.size(), p.skipped ? fmt::format(", {} skipped", p.skipped) : "",
             p.model.empty() ? "" : fmt::format(", with the answers of {}", p.model), a.out);
  return 0;
}

/// --reference: a profile file or a dataset folder, else a model (file or NAME@alias) whose own profile is
/// read (the one training wrote beside its weights, kept with the registered version).
monitor::Profile reference_of(const Context& ctx, const std::string& ref) {
  if (fs::is_directory(ref) || ref.ends_with(".json")) return monitor::load_reference(ref);
  const auto resolved = store::resolve_model_spec(ref, to_utf8(ctx.workspace().root()));
  const fs::path profile = monitor::profile_path_for(resolved.file);
  if (!fs::exists(profile))
    throw NotFound(fmt::format(
        "--reference {}: the model has no stored profile ({} does not exist: it was trained before profiles "
        "were kept, imported, or a clip model); make one with `vigil monitor profile VALIDATION_DATA -o "
        "profile.json --model {}` and pass that file",
        ref, profile.string(), ref));
  return monitor::load_reference(profile);
}

int run_report(const Context& ctx, const MonitorArgs& a) {
  VIGIL_CHECK(!a.model.empty(), "--model: expected the served model's name (as /v1/models shows it)");
  VIGIL_CHECK(!a.reference.empty(),
              "--reference: expected a profile (vigil monitor profile) or a dataset folder");
  monitor::DriftReportOptions o;
  if (!a.test.empty()) o.test = monitor::stattest_from_string(a.test);
  if (a.threshold > 0) o.threshold = a.threshold;
  o.drift_share = a.drift_share;
  o.min_current = a.min_current;
  o.embedding.method = monitor::embedding_method_from_string(a.embedding_method);
  if (a.embedding_threshold > 0) o.embedding.threshold = a.embedding_threshold;
  o.validate();
  store::PredictionFilter f;
  f.model = a.model;
  f.version = a.version;
  f.since_ms = time_arg("--since", a.since);
  f.until_ms = time_arg("--until", a.until);
  f.limit = 1000000;
  store::PredictionLog log(ctx.workspace());
  const store::PredictionPage page = log.search(f);
  const monitor::Profile reference = reference_of(ctx, a.reference);
  monitor::DriftReport r = monitor::drift_report(reference, page.rows, o);
  r.model = a.model;
  r.version = a.version;
  r.since_ms = f.since_ms;
  r.until_ms = f.until_ms;
  const nlohmann::json j = monitor::to_json(r);
  if (!a.out.empty()) {
    ensure_dir(a.out);
    write_file_atomic(fs::path(a.out) / "drift.json", j.dump(2) + "\n");
    write_file_atomic(fs::path(a.out) / "drift.html", monitor::to_html(r));
  }
  if (a.json) {
    fmt::print("{}\n", j.dump(2));
  } else {
    fmt::print("model {}{}: {} logged predictions{} against {} reference images ({})\n", a.model,
               a.version.empty() ? "" : " v" + a.version, r.current_rows,
               f.since_ms ? " since " + format_utc_ms(f.since_ms) : "", r.reference_rows, r.reference);
    if (!r.enough_data) {
      fmt::print("not enough data: {} predictions, --min-current is {}\n", r.current_rows, a.min_current);
    } else {
      Table t({"column", "test", "score", "threshold", "drift"});
      for (const auto& c : r.drift.columns)
        t.add({c.column, std::string(monitor::to_string(c.test)), fmt::format("{:.4g}", c.score),
               fmt::format("{}{}", monitor::is_p_value(c.test) ? "p < " : ">= ", c.threshold),
               c.drifted ? "DRIFT" : "-"});
      fmt::print("{}", t.str());
      fmt::print("{}: {} of {} columns drifted ({:.0f}%, dataset drift at {:.0f}%)\n",
                 r.drift.drifted ? "DATASET DRIFT" : "no dataset drift", r.drift.drifted_columns,
                 r.drift.columns.size(), 100 * r.drift.share, 100 * r.drift.drift_share);
      if (r.embedding)
        fmt::print("{}: method {}, score {:.4g} {} {:.4g}{} ({} numbers per image, {} against {} images)\n",
                   r.embedding->drifted ? "EMBEDDING DRIFT" : "no embedding drift",
                   monitor::to_string(r.embedding->method), r.embedding->score,
                   r.embedding->drifted ? ">" : "<=", r.embedding->threshold,
                   r.embedding->bootstrap ? " (bootstrap)" : "", r.embedding->dims, r.embedding->current_size,
                   r.embedding->reference_size);
      else
        fmt::print(
            "embeddings: not compared (profile the reference with --model, and serve with the "
            "prediction log on)\n");
    }
    fmt::print("feedback: {}\n",
               r.feedback.accuracy
                   ? fmt::format("{} marked, accuracy {:.1f}%", r.feedback.total, 100 * *r.feedback.accuracy)
                   : "none");
    if (!a.out.empty()) fmt::print("report: {}\n", (fs::path(a.out) / "drift.html").string());
  }
  // Exit 1 signals drift to a cron job or CI step that asked for it.
  return a.fail_on_drift && r.enough_data && r.drifted() ? 1 : 0;
}

}  // namespace

void register_monitor(CLI::App& app, Context& ctx) {
  static MonitorArgs a;
  auto* monitor = app.add_subcommand("monitor", "drift monitoring of served models: profile, report");
  monitor->require_subcommand(1);
  auto* profile =
      monitor->add_subcommand("profile", "the reference profile of a dataset (image statistics, labels)");
  profile->add_option("data", a.data, "dataset folder (any format vigil reads)")->required();
  profile->add_option("--format", a.format, "dataset format (auto guesses)")->capture_default_str();
  profile->add_option("--max-images", a.max_images,
                      "profile at most this many images, evenly spread (0 = all)");
  profile->add_option("-o,--output", a.out, "profile file to write (JSON)")->required();
  profile->add_option("--model,-m", a.profile_model,
                      "also record this model's answers (file, NAME@alias): the output distribution that "
                      "traffic is compared with; profile the validation split");
  profile->callback([&ctx] { ctx.action = [&ctx] { return run_profile(ctx, a); }; });

  auto* report =
      monitor->add_subcommand("report", "a model's logged traffic against its reference: drift per column");
  report->add_option("--model,-m", a.model, "served model name (as /v1/models shows it)")->required();
  report->add_option("--version", a.version, "only this served version ('' = every version)");
  report
      ->add_option("--reference,-r", a.reference,
                   "a profile (vigil monitor profile), a dataset folder, or a model (file, NAME@alias) whose "
                   "stored profile (written by training) is used")
      ->required();
  report->add_option("--since", a.since, "from: a duration before now (24h, 7d) or a time (ISO 8601 UTC)")
      ->capture_default_str();
  report->add_option("--until", a.until, "to: a duration before now or a time ('' = now)");
  report->add_option("--test", a.test,
                     "one test for every column: ks, wasserstein, chisquare, z, jensenshannon, psi "
                     "('' = Evidently's choice per column)");
  report->add_option("--threshold", a.threshold, "the tests' threshold (0 = each test's default)");
  report
      ->add_option("--embedding-method", a.embedding_method,
                   "the image embeddings' drift method: model, ratio, distance, mmd (Evidently's)")
      ->capture_default_str();
  report->add_option("--embedding-threshold", a.embedding_threshold,
                     "the embedding method's threshold (0 = its default)");
  report->add_option("--drift-share", a.drift_share, "dataset drift when this share of columns drifted")
      ->capture_default_str();
  report->add_option("--min-current", a.min_current, "fewer logged predictions than this: no verdict")
      ->capture_default_str();
  report->add_option("-o,--output", a.out, "folder for drift.json and drift.html");
  report->add_flag("--json", a.json, "print the report as JSON");
  report->add_flag("--fail-on-drift", a.fail_on_drift,
                   "exit 1 when the dataset or the embeddings drifted (for cron jobs and CI)");
  report->callback([&ctx] {
    ctx.uses_workspace = true;
    ctx.action = [&ctx] { return run_report(ctx, a); };
  });
}

}  // namespace vigil::cli

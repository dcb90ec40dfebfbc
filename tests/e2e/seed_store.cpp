// Fills a workspace's tracking store and model registry for the browser test, through the real Store API
// and without training (no torch): two experiments of runs with params and metric histories, and a
// registered model with three versions and two aliases.
//
//   seed_store WORKSPACE    (prints a JSON summary: run ids by name, the model name)
//
// Values are fixed so the test can predict the table: by val_accuracy, descending, the runs read masks-cnn
// (0.97), guns-sgd-fast (0.93), guns-adam (0.91), guns-sgd-slow (0.84), guns-diverged (0.12), which is not
// their start order. guns@production is version 1 and guns@staging version 2, of 3.

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "vigil/core/error.h"
#include "vigil/store/store.h"

namespace {

namespace fs = std::filesystem;
using vigil::store::MetricPoint;
using vigil::store::RunStatus;
using vigil::store::Store;

constexpr const char* kGunsDataset = "d41d8cd98f00b204e9800998ecf8427e";
constexpr const char* kMasksDataset = "5f2b51ca2fdc5baa31ec02e002f69aec";

struct SeedRun {
  std::string name, experiment, kind;
  std::map<std::string, std::string> params;
  double final_accuracy;  ///< val_accuracy at the last epoch; the curve rises towards it
  double final_loss;
  int epochs;
  RunStatus status;
};

std::vector<SeedRun> seed_runs() {
  return {
      {"guns-adam",
       "guns",
       "train",
       {{"optimizer.name", "adam"}, {"optimizer.lr", "0.001"}, {"epochs", "8"}, {"batch_size", "16"}},
       0.91,
       0.21,
       8,
       RunStatus::kFinished},
      {"guns-sgd-slow",
       "guns",
       "train",
       {{"optimizer.name", "sgd"}, {"optimizer.lr", "0.0001"}, {"epochs", "8"}, {"batch_size", "16"}},
       0.84,
       0.45,
       8,
       RunStatus::kFinished},
      {"guns-sgd-fast",
       "guns",
       "train",
       {{"optimizer.name", "sgd"}, {"optimizer.lr", "0.01"}, {"epochs", "10"}, {"batch_size", "32"}},
       0.93,
       0.18,
       10,
       RunStatus::kFinished},
      {"guns-diverged",
       "guns",
       "train",
       {{"optimizer.name", "sgd"}, {"optimizer.lr", "0.5"}, {"epochs", "10"}, {"batch_size", "32"}},
       0.12,
       9.5,
       3,
       RunStatus::kFailed},
      {"masks-cnn",
       "masks",
       "train",
       {{"optimizer.name", "adam"},
        {"optimizer.lr", "0.001"},
        {"epochs", "5"},
        {"model.arch", "mask_small_cnn"}},
       0.97,
       0.08,
       5,
       RunStatus::kFinished},
  };
}

/// Logs a rising accuracy and a falling loss, one point per epoch, ending at the run's final values.
void log_history(Store& store, const std::string& id, const SeedRun& r) {
  std::vector<MetricPoint> points;
  for (int e = 1; e <= r.epochs; ++e) {
    const double t = static_cast<double>(e) / r.epochs;
    const double acc = r.final_accuracy * (1 - 0.6 * std::pow(1 - t, 2));
    const double loss = r.final_loss + (2.5 - r.final_loss) * std::pow(1 - t, 2);
    points.push_back({"val_accuracy", acc, e, 0});
    points.push_back({"loss", loss, e, 0});
  }
  store.log_metrics(id, points);
}

void write_text(const fs::path& file, const std::string& text) {
  std::ofstream out(file, std::ios::binary);
  out << text;
  if (!out) throw vigil::IoError(fmt::format("cannot write {}", file.string()));
}

/// The seed runs, ended with their status; returns run ids by name.
std::map<std::string, std::string> record_runs(Store& store) {
  std::map<std::string, std::string> ids;
  for (const auto& r : seed_runs()) {
    vigil::store::NewRun nr;
    nr.name = r.name;
    nr.experiment = r.experiment;
    nr.kind = r.kind;
    nr.dataset_id = r.experiment == "guns" ? kGunsDataset : kMasksDataset;
    nr.params = r.params;
    nr.tags = {{"seed", "e2e"}};
    nr.code = {"0123456789abcdef0123456789abcdef01234567", false, "e2e-seed"};
    const std::string id = store.create_run(nr);
    log_history(store, id, r);
    store.end_run(id, r.status);
    ids[r.name] = id;
    // Distinct start times, so "newest first" has one order.
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return ids;
}

/// Three versions of "guns" from small files (the registry copies and hashes any file); production -> 1,
/// staging -> 2.
void register_versions(Store& store, const fs::path& root, const std::map<std::string, std::string>& ids) {
  const fs::path files = root / "seed-files";
  fs::create_directories(files);
  const std::vector<std::pair<std::string, double>> versions = {
      {"guns-adam", 0.91}, {"guns-sgd-slow", 0.84}, {"guns-sgd-fast", 0.93}};
  for (size_t i = 0; i < versions.size(); ++i) {
    const auto& [run, accuracy] = versions[i];
    const fs::path file = files / fmt::format("guns-{}.vgm", i + 1);
    write_text(file, fmt::format("e2e model file {} from {}\n", i + 1, run));
    vigil::store::NewModelVersion v;
    v.name = "guns";
    v.run_id = ids.at(run);
    v.dataset_id = kGunsDataset;
    v.arch = "fasterrcnn_mobilenet_v3_large_320_fpn";
    v.task = "detection";
    v.description = fmt::format("trained by {}", run);
    v.source = "run " + ids.at(run);
    v.metrics = {{"val_accuracy", accuracy}};
    store.register_model_file(v, file);
  }
  store.set_alias("guns", "production", 1);
  store.set_alias("guns", "staging", 2);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: seed_store WORKSPACE\n");
    return 2;
  }
  try {
    const fs::path root = fs::absolute(argv[1]);
    fs::create_directories(root);
    Store store{vigil::Workspace(root)};
    const auto ids = record_runs(store);
    register_versions(store, root, ids);
    std::string out = "{\"model\": \"guns\", \"runs\": {";
    bool first = true;
    for (const auto& [name, id] : ids) {
      out += fmt::format("{}\"{}\": \"{}\"", first ? "" : ", ", name, id);
      first = false;
    }
    std::printf("%s}}\n", out.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "seed_store: %s\n", e.what());
    return 1;
  }
}

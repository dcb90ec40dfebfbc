// A separate process that writes into a store, for the concurrency tests: creates a run, logs `count`
// metric points one transaction each (printing "committed i" after each commit), then ends the run.
// Usage: store_writer WORKSPACE RUN_NAME COUNT SLEEP_MS

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "vigil/store/store.h"

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: store_writer WORKSPACE RUN_NAME COUNT SLEEP_MS\n");
    return 2;
  }
  try {
    vigil::store::Store store{vigil::Workspace(argv[1])};
    vigil::store::NewRun run;
    run.name = argv[2];
    run.kind = "test";
    run.params = {{"writer", argv[2]}};
    const std::string id = store.create_run(run);
    std::printf("run %s\n", id.c_str());
    std::fflush(stdout);
    const int count = std::stoi(argv[3]), sleep_ms = std::stoi(argv[4]);
    for (int i = 0; i < count; ++i) {
      store.log_metric(id, "loss", 1.0 / (i + 1), i);
      if (i % 10 == 0) store.set_tag(id, "progress", std::to_string(i));
      std::printf("committed %d\n", i);
      std::fflush(stdout);
      if (sleep_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
    }
    store.end_run(id, vigil::store::RunStatus::kFinished);
    std::printf("done\n");
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "store_writer: %s\n", e.what());
    return 1;
  }
}

// `vigil store migrate`: moves the workspace's store between engines (SQLite -> PostgreSQL when a team
// outgrows one machine), every table with its ids. Registered model files stay in the workspace's registry
// folder, which replicas share.

#include <fmt/core.h>

#include <cstdlib>

#include "cli.h"
#include "table.h"
#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/store/store_migrate.h"

namespace vigil::cli {

namespace {

struct StoreArgs {
  std::string from, to;
};

int migrate(const Context& ctx, const StoreArgs& a) {
  const Workspace ws = ctx.workspace();
  const std::string from = a.from.empty() ? "sqlite:" + to_utf8(ws.root() / "vigil.db") : a.from;
  std::string to = a.to;
  if (to.empty()) {
    const char* env = std::getenv("VIGIL_STORE");  // --store sets it
    if (env) to = env;
  }
  VIGIL_CHECK(!to.empty(),
              "store migrate: expected --to URL (or the global --store / $VIGIL_STORE), got none");
  const store::MigrateReport r = store::migrate_store(ws, from, to);
  Table t({"table", "rows"});
  for (const auto& [table, rows] : r.tables) t.add({table, std::to_string(rows)});
  fmt::print("{}", t.str());
  fmt::print("copied {} rows from {} to {}; registered model files stay in {}\n", r.rows, r.from, r.to,
             to_utf8(ws.root() / "registry"));
  return 0;
}

}  // namespace

void register_store(CLI::App& app, Context& ctx) {
  static StoreArgs a;
  auto* st = app.add_subcommand("store", "the tracking store itself: migrate between SQLite and PostgreSQL");
  st->require_subcommand(1);
  auto* mig = st->add_subcommand(
      "migrate",
      "copy every table (runs, metrics, registry, events, predictions; ids kept) into an empty store");
  mig->add_option("--from", a.from,
                  "source store: sqlite:PATH or postgresql://... (default: the workspace's vigil.db)");
  mig->add_option("--to", a.to, "target store, empty: postgresql://... or sqlite:PATH (default: --store)");
  mig->callback([&ctx] { ctx.action = [&ctx] { return migrate(ctx, a); }; });
}

}  // namespace vigil::cli

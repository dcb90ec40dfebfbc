#pragma once
/// Moving a workspace's store between engines (`vigil store migrate --from sqlite:PATH --to
/// postgresql://...`): every table (runs, params, metrics, tags, artifacts, experiments, the registry,
/// events, predictions) is copied row by row with its ids, in one transaction on each side.

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "vigil/core/workspace.h"
#include "vigil/store/store.h"

namespace vigil::store {

struct MigrateReport {
  std::string from, to;                                 ///< as messages show them (passwords hidden)
  std::vector<std::pair<std::string, int64_t>> tables;  ///< table -> rows copied, in copy order
  int64_t rows = 0;
};

/// Copies the store at `from` into the store at `to` (URLs as StoreOptions::url), creating or migrating the
/// schema on both first. The target must hold no rows yet: a second migrate into it is refused with
/// InvalidArgument naming the table that has data (nothing is written), so a move is never merged into
/// another store. Registered model files are not copied: both stores belong to `ws`, whose registry folder
/// holds them. The source is held under a write transaction while it is read, so no row is added meanwhile.
MigrateReport migrate_store(const Workspace& ws, const std::string& from, const std::string& to,
                            StoreOptions options = {});

}  // namespace vigil::store

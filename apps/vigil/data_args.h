#pragma once
// A dataset named on the command line: a version in the workspace store, or a folder read in place.

#include <optional>
#include <string>

#include "cli.h"
#include "vigil/data/dataset.h"
#include "vigil/data/formats.h"
#include "vigil/data/store.h"

namespace vigil::cli {

struct DatasetArg {
  data::Dataset ds;
  data::ImageSource images;
  std::optional<data::DatasetVersion> version;  ///< set when it came from the store
  std::string display;                          ///< "guns@1a2b3c4d5e6f" or the folder
  std::filesystem::path default_out(const Workspace& ws, const std::string& what) const;
};

/// Resolves REF as a stored dataset version first, then as a path read with `format` (images inspected).
DatasetArg load_dataset_arg(const Context& ctx, const std::string& ref, const std::string& format);

/// Prints issues grouped by kind to stderr: every item, with its file and line.
void print_issues(const std::vector<data::Issue>& issues, const std::string& heading);

}  // namespace vigil::cli

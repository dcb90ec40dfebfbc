#pragma once
// Reading and writing a dataset version's manifest.json (hashed) and info.json (derived, not hashed).

#include <filesystem>
#include <string>

#include "vigil/data/dataset.h"
#include "vigil/data/store.h"

namespace vigil::data {

/// info.json: format, source, time, read issues and per-image inspection results.
std::string info_text(const Dataset& ds, const std::string& format, const std::string& source,
                      const std::string& created);
/// The Dataset a version folder describes (manifest + info).
Dataset read_manifest(const std::filesystem::path& version_dir);
/// Counts and metadata without the samples' annotations.
DatasetVersion read_version_summary(const std::filesystem::path& version_dir);

}  // namespace vigil::data

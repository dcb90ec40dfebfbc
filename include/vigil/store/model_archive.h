#pragma once
/// One file that moves a registered model version between machines intact: a POSIX tar holding
/// `vigil-model.json` (the version's record: name, version, metrics, lineage, the model's own description,
/// the file's SHA-256) and `model.ckpt` (the model file, byte for byte). Import re-hashes the file and
/// refuses an archive whose hash does not match.

#include <filesystem>
#include <string>

#include "vigil/store/store.h"

namespace vigil::store {

/// Writes the version `spec` ("name/k", "name@alias", ...) to `out` (atomically: a temporary file renamed).
/// The registry's copy is verified first. Returns the version exported.
ModelVersion export_model_version(Store& store, const std::string& spec, const std::filesystem::path& out);

struct ImportResult {
  ModelVersion version;
  bool already_present = false;  ///< the same file was already a version of that name: nothing added
  std::string original;          ///< "name/k" on the machine it was exported from
};

/// Registers the archive's model as the next version of its name (or `name` when given). The same file
/// imported twice is reported, not duplicated. DataError names the archive when it is not one, a member is
/// missing, or the model's hash differs from the recorded one.
ImportResult import_model_archive(Store& store, const std::filesystem::path& archive,
                                  const std::string& name = "");

}  // namespace vigil::store

#pragma once
/// dvc.lock in DVC's schema 2.0, read and written as DVC 3 does (dvc/dvcfile.py Lockfile.dump,
/// dvc/stage/serialize.py to_single_stage_lockfile):
///
///   schema: '2.0'
///   stages:
///     NAME:
///       cmd: ...            (string or list, as in dvc.yaml)
///       deps:               (sorted by path)
///       - path: data.csv
///         hash: md5         (absent in entries DVC 2 wrote: those are md5-dos2unix)
///         md5: ...
///         size: ...
///         nfiles: ...       (directories; their md5 ends in .dir)
///         isexec: true      (only when set)
///       params:             (params.yaml first, then other files sorted; keys sorted)
///         params.yaml:
///           train.lr: 0.01
///       outs:               (outs, metrics and plots together, sorted by path)
///
/// Stages keep the order they have in the file; a new stage is appended.

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "vigil/pipeline/dvc_hash.h"
#include "vigil/pipeline/yaml_io.h"

namespace vigil::pipeline {

/// A dep or out entry.
struct LockItem {
  std::string path;
  bool legacy = false;  ///< written by DVC 2 (no `hash: md5`): the md5 is an md5-dos2unix hash
  std::string md5;
  std::optional<int64_t> size;
  std::optional<int64_t> nfiles;
  bool isexec = false;

  HashKind kind() const { return legacy ? HashKind::kMd5Dos2Unix : HashKind::kMd5; }
  /// An entry for a freshly computed hash (always DVC 3 md5).
  static LockItem from_hash(const std::string& path, const HashInfo& h);
};

/// One stage's recorded state.
struct LockStage {
  Json cmd;
  std::vector<LockItem> deps;
  Json params = Json::object();  ///< file -> {key -> value}
  std::vector<LockItem> outs;

  const LockItem* find_dep(const std::string& path) const;
  const LockItem* find_out(const std::string& path) const;
  /// Equal as DVC would serialise them.
  bool operator==(const LockStage& other) const;
};

/// The whole lock file.
struct Lockfile {
  std::vector<std::pair<std::string, LockStage>> stages;

  const LockStage* find(const std::string& name) const;
  /// Replaces the entry of `name` in place, or appends it. Returns false when it was already identical.
  bool set(const std::string& name, LockStage stage);
  /// Drops entries whose stage is not in `names` (stages deleted from dvc.yaml).
  void retain(const std::vector<std::string>& names);
};

/// Reads dvc.lock; an absent file is an empty lock. Throws InvalidArgument naming the file (and line) when it
/// is not a schema 2.0 lock file. DVC 2's legacy entries (no `hash:`) are read as md5-dos2unix.
Lockfile read_lockfile(const std::filesystem::path& path);
/// Parses lock text (`name` for messages).
Lockfile parse_lockfile(std::string_view text, const std::string& name);
/// The exact text DVC writes for this lock.
std::string lockfile_text(const Lockfile& lock);
/// Writes the lock atomically (temporary file beside it, then rename).
void write_lockfile(const std::filesystem::path& path, const Lockfile& lock);

}  // namespace vigil::pipeline

#pragma once
/// The workspace's dataset store. Files are content-addressed (stored once however many datasets use them);
/// a dataset version is a manifest, and its id is the SHA-256 of that manifest: identical data gives the
/// identical id, any changed byte in any file of the source folder gives a new one (like DVC).
///
/// Layout under <workspace>/:
///   store/objects/ab/cdef...        file contents by sha256
///   datasets/<id>/manifest.json     hashed: task, classes, every source file, every sample's annotations
///   datasets/<id>/info.json         not hashed: format, source, time, read issues, per-image inspection
///   datasets/<id>/splits/<name>/    train.txt, val.txt, test.txt (sample files), summary.json, config.yaml
///   datasets/names/<name>.json      the versions ingested under a name, oldest first

#include <filesystem>
#include <string>
#include <vector>

#include "vigil/core/progress.h"
#include "vigil/core/workspace.h"
#include "vigil/data/archive.h"
#include "vigil/data/dataset.h"
#include "vigil/data/formats.h"

namespace vigil::data {

struct IngestOptions {
  std::string name;  ///< required: [A-Za-z0-9._-]+
  std::string format = "auto";
  std::vector<std::string> classes;  ///< optional explicit class names
  int threads = 0;                   ///< hashing, copying and decoding workers; 0 = every core
  ArchiveLimits archive_limits;      ///< a .zip / .tar.* source is unpacked within these (data/archive.h)
};

struct DatasetVersion {
  std::string id;  ///< sha256 of manifest.json
  std::string name;
  std::string format;
  std::string source;
  std::string created;  ///< ISO-8601 UTC of the first ingest of this content
  Task task = Task::kDetection;
  size_t images = 0, boxes = 0, classes = 0, files = 0;
  std::string short_id() const { return id.substr(0, 12); }
};

struct IngestResult {
  DatasetVersion version;
  bool unchanged = false;     ///< this name already had exactly this content
  size_t files_stored = 0;    ///< new objects written (the rest were already in the store)
  std::vector<Issue> issues;  ///< problems met while reading (every skipped item with its reason)
};

struct SplitFiles {
  std::vector<std::string> train, val, test;  ///< Sample::file values
};

class DatasetStore {
 public:
  explicit DatasetStore(Workspace ws);

  /// `source`: a dataset folder, a COCO .json, or an archive of either (.zip, .tar[.gz|.bz2|.xz]), unpacked
  /// under <workspace>/tmp as hostile input and removed afterwards.
  IngestResult ingest(const std::filesystem::path& source, const IngestOptions& options,
                      Progress* progress = nullptr);
  /// Every (name, version) pair, names sorted, versions oldest first.
  std::vector<DatasetVersion> list() const;
  /// "name" (its newest version), "name@<id prefix>", or "<id prefix>" (at least 6 hex digits).
  /// Throws NotFound listing the known names.
  DatasetVersion resolve(const std::string& ref) const;
  /// The samples and classes from the manifest, with inspection results; images come from image_source().
  Dataset load(const DatasetVersion& version) const;
  /// Maps a loaded sample to its file in the object store. Valid after this store object is gone.
  ImageSource image_source() const;
  std::filesystem::path object_path(const std::string& sha256) const;
  std::filesystem::path version_dir(const std::string& id) const;

  void save_split(const DatasetVersion& v, const std::string& split_name, const SplitFiles& files,
                  const std::string& summary_json, const std::string& config_yaml) const;
  /// Throws NotFound naming the available splits.
  SplitFiles load_split(const DatasetVersion& v, const std::string& split_name) const;
  std::vector<std::string> split_names(const DatasetVersion& v) const;

 private:
  IngestResult ingest_from(const std::filesystem::path& source, const std::filesystem::path& recorded_source,
                           const IngestOptions& options, Progress* progress);
  Workspace ws_;
};

/// The manifest's canonical JSON text for a dataset (what the version id hashes). Exposed for tests.
std::string manifest_text(const Dataset& ds, const std::vector<std::pair<std::string, std::string>>& files);

}  // namespace vigil::data

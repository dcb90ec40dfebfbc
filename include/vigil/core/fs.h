#pragma once
/// Filesystem helpers with vigil's error taxonomy: missing files -> NotFound, failures -> IoError.

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace vigil {

namespace fs = std::filesystem;

/// Reads a whole file. Throws NotFound / IoError naming the path.
std::string read_file(const fs::path& path);
/// Writes atomically: a temporary file beside `path`, then rename, so readers never see half a file.
void write_file_atomic(const fs::path& path, std::string_view content);
/// Creates a directory and its parents; throws IoError naming the path on failure.
void ensure_dir(const fs::path& dir);
/// Every regular file below `root`, as paths relative to it, sorted by their generic (UTF-8, '/') form.
std::vector<fs::path> list_files_recursive(const fs::path& root);
/// The path's generic form as UTF-8 ('/' separators on every platform).
std::string to_utf8(const fs::path& p);
/// Lower-cased extension including the dot ("" when none).
std::string lower_extension(const fs::path& p);

/// A fresh folder `<parent>/<prefix>-<pid>-<n>` (not created: the caller makes it or lets a writer do so),
/// removed with everything in it when this object goes, whatever happened meanwhile (an upload refused
/// half-way, an ingest that threw).
class ScratchDir {
 public:
  ScratchDir(const fs::path& parent, std::string_view prefix);
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

}  // namespace vigil

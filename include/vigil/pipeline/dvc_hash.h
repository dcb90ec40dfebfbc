#pragma once
/// File and directory hashes exactly as DVC 3 computes them (dvc-data, hashfile/hash.py and
/// hashfile/tree.py):
///  - a file: md5 of its bytes; size; isexec when any execute bit is set;
///  - a directory: md5 of the `.dir` object, i.e. json.dumps(sorted [{"md5": ..., "relpath": ...}],
///    sort_keys=True) encoded as UTF-8 (ASCII, since json.dumps escapes everything else), plus the ".dir"
///    suffix; size = sum of file sizes, nfiles = number of files. Empty folders add nothing; symlinked files
///    are followed, symlinked folders are not entered (os.walk); ignored paths (DvcIgnore) are left out.
///  - DVC 2's legacy "md5-dos2unix": like md5 but a 1 MiB chunk whose first 512 bytes look like text has its
///    CRLFs turned into LFs first. Lock entries without a `hash: md5` line were written that way.

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "vigil/pipeline/dvcignore.h"

namespace vigil::pipeline {

enum class HashKind {
  kMd5,          ///< DVC 3 ("hash: md5")
  kMd5Dos2Unix,  ///< DVC 2 legacy entries
};

/// What DVC records about a file or directory in dvc.lock.
struct HashInfo {
  std::string md5;  ///< hex; directories end in ".dir"
  int64_t size = 0;
  std::optional<int64_t> nfiles;  ///< directories only
  bool isdir = false;
  bool isexec = false;
};

/// One file of a directory object.
struct DirEntry {
  std::string relpath;  ///< '/'-separated, relative to the directory
  std::string md5;
};

/// md5 of a file's bytes (or DVC 2's dos2unix variant). Throws NotFound / IoError naming the path.
std::string file_md5(const std::filesystem::path& path, HashKind kind = HashKind::kMd5);
/// The bytes of the `.dir` object for these entries (sorted here by relpath, as Python sorts str).
std::string dir_object_bytes(std::vector<DirEntry> entries);
/// A string as Python's json.dumps writes it with ensure_ascii=True (quotes included): non-ASCII as \uXXXX,
/// astral characters as surrogate pairs, bytes that are not UTF-8 as \udcXX (surrogateescape).
std::string json_ascii_string(const std::string& utf8);

/// Memoises hashes within one run, keyed by path, size, mtime and inode, so a dependency shared by several
/// stages (or checked for status and then recorded) is read once, like DVC's state database.
class HashCache {
 public:
  /// Hash of a file or directory. Throws NotFound when `path` does not exist (a broken symlink included).
  HashInfo hash(const std::filesystem::path& path, const DvcIgnore& ignore, HashKind kind = HashKind::kMd5);
  void clear() { files_.clear(); }

 private:
  std::string cached_file_md5(const std::filesystem::path& path, HashKind kind);
  HashInfo hash_dir(const std::filesystem::path& dir, const DvcIgnore& ignore, HashKind kind);
  struct Key {
    std::string path;
    uintmax_t size;
    int64_t mtime_ns;
    uintmax_t inode;
    int kind;
    auto operator<=>(const Key&) const = default;
  };
  std::map<Key, std::string> files_;
};

/// Convenience: hash without a cache.
HashInfo hash_path(const std::filesystem::path& path, const DvcIgnore& ignore = {},
                   HashKind kind = HashKind::kMd5);

}  // namespace vigil::pipeline

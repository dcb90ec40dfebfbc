#pragma once
/// Dataset archives (.zip, .tar, .tar.gz/.tgz, .tar.bz2, .tar.xz, read with libarchive) unpacked as hostile
/// input: an entry with an absolute path or a ".." component, a link, a device or a duplicate name refuses
/// the whole archive; so do more entries, more bytes or a higher expansion ratio than the limits (zip bombs),
/// counted on the bytes actually written, never on what headers claim. Nothing is ever written outside the
/// destination, and a refused archive leaves nothing behind.

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace vigil::data {

struct ArchiveLimits {
  uint64_t max_entries = 50000;              ///< files and folders (a flood of tiny entries is refused)
  uint64_t max_total_bytes = 20ull << 30;    ///< unpacked bytes in all
  uint64_t max_entry_bytes = 2ull << 30;     ///< unpacked bytes of one file
  double max_ratio = 100;                    ///< unpacked bytes / archive bytes, past the floor below
  uint64_t ratio_floor_bytes = 64ull << 20;  ///< the ratio is only enforced past this many unpacked bytes
  void validate() const;
};

struct ExtractResult {
  size_t files = 0;
  uint64_t bytes = 0;
  std::vector<std::string> skipped;  ///< OS metadata left out (__MACOSX/, .DS_Store, Thumbs.db)
  std::filesystem::path root;        ///< the destination, or its single top-level folder when there is one
};

/// True when the file name ends like an archive vigil unpacks.
bool is_archive(const std::filesystem::path& path);

/// Unpacks `archive` into `dest` (created; must be empty or absent). DataError naming the archive and the
/// entry for anything refused (see the file comment), NotFound for a missing archive.
ExtractResult extract_archive(const std::filesystem::path& archive, const std::filesystem::path& dest,
                              const ArchiveLimits& limits = {});

/// Checks one archive entry name (or an uploaded file's relative name): relative, no "..", no empty or "."
/// components, no backslashes or NUL. Returns the normalised relative path; DataError naming it otherwise.
std::filesystem::path safe_relative_path(const std::string& name);

}  // namespace vigil::data

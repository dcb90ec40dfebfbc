#include "vigil/data/archive.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <memory>
#include <set>

#include "vigil/core/error.h"
#include "vigil/core/strings.h"

namespace vigil::data {

namespace fs = std::filesystem;

namespace {

struct ArchiveCloser {
  void operator()(struct archive* a) const { archive_read_free(a); }
};

/// OS metadata that archivers add; left out rather than refused.
bool is_os_metadata(const std::string& name) {
  return starts_with(name, "__MACOSX/") || name == "__MACOSX" ||
         std::string_view(name).ends_with("/.DS_Store") || name == ".DS_Store" ||
         std::string_view(name).ends_with("/Thumbs.db") || name == "Thumbs.db";
}

/// Removes the partial destination when extraction is refused half-way.
struct Cleanup {
  fs::path dir;
  bool armed = true;
  ~Cleanup() {
    if (!armed) return;
    std::error_code ec;
    fs::remove_all(dir, ec);
  }
};

}  // namespace

void ArchiveLimits::validate() const {
  VIGIL_CHECK(max_entries >= 1 && max_total_bytes >= 1 && max_entry_bytes >= 1 && max_ratio >= 1,
              "expected archive limits >= 1, got entries {} bytes {} entry bytes {} ratio {}", max_entries,
              max_total_bytes, max_entry_bytes, max_ratio);
}

bool is_archive(const fs::path& path) {
  const std::string n = to_lower(path.filename().string());
  for (const char* ext : {".zip", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz"})
    if (std::string_view(n).ends_with(ext)) return true;
  return false;
}

fs::path safe_relative_path(const std::string& name) {
  const auto refuse = [&](const char* why) {
    throw DataError(fmt::format("refused entry '{}': {}", name, why));
  };
  if (name.empty()) refuse("an empty name");
  if (name.find('\0') != std::string::npos) refuse("a NUL byte in the name");
  if (name.find('\\') != std::string::npos) refuse("a backslash in the name (a Windows path?)");
  if (name.front() == '/') refuse("an absolute path");
  if (name.size() > 1 && name[1] == ':') refuse("a drive letter");
  fs::path out;
  for (const std::string& part : split(name, '/')) {
    if (part.empty() || part == ".") continue;  // "a//b", "./a", a trailing "/"
    if (part == "..") refuse("a '..' component (path traversal)");
    out /= part;
  }
  if (out.empty()) refuse("no file name");
  return out;
}

ExtractResult extract_archive(const fs::path& archive, const fs::path& dest, const ArchiveLimits& limits) {
  limits.validate();
  std::error_code ec;
  if (!fs::is_regular_file(archive, ec)) throw NotFound(fmt::format("no archive {}", archive.string()));
  if (fs::exists(dest, ec) && !fs::is_empty(dest, ec))
    throw InvalidArgument(
        fmt::format("expected an empty folder to unpack {} into, got {}", archive.string(), dest.string()));
  const uint64_t archive_bytes = fs::file_size(archive);
  std::unique_ptr<struct archive, ArchiveCloser> a(archive_read_new());
  archive_read_support_filter_all(a.get());
  archive_read_support_format_zip(a.get());
  archive_read_support_format_tar(a.get());
  archive_read_support_format_gnutar(a.get());
  const auto fail = [&](const std::string& what) -> DataError {
    return DataError(fmt::format("archive {}: {}", archive.string(), what));
  };
  if (archive_read_open_filename(a.get(), archive.c_str(), 1 << 16) != ARCHIVE_OK)
    throw fail(
        fmt::format("cannot read it as .zip or .tar[.gz|.bz2|.xz]: {}", archive_error_string(a.get())));
  fs::create_directories(dest);
  Cleanup cleanup{dest};
  ExtractResult result;
  std::set<std::string> seen;
  uint64_t entries = 0;
  std::vector<char> buffer(1 << 16);
  struct archive_entry* entry = nullptr;
  while (true) {
    const int rc = archive_read_next_header(a.get(), &entry);
    if (rc == ARCHIVE_EOF) break;
    if (rc < ARCHIVE_WARN)
      throw fail(fmt::format("corrupt after {} entries: {}", entries, archive_error_string(a.get())));
    if (++entries > limits.max_entries)
      throw fail(fmt::format("more than {} entries (refused: too many files)", limits.max_entries));
    const char* raw = archive_entry_pathname(entry);
    const std::string name = raw ? raw : "";
    if (is_os_metadata(name)) {
      result.skipped.push_back(name);
      continue;
    }
    const mode_t type = archive_entry_filetype(entry);
    fs::path rel;
    try {
      rel = safe_relative_path(name);
    } catch (const DataError& e) {
      throw fail(e.what());
    }
    if (type == AE_IFDIR) {
      fs::create_directories(dest / rel);
      continue;
    }
    if (type != AE_IFREG || archive_entry_hardlink(entry) != nullptr)
      throw fail(fmt::format("refused entry '{}': {} (only regular files and folders are unpacked)", name,
                             type == AE_IFLNK                ? "a symbolic link"
                             : archive_entry_hardlink(entry) ? "a hard link"
                                                             : "a special file"));
    if (!seen.insert(rel.generic_string()).second)
      throw fail(fmt::format("refused entry '{}': a duplicate name", name));
    const fs::path target = dest / rel;
    fs::create_directories(target.parent_path());
    // O_EXCL|O_NOFOLLOW: never through a link, never over a file (both already refused, kept as a backstop).
    const int fd = ::open(target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0)
      throw IoError(fmt::format("cannot create {} while unpacking {}", target.string(), archive.string()));
    uint64_t entry_bytes = 0;
    bool ok = true;
    while (true) {
      const la_ssize_t n = archive_read_data(a.get(), buffer.data(), buffer.size());
      if (n == 0) break;
      if (n < 0) {
        ::close(fd);
        throw fail(fmt::format("entry '{}' is corrupt: {}", name, archive_error_string(a.get())));
      }
      entry_bytes += static_cast<uint64_t>(n);
      result.bytes += static_cast<uint64_t>(n);
      std::string refusal;
      if (entry_bytes > limits.max_entry_bytes)
        refusal = fmt::format("entry '{}' unpacks to more than {} MiB", name, limits.max_entry_bytes >> 20);
      else if (result.bytes > limits.max_total_bytes)
        refusal = fmt::format("unpacks to more than {} MiB in all", limits.max_total_bytes >> 20);
      else if (result.bytes > limits.ratio_floor_bytes &&
               static_cast<double>(result.bytes) > limits.max_ratio * static_cast<double>(archive_bytes))
        refusal =
            fmt::format("expands more than {:.0f} times its size (a zip bomb?): {} MiB from {} KiB so far",
                        limits.max_ratio, result.bytes >> 20, archive_bytes >> 10);
      if (!refusal.empty()) {
        ::close(fd);
        throw fail("refused: " + refusal);
      }
      if (::write(fd, buffer.data(), static_cast<size_t>(n)) != n) ok = false;
    }
    if (::close(fd) != 0 || !ok)
      throw IoError(fmt::format("cannot write {} while unpacking {}", target.string(), archive.string()));
    ++result.files;
  }
  if (result.files == 0) throw fail("no files in it");
  // One folder at the top (how people zip a dataset folder): that folder is the dataset's root.
  result.root = dest;
  std::vector<fs::path> top;
  for (const auto& e : fs::directory_iterator(dest)) top.push_back(e.path());
  if (top.size() == 1 && fs::is_directory(top[0])) result.root = top[0];
  cleanup.armed = false;
  return result;
}

}  // namespace vigil::data

#pragma once
/// POSIX ustar archives, enough to move a model version between machines as one file that `tar` can list and
/// unpack: regular files only, names up to 255 bytes, streamed (a model of any size never sits in memory).

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <string_view>

namespace vigil {

/// Writes an archive to `path` (created or truncated). finish() writes the end-of-archive blocks; an
/// unfinished archive is incomplete. IoError names the file on any failure.
class TarWriter {
 public:
  explicit TarWriter(const std::filesystem::path& path);
  void add_bytes(const std::string& name, std::string_view data);
  void add_file(const std::string& name, const std::filesystem::path& file);
  void finish();

 private:
  void header(const std::string& name, uint64_t size);
  void pad(uint64_t size);
  std::filesystem::path path_;
  std::ofstream out_;
};

struct TarEntry {
  std::string name;
  uint64_t size = 0;
};

/// Calls `on_entry` for every regular file of the archive with a function that reads its next bytes (returns
/// 0 at the end of the entry). Bytes the callback leaves unread are skipped. DataError names the archive when
/// it is not a tar file, is truncated, or a header's checksum is wrong.
void read_tar(
    const std::filesystem::path& path,
    const std::function<void(const TarEntry&, const std::function<size_t(char*, size_t)>&)>& on_entry);

}  // namespace vigil

#pragma once
/// Content hashes. SHA-256 names objects in the dataset store and dataset versions; MD5 is what DVC uses.

#include <filesystem>
#include <string>
#include <string_view>

namespace vigil {

enum class HashAlgo { kSha256, kMd5 };

/// Incremental hasher; hex() finishes it.
class Hasher {
 public:
  explicit Hasher(HashAlgo algo = HashAlgo::kSha256);
  ~Hasher();
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  void update(std::string_view bytes);
  std::string hex();

 private:
  void* ctx_;
};

/// Lower-case hex digest of some bytes.
std::string hash_bytes(std::string_view bytes, HashAlgo algo = HashAlgo::kSha256);
/// Lower-case hex digest of a file, streamed in 1 MiB chunks. Throws NotFound / IoError.
std::string hash_file(const std::filesystem::path& path, HashAlgo algo = HashAlgo::kSha256);

}  // namespace vigil

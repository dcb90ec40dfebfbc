#pragma once
/// Content hashes. SHA-256 names objects in the dataset store and dataset versions; MD5 is what DVC uses.

#include <cstdint>
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

/// splitmix64's finaliser over (seed, value): independent, reproducible random streams from a seed and a
/// stream key (epoch, sample index, ...) without a shared generator.
constexpr uint64_t splitmix64(uint64_t seed, uint64_t value) {
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * (value + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
/// Lower-case hex digest of a file, streamed in 1 MiB chunks. Throws NotFound / IoError.
std::string hash_file(const std::filesystem::path& path, HashAlgo algo = HashAlgo::kSha256);

}  // namespace vigil

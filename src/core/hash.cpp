#include "vigil/core/hash.h"

#include <openssl/evp.h>

#include <fstream>
#include <vector>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"

namespace vigil {

Hasher::Hasher(HashAlgo algo) : ctx_(EVP_MD_CTX_new()) {
  VIGIL_ASSERT(ctx_ != nullptr, "EVP_MD_CTX_new failed");
  const EVP_MD* md = algo == HashAlgo::kSha256 ? EVP_sha256() : EVP_md5();
  VIGIL_ASSERT(EVP_DigestInit_ex(static_cast<EVP_MD_CTX*>(ctx_), md, nullptr) == 1);
}

Hasher::~Hasher() {
  EVP_MD_CTX_free(static_cast<EVP_MD_CTX*>(ctx_));
}

void Hasher::update(std::string_view bytes) {
  VIGIL_ASSERT(EVP_DigestUpdate(static_cast<EVP_MD_CTX*>(ctx_), bytes.data(), bytes.size()) == 1);
}

std::string Hasher::hex() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  VIGIL_ASSERT(EVP_DigestFinal_ex(static_cast<EVP_MD_CTX*>(ctx_), digest, &len) == 1);
  static const char* kHex = "0123456789abcdef";
  std::string out(len * 2, '0');
  for (unsigned i = 0; i < len; ++i) {
    out[2 * i] = kHex[digest[i] >> 4];
    out[2 * i + 1] = kHex[digest[i] & 15];
  }
  return out;
}

std::string hash_bytes(std::string_view bytes, HashAlgo algo) {
  Hasher h(algo);
  h.update(bytes);
  return h.hex();
}

std::string hash_file(const std::filesystem::path& path, HashAlgo algo) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) throw NotFound(fmt::format("file not found: {}", to_utf8(path)));
    throw IoError(fmt::format("cannot open {} for reading", to_utf8(path)));
  }
  Hasher h(algo);
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) h.update(std::string_view(buf.data(), static_cast<size_t>(in.gcount())));
  }
  if (in.bad()) throw IoError(fmt::format("read failed: {}", to_utf8(path)));
  return h.hex();
}

}  // namespace vigil

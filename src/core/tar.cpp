#include "vigil/core/tar.h"

#include <fmt/format.h>

#include <array>
#include <cstring>
#include <vector>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"

namespace vigil {

namespace {

constexpr size_t kBlock = 512;

void put_octal(char* field, size_t width, uint64_t value) {
  // width - 1 octal digits and a NUL, as GNU and BSD tar write them.
  const std::string s = fmt::format("{:0{}o}", value, width - 1);
  std::memcpy(field, s.data(), width - 1);
  field[width - 1] = '\0';
}

uint64_t get_octal(const char* field, size_t width) {
  uint64_t v = 0;
  for (size_t i = 0; i < width && field[i]; ++i) {
    if (field[i] == ' ') continue;
    if (field[i] < '0' || field[i] > '7') break;
    v = v * 8 + static_cast<uint64_t>(field[i] - '0');
  }
  return v;
}

unsigned checksum(const std::array<char, kBlock>& h) {
  unsigned sum = 0;
  for (size_t i = 0; i < kBlock; ++i) sum += (i >= 148 && i < 156) ? ' ' : static_cast<unsigned char>(h[i]);
  return sum;
}

}  // namespace

TarWriter::TarWriter(const std::filesystem::path& path)
    : path_(path), out_(path, std::ios::binary | std::ios::trunc) {
  if (!out_) throw IoError(fmt::format("cannot write {}", to_utf8(path)));
}

void TarWriter::header(const std::string& name, uint64_t size) {
  std::array<char, kBlock> h{};
  std::string prefix, base = name;
  if (base.size() > 100) {  // ustar splits long names at a '/' into prefix (155) + name (100)
    const auto cut = name.rfind('/', 155);
    if (cut == std::string::npos || name.size() - cut - 1 > 100 || cut == 0)
      throw InvalidArgument(
          fmt::format("expected an archive member name of at most 100 bytes per part, got '{}'", name));
    prefix = name.substr(0, cut);
    base = name.substr(cut + 1);
  }
  std::memcpy(h.data(), base.data(), base.size());
  put_octal(h.data() + 100, 8, 0644);
  put_octal(h.data() + 108, 8, 0);
  put_octal(h.data() + 116, 8, 0);
  put_octal(h.data() + 124, 12, size);
  put_octal(h.data() + 136, 12, 0);  // mtime 0: the same version gives the same archive bytes
  h[156] = '0';
  std::memcpy(h.data() + 257, "ustar", 6);
  std::memcpy(h.data() + 263, "00", 2);
  std::memcpy(h.data() + 345, prefix.data(), prefix.size());
  const std::string sum = fmt::format("{:06o}", checksum(h));
  std::memcpy(h.data() + 148, sum.data(), 6);
  h[154] = '\0';
  h[155] = ' ';
  out_.write(h.data(), kBlock);
}

void TarWriter::pad(uint64_t size) {
  static const std::array<char, kBlock> zeros{};
  if (size % kBlock) out_.write(zeros.data(), static_cast<std::streamsize>(kBlock - size % kBlock));
  if (!out_) throw IoError(fmt::format("writing {} failed (disk full?)", to_utf8(path_)));
}

void TarWriter::add_bytes(const std::string& name, std::string_view data) {
  header(name, data.size());
  out_.write(data.data(), static_cast<std::streamsize>(data.size()));
  pad(data.size());
}

void TarWriter::add_file(const std::string& name, const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw NotFound(fmt::format("cannot read {}", to_utf8(file)));
  const uint64_t size = std::filesystem::file_size(file);
  header(name, size);
  std::vector<char> buf(1 << 20);
  uint64_t left = size;
  while (left > 0) {
    const auto n = static_cast<std::streamsize>(std::min<uint64_t>(left, buf.size()));
    if (!in.read(buf.data(), n)) throw IoError(fmt::format("{} shrank while being archived", to_utf8(file)));
    out_.write(buf.data(), n);
    left -= static_cast<uint64_t>(n);
  }
  pad(size);
}

void TarWriter::finish() {
  static const std::array<char, kBlock * 2> zeros{};
  out_.write(zeros.data(), zeros.size());
  out_.flush();
  if (!out_) throw IoError(fmt::format("writing {} failed (disk full?)", to_utf8(path_)));
  out_.close();
}

void read_tar(
    const std::filesystem::path& path,
    const std::function<void(const TarEntry&, const std::function<size_t(char*, size_t)>&)>& on_entry) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw NotFound(fmt::format("cannot read {}", to_utf8(path)));
  const std::string where = to_utf8(path);
  std::array<char, kBlock> h{};
  for (int index = 0;; ++index) {
    if (!in.read(h.data(), kBlock))
      throw DataError(fmt::format("{}: truncated archive (no end marker)", where));
    if (std::all_of(h.begin(), h.end(), [](char c) { return c == 0; })) return;
    if (get_octal(h.data() + 148, 8) != checksum(h)) {
      throw DataError(
          fmt::format("{}: header {} has a wrong checksum: not a tar archive, or damaged", where, index));
    }
    TarEntry e;
    const std::string prefix(h.data() + 345, strnlen(h.data() + 345, 155));
    e.name = std::string(h.data(), strnlen(h.data(), 100));
    if (!prefix.empty() && std::memcmp(h.data() + 257, "ustar", 5) == 0) e.name = prefix + "/" + e.name;
    e.size = get_octal(h.data() + 124, 12);
    const char type = h[156];
    uint64_t left = e.size;
    auto read = [&](char* buf, size_t n) -> size_t {
      const auto want = static_cast<std::streamsize>(std::min<uint64_t>(n, left));
      if (want == 0) return 0;
      if (!in.read(buf, want)) throw DataError(fmt::format("{}: '{}' is truncated", where, e.name));
      left -= static_cast<uint64_t>(want);
      return static_cast<size_t>(want);
    };
    if (type == '0' || type == '\0') on_entry(e, read);
    in.seekg(static_cast<std::streamoff>(left + (e.size % kBlock ? kBlock - e.size % kBlock : 0)),
             std::ios::cur);
    if (!in) throw DataError(fmt::format("{}: truncated archive", where));
  }
}

}  // namespace vigil

#include "vigil/core/fs.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdio>
#include <fstream>
#include <random>

#include "vigil/core/error.h"

namespace vigil {

std::string read_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw NotFound(fmt::format("file not found: {}", to_utf8(path)));
  if (fs::is_directory(path, ec))
    throw IoError(fmt::format("expected a file, got a directory: {}", to_utf8(path)));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(fmt::format("cannot open {} for reading", to_utf8(path)));
  std::string data;
  in.seekg(0, std::ios::end);
  auto size = in.tellg();
  if (size > 0) {
    data.resize(static_cast<size_t>(size));
    in.seekg(0);
    in.read(data.data(), size);
  }
  if (in.bad()) throw IoError(fmt::format("read failed: {}", to_utf8(path)));
  return data;
}

void ensure_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec && !fs::is_directory(dir)) {
    throw IoError(fmt::format("cannot create directory {}: {}", to_utf8(dir), ec.message()));
  }
}

void write_file_atomic(const fs::path& path, std::string_view content) {
  if (path.has_parent_path()) ensure_dir(path.parent_path());
  thread_local std::mt19937_64 rng{std::random_device{}()};
  fs::path tmp = path;
  tmp += fmt::format(".tmp{:x}", rng());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw IoError(fmt::format("cannot open {} for writing", to_utf8(tmp)));
    out.write(content.data(), static_cast<std::streamsize>(content.size()));
    out.flush();
    if (!out) {
      std::error_code ec;
      fs::remove(tmp, ec);
      throw IoError(fmt::format("write failed: {}", to_utf8(path)));
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw IoError(fmt::format("cannot move {} into place: {}", to_utf8(path), ec.message()));
  }
}

std::vector<fs::path> list_files_recursive(const fs::path& root) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw NotFound(fmt::format("directory not found: {}", to_utf8(root)));
  std::vector<fs::path> out;
  for (auto it = fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, ec);
       it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (ec) throw IoError(fmt::format("cannot list {}: {}", to_utf8(root), ec.message()));
    if (it->is_regular_file(ec)) out.push_back(fs::relative(it->path(), root, ec));
  }
  std::sort(out.begin(), out.end(),
            [](const fs::path& a, const fs::path& b) { return a.generic_u8string() < b.generic_u8string(); });
  return out;
}

std::string to_utf8(const fs::path& p) {
  auto s = p.generic_u8string();
  return std::string(s.begin(), s.end());
}

std::string lower_extension(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  return ext;
}

ScratchDir::ScratchDir(const fs::path& parent, std::string_view prefix) {
  static std::atomic<uint64_t> counter{0};
  path_ = parent / fmt::format("{}-{}-{}", prefix, ::getpid(), counter.fetch_add(1));
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

}  // namespace vigil

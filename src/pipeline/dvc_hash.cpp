// DVC-compatible hashing. Sources matched (dvc-data): hashfile/hash.py (file_md5, HashStreamFile,
// Dos2UnixHashStreamFile), hashfile/istextfile.py (istextblock), hashfile/build.py (_build_tree: walk, size,
// nfiles, IgnoreInCollectedDirError), hashfile/tree.py (Tree.as_list, Tree.as_bytes, Tree.digest).

#include "vigil/pipeline/dvc_hash.h"

#include <fmt/format.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/hash.h"
#include "vigil/pipeline/yaml_io.h"

namespace vigil::pipeline {

namespace fs = std::filesystem;

namespace {

constexpr size_t kChunk = 1 << 20;  // fobj_md5's chunk_size
constexpr size_t kTextProbe = 512;  // istextfile.DEFAULT_CHUNK_SIZE

bool is_text_block(std::string_view block) {
  if (block.empty()) return true;
  if (block.find('\0') != std::string_view::npos) return false;
  size_t nontext = 0;
  for (unsigned char c : block) {
    const bool text = (c >= 32 && c <= 126) || c == '\n' || c == '\r' || c == '\t' || c == '\f' || c == '\b';
    if (!text) ++nontext;
  }
  return static_cast<double>(nontext) / static_cast<double>(block.size()) <= 0.30;
}

std::string dos2unix(std::string_view chunk) {
  std::string out;
  out.reserve(chunk.size());
  for (size_t i = 0; i < chunk.size(); ++i) {
    if (chunk[i] == '\r' && i + 1 < chunk.size() && chunk[i + 1] == '\n') continue;
    out += chunk[i];
  }
  return out;
}

struct StatKey {
  uintmax_t size = 0;
  int64_t mtime_ns = 0;
  uintmax_t inode = 0;
  bool exec = false;
};

StatKey stat_of(const fs::path& p) {
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0) throw NotFound(fmt::format("file not found: {}", to_utf8(p)));
  StatKey k;
  k.size = static_cast<uintmax_t>(st.st_size);
  k.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  k.inode = st.st_ino;
  k.exec = (st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) != 0;
  return k;
}

// Python sorts str by code point; comparing decoded code points keeps undecodable bytes (surrogates) where
// Python would put them.
bool relpath_less(const DirEntry& a, const DirEntry& b) {
  return decode_code_points(a.relpath) < decode_code_points(b.relpath);
}

std::string rel_to_root(const fs::path& p, const fs::path& root) {
  if (root.empty()) return {};
  auto rel = p.lexically_relative(root);
  const auto s = to_utf8(rel);
  if (s.empty() || s == "." || s.rfind("..", 0) == 0) return {};
  return s;
}

}  // namespace

std::string file_md5(const fs::path& path, HashKind kind) {
  if (kind == HashKind::kMd5) return hash_file(path, HashAlgo::kMd5);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!fs::exists(path, ec)) throw NotFound(fmt::format("file not found: {}", to_utf8(path)));
    throw IoError(fmt::format("cannot open {} for reading", to_utf8(path)));
  }
  Hasher h(HashAlgo::kMd5);
  std::string chunk(kChunk, '\0');
  while (in) {
    in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
    const auto n = static_cast<size_t>(in.gcount());
    if (n == 0) break;
    std::string_view data(chunk.data(), n);
    if (is_text_block(data.substr(0, kTextProbe))) {
      h.update(dos2unix(data));
    } else {
      h.update(data);
    }
  }
  if (in.bad()) throw IoError(fmt::format("read failed: {}", to_utf8(path)));
  return h.hex();
}

std::string json_ascii_string(const std::string& utf8) {
  std::string out = "\"";
  auto u16 = [&out](unsigned v) { out += fmt::format("\\u{:04x}", v); };
  for (char32_t c : decode_code_points(utf8)) {
    switch (c) {
      case U'"':
        out += "\\\"";
        break;
      case U'\\':
        out += "\\\\";
        break;
      case U'\n':
        out += "\\n";
        break;
      case U'\r':
        out += "\\r";
        break;
      case U'\t':
        out += "\\t";
        break;
      case U'\b':
        out += "\\b";
        break;
      case U'\f':
        out += "\\f";
        break;
      default:
        if (c >= 0x20 && c <= 0x7E) {
          out += static_cast<char>(c);
        } else if (c <= 0xFFFF) {
          u16(c);
        } else {
          const unsigned v = c - 0x10000;
          u16(0xD800 | (v >> 10));
          u16(0xDC00 | (v & 0x3FF));
        }
    }
  }
  return out + "\"";
}

std::string dir_object_bytes(std::vector<DirEntry> entries) {
  std::sort(entries.begin(), entries.end(), relpath_less);
  // json.dumps(..., sort_keys=True) with the default separators: "md5" sorts before "relpath".
  std::string out = "[";
  for (size_t i = 0; i < entries.size(); ++i) {
    if (i) out += ", ";
    out += "{\"md5\": " + json_ascii_string(entries[i].md5) +
           ", \"relpath\": " + json_ascii_string(entries[i].relpath) + "}";
  }
  return out + "]";
}

std::string HashCache::cached_file_md5(const fs::path& path, HashKind kind) {
  const StatKey st = stat_of(path);
  Key key{to_utf8(path), st.size, st.mtime_ns, st.inode, static_cast<int>(kind)};
  auto it = files_.find(key);
  if (it != files_.end()) return it->second;
  auto md5 = file_md5(path, kind);
  files_[key] = md5;
  return md5;
}

HashInfo HashCache::hash_dir(const fs::path& dir, const DvcIgnore& ignore, HashKind kind) {
  HashInfo info;
  info.isdir = true;
  std::vector<DirEntry> entries;
  std::vector<fs::path> stack{dir};
  while (!stack.empty()) {
    const fs::path current = stack.back();
    stack.pop_back();
    std::error_code ec;
    for (fs::directory_iterator it(current, ec), end; !ec && it != end; it.increment(ec)) {
      const fs::path p = it->path();
      const auto name = to_utf8(p.filename());
      std::error_code ec2;
      const bool is_dir = fs::is_directory(p, ec2);  // follows symlinks, like os.walk's scandir
      const std::string root_rel = rel_to_root(p, ignore.root());
      if (!root_rel.empty() && ignore.ignored(root_rel, is_dir)) continue;
      if (is_dir) {
        // os.walk(followlinks=False) lists a symlinked folder but does not enter it; a folder with its
        // own .dvc/ is a sub-repository, which DVC leaves to that repository.
        if (fs::is_symlink(p, ec2) || fs::is_directory(p / ".dvc", ec2)) continue;
        stack.push_back(p);
        continue;
      }
      if (name == ".dvcignore") {
        throw DataError(fmt::format(".dvcignore file should not be in collected dir path: '{}'", to_utf8(p)));
      }
      const std::string rel = to_utf8(p.lexically_relative(dir));
      const StatKey st = stat_of(p);  // throws NotFound for a broken symlink, as DVC fails on it
      entries.push_back({rel, cached_file_md5(p, kind)});
      info.size += static_cast<int64_t>(st.size);
    }
    if (ec) throw IoError(fmt::format("cannot list {}: {}", to_utf8(current), ec.message()));
  }
  info.nfiles = static_cast<int64_t>(entries.size());
  info.md5 = hash_bytes(dir_object_bytes(std::move(entries)), HashAlgo::kMd5) + ".dir";
  return info;
}

HashInfo HashCache::hash(const fs::path& path, const DvcIgnore& ignore, HashKind kind) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw NotFound(fmt::format("no such file or directory: {}", to_utf8(path)));
  if (fs::is_directory(path, ec)) return hash_dir(path, ignore, kind);
  const StatKey st = stat_of(path);
  HashInfo info;
  info.md5 = cached_file_md5(path, kind);
  info.size = static_cast<int64_t>(st.size);
  info.isexec = st.exec;
  return info;
}

HashInfo hash_path(const fs::path& path, const DvcIgnore& ignore, HashKind kind) {
  HashCache cache;
  return cache.hash(path, ignore, kind);
}

}  // namespace vigil::pipeline

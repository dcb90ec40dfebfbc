// gitwildmatch patterns as pathspec compiles them for DVC (dvc/ignore.py, DvcIgnorePatterns): the last
// matching pattern decides, "!" re-includes, a trailing "/" matches folders only, a "/" anywhere else anchors
// the pattern to the root, "**" spans folders, and every parent folder is checked before the path itself.

#include "vigil/pipeline/dvcignore.h"

#include <fmt/format.h>

#include "vigil/core/error.h"
#include "vigil/core/fs.h"
#include "vigil/core/strings.h"

namespace vigil::pipeline {

namespace {

// fnmatch for one path segment: '*', '?', '[...]' / '[!...]', and '\' escapes.
bool glob_segment(std::string_view pat, std::string_view s) {
  size_t p = 0, i = 0, star_p = std::string_view::npos, star_i = 0;
  while (i < s.size()) {
    if (p < pat.size() && pat[p] == '*') {
      star_p = p++;
      star_i = i;
      continue;
    }
    bool matched = false;
    size_t next_p = p;
    if (p < pat.size() && pat[p] == '?') {
      matched = true;
      next_p = p + 1;
    } else if (p < pat.size() && pat[p] == '[') {
      size_t q = p + 1;
      const bool negate = q < pat.size() && (pat[q] == '!' || pat[q] == '^');
      if (negate) ++q;
      bool in = false;
      size_t first = q;
      while (q < pat.size() && (pat[q] != ']' || q == first)) {
        if (q + 2 < pat.size() && pat[q + 1] == '-' && pat[q + 2] != ']') {
          in = in || (s[i] >= pat[q] && s[i] <= pat[q + 2]);
          q += 3;
        } else {
          in = in || s[i] == pat[q];
          ++q;
        }
      }
      if (q < pat.size()) {
        matched = in != negate;
        next_p = q + 1;
      } else {  // no closing bracket: a literal '['
        matched = s[i] == '[';
        next_p = p + 1;
      }
    } else if (p < pat.size()) {
      size_t lit = p;
      if (pat[p] == '\\' && p + 1 < pat.size()) lit = p + 1;
      matched = pat[lit] == s[i];
      next_p = lit + 1;
    }
    if (matched) {
      p = next_p;
      ++i;
    } else if (star_p != std::string_view::npos) {
      p = star_p + 1;
      i = ++star_i;
    } else {
      return false;
    }
  }
  while (p < pat.size() && pat[p] == '*') ++p;
  return p == pat.size();
}

bool match_segments(const std::vector<std::string>& pat, size_t pi, const std::vector<std::string>& path,
                    size_t si, bool is_dir) {
  if (pi == pat.size()) return si == path.size();
  if (pat[pi] == "**") {
    if (pi + 1 == pat.size()) {
      // A trailing "**" matches everything inside; the folder itself only when it is one.
      return si < path.size() || is_dir;
    }
    for (size_t k = si; k <= path.size(); ++k)
      if (match_segments(pat, pi + 1, path, k, is_dir)) return true;
    return false;
  }
  if (si == path.size() || !glob_segment(pat[pi], path[si])) return false;
  return match_segments(pat, pi + 1, path, si + 1, is_dir);
}

}  // namespace

void DvcIgnore::add(const std::string& raw) {
  std::string line(trim(raw));
  if (line.empty() || line[0] == '#') return;
  IgnorePattern p;
  p.text = line;
  if (line[0] == '!') {
    p.negate = true;
    line = line.substr(1);
  } else if (line.size() > 1 && line[0] == '\\' && (line[1] == '!' || line[1] == '#')) {
    line = line.substr(1);
  }
  if (line.size() > 1 && line.back() == '/') {
    p.dir_only = true;
    line.pop_back();
  }
  if (!line.empty() && line[0] == '/') {
    p.anchored = true;
    line = line.substr(1);
  } else if (line.find('/') != std::string::npos) {
    p.anchored = true;
  }
  if (line.empty()) return;
  p.segments = split(line, '/');
  if (!p.anchored && p.segments.front() != "**") p.segments.insert(p.segments.begin(), "**");
  patterns_.push_back(std::move(p));
}

DvcIgnore DvcIgnore::load(const std::filesystem::path& root) {
  DvcIgnore ig;
  ig.root_ = root;
  for (const char* d : {".hg/", ".git/", ".git", ".dvc/"}) ig.add(d);
  const auto file = root / ".dvcignore";
  std::error_code ec;
  if (std::filesystem::is_regular_file(file, ec)) {
    for (const auto& line : split(read_file(file), '\n')) ig.add(line);
  }
  return ig;
}

bool DvcIgnore::match_one(const std::string& path, bool is_dir) const {
  const auto parts = split(path, '/');
  for (auto it = patterns_.rbegin(); it != patterns_.rend(); ++it) {
    if (it->dir_only && !is_dir) continue;
    if (match_segments(it->segments, 0, parts, 0, is_dir)) return !it->negate;
  }
  return false;
}

bool DvcIgnore::ignored(const std::string& relpath, bool is_dir) const {
  if (patterns_.empty() || relpath.empty() || relpath == ".") return false;
  const auto parts = split(relpath, '/');
  std::string prefix;
  for (size_t i = 0; i < parts.size(); ++i) {
    prefix += (i ? "/" : "") + parts[i];
    const bool last = i + 1 == parts.size();
    if (match_one(prefix, is_dir || !last)) return true;
  }
  return false;
}

}  // namespace vigil::pipeline

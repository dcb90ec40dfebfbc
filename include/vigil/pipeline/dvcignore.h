#pragma once
/// What DVC leaves out when it walks a directory (dvc/ignore.py, DvcIgnoreFilter): the default patterns
/// `.hg/`, `.git/`, `.git`, `.dvc/`, sub-repositories (folders holding their own `.dvc/`), and the
/// gitignore-style patterns of the `.dvcignore` file at the project root. Nested `.dvcignore` files are not
/// read.

#include <filesystem>
#include <string>
#include <vector>

namespace vigil::pipeline {

/// One gitwildmatch pattern (pathspec's GitWildMatchPattern), compiled to a matcher.
struct IgnorePattern {
  std::string text;       ///< as written (for messages)
  bool negate = false;    ///< "!pattern" re-includes
  bool dir_only = false;  ///< "pattern/" matches directories (and so everything below them)
  bool anchored = false;  ///< contains a '/' before its end: matched from the root, not at any depth
  std::vector<std::string> segments;  ///< split on '/'; "**" segments match any number of levels
};

/// The ignore rules of one DVC project.
class DvcIgnore {
 public:
  DvcIgnore() = default;
  /// DVC's defaults plus `<root>/.dvcignore` when present. Throws IoError when it cannot be read.
  static DvcIgnore load(const std::filesystem::path& root);
  /// Adds one pattern line (comments and blank lines are skipped).
  void add(const std::string& line);
  /// True when `relpath` ('/'-separated, relative to the project root) is ignored, checking each parent
  /// folder first as DVC does (a file inside an ignored folder is ignored).
  bool ignored(const std::string& relpath, bool is_dir) const;
  const std::filesystem::path& root() const { return root_; }

 private:
  bool match_one(const std::string& path, bool is_dir) const;
  std::filesystem::path root_;
  std::vector<IgnorePattern> patterns_;
};

}  // namespace vigil::pipeline

#pragma once
// Helpers shared by the format readers and writers (private to src/data/formats).

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/data/dataset.h"

namespace vigil::data::formats {

namespace fs = std::filesystem;

/// True for the extensions we treat as images when a layout pairs files by name (.jpg .jpeg .png ...).
bool has_image_extension(const fs::path& p);
/// Dot files (.DS_Store, ._foo.jpg) that file managers leave behind.
bool is_hidden(const fs::path& p);

/// "img2" < "img10": digit runs compare by value, everything else bytewise.
bool natural_less(std::string_view a, std::string_view b);
/// Sorts samples by file (numeric-aware) so every reader returns the same order on every machine.
void sort_samples(Dataset& ds);

/// Regular, non-hidden files directly inside `dir`, naturally sorted; empty when `dir` is not a folder.
std::vector<fs::path> list_dir_files(const fs::path& dir);
/// Non-hidden sub-folders of `dir`, naturally sorted by name.
std::vector<fs::path> list_subdirs(const fs::path& dir);
/// The child folder of `dir` named `name`, compared case-insensitively (exact match preferred).
std::optional<fs::path> find_child_dir(const fs::path& dir, std::string_view name);

/// A path from a UTF-8 string (file names inside annotation files), independent of the locale.
fs::path from_utf8(std::string_view s);
/// `p` relative to `root` as UTF-8 with '/' separators (the form of Sample::file and Issue::file).
std::string rel_utf8(const fs::path& root, const fs::path& p);
/// File size, 0 when it cannot be read (validation reports unreadable files later).
int64_t file_size_or_zero(const fs::path& p);

/// Lines of a text file without their terminators ("\r\n" too); a UTF-8 BOM is dropped.
std::vector<std::string> split_lines(std::string_view text);

enum class NumberStatus { kOk, kUnparsable, kNonFinite };
/// Parses every token as a number; stops at the first bad one and returns its index in `bad_index`.
NumberStatus parse_numbers(const std::vector<std::string>& tokens, std::vector<double>& out,
                           size_t& bad_index);

/// Image dimensions from the header, decoding only when the header does not tell.
struct ImageSize {
  int width = 0, height = 0;
  std::string problem;  ///< "" when known; else why not (missing file, not an image, ...)
  bool ok() const { return problem.empty(); }
};
ImageSize read_image_size(const fs::path& path);

/// Copies `from` to `to`, creating folders; throws IoError naming both paths.
void copy_image(const fs::path& from, const fs::path& to);

}  // namespace vigil::data::formats

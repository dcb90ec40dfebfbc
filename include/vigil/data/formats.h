#pragma once
/// Dataset formats: an explicit name -> reader/writer registry filled by register_builtin_formats().
///
/// Readers never throw on bad content: every malformed line, missing file or unknown class becomes an Issue
/// in Dataset::issues (and the item is skipped only when it cannot be represented). They throw only when the
/// root itself is unusable (NotFound) or the format name is unknown (InvalidArgument listing valid names).

#include <functional>
#include <string>
#include <vector>

#include "vigil/data/dataset.h"

namespace vigil::data {

struct ReadOptions {
  /// Explicit class names (YOLO without data.yaml/classes.txt, or to fix an order); empty = from the data.
  std::vector<std::string> classes;
};

/// Where a writer finds the bytes of a sample's image (a source folder or the content store).
using ImageSource = std::function<std::filesystem::path(const Sample&)>;

struct WriteOptions {
  bool copy_images = true;  ///< copy image files next to the labels (else labels only)
};

struct FormatInfo {
  std::string name;
  std::string description;
  std::function<Dataset(const std::filesystem::path&, const ReadOptions&)> read;
  /// Empty when the format cannot be written.
  std::function<void(const Dataset&, const ImageSource&, const std::filesystem::path&, const WriteOptions&)>
      write;
};

void register_format(FormatInfo info);
/// Throws InvalidArgument naming the valid formats.
const FormatInfo& find_format(const std::string& name);
std::vector<std::string> format_names();
/// Registers guns, voc, yolo, coco, imagefolder. Idempotent.
void register_builtin_formats();

/// Reads `root` in format `format` ("auto" guesses from the layout).
Dataset read_dataset(const std::filesystem::path& root, const std::string& format,
                     const ReadOptions& options = {});
/// Guesses the format of a folder (or a COCO .json file); throws InvalidArgument when nothing fits.
std::string detect_format(const std::filesystem::path& root);
void write_dataset(const Dataset& ds, const ImageSource& images, const std::filesystem::path& out,
                   const std::string& format, const WriteOptions& options = {});

}  // namespace vigil::data

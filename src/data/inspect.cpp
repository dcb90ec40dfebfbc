#include "vigil/data/inspect.h"

#include <fstream>
#include <iterator>
#include <optional>

#include "vigil/core/fs.h"
#include "vigil/core/hash.h"
#include "vigil/core/thread_pool.h"
#include "vigil/image/decode.h"
#include "vigil/image/phash.h"

namespace vigil::data {

void InspectOptions::validate() const {
  VIGIL_CHECK(threads >= 0, "expected threads >= 0 (0 = all cores), got {}", threads);
  VIGIL_CHECK(max_pixels > 0, "expected max_pixels > 0, got {}", max_pixels);
}

namespace {

/// Reads a whole file without throwing: nullopt plus a reason when it cannot be opened.
std::optional<std::string> try_read(const fs::path& path, std::string* why) {
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    *why = fmt::format("file not found: {}", to_utf8(path));
    return std::nullopt;
  }
  if (fs::is_directory(path, ec)) {
    *why = fmt::format("a directory, not an image file: {}", to_utf8(path));
    return std::nullopt;
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    *why = fmt::format("cannot open {}", to_utf8(path));
    return std::nullopt;
  }
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) {
    *why = fmt::format("read error in {}", to_utf8(path));
    return std::nullopt;
  }
  return bytes;
}

/// Inspects one sample in place; returns the size_mismatch issue if there is one. Everything that can go
/// wrong with the bytes becomes a problem kind, so one bad file never stops a whole dataset.
std::optional<Issue> inspect_one(Sample& s, const ImageSource& images, const image::DecodeOptions& dopt) {
  s.check = ImageCheck{};
  s.check.inspected = true;
  std::string why;
  std::optional<std::string> bytes;
  try {
    bytes = try_read(images(s), &why);
  } catch (const std::exception& e) {  // an ImageSource may throw (e.g. object missing from the store)
    why = e.what();
  }
  if (!bytes) {
    s.check.problem_kind = "unreadable";
    s.check.problem = why;
    return std::nullopt;
  }
  // Hashing the bytes already in memory reads each file once; same digest as hash_file.
  if (s.bytes == 0) s.bytes = static_cast<int64_t>(bytes->size());
  if (s.hash.empty()) s.hash = hash_bytes(*bytes);

  image::Decoded d = image::decode(*bytes, dopt);
  s.check.type = d.type == image::ImageType::kUnknown ? "" : image::type_name(d.type);
  if (!d.ok()) {
    s.check.problem_kind = d.error.kind_name();
    s.check.problem = d.error.detail;
    return std::nullopt;
  }
  s.check.phash = image::phash(d.bgr);
  std::optional<Issue> mismatch;
  if ((s.width != 0 || s.height != 0) && (s.width != d.bgr.cols || s.height != d.bgr.rows)) {
    mismatch = Issue{"size_mismatch", Severity::kWarning, s.file, 0,
                     fmt::format("the annotation says {}x{} but the image is {}x{}; using the image size",
                                 s.width, s.height, d.bgr.cols, d.bgr.rows)};
  }
  s.width = d.bgr.cols;
  s.height = d.bgr.rows;
  return mismatch;
}

}  // namespace

void inspect_images(Dataset& ds, const ImageSource& images, const InspectOptions& opt, Progress* progress) {
  opt.validate();
  VIGIL_CHECK(static_cast<bool>(images),
              "expected an image source for inspect_images, got an empty function");
  image::DecodeOptions dopt;
  dopt.max_pixels = opt.max_pixels;
  // Issues are collected per sample and appended in sample order so the report does not depend on timing.
  std::vector<std::optional<Issue>> found(ds.samples.size());
  parallel_for(ds.samples.size(), static_cast<size_t>(opt.threads), [&](size_t i) {
    found[i] = inspect_one(ds.samples[i], images, dopt);
    if (progress) progress->advance();
  });
  for (auto& issue : found) {
    if (issue) ds.issues.push_back(std::move(*issue));
  }
}

}  // namespace vigil::data

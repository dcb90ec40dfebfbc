#pragma once
/// Decoding with checks: the type comes from magic bytes (never the file name), truncation is detected before
/// decoding, and the pixel count is bounded from the header before any memory is allocated.

#include <opencv2/core.hpp>

#include <cstdint>
#include <string>
#include <string_view>

#include "vigil/core/error.h"

namespace vigil::image {

enum class ImageType { kUnknown, kJpeg, kPng, kBmp, kGif, kWebp, kTiff };

/// By magic bytes.
ImageType sniff_type(std::string_view bytes);
const char* type_name(ImageType t);

struct HeaderInfo {
  ImageType type = ImageType::kUnknown;
  int width = 0, height = 0;  ///< 0 when the header does not tell (decode to learn)
};

/// Parses dimensions from JPEG/PNG/BMP/GIF headers without decoding.
HeaderInfo probe_header(std::string_view bytes);

/// True when the bytes end before the format's end marker (JPEG EOI after the last scan, PNG IEND).
bool looks_truncated(std::string_view bytes, ImageType type);

struct DecodeOptions {
  int64_t max_pixels = 100'000'000;  ///< larger images are refused before allocation (decompression bombs)
  bool allow_truncated = false;
};

/// Why bytes did not decode. Callers branch on the kind (the server answers 415 for kNotAnImage and 413 for
/// kTooLarge); messages and reports show its name, "kind: detail".
enum class DecodeErrorKind { kNone, kEmptyFile, kNotAnImage, kTruncated, kTooLarge, kUnreadable };

/// "empty_file", "not_an_image", "truncated", "too_large", "unreadable" ("" for kNone): the names dataset
/// validation reports as issue kinds.
const char* decode_error_name(DecodeErrorKind kind);

struct DecodeError {
  DecodeErrorKind kind = DecodeErrorKind::kNone;
  std::string detail;
  std::string kind_name() const { return decode_error_name(kind); }
};

/// Decodes to 8-bit BGR. On failure returns the problem; never throws on bad bytes.
struct Decoded {
  cv::Mat bgr;
  ImageType type = ImageType::kUnknown;
  DecodeError error;  ///< kind kNone on success
  bool ok() const { return error.kind == DecodeErrorKind::kNone; }
};
Decoded decode(std::string_view bytes, const DecodeOptions& options = {});

/// decode()'s JPEG path: libjpeg-turbo straight to BGR, the pixels cv::imdecode(IMREAD_COLOR) gives, 1.7x
/// faster on photographs (bench/image_decode_bench; OpenCV 4.6 swaps RGB to BGR in a byte loop of its own).
/// False, with `out` unspecified, for what OpenCV would decode differently or libjpeg cannot read (CMYK, an
/// Exif orientation other than 1, a truncated file, a larger image than `max_pixels`, any decoder error):
/// decode() gives those to OpenCV.
bool decode_jpeg_bgr(std::string_view bytes, int64_t max_pixels, cv::Mat& out);

/// Reads and decodes a file; a missing or unreadable file is reported as kUnreadable.
Decoded decode_file(const std::string& path, const DecodeOptions& options = {});

/// Encodes to JPEG (quality 0-100) or PNG by extension-like name ("jpg", "png"). Throws IoError on failure.
std::string encode(const cv::Mat& bgr, const std::string& type, int jpeg_quality = 95);

}  // namespace vigil::image

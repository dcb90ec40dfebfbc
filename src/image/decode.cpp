#include "vigil/image/decode.h"

#include <cstddef>  // before jpeglib.h, which uses size_t and FILE without including their headers
#include <cstdio>

#include <jpeglib.h>
#include <opencv2/imgcodecs.hpp>

#include <csetjmp>
#include <cstring>
#include <fstream>

namespace vigil::image {

namespace {
bool has_prefix(std::string_view b, std::string_view magic) {
  return b.substr(0, magic.size()) == magic;
}

uint32_t be16(const unsigned char* p) {
  return (uint32_t(p[0]) << 8) | p[1];
}
uint32_t be32(const unsigned char* p) {
  return (be16(p) << 16) | be16(p + 2);
}
uint32_t le16(const unsigned char* p) {
  return uint32_t(p[0]) | (uint32_t(p[1]) << 8);
}
int32_t le32(const unsigned char* p) {
  return int32_t(le16(p) | (le16(p + 2) << 16));
}

/// Walks JPEG markers up to the first SOFn to read the frame size.
HeaderInfo probe_jpeg(std::string_view b) {
  HeaderInfo info{ImageType::kJpeg, 0, 0};
  const auto* p = reinterpret_cast<const unsigned char*>(b.data());
  size_t i = 2;
  while (i + 4 <= b.size()) {
    if (p[i] != 0xFF) return info;
    unsigned marker = p[i + 1];
    if (marker == 0xFF) {
      ++i;
      continue;
    }
    if (marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) {
      i += 2;
      continue;
    }
    size_t len = be16(p + i + 2);
    bool is_sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (is_sof && i + 9 <= b.size()) {
      info.height = static_cast<int>(be16(p + i + 5));
      info.width = static_cast<int>(be16(p + i + 7));
      return info;
    }
    if (marker == 0xDA || len < 2) return info;
    i += 2 + len;
  }
  return info;
}

/// Orientation (TIFF tag 0x0112) of an APP1 segment: 1 when the segment is not Exif or has no such tag, 0
/// when it looks like Exif but does not parse (the caller then leaves the image to OpenCV).
int exif_orientation(const unsigned char* d, size_t n) {
  if (n < 14 || std::string_view(reinterpret_cast<const char*>(d), 6) != std::string_view("Exif\0\0", 6))
    return 1;
  const unsigned char* t = d + 6;  // the TIFF header: byte order, 42, offset of IFD0
  const size_t size = n - 6;
  const bool little = t[0] == 'I' && t[1] == 'I';
  if (!little && !(t[0] == 'M' && t[1] == 'M')) return 0;
  auto u16 = [&](size_t at) { return little ? le16(t + at) : be16(t + at); };
  auto u32 = [&](size_t at) { return little ? uint32_t(le32(t + at)) : be32(t + at); };
  if (u16(2) != 42) return 0;
  const size_t ifd = u32(4);
  if (ifd + 2 > size) return 0;
  const size_t entries = u16(ifd);
  if (ifd + 2 + entries * 12 > size) return 0;
  for (size_t k = 0; k < entries; ++k) {
    const size_t e = ifd + 2 + k * 12;
    if (u16(e) == 0x0112) return u16(e + 2) == 3 ? static_cast<int>(u16(e + 8)) : 0;  // SHORT, in place
  }
  return 1;
}

struct JpegError {
  jpeg_error_mgr mgr;
  std::jmp_buf jump;
};

// Straight to BGR with libjpeg-turbo's JCS_EXT_BGR. OpenCV 4.6's decoder asks libjpeg for RGB and swaps the
// channels of every pixel in a byte loop of its own: that loop took 25 % of `vigil serve`'s cycles for the
// mask CNN on a 640x480 JPEG (perf). bench/image_decode_bench, a photograph: 640x480 2.8 -> 1.4 ms, 1920x1080
// 13.0 -> 7.2 ms, the same pixels (tests/unit/image/decode_test.cpp). Returns false for what OpenCV would
// decode differently or cannot be done here (CMYK, an Exif orientation other than 1, a truncated file, any
// libjpeg error): the caller hands those to cv::imdecode, so the pixels never depend on which path ran. `out`
// belongs to the caller: nothing with a destructor lives in this frame across the longjmp.
bool decode_jpeg_bgr(std::string_view bytes, int64_t max_pixels, cv::Mat& out, bool known_complete) {
#ifdef JCS_EXTENSIONS
  // A truncated file: jpeg_mem_src pads it with grey where OpenCV's own source leaves the rows it has not
  // decoded as they were, so only OpenCV may decode it.
  if (!known_complete && looks_truncated(bytes, ImageType::kJpeg)) return false;
  jpeg_decompress_struct info{};
  JpegError error{};
  info.err = jpeg_std_error(&error.mgr);
  error.mgr.error_exit = [](j_common_ptr c) { std::longjmp(reinterpret_cast<JpegError*>(c->err)->jump, 1); };
  error.mgr.output_message = [](j_common_ptr) {};  // warnings (extraneous bytes, a premature end) as OpenCV
  if (setjmp(error.jump)) {
    jpeg_destroy_decompress(&info);
    return false;
  }
  jpeg_create_decompress(&info);
  jpeg_mem_src(&info, reinterpret_cast<const unsigned char*>(bytes.data()),
               static_cast<unsigned long>(bytes.size()));
  jpeg_save_markers(&info, JPEG_APP0 + 1, 0xFFFF);
  jpeg_read_header(&info, TRUE);
  bool same_as_opencv = info.jpeg_color_space == JCS_YCbCr || info.jpeg_color_space == JCS_RGB ||
                        info.jpeg_color_space == JCS_GRAYSCALE;
  for (jpeg_saved_marker_ptr m = info.marker_list; m != nullptr && same_as_opencv; m = m->next)
    same_as_opencv = exif_orientation(m->data, m->data_length) == 1;
  if (!same_as_opencv || int64_t(info.image_width) * info.image_height > max_pixels) {
    jpeg_destroy_decompress(&info);
    return false;
  }
  info.out_color_space = JCS_EXT_BGR;
  jpeg_start_decompress(&info);
  out.create(static_cast<int>(info.output_height), static_cast<int>(info.output_width), CV_8UC3);
  while (info.output_scanline < info.output_height) {
    JSAMPROW row = out.ptr<uint8_t>(static_cast<int>(info.output_scanline));
    jpeg_read_scanlines(&info, &row, 1);
  }
  jpeg_finish_decompress(&info);
  jpeg_destroy_decompress(&info);
  return true;
#else
  (void)bytes, (void)max_pixels, (void)out, (void)known_complete;
  return false;  // a libjpeg without libjpeg-turbo's extensions: OpenCV decodes everything
#endif
}
}  // namespace

bool decode_jpeg_bgr(std::string_view bytes, int64_t max_pixels, cv::Mat& out) {
  return decode_jpeg_bgr(bytes, max_pixels, out, false);
}

const char* decode_error_name(DecodeErrorKind kind) {
  switch (kind) {
    case DecodeErrorKind::kNone:
      return "";
    case DecodeErrorKind::kEmptyFile:
      return "empty_file";
    case DecodeErrorKind::kNotAnImage:
      return "not_an_image";
    case DecodeErrorKind::kTruncated:
      return "truncated";
    case DecodeErrorKind::kTooLarge:
      return "too_large";
    case DecodeErrorKind::kUnreadable:
      break;
  }
  return "unreadable";
}

ImageType sniff_type(std::string_view b) {
  if (has_prefix(b, "\xFF\xD8\xFF")) return ImageType::kJpeg;
  if (has_prefix(b, "\x89PNG\r\n\x1A\n")) return ImageType::kPng;
  if (has_prefix(b, "BM") && b.size() >= 26) return ImageType::kBmp;
  if (has_prefix(b, "GIF87a") || has_prefix(b, "GIF89a")) return ImageType::kGif;
  if (b.size() >= 12 && has_prefix(b, "RIFF") && b.substr(8, 4) == "WEBP") return ImageType::kWebp;
  if (has_prefix(b, std::string_view("II*\0", 4)) || has_prefix(b, std::string_view("MM\0*", 4))) {
    return ImageType::kTiff;
  }
  return ImageType::kUnknown;
}

const char* type_name(ImageType t) {
  switch (t) {
    case ImageType::kJpeg:
      return "jpeg";
    case ImageType::kPng:
      return "png";
    case ImageType::kBmp:
      return "bmp";
    case ImageType::kGif:
      return "gif";
    case ImageType::kWebp:
      return "webp";
    case ImageType::kTiff:
      return "tiff";
    case ImageType::kUnknown:
      break;
  }
  return "unknown";
}

HeaderInfo probe_header(std::string_view b) {
  HeaderInfo info{sniff_type(b), 0, 0};
  const auto* p = reinterpret_cast<const unsigned char*>(b.data());
  switch (info.type) {
    case ImageType::kJpeg:
      return probe_jpeg(b);
    case ImageType::kPng:
      if (b.size() >= 24 && b.substr(12, 4) == "IHDR") {
        info.width = static_cast<int>(be32(p + 16));
        info.height = static_cast<int>(be32(p + 20));
      }
      break;
    case ImageType::kBmp:
      info.width = std::abs(le32(p + 18));
      info.height = std::abs(le32(p + 22));
      break;
    case ImageType::kGif:
      if (b.size() >= 10) {
        info.width = static_cast<int>(le16(p + 6));
        info.height = static_cast<int>(le16(p + 8));
      }
      break;
    default:
      break;
  }
  return info;
}

bool looks_truncated(std::string_view b, ImageType type) {
  if (type == ImageType::kJpeg) {
    // Entropy-coded data cannot contain FF D9 (0xFF bytes are stuffed), so a complete file has an EOI
    // after its last start-of-scan marker. Walked backwards from one 0xFF to the previous with memrchr:
    // rfind + find went through the whole scan byte by byte, twice (30 us of a served 640x480 JPEG).
    bool eoi_after = false;
    for (size_t end = b.empty() ? 0 : b.size() - 1; end > 0;) {  // an FF at i < end has its next byte
      const void* hit = memrchr(b.data(), 0xFF, end);
      if (hit == nullptr) break;
      const size_t i = static_cast<size_t>(static_cast<const char*>(hit) - b.data());
      const auto next = static_cast<unsigned char>(b[i + 1]);
      if (next == 0xDA) return !eoi_after;
      if (next == 0xD9) eoi_after = true;
      end = i;
    }
    return true;  // no start of scan
  }
  if (type == ImageType::kPng) return b.rfind("IEND") == std::string_view::npos;
  return false;
}

Decoded decode(std::string_view bytes, const DecodeOptions& options) {
  Decoded out;
  if (bytes.empty()) {
    out.error = {DecodeErrorKind::kEmptyFile, "the file is empty (0 bytes)"};
    return out;
  }
  out.type = sniff_type(bytes);
  if (out.type == ImageType::kUnknown) {
    out.error = {DecodeErrorKind::kNotAnImage,
                 fmt::format("not an image: {} bytes with no known image signature", bytes.size())};
    return out;
  }
  auto header = probe_header(bytes);
  if (int64_t(header.width) * header.height > options.max_pixels) {
    out.error = {DecodeErrorKind::kTooLarge,
                 fmt::format("{}x{} = {} pixels exceeds the limit of {}", header.width, header.height,
                             int64_t(header.width) * header.height, options.max_pixels)};
    return out;
  }
  if (!options.allow_truncated && looks_truncated(bytes, out.type)) {
    out.error = {DecodeErrorKind::kTruncated,
                 fmt::format("truncated {}: the file ends before the image data does", type_name(out.type))};
    return out;
  }
  cv::Mat raw(1, static_cast<int>(bytes.size()), CV_8UC1, const_cast<char*>(bytes.data()));
  try {
    if (out.type != ImageType::kJpeg ||
        !decode_jpeg_bgr(bytes, options.max_pixels, out.bgr, !options.allow_truncated))  // checked above
      out.bgr = cv::imdecode(raw, cv::IMREAD_COLOR);
  } catch (const cv::Exception& e) {
    out.error = {DecodeErrorKind::kUnreadable,
                 fmt::format("{} decoder failed: {}", type_name(out.type), e.what())};
    return out;
  }
  if (out.bgr.empty()) {
    out.error = {DecodeErrorKind::kUnreadable,
                 fmt::format("{} signature but the decoder could not read it", type_name(out.type))};
  } else if (int64_t(out.bgr.cols) * out.bgr.rows > options.max_pixels) {
    out.bgr.release();
    out.error = {DecodeErrorKind::kTooLarge,
                 fmt::format("image exceeds the limit of {} pixels", options.max_pixels)};
  }
  return out;
}

Decoded decode_file(const std::string& path, const DecodeOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    Decoded out;
    out.error = {DecodeErrorKind::kUnreadable, fmt::format("cannot open {}", path)};
    return out;
  }
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return decode(bytes, options);
}

std::string encode(const cv::Mat& bgr, const std::string& type, int jpeg_quality) {
  std::vector<uchar> buf;
  std::vector<int> params;
  std::string ext = "." + type;
  if (type == "jpg" || type == "jpeg") {
    ext = ".jpg";
    params = {cv::IMWRITE_JPEG_QUALITY, jpeg_quality};
  }
  bool ok = false;
  try {
    ok = cv::imencode(ext, bgr, buf, params);
  } catch (const cv::Exception& e) {
    throw IoError(fmt::format("cannot encode image as {}: {}", type, e.what()));
  }
  if (!ok) throw IoError(fmt::format("cannot encode image as {}", type));
  return std::string(buf.begin(), buf.end());
}

}  // namespace vigil::image

#include "vigil/image/decode.h"

#include <opencv2/imgcodecs.hpp>

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
}  // namespace

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
    // after its last start-of-scan marker.
    size_t sos = b.rfind("\xFF\xDA");
    if (sos == std::string_view::npos) return true;
    return b.find("\xFF\xD9", sos + 2) == std::string_view::npos;
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

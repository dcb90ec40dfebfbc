// decode() reads JPEG with libjpeg-turbo straight into BGR instead of through cv::imdecode, which in
// OpenCV 4.6 decodes to RGB and swaps every pixel in a byte loop (most of a served request's decode time).
// The rule: the pixels are cv::imdecode(IMREAD_COLOR)'s, bit for bit, on every JPEG either path may meet —
// Debian's opencv-doc sample photographs (installed by scripts/install-deps.sh), baseline and progressive,
// every chroma subsampling, restart markers, grey, RGB and CMYK colour spaces, Exif orientations 1-8 in both
// byte orders, odd and one-pixel sizes, corrupt and truncated data — and the fast path is really taken where
// it applies (decode_jpeg_bgr says so), so a build that silently fell back to OpenCV everywhere would fail
// here. Plus the checks decode() makes before any decoder runs: empty, unknown, truncated, too large.

#include <gtest/gtest.h>

#include <cstddef>  // before jpeglib.h, which uses size_t and FILE without including their headers
#include <cstdio>

#include <jpeglib.h>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>

#include <filesystem>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "vigil/core/fs.h"
#include "vigil/image/decode.h"

namespace vigil::image {
namespace {

namespace fs = std::filesystem;

const fs::path kSamples = "/usr/share/doc/opencv-doc/examples";

cv::Mat opencv_decode(const std::string& bytes) {
  const std::vector<uchar> raw(bytes.begin(), bytes.end());
  return cv::imdecode(raw, cv::IMREAD_COLOR);
}

bool same_pixels(const cv::Mat& a, const cv::Mat& b) {
  return a.size() == b.size() && a.type() == b.type() && (a.empty() || cv::norm(a, b, cv::NORM_INF) == 0);
}

/// A photograph-like test image: smooth gradients plus noise, so every DCT block has content.
cv::Mat test_image(int w, int h, int channels = 3, unsigned seed = 1) {
  cv::Mat img(h, w, CV_8UC(channels));
  std::mt19937 rng(seed);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < channels; ++c)
        img.ptr<uint8_t>(y)[x * channels + c] =
            static_cast<uint8_t>((x * (c + 1) * 3 + y * (5 - c) + static_cast<int>(rng() % 40)) % 256);
  return img;
}

std::string encode_jpeg(const cv::Mat& img, const std::vector<int>& params) {
  std::vector<uchar> out;
  EXPECT_TRUE(cv::imencode(".jpg", img, out, params));
  return {out.begin(), out.end()};
}

/// A JPEG written by libjpeg itself, for what cv::imencode 4.6 cannot write: colour spaces other than YCbCr
/// and grey (RGB without the YCbCr transform, CMYK) and luma sampling factors other than 2x2. `input` is the
/// layout of `img`'s pixels, `space` the file's.
std::string libjpeg_encode(const cv::Mat& img, J_COLOR_SPACE input, J_COLOR_SPACE space, int h = 2,
                           int v = 2) {
  jpeg_compress_struct c{};
  jpeg_error_mgr err{};
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &buf, &size);
  c.image_width = static_cast<JDIMENSION>(img.cols);
  c.image_height = static_cast<JDIMENSION>(img.rows);
  c.input_components = img.channels();
  c.in_color_space = input;
  jpeg_set_defaults(&c);
  jpeg_set_colorspace(&c, space);
  c.comp_info[0].h_samp_factor = h;
  c.comp_info[0].v_samp_factor = v;
  jpeg_set_quality(&c, 90, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<uint8_t*>(img.ptr<uint8_t>(static_cast<int>(c.next_scanline)));
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::string out(reinterpret_cast<char*>(buf), size);
  std::free(buf);
  return out;
}

/// The JPEG with an Exif APP1 segment holding only IFD0's Orientation tag, inserted after SOI.
std::string with_exif_orientation(const std::string& jpeg, int orientation, bool big_endian) {
  auto u16 = [&](int v) {
    return big_endian ? std::string{char(v >> 8), char(v & 255)} : std::string{char(v & 255), char(v >> 8)};
  };
  auto u32 = [&](int v) { return big_endian ? u16(0) + u16(v) : u16(v) + u16(0); };
  std::string tiff = std::string(big_endian ? "MM" : "II") + u16(42) + u32(8) + u16(1);
  tiff += u16(0x0112) + u16(3) + u32(1) + u16(orientation) + u16(0);  // SHORT, count 1, value in place
  tiff += u32(0);                                                     // no next IFD
  const std::string payload = std::string("Exif\0\0", 6) + tiff;
  const int len = static_cast<int>(payload.size()) + 2;
  const std::string app1 = std::string("\xFF\xE1", 2) + char(len >> 8) + char(len & 255) + payload;
  return jpeg.substr(0, 2) + app1 + jpeg.substr(2);
}

/// The rule for one file: decode() equals cv::imdecode, and the fast path itself ran (or, where it must not,
/// declined) and gave the same pixels.
void expect_like_opencv(const std::string& bytes, bool fast_path, const std::string& what) {
  const cv::Mat expected = opencv_decode(bytes);
  const Decoded d = decode(bytes, {.max_pixels = 100'000'000, .allow_truncated = true});
  ASSERT_EQ(d.ok(), !expected.empty()) << what << ": " << d.error.detail;
  EXPECT_TRUE(same_pixels(d.bgr, expected)) << what;
  cv::Mat direct;
  EXPECT_EQ(decode_jpeg_bgr(bytes, 100'000'000, direct), fast_path) << what;
  if (fast_path) {
    EXPECT_TRUE(same_pixels(direct, expected)) << what;
  }
}

TEST(DecodeJpeg, EqualsOpenCvOnEverySamplePhotograph) {
  if (!fs::is_directory(kSamples)) GTEST_SKIP() << "no " << kSamples << " (opencv-doc)";
  int files = 0;
  for (const auto& entry : fs::recursive_directory_iterator(kSamples)) {
    const std::string ext = entry.path().extension().string();
    if (ext != ".jpg" && ext != ".jpeg" && ext != ".JPG") continue;
    const std::string bytes = read_file(entry.path());
    if (sniff_type(bytes) != ImageType::kJpeg) continue;
    expect_like_opencv(bytes, true, entry.path().string());
    ++files;
  }
  EXPECT_GE(files, 40) << "opencv-doc 4.6 ships about 80 JPEG files";
}

TEST(DecodeJpeg, EqualsOpenCvForEveryEncoderSetting) {
  const cv::Mat img = test_image(203, 131);
  const std::vector<std::pair<std::string, std::vector<int>>> settings = {
      {"quality 95", {cv::IMWRITE_JPEG_QUALITY, 95}},
      {"quality 20", {cv::IMWRITE_JPEG_QUALITY, 20}},
      {"progressive", {cv::IMWRITE_JPEG_PROGRESSIVE, 1}},
      {"optimized", {cv::IMWRITE_JPEG_OPTIMIZE, 1}},
      {"restart every 3 MCU rows", {cv::IMWRITE_JPEG_RST_INTERVAL, 3}},
  };
  for (const auto& [name, params] : settings) expect_like_opencv(encode_jpeg(img, params), true, name);
  // Chroma subsampling (luma sampling factors h x v): the upsampling is the decoder's, so each is its own
  // case.
  for (const auto& [name, h, v] : std::vector<std::tuple<std::string, int, int>>{
           {"4:4:4", 1, 1}, {"4:2:2", 2, 1}, {"4:2:0", 2, 2}, {"4:4:0", 1, 2}, {"4:1:1", 4, 1}})
    expect_like_opencv(libjpeg_encode(img, JCS_EXT_BGR, JCS_YCbCr, h, v), true, name);
}

TEST(DecodeJpeg, EqualsOpenCvForOddAndOnePixelSizes) {
  for (const auto& [w, h] : std::vector<std::pair<int, int>>{{1, 1}, {1, 300}, {300, 1}, {17, 9}, {15, 16}})
    expect_like_opencv(encode_jpeg(test_image(w, h), {}), true, std::to_string(w) + "x" + std::to_string(h));
}

TEST(DecodeJpeg, GreyRgbAndCmykColourSpaces) {
  expect_like_opencv(encode_jpeg(test_image(64, 48, 1), {}), true, "grey JPEG (one component)");
  cv::Mat rgb;
  cv::cvtColor(test_image(64, 48), rgb, cv::COLOR_BGR2RGB);
  expect_like_opencv(libjpeg_encode(rgb, JCS_RGB, JCS_RGB, 1, 1), true, "RGB JPEG (no YCbCr transform)");
  // OpenCV converts CMYK itself; the fast path declines it.
  expect_like_opencv(libjpeg_encode(test_image(64, 48, 4), JCS_CMYK, JCS_CMYK, 1, 1), false, "CMYK JPEG");
}

TEST(DecodeJpeg, ExifOrientationIsOpenCvsToApply) {
  const std::string plain = encode_jpeg(test_image(40, 24), {});
  for (bool big_endian : {false, true}) {
    for (int orientation = 1; orientation <= 8; ++orientation) {
      const std::string bytes = with_exif_orientation(plain, orientation, big_endian);
      const std::string what = "orientation " + std::to_string(orientation) + (big_endian ? " MM" : " II");
      expect_like_opencv(bytes, orientation == 1, what);
      // OpenCV does apply it: 5-8 transpose the image, so a fast path that ignored the tag would differ.
      const Decoded d = decode(bytes);
      ASSERT_TRUE(d.ok()) << what;
      EXPECT_EQ(d.bgr.cols, orientation >= 5 ? 24 : 40) << what;
    }
  }
}

TEST(DecodeJpeg, CorruptAndTruncatedDataDecodeAsOpenCvDoes) {
  const std::string good = encode_jpeg(test_image(120, 80), {cv::IMWRITE_JPEG_QUALITY, 90});
  const size_t scan = good.rfind("\xFF\xDA");
  ASSERT_NE(scan, std::string::npos);
  std::mt19937 rng(7);
  for (int k = 0; k < 20; ++k) {  // bytes changed inside the entropy-coded data: warnings, grey blocks
    std::string bad = good;
    for (int j = 0; j < 4; ++j)
      bad[scan + 20 + rng() % (good.size() - scan - 30)] = static_cast<char>(rng() % 255);
    const cv::Mat expected = opencv_decode(bad);
    const Decoded d = decode(bad);
    ASSERT_EQ(d.ok(), !expected.empty()) << "corruption " << k;
    EXPECT_TRUE(same_pixels(d.bgr, expected)) << "corruption " << k;
  }
  // Cut in the middle of the scan: refused by default, decoded as OpenCV does when allowed.
  const std::string cut = good.substr(0, scan + (good.size() - scan) / 2);
  EXPECT_EQ(decode(cut).error.kind, DecodeErrorKind::kTruncated);
  expect_like_opencv(cut, false, "truncated, allowed");  // OpenCV's own source fills the rest differently
  // A broken header: libjpeg's error exits through the fast path's longjmp, OpenCV then refuses it too.
  std::string header = good;
  header[good.find("\xFF\xC0") + 5] = 0;  // frame height 0
  header[good.find("\xFF\xC0") + 6] = 0;
  cv::Mat out;
  EXPECT_FALSE(decode_jpeg_bgr(header, 100'000'000, out));
  const Decoded d = decode(header);
  EXPECT_FALSE(d.ok());
  EXPECT_EQ(d.error.kind, DecodeErrorKind::kUnreadable) << d.error.detail;
}

// looks_truncated walks back over 0xFF bytes; the definition is the one it replaced: the last FF DA, then an
// FF D9 after it.
TEST(LooksTruncated, EqualsLastScanThenEndOfImage) {
  auto definition = [](std::string_view b) {
    const size_t sos = b.rfind("\xFF\xDA");
    return sos == std::string_view::npos || b.find("\xFF\xD9", sos + 2) == std::string_view::npos;
  };
  std::mt19937 rng(3);
  const std::string alphabet = "\xFF\xDA\xD9\x00\x01";
  int truncated = 0;
  for (int k = 0; k < 20000; ++k) {
    std::string b(rng() % 12, '\0');
    for (char& c : b) c = alphabet[rng() % alphabet.size()];
    EXPECT_EQ(looks_truncated(b, ImageType::kJpeg), definition(b)) << k;
    truncated += definition(b);
  }
  EXPECT_GT(truncated, 1000);
  EXPECT_LT(truncated, 19000);  // both answers are exercised
  const std::string good = encode_jpeg(test_image(64, 64), {});
  EXPECT_FALSE(looks_truncated(good, ImageType::kJpeg));
  EXPECT_TRUE(looks_truncated(good.substr(0, good.size() - 2), ImageType::kJpeg));
}

TEST(Decode, RefusesBeforeDecoding) {
  EXPECT_EQ(decode("").error.kind, DecodeErrorKind::kEmptyFile);
  EXPECT_EQ(decode("hello, world").error.kind, DecodeErrorKind::kNotAnImage);
  const std::string jpeg = encode_jpeg(test_image(300, 200), {});
  const Decoded big = decode(jpeg, {.max_pixels = 300 * 200 - 1});
  EXPECT_EQ(big.error.kind, DecodeErrorKind::kTooLarge);
  EXPECT_NE(big.error.detail.find("300x200"), std::string::npos) << big.error.detail;
  cv::Mat out;
  EXPECT_FALSE(decode_jpeg_bgr(jpeg, 300 * 200 - 1, out)) << "the fast path bounds the pixels too";
}

}  // namespace
}  // namespace vigil::image

#include "vigil/core/base64.h"

#include <gtest/gtest.h>

namespace vigil {
namespace {

TEST(Base64, EncodesRfc4648Vectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode("\xff\xfe\xfd"), "//79");
}

TEST(Base64, DecodesWhatItEncodesForEveryByteAndLength) {
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes += static_cast<char>(i);
  for (size_t n = 0; n <= bytes.size(); n += 37) {
    const std::string part = bytes.substr(0, n);
    EXPECT_EQ(base64_decode(base64_encode(part)), part) << n;
  }
  EXPECT_EQ(base64_decode("Zm9vYg"), "foob");  // padding left out
}

TEST(Base64, RefusesMalformedText) {
  EXPECT_FALSE(base64_decode("Zm9v!mFy"));  // outside the alphabet
  EXPECT_FALSE(base64_decode("Zm9vY"));     // 1 character cannot end a byte
  EXPECT_FALSE(base64_decode("Zg="));       // padding on a length that is not a multiple of 4
  EXPECT_FALSE(base64_decode("Z=g="));      // padding in the middle
  EXPECT_FALSE(base64_decode("Zm9v\n"));    // whitespace is not base64
}

}  // namespace
}  // namespace vigil

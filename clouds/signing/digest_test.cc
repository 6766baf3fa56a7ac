#include "clouds/signing/digest.h"

#include <gtest/gtest.h>

namespace ch {
namespace {

TEST(DigestTest, Sha256KnownAnswers) {
  // FIPS 180-2, appendix B.1, and the empty message.
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  Sha256Digest d = sha256("abc");
  EXPECT_EQ(d[0], 0xba);
  EXPECT_EQ(d[31], 0xad);
  EXPECT_EQ(hex_encode(d), sha256_hex("abc"));
}

TEST(DigestTest, HexIsLowercaseTwoDigitsPerByte) {
  const uint8_t bytes[] = {0x00, 0x0f, 0xa0, 0xff};
  EXPECT_EQ(hex_encode(bytes), "000fa0ff");
  EXPECT_EQ(hex_encode({}), "");
}

TEST(DigestTest, Base64Rfc4648Vectors) {
  // RFC 4648 section 10.
  const char* vectors[][2] = {{"", ""},          {"f", "Zg=="},         {"fo", "Zm8="},
                              {"foo", "Zm9v"},   {"foob", "Zm9vYg=="},  {"fooba", "Zm9vYmE="},
                              {"foobar", "Zm9vYmFy"}};
  for (const auto& v : vectors) EXPECT_EQ(base64_encode(bytes_of(v[0])), v[1]) << v[0];
  // A SHA-256 digest as EBS's x-amz-Checksum carries it: 44 characters, no line break.
  EXPECT_EQ(base64_encode(sha256("abc")), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
}

}  // namespace
}  // namespace ch

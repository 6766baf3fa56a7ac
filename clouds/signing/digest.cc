#include "clouds/signing/digest.h"

#include <openssl/evp.h>

#include "base/result.h"

namespace ch {

Sha256Digest sha256(std::string_view bytes) {
  Sha256Digest out;
  unsigned int len = 0;
  CH_CHECK(EVP_Digest(bytes.data(), bytes.size(), out.data(), &len, EVP_sha256(), nullptr) == 1 &&
           len == out.size());
  return out;
}

std::string sha256_hex(std::string_view bytes) { return hex_encode(sha256(bytes)); }

std::string hex_encode(std::span<const uint8_t> bytes) {
  static const char kHex[] = "0123456789abcdef";
  std::string out(bytes.size() * 2, '0');
  for (size_t i = 0; i < bytes.size(); ++i) {
    out[2 * i] = kHex[bytes[i] >> 4];
    out[2 * i + 1] = kHex[bytes[i] & 15];
  }
  return out;
}

std::string base64_encode(std::span<const uint8_t> bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');  // EVP_EncodeBlock adds a NUL
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), bytes.data(),
                          static_cast<int>(bytes.size()));
  CH_CHECK(n >= 0);
  out.resize(static_cast<size_t>(n));
  return out;
}

}  // namespace ch

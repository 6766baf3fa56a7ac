// The digests and encodings that AWS requests carry in headers: SHA-256 as
// SigV4's payload hash (lowercase hex), EBS x-amz-Checksum and S3
// Content-MD5 (base64). One place for them, over OpenSSL's one-shot EVP
// calls; streaming digests of files are formats/checksum.h and the callers'
// own EVP contexts.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace ch {

using Sha256Digest = std::array<uint8_t, 32>;

// SHA-256 of BYTES.
Sha256Digest sha256(std::string_view bytes);

// Lowercase hex SHA-256 of BYTES.
std::string sha256_hex(std::string_view bytes);

// Two lowercase hex digits per byte.
std::string hex_encode(std::span<const uint8_t> bytes);

// RFC 4648 base64, standard alphabet, with "=" padding, no line breaks.
std::string base64_encode(std::span<const uint8_t> bytes);

// Views of a string's bytes, for the two above.
inline std::span<const uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

}  // namespace ch

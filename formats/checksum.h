// File digests for the `checksum` action: sha256, sha512 and md5 of one file
// in a single read. Every algorithm runs on its own thread over the same
// buffers, in file order (OpenSSL EVP picks SHA-NI/AVX2 code), so hashing a
// file with three algorithms costs about the slowest one, not their sum.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/progress.h"
#include "base/result.h"

namespace ch {

struct Digest {
  std::string algorithm;  // "sha256"
  std::string hex;        // lowercase, as sha256sum prints it
};

// "sha256, sha512, md5"
std::string checksum_algorithm_names();
bool is_checksum_algorithm(std::string_view name);

// Splits "sha256,sha512" (spaces around names allowed), checks every name and
// drops repeats, keeping the order asked. Error:
//   "unknown checksum algorithm 'X' (expected sha256, sha512, md5)"
Result<std::vector<std::string>> parse_checksum_algorithms(std::string_view list);
// The same check over names already split (a YAML list).
Status check_checksum_algorithms(const std::vector<std::string>& names);

// Digests of PATH, one per algorithm in the order given. The file is read
// once, in 8 MiB buffers from a small ring; progress advances by bytes that
// every algorithm has consumed. Errors name the file.
Result<std::vector<Digest>> checksum_file(const std::string& path,
                                          const std::vector<std::string>& algorithms,
                                          Progress* progress = nullptr);

// Digests of bytes in memory (known-answer tests, small data).
Result<std::vector<Digest>> checksum_bytes(std::span<const uint8_t> data,
                                           const std::vector<std::string>& algorithms);

// One line of a `sha256sum` check file: "HEX  NAME\n".
std::string checksum_line(const std::string& hex, const std::string& name);

}  // namespace ch

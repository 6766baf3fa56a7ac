#include "formats/checksum.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "base/file.h"

namespace ch {
namespace {

const std::vector<std::string> kAll = {"sha256", "sha512", "md5"};

std::vector<uint8_t> bytes_of(std::string_view s) { return {s.begin(), s.end()}; }

// FIPS 180-2 appendix B/C and RFC 1321 appendix A.5 vectors.
const char* kAbc256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
const char* kAbc512 =
    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
    "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f";
const char* kAbcMd5 = "900150983cd24fb0d6963f7d28e17f72";
const char* kEmpty256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const char* kEmpty512 =
    "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"
    "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e";
const char* kEmptyMd5 = "d41d8cd98f00b204e9800998ecf8427e";
const char* kMillion256 = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
const char* kMillion512 =
    "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973eb"
    "de0ff244877ea60a4cb0432ce577c31beb009c5c2c49aa2e4eadb217ad8cc09b";
const char* kMillionMd5 = "7707d6ae4e027c70eea2a935c2296f21";

std::string temp_path(const char* tag) {
  return "/tmp/checksum_test_" + std::to_string(getpid()) + "_" + tag;
}

void write_file(const std::string& path, const std::vector<uint8_t>& data) {
  auto f = File::create(path);
  ASSERT_TRUE(f.ok()) << f.message();
  if (!data.empty()) {
    ASSERT_TRUE(f->pwrite_full(0, data.data(), data.size()).ok());
  }
}

TEST(Checksum, KnownAnswersInMemory) {
  auto abc = checksum_bytes(bytes_of("abc"), kAll);
  ASSERT_TRUE(abc.ok()) << abc.message();
  EXPECT_EQ((*abc)[0].algorithm, "sha256");
  EXPECT_EQ((*abc)[0].hex, kAbc256);
  EXPECT_EQ((*abc)[1].hex, kAbc512);
  EXPECT_EQ((*abc)[2].hex, kAbcMd5);
  auto empty = checksum_bytes({}, kAll);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ((*empty)[0].hex, kEmpty256);
  EXPECT_EQ((*empty)[1].hex, kEmpty512);
  EXPECT_EQ((*empty)[2].hex, kEmptyMd5);
}

TEST(Checksum, KnownAnswersFromFiles) {
  std::string path = temp_path("kat");
  struct Case {
    std::vector<uint8_t> data;
    const char *h256, *h512, *md5;
  } cases[] = {
      {bytes_of("abc"), kAbc256, kAbc512, kAbcMd5},
      {{}, kEmpty256, kEmpty512, kEmptyMd5},
      {std::vector<uint8_t>(1000000, 'a'), kMillion256, kMillion512, kMillionMd5},
  };
  for (const Case& c : cases) {
    write_file(path, c.data);
    Progress progress;
    auto d = checksum_file(path, kAll, &progress);
    ASSERT_TRUE(d.ok()) << d.message();
    ASSERT_EQ(d->size(), 3u);
    EXPECT_EQ((*d)[0].hex, c.h256);
    EXPECT_EQ((*d)[1].hex, c.h512);
    EXPECT_EQ((*d)[2].hex, c.md5);
    EXPECT_EQ(progress.done(), c.data.size());
    EXPECT_EQ(progress.total(), c.data.size());
  }
  unlink(path.c_str());
}

// Sizes around the 8 MiB buffer edge must match the in-memory digests, in
// the order asked, with one or several algorithms.
TEST(Checksum, FileMatchesMemoryAcrossBufferEdges) {
  std::string path = temp_path("edges");
  std::mt19937_64 rng(42);
  const size_t mib8 = 8u << 20;
  for (size_t size : {size_t{1}, mib8 - 1, mib8, mib8 + 1, 3 * mib8 + 12345}) {
    std::vector<uint8_t> data(size);
    for (auto& b : data) b = static_cast<uint8_t>(rng());
    write_file(path, data);
    for (const std::vector<std::string>& algos :
         {std::vector<std::string>{"md5", "sha256"}, std::vector<std::string>{"sha512"}, kAll}) {
      auto f = checksum_file(path, algos);
      auto m = checksum_bytes(data, algos);
      ASSERT_TRUE(f.ok() && m.ok());
      ASSERT_EQ(f->size(), algos.size());
      for (size_t i = 0; i < algos.size(); ++i) {
        EXPECT_EQ((*f)[i].algorithm, algos[i]);
        EXPECT_EQ((*f)[i].hex, (*m)[i].hex) << size << " " << algos[i];
      }
    }
  }
  unlink(path.c_str());
}

TEST(Checksum, ParsesAlgorithmLists) {
  auto a = parse_checksum_algorithms("sha512, md5,sha512");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(*a, (std::vector<std::string>{"sha512", "md5"}));
  auto bad = parse_checksum_algorithms("sha256,sha1");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.message(), "unknown checksum algorithm 'sha1' (expected sha256, sha512, md5)");
  EXPECT_EQ(parse_checksum_algorithms("").message(),
            "unknown checksum algorithm '' (expected sha256, sha512, md5)");
  EXPECT_EQ(check_checksum_algorithms({"md5", "SHA256"}).message(),
            "unknown checksum algorithm 'SHA256' (expected sha256, sha512, md5)");
  EXPECT_EQ(checksum_line("ab", "disk.raw"), "ab  disk.raw\n");
}

TEST(Checksum, ErrorsNameTheFile) {
  auto missing = checksum_file("/nonexistent/disk.raw", kAll);
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.message(), "/nonexistent/disk.raw: No such file or directory");
  auto dir = checksum_file("/tmp", kAll);
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.message().find("/tmp"), std::string::npos);
  auto unknown = checksum_file("/nonexistent", {"crc7"});
  EXPECT_EQ(unknown.message(), "unknown checksum algorithm 'crc7' (expected sha256, sha512, md5)");
}

}  // namespace
}  // namespace ch

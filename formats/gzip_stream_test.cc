#include "formats/gzip_stream.h"

#include <gtest/gtest.h>
#include <zlib.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "tests/test_util.h"

namespace ch {
namespace {

// Inflates a gzip file with zlib and insists on exactly one member: after
// the first member's trailer nothing may follow.
::testing::AssertionResult inflate_single_member(const std::vector<uint8_t>& gz,
                                                 std::vector<uint8_t>* out) {
  z_stream s{};
  if (inflateInit2(&s, 16 + 15) != Z_OK) return ::testing::AssertionFailure() << "inflateInit2";
  s.next_in = const_cast<uint8_t*>(gz.data());
  s.avail_in = static_cast<uInt>(gz.size());
  out->clear();
  uint8_t buf[1 << 16];
  int r;
  do {
    s.next_out = buf;
    s.avail_out = sizeof buf;
    r = inflate(&s, Z_NO_FLUSH);
    out->insert(out->end(), buf, buf + (sizeof buf - s.avail_out));
  } while (r == Z_OK);
  uInt left = s.avail_in;
  inflateEnd(&s);
  if (r != Z_STREAM_END) return ::testing::AssertionFailure() << "inflate returned " << r;
  if (left != 0) return ::testing::AssertionFailure() << left << " bytes after the first member";
  return ::testing::AssertionSuccess();
}

std::vector<uint8_t> mixed_data(size_t n, uint32_t seed) {
  // Text-like runs, zero runs and random runs, so every chunk kind occurs.
  std::mt19937 rng(seed);
  std::vector<uint8_t> v(n);
  size_t i = 0;
  while (i < n) {
    size_t run = std::min<size_t>(n - i, 1 + rng() % 50000);
    switch (rng() % 3) {
      case 0:
        for (size_t k = 0; k < run; ++k) v[i + k] = static_cast<uint8_t>("the quick brown fox "[(i + k) % 20]);
        break;
      case 1:
        break;  // zeros
      default:
        for (size_t k = 0; k < run; ++k) v[i + k] = static_cast<uint8_t>(rng());
    }
    i += run;
  }
  return v;
}

std::vector<uint8_t> gzip_or_die(const std::vector<uint8_t>& in, const GzipOptions& o) {
  Result<std::vector<uint8_t>> r = gzip_buffer(in.data(), in.size(), o);
  EXPECT_TRUE(r.ok()) << (r.ok() ? "" : r.message());
  return r.ok() ? r.value() : std::vector<uint8_t>{};
}

TEST(GzipStream, EmptyInputIsAValidMember) {
  std::vector<uint8_t> gz = gzip_or_die({}, {});
  // 10-byte header, an empty final block, CRC 0, ISIZE 0.
  ASSERT_GE(gz.size(), 20u);
  EXPECT_EQ(gz[0], 0x1f);
  EXPECT_EQ(gz[1], 0x8b);
  EXPECT_EQ(std::vector<uint8_t>(gz.end() - 8, gz.end()), std::vector<uint8_t>(8, 0));
  std::vector<uint8_t> out;
  EXPECT_TRUE(inflate_single_member(gz, &out));
  EXPECT_TRUE(out.empty());
}

TEST(GzipStream, HeaderIsFixed) {
  std::vector<uint8_t> gz = gzip_or_die(mixed_data(1000, 1), {});
  const uint8_t want[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
  EXPECT_EQ(0, std::memcmp(gz.data(), want, 10));
}

TEST(GzipStream, ManyChunksRoundTripAtEveryLevel) {
  const std::vector<uint8_t> in = mixed_data(3 << 20, 2);
  for (int level = 0; level <= 3; ++level) {
    for (bool dict : {false, true}) {
      GzipOptions o;
      o.level = level;
      o.chunk_size = 64 << 10;  // 48 chunks
      o.prime_dictionary = dict;
      o.threads = 3;
      std::vector<uint8_t> out;
      EXPECT_TRUE(inflate_single_member(gzip_or_die(in, o), &out)) << level << " " << dict;
      EXPECT_TRUE(out == in) << "level " << level << " dict " << dict;
    }
  }
}

TEST(GzipStream, OddSizesAndTinyChunks) {
  for (size_t n : {1u, 511u, 4097u, 65537u}) {
    const std::vector<uint8_t> in = mixed_data(n, static_cast<uint32_t>(n));
    GzipOptions o;
    o.chunk_size = 1000;
    std::vector<uint8_t> out;
    EXPECT_TRUE(inflate_single_member(gzip_or_die(in, o), &out)) << n;
    EXPECT_TRUE(out == in) << n;
  }
}

TEST(GzipStream, IncompressibleDataGrowsOnlySlightly) {
  std::vector<uint8_t> in(5 << 20);
  std::mt19937_64 rng(7);
  for (auto& b : in) b = static_cast<uint8_t>(rng());
  GzipOptions o;
  std::vector<uint8_t> gz = gzip_or_die(in, o);
  EXPECT_LT(gz.size(), in.size() + in.size() / 100);
  std::vector<uint8_t> out;
  EXPECT_TRUE(inflate_single_member(gz, &out));
  EXPECT_TRUE(out == in);
}

TEST(GzipStream, SummaryCarriesZlibCrcAndSize) {
  const std::vector<uint8_t> in = mixed_data(2 << 20, 3);
  MemorySink sink;
  GzipOptions o;
  o.chunk_size = 100000;
  std::vector<uint64_t> progress;
  Result<GzipSummary> r = gzip_parallel(
      in.size(),
      [&](uint64_t off, uint8_t* buf, size_t n) -> Status {
        std::memcpy(buf, in.data() + off, n);
        return {};
      },
      sink, o, [&](uint64_t done) { progress.push_back(done); });
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->crc32, crc32(0, in.data(), static_cast<uInt>(in.size())));
  EXPECT_EQ(r->compressed_bytes, sink.bytes().size());
  ASSERT_EQ(progress.size(), 21u);
  EXPECT_EQ(progress.front(), 100000u);
  EXPECT_EQ(progress.back(), in.size());
}

TEST(GzipStream, OutputDoesNotDependOnThreads) {
  const std::vector<uint8_t> in = mixed_data(2 << 20, 4);
  GzipOptions o;
  o.chunk_size = 128 << 10;
  o.threads = 1;
  std::vector<uint8_t> one = gzip_or_die(in, o);
  o.threads = 4;
  EXPECT_TRUE(one == gzip_or_die(in, o));
  EXPECT_TRUE(one == gzip_or_die(in, o));
}

TEST(GzipStream, SourceErrorStopsTheStream) {
  MemorySink sink;
  GzipOptions o;
  o.chunk_size = 4096;
  Result<GzipSummary> r = gzip_parallel(
      1 << 20,
      [&](uint64_t off, uint8_t* buf, size_t n) -> Status {
        if (off >= 500000) return Error{"disk.img: read failed"};
        std::memset(buf, 1, n);
        return {};
      },
      sink, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "disk.img: read failed");
}

TEST(GzipStream, GzipCliAcceptsTheFile) {
  test::TempDir dir;
  const std::vector<uint8_t> in = mixed_data(3 << 20, 5);
  auto sink = FileSink::create(dir.file("x.gz"));
  ASSERT_TRUE(sink.ok());
  GzipOptions o;
  o.chunk_size = 256 << 10;
  ASSERT_TRUE(gzip_parallel(
                  in.size(),
                  [&](uint64_t off, uint8_t* buf, size_t n) -> Status {
                    std::memcpy(buf, in.data() + off, n);
                    return {};
                  },
                  **sink, o)
                  .ok());
  ASSERT_TRUE((*sink)->finish().ok());
  ASSERT_TRUE((*sink)->commit().ok());
  test::CommandResult t = test::run_command("gzip -t " + test::shell_quote(dir.file("x.gz")) + " 2>&1");
  EXPECT_EQ(t.exit_code, 0) << t.output;
  test::CommandResult l = test::run_command("gzip -dc " + test::shell_quote(dir.file("x.gz")) + " | wc -c");
  EXPECT_EQ(std::stoull(l.output), in.size());
}

}  // namespace
}  // namespace ch

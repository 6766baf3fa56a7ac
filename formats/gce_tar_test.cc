// gce-tar against the outside oracles: GNU tar (byte-identical archive for a
// layout both map the same way; listing; sparse extraction) and libarchive
// (reading the sparse member). Sizes are sparse files, so the 9 GiB case
// costs a few MiB of real I/O.
#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string>
#include <vector>

#include "base/file.h"
#include "formats/formats.h"
#include "tests/test_util.h"

namespace ch {
namespace {

using test::CommandResult;
using test::DataRun;
using test::run_command;
using test::shell_quote;

constexpr uint64_t kKiB = 1024, kMiB = 1024 * kKiB, kGiB = 1024 * kMiB;

Status convert(const std::string& src, const std::string& dst, unsigned threads = 2) {
  CH_ASSIGN(reader, open_image(src, "raw"));
  CH_ASSIGN(sink, FileSink::create(dst));
  WriteOptions o;
  o.threads = threads;
  CH_TRY(write_gce_tar(*reader, *sink, o));
  CH_TRY(sink->finish());
  return sink->commit();
}

std::vector<uint8_t> read_all(const std::string& path) {
  Result<File> f = File::open_read(path);
  EXPECT_TRUE(f.ok());
  std::vector<uint8_t> v(f.ok() ? *f->size() : 0);
  if (!v.empty()) {
    EXPECT_TRUE(f->pread_full(0, v.data(), v.size()).ok());
  }
  return v;
}

// The uncompressed tar stream (small: holes are not in it).
std::vector<uint8_t> gunzip(const std::string& path) {
  std::vector<uint8_t> gz = read_all(path), out;
  z_stream s{};
  EXPECT_EQ(inflateInit2(&s, 16 + 15), Z_OK);
  s.next_in = gz.data();
  s.avail_in = static_cast<uInt>(gz.size());
  uint8_t buf[1 << 16];
  int r;
  do {
    s.next_out = buf;
    s.avail_out = sizeof buf;
    r = inflate(&s, Z_NO_FLUSH);
    out.insert(out.end(), buf, buf + (sizeof buf - s.avail_out));
  } while (r == Z_OK);
  EXPECT_EQ(r, Z_STREAM_END);
  EXPECT_EQ(s.avail_in, 0u) << "more than one gzip member";
  inflateEnd(&s);
  return out;
}

uint64_t next_data(int fd, uint64_t pos, uint64_t size) {
  off_t d = lseek(fd, static_cast<off_t>(pos), SEEK_DATA);
  return d < 0 ? size : static_cast<uint64_t>(d);
}

// True when `got` is `want` followed by zeros up to padded_size, reading only
// where either file has data.
::testing::AssertionResult padded_equal(const std::string& want, const std::string& got,
                                        uint64_t padded_size) {
  Result<File> a = File::open_read(want), b = File::open_read(got);
  if (!a.ok() || !b.ok()) return ::testing::AssertionFailure() << "cannot open";
  if (*b->size() != padded_size)
    return ::testing::AssertionFailure() << got << " has " << *b->size() << " bytes, want " << padded_size;
  const uint64_t asize = *a->size();
  std::vector<uint8_t> x(kMiB), y(kMiB);
  for (uint64_t pos = 0; pos < padded_size;) {
    uint64_t da = pos < asize ? next_data(a->fd(), pos, asize) : asize;
    if (da >= asize) da = padded_size;  // past the source: zeros
    pos = std::min(da, next_data(b->fd(), pos, padded_size));
    if (pos >= padded_size) break;
    size_t n = static_cast<size_t>(std::min(kMiB, padded_size - pos));
    std::fill(x.begin(), x.end(), 0);
    if (pos < asize) {
      size_t in = static_cast<size_t>(std::min<uint64_t>(n, asize - pos));
      if (!a->pread_full(pos, x.data(), in).ok()) return ::testing::AssertionFailure() << "read";
    }
    if (!b->pread_full(pos, y.data(), n).ok()) return ::testing::AssertionFailure() << "read";
    if (std::memcmp(x.data(), y.data(), n) != 0)
      return ::testing::AssertionFailure() << "differ in the MiB at " << pos;
    pos += n;
  }
  return ::testing::AssertionSuccess();
}

class GceTarTest : public ::testing::Test {
 protected:
  void SetUp() override { unsetenv("SOURCE_DATE_EPOCH"); }
  void TearDown() override { unsetenv("SOURCE_DATE_EPOCH"); }

  // Builds src, converts it, lists and extracts with GNU tar, compares.
  void round_trip(uint64_t size, const std::vector<DataRun>& runs, uint64_t want_size) {
    src_ = dir_.file("src.raw");
    out_ = dir_.file("disk.tar.gz");
    ASSERT_TRUE(test::make_sparse_file(src_, size, runs).ok());
    Status s = convert(src_, out_);
    ASSERT_TRUE(s.ok()) << s.message();
    CommandResult list = run_command("tar -tvf " + shell_quote(out_) + " 2>&1");
    ASSERT_EQ(list.exit_code, 0) << list.output;
    // "-rw-r--r-- root/root SIZE DATE TIME disk.raw", one line.
    std::istringstream line(list.output);
    std::string mode, owner, bytes, date, time, name, rest;
    line >> mode >> owner >> bytes >> date >> time >> name;
    EXPECT_EQ(mode, "-rw-r--r--");
    EXPECT_EQ(owner, "root/root");
    EXPECT_EQ(bytes, std::to_string(want_size));
    EXPECT_EQ(name, "disk.raw");
    EXPECT_FALSE(line >> rest) << list.output;
    std::string x = dir_.file("x");
    CommandResult ex = run_command("mkdir -p " + shell_quote(x) + " && tar -xSf " + shell_quote(out_) +
                                   " -C " + shell_quote(x) + " 2>&1");
    ASSERT_EQ(ex.exit_code, 0) << ex.output;
    EXPECT_TRUE(padded_equal(src_, x + "/disk.raw", want_size));
  }

  test::TempDir dir_;
  std::string src_, out_;
};

TEST_F(GceTarTest, ByteIdenticalToGnuTar) {
  // 64 KiB-aligned data blocks (our scan unit) with real holes between
  // them: GNU tar's SEEK_HOLE map and our zero scan agree, so the archives
  // must too. Five runs plus the terminator need one extension block.
  const std::string d = dir_.file("g");
  ASSERT_EQ(run_command("mkdir " + shell_quote(d)).exit_code, 0);
  const std::string src = d + "/disk.raw";
  std::vector<DataRun> runs;
  for (uint64_t block : {0, 7, 300, 301, 302, 9000, 15000})
    runs.push_back({block * 64 * kKiB, 64 * kKiB});
  ASSERT_TRUE(test::make_sparse_file(src, kGiB, runs).ok());
  {
    int fd = open(src.c_str(), O_RDONLY);
    off_t hole = lseek(fd, 0, SEEK_HOLE);
    close(fd);
    if (hole >= static_cast<off_t>(kGiB)) GTEST_SKIP() << "filesystem under /tmp reports no holes";
  }
  const std::string gnu = dir_.file("gnu.tar");
  CommandResult t = run_command("tar --format=oldgnu -S --mtime=@0 --owner=root:0 --group=root:0 -C " +
                                shell_quote(d) + " -cf " + shell_quote(gnu) + " disk.raw 2>&1");
  ASSERT_EQ(t.exit_code, 0) << t.output;
  const std::string ours = dir_.file("ours.tar.gz");
  ASSERT_TRUE(convert(src, ours).ok());
  std::vector<uint8_t> a = gunzip(ours), b = read_all(gnu);
  ASSERT_EQ(a.size(), b.size());
  EXPECT_TRUE(a == b);
  EXPECT_EQ(a[482], 1);  // isextended
}

TEST_F(GceTarTest, RoundsUpToGiBAndExtracts) {
  // Unaligned size; the last run ends inside a 512-byte block.
  round_trip(kGiB + 12345,
             {{0, 3 * kMiB}, {200 * kMiB + 4096, 70 * kKiB}, {kGiB, 12345}},
             2 * kGiB);
}

TEST_F(GceTarTest, BaseTwoFiftySixPastEightGiB) {
  round_trip(8 * kGiB + 300 * kMiB, {{kMiB, kMiB}, {8 * kGiB + 100 * kMiB, 2 * kMiB}}, 9 * kGiB);
  std::vector<uint8_t> tar = gunzip(out_);
  ASSERT_GE(tar.size(), 512u);
  EXPECT_EQ(tar[156], 'S');
  // realsize: 0x80, then 9 GiB = 0x240000000 big-endian in 11 bytes.
  const uint8_t realsize[12] = {0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x40, 0, 0, 0};
  EXPECT_EQ(0, std::memcmp(tar.data() + 483, realsize, 12));
  // Second entry's offset (8 GiB + 100 MiB) is base-256 too; the third is
  // the terminator at 9 GiB.
  EXPECT_EQ(tar[386 + 24], 0x80);
  EXPECT_EQ(tar[386 + 48], 0x80);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(tar.data() + 386 + 60), 12),
            std::string("00000000000\0", 12));
}

TEST_F(GceTarTest, HundredsOfRunsAndLibarchive) {
  std::vector<DataRun> runs;
  for (uint64_t i = 0; i < 300; ++i) runs.push_back({i * 3 * kMiB + (i % 7) * 64 * kKiB, 64 * kKiB * (1 + i % 3)});
  round_trip(kGiB, runs, kGiB);

  // libarchive must see one sparse member whose data blocks are the source.
  archive* a = archive_read_new();
  archive_read_support_filter_gzip(a);
  archive_read_support_format_tar(a);
  ASSERT_EQ(archive_read_open_filename(a, out_.c_str(), 1 << 16), ARCHIVE_OK) << archive_error_string(a);
  archive_entry* e = nullptr;
  ASSERT_EQ(archive_read_next_header(a, &e), ARCHIVE_OK) << archive_error_string(a);
  EXPECT_STREQ(archive_entry_pathname(e), "disk.raw");
  EXPECT_EQ(archive_entry_size(e), static_cast<la_int64_t>(kGiB));
  EXPECT_EQ(archive_entry_sparse_count(e), 301);  // 300 runs + terminator
  Result<File> src = File::open_read(src_);
  ASSERT_TRUE(src.ok());
  const void* buf;
  size_t len;
  la_int64_t off;
  uint64_t bytes = 0;
  int r;
  std::vector<uint8_t> want;
  while ((r = archive_read_data_block(a, &buf, &len, &off)) == ARCHIVE_OK) {
    want.resize(len);
    ASSERT_TRUE(src->pread_full(static_cast<uint64_t>(off), want.data(), len).ok());
    ASSERT_EQ(0, std::memcmp(buf, want.data(), len)) << "at " << off;
    bytes += len;
  }
  EXPECT_EQ(r, ARCHIVE_EOF) << archive_error_string(a);
  uint64_t data = 0;
  for (const DataRun& d : runs) data += d.length;
  EXPECT_EQ(bytes, data);
  EXPECT_EQ(archive_read_next_header(a, &e), ARCHIVE_EOF);
  archive_read_free(a);
}

TEST_F(GceTarTest, AllHolesIsAnEmptyMapEndingAtRealsize) {
  round_trip(kGiB - 1, {}, kGiB);
  std::vector<uint8_t> tar = gunzip(out_);
  EXPECT_EQ(tar.size(), 10240u);  // header, two zero blocks, record padding
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(tar.data() + 124), 12),
            std::string("00000000000\0", 12));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(tar.data() + 386), 24),
            std::string("10000000000\0" "00000000000\0", 24));
}

TEST_F(GceTarTest, EmptyInputIsAnEmptyPlainMember) {
  // 0 rounds up to 0: a valid archive holding a 0-byte disk.raw (GCE would
  // refuse it, but that is the import's call, not the converter's).
  round_trip(0, {}, 0);
  std::vector<uint8_t> tar = gunzip(out_);
  ASSERT_EQ(tar.size(), 10240u);
  EXPECT_EQ(tar[156], '0');
}

TEST_F(GceTarTest, DeterministicAcrossRunsAndThreads) {
  const std::string src = dir_.file("src.raw");
  std::vector<DataRun> runs;
  for (uint64_t i = 0; i < 40; ++i) runs.push_back({i * 5 * kMiB, 700 * kKiB});
  ASSERT_TRUE(test::make_sparse_file(src, 300 * kMiB, runs).ok());
  ASSERT_TRUE(convert(src, dir_.file("a"), 1).ok());
  ASSERT_TRUE(convert(src, dir_.file("b"), 3).ok());
  ASSERT_TRUE(convert(src, dir_.file("c"), 2).ok());
  std::vector<uint8_t> a = read_all(dir_.file("a"));
  EXPECT_TRUE(a == read_all(dir_.file("b")));
  EXPECT_TRUE(a == read_all(dir_.file("c")));
}

TEST_F(GceTarTest, MtimeFromSourceDateEpoch) {
  const std::string src = dir_.file("src.raw");
  ASSERT_TRUE(test::make_sparse_file(src, kMiB, {{0, 4096}}).ok());
  setenv("SOURCE_DATE_EPOCH", "1700000000", 1);
  ASSERT_TRUE(convert(src, dir_.file("t")).ok());
  std::vector<uint8_t> tar = gunzip(dir_.file("t"));
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(tar.data() + 136), 12),
            std::string("14524770400\0", 12));  // 1700000000 in octal
  CommandResult list = run_command("TZ=UTC tar -tvf " + shell_quote(dir_.file("t")));
  EXPECT_NE(list.output.find("2023-11-14 22:13 disk.raw"), std::string::npos) << list.output;

  setenv("SOURCE_DATE_EPOCH", "yesterday", 1);
  Status s = convert(src, dir_.file("u"));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "SOURCE_DATE_EPOCH 'yesterday' is not a non-negative whole number of seconds");
}

}  // namespace
}  // namespace ch

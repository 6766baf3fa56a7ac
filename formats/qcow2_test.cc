// qcow2 reader and writer, with qemu-img/qemu-io as the outside oracle:
// images we write must pass `qemu-img check` and compare identical to their
// source; images qemu writes (plain, compressed, v2, 4 KiB..2 MiB clusters,
// zero clusters) must read back byte for byte.
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "base/endian.h"
#include "base/file.h"
#include "formats/formats.h"
#include "tests/test_util.h"

namespace ch {
namespace {

using test::TempDir;

// The outside oracles (qemu-img, qemu-io, cmp), stderr included.
test::CommandResult run(const std::string& cmd) { return test::run_command(cmd + " 2>&1"); }

void make_sparse(const std::string& path, uint64_t size) {
  auto f = File::create(path);
  ASSERT_TRUE(f.ok()) << f.message();
  ASSERT_TRUE(f->truncate(size).ok());
}

void write_at(const std::string& path, uint64_t off, const std::vector<uint8_t>& bytes) {
  auto f = File::open_read(path);  // for the path check only
  ASSERT_TRUE(f.ok());
  FILE* fp = fopen(path.c_str(), "r+b");
  ASSERT_NE(fp, nullptr);
  ASSERT_EQ(fseeko(fp, static_cast<off_t>(off), SEEK_SET), 0);
  ASSERT_EQ(fwrite(bytes.data(), 1, bytes.size(), fp), bytes.size());
  fclose(fp);
}

std::vector<uint8_t> random_bytes(std::mt19937_64& rng, size_t n) {
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(rng());
  return v;
}

std::vector<uint8_t> text_bytes(std::mt19937_64& rng, size_t n) {
  static const char kWords[] = "the quick brown fox jumps over the lazy dog\n";
  std::vector<uint8_t> v(n);
  size_t start = rng() % (sizeof kWords - 1);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(kWords[(start + i) % (sizeof kWords - 1)]);
  return v;
}

std::vector<uint8_t> read_file(const std::string& path) {
  auto f = File::open_read(path);
  CH_CHECK(f.ok());
  auto size = f->size();
  std::vector<uint8_t> v(static_cast<size_t>(*size));
  CH_CHECK(f->pread_full(0, v.data(), v.size()).ok());
  return v;
}

// A raw file of `size` bytes with random, text and explicitly written zero
// blobs at random places.
void make_random_raw(const std::string& path, uint64_t size, unsigned seed, int blobs) {
  std::mt19937_64 rng(seed);
  make_sparse(path, size);
  for (int i = 0; i < blobs; ++i) {
    uint64_t len = 1 + rng() % (300 << 10);
    uint64_t off = rng() % size;
    len = std::min(len, size - off);
    std::vector<uint8_t> bytes;
    switch (rng() % 3) {
      case 0: bytes = random_bytes(rng, len); break;
      case 1: bytes = text_bytes(rng, len); break;
      default: bytes.assign(len, 0); break;
    }
    write_at(path, off, bytes);
  }
}

Status convert(const std::string& src, const std::string& dst, std::string_view src_format = "raw",
               std::string_view dst_format = "qcow2", Progress* progress = nullptr) {
  WriteOptions opts;
  opts.progress = progress;
  auto r = convert_file(src, src_format, dst, dst_format, opts);
  if (!r.ok()) return r.error();
  return {};
}

void expect_qemu_accepts(const std::string& raw, const std::string& qcow2) {
  test::CommandResult check = run("qemu-img check -f qcow2 '" + qcow2 + "'");
  EXPECT_EQ(check.exit_code, 0) << check.output;
  test::CommandResult cmp = run("qemu-img compare -f raw -F qcow2 '" + raw + "' '" + qcow2 + "'");
  EXPECT_EQ(cmp.exit_code, 0) << cmp.output;
  EXPECT_NE(cmp.output.find("Images are identical."), std::string::npos) << cmp.output;
}

// Reads the whole image through the reader in odd-sized pieces on several
// threads and compares with the raw file's bytes.
void expect_reads_as(const ImageReader& r, const std::vector<uint8_t>& want) {
  ASSERT_EQ(r.virtual_size(), want.size());
  std::vector<uint8_t> got(want.size());
  const size_t piece = 777 * 1024 + 13;
  size_t pieces = (want.size() + piece - 1) / piece;
  std::vector<std::thread> ts;
  std::vector<std::string> errors(4);
  for (unsigned t = 0; t < 4; ++t) {
    ts.emplace_back([&, t] {
      for (size_t i = t; i < pieces; i += 4) {
        size_t off = i * piece, n = std::min(piece, want.size() - off);
        Status s = r.read(off, got.data() + off, n);
        if (!s.ok()) errors[t] = s.message();
      }
    });
  }
  for (auto& t : ts) t.join();
  for (auto& e : errors) EXPECT_EQ(e, "");
  EXPECT_TRUE(got == want);
  // Holes must read as zeros (already implied) and the map must cover the size.
  uint64_t pos = 0;
  for (const Extent& e : r.extents()) {
    EXPECT_EQ(e.offset, pos);
    pos += e.length;
    if (!e.data) {
      for (uint64_t o = e.offset; o < e.offset + e.length; ++o)
        if (want[o] != 0) { ADD_FAILURE() << "hole over data at " << o; break; }
    }
  }
  EXPECT_EQ(pos, want.size());
}

std::string open_error(const std::string& path, std::string_view format = "") {
  auto r = open_image(path, format);
  return r.ok() ? "opened" : r.message();
}

// ------------------------------------------------------------- writer

TEST(Qcow2Write, RandomSparseLayoutsPassQemuCheckAndCompare) {
  TempDir dir;
  for (unsigned seed = 1; seed <= 6; ++seed) {
    SCOPED_TRACE(seed);
    std::mt19937_64 rng(seed * 7919);
    // Multiples of 512 (qemu's raw driver rounds sizes up to a sector),
    // mostly not of 64 KiB.
    uint64_t size = (1 + rng() % 60000) * 512 + (seed == 1 ? 0 : 512);
    std::string raw = dir / "src.raw", q = dir / "out.qcow2";
    make_random_raw(raw, size, seed, 3 + seed * 4);
    ASSERT_TRUE(convert(raw, q).ok());
    expect_qemu_accepts(raw, q);
    auto r = open_image(q);
    ASSERT_TRUE(r.ok()) << r.message();
    EXPECT_EQ((*r)->format(), "qcow2");
    expect_reads_as(**r, read_file(raw));
  }
}

TEST(Qcow2Write, DataPast4GiB) {
  TempDir dir;
  std::string raw = dir / "big.raw", q = dir / "big.qcow2";
  const uint64_t size = (5ULL << 30) + 12345 * 512;
  make_sparse(raw, size);
  std::mt19937_64 rng(42);
  write_at(raw, 0, random_bytes(rng, 100000));
  write_at(raw, (4ULL << 30) - 5000, text_bytes(rng, 300000));  // straddles 4 GiB
  write_at(raw, (9ULL << 29) + 4096, random_bytes(rng, 70000));
  write_at(raw, size - 3000, random_bytes(rng, 3000));
  Progress progress;
  progress.start("test", size);
  ASSERT_TRUE(convert(raw, q, "raw", "qcow2", &progress).ok());
  EXPECT_EQ(progress.done(), size);
  expect_qemu_accepts(raw, q);
  // Only data clusters are allocated: header, refcount table and block, L1,
  // 4 L2 tables (0, 4 GiB-, 4 GiB+, 4.5 GiB and the end share some).
  test::CommandResult info = run("qemu-img info --output=json '" + q + "'");
  EXPECT_NE(info.output.find("\"virtual-size\": " + std::to_string(size)), std::string::npos) << info.output;
  // Read back the data regions through our reader.
  auto r = open_image(q);
  ASSERT_TRUE(r.ok()) << r.message();
  auto f = File::open_read(raw);
  for (uint64_t off : std::vector<uint64_t>{0, (4ULL << 30) - 65536, 9ULL << 29, size - 200000}) {
    std::vector<uint8_t> a(200000), b(200000);
    ASSERT_TRUE(f->pread_full(off, a.data(), a.size()).ok());
    ASSERT_TRUE((*r)->read(off, b.data(), b.size()).ok());
    EXPECT_TRUE(a == b) << off;
  }
}

TEST(Qcow2Write, EmptyImage) {
  TempDir dir;
  std::string raw = dir / "empty.raw", q = dir / "empty.qcow2";
  make_sparse(raw, 0);
  ASSERT_TRUE(convert(raw, q).ok());
  expect_qemu_accepts(raw, q);
  // Header, refcount table, one refcount block; no L1 clusters (as qemu).
  EXPECT_EQ(read_file(q).size(), 3u * 65536);
  auto r = open_image(q);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ((*r)->virtual_size(), 0u);
  EXPECT_TRUE((*r)->extents().empty());
}

TEST(Qcow2Write, FullyZeroImageAllocatesNoData) {
  TempDir dir;
  std::string raw = dir / "zero.raw", q = dir / "zero.qcow2";
  make_sparse(raw, 0);
  write_at(raw, 0, std::vector<uint8_t>(10 << 20, 0));  // written zeros, not a hole
  ASSERT_TRUE(convert(raw, q).ok());
  expect_qemu_accepts(raw, q);
  // Header, refcount table, refcount block, L1: no L2, no data.
  EXPECT_EQ(read_file(q).size(), 4u * 65536);
  auto r = open_image(q);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ((*r)->extents().size(), 1u);
  EXPECT_FALSE((*r)->extents()[0].data);
}

TEST(Qcow2Write, HeaderMatchesQemuDefaults) {
  TempDir dir;
  std::string raw = dir / "s.raw", q = dir / "s.qcow2";
  make_sparse(raw, 3 << 20);
  std::mt19937_64 rng(5);
  write_at(raw, 1 << 20, random_bytes(rng, 65536));
  ASSERT_TRUE(convert(raw, q).ok());
  std::vector<uint8_t> b = read_file(q);
  EXPECT_EQ(load_be32(b.data() + 4), 3u);     // version
  EXPECT_EQ(load_be32(b.data() + 20), 16u);   // cluster_bits
  EXPECT_EQ(load_be64(b.data() + 72), 0u);    // incompatible features
  EXPECT_EQ(load_be64(b.data() + 80), 0u);    // compatible: no lazy refcounts
  EXPECT_EQ(load_be32(b.data() + 96), 4u);    // refcount_order
  EXPECT_EQ(load_be32(b.data() + 100), 112u); // header_length
  EXPECT_EQ(b[104], 0);                       // compression_type zlib
  // header, one data cluster, L2, L1, refcount table, refcount block.
  EXPECT_EQ(b.size(), 6u * 65536);
  EXPECT_EQ(load_be64(b.data() + 40), 3u * 65536);  // L1
  EXPECT_EQ(load_be64(b.data() + 48), 4u * 65536);  // refcount table
  EXPECT_EQ(load_be32(b.data() + 56), 1u);
  test::CommandResult map = run("qemu-img map --output=json '" + q + "'");
  EXPECT_NE(map.output.find("\"start\": 1048576, \"length\": 65536, \"depth\": 0, \"present\": true, "
                            "\"zero\": false, \"data\": true, \"offset\": 65536"),
            std::string::npos)
      << map.output;
}

TEST(Qcow2Write, Deterministic) {
  TempDir dir;
  std::string raw = dir / "d.raw";
  make_random_raw(raw, 40 << 20, 99, 40);
  ASSERT_TRUE(convert(raw, dir / "a.qcow2").ok());
  ASSERT_TRUE(convert(raw, dir / "b.qcow2").ok());
  EXPECT_TRUE(read_file(dir / "a.qcow2") == read_file(dir / "b.qcow2"));
}

TEST(Qcow2Write, RoundTripFromQcow2Input) {
  TempDir dir;
  std::string raw = dir / "r.raw";
  make_random_raw(raw, 20 << 20, 3, 30);
  ASSERT_EQ(run("qemu-img convert -c -O qcow2 -o cluster_size=4096 '" + raw + "' '" + (dir / "c.qcow2") + "'").exit_code, 0);
  ASSERT_TRUE(convert(dir / "c.qcow2", dir / "o.qcow2", "").ok());
  expect_qemu_accepts(raw, dir / "o.qcow2");
}

// A sink that cannot go back, as an upload stream: the writer must plan
// the layout first and make one forward pass.
class StreamSink : public Sink {
 public:
  Status write(const uint8_t* data, size_t len) override {
    pos_ += len;
    return mem_.write(data, len);
  }
  Status write_zeros(uint64_t len) override {
    pos_ += len;
    return mem_.write_zeros(len);
  }
  Status finish() override { return {}; }
  std::vector<uint8_t>& bytes() { return mem_.bytes(); }

 private:
  MemorySink mem_;
};

// Guest bytes in memory behind the reader interface, with one data extent
// over everything and an optional failing offset.
class MemoryReader : public ImageReader {
 public:
  explicit MemoryReader(std::vector<uint8_t> bytes, uint64_t fail_at = UINT64_MAX)
      : bytes_(std::move(bytes)), fail_at_(fail_at) {
    if (!bytes_.empty()) extents_.push_back({0, bytes_.size(), true});
  }
  std::string_view format() const override { return "raw"; }
  uint64_t virtual_size() const override { return bytes_.size(); }
  const std::vector<Extent>& extents() const override { return extents_; }
  Status read(uint64_t offset, uint8_t* buf, size_t len) const override {
    if (offset <= fail_at_ && fail_at_ < offset + len) return Error{"mem: read failed at " + std::to_string(fail_at_)};
    std::memcpy(buf, bytes_.data() + offset, len);
    return {};
  }

 private:
  std::vector<uint8_t> bytes_;
  uint64_t fail_at_;
  std::vector<Extent> extents_;
};

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  auto f = File::create(path);
  ASSERT_TRUE(f.ok()) << f.message();
  ASSERT_TRUE(f->pwrite_full(0, bytes.data(), bytes.size()).ok());
}

TEST(Qcow2Write, StreamSinkGetsTablesFirstLayout) {
  TempDir dir;
  for (unsigned seed = 1; seed <= 3; ++seed) {
    SCOPED_TRACE(seed);
    std::string raw = dir / "s.raw", q = dir / "s.qcow2";
    make_random_raw(raw, (9 << 20) + seed * 512, seed + 100, 12);
    auto r = open_image(raw, "raw");
    ASSERT_TRUE(r.ok());
    StreamSink sink;
    Progress progress;
    WriteOptions opts;
    opts.progress = &progress;
    ASSERT_TRUE(write_qcow2(**r, sink, opts).ok());
    EXPECT_EQ(progress.done(), (*r)->virtual_size());
    EXPECT_EQ(sink.position(), sink.bytes().size());
    write_bytes(q, sink.bytes());
    expect_qemu_accepts(raw, q);
    // header, refcount table at 0x10000, then its block, L1 at 0x30000.
    EXPECT_EQ(load_be64(sink.bytes().data() + 48), 65536u);
    EXPECT_EQ(load_be64(sink.bytes().data() + 40), 3u * 65536);
  }
}

TEST(Qcow2Write, DataClustersFollowTheHeaderInGuestOrder) {
  TempDir dir;
  std::string raw = dir / "o.raw", q = dir / "o.qcow2";
  make_sparse(raw, 64 << 20);
  std::mt19937_64 rng(3);
  // Written data with an all-zero cluster inside (0x30000), a run across a
  // 4 MiB read boundary, and a lone cluster far out.
  std::vector<uint8_t> a = random_bytes(rng, 4 << 16);
  std::fill(a.begin() + (2 << 16), a.begin() + (3 << 16), 0);
  write_at(raw, 1 << 16, a);
  write_at(raw, (4 << 20) - (1 << 16), random_bytes(rng, 2 << 16));
  write_at(raw, 50 << 20, random_bytes(rng, 100));
  ASSERT_TRUE(convert(raw, q).ok());
  expect_qemu_accepts(raw, q);
  test::CommandResult map = run("qemu-img map --output=json '" + q + "'");
  auto has = [&](uint64_t start, uint64_t length, uint64_t offset) {
    std::string want = "\"start\": " + std::to_string(start) + ", \"length\": " + std::to_string(length) +
                       ", \"depth\": 0, \"present\": true, \"zero\": false, \"data\": true, \"offset\": " +
                       std::to_string(offset);
    EXPECT_NE(map.output.find(want), std::string::npos) << want << "\n" << map.output;
  };
  has(1 << 16, 2 << 16, 1 << 16);
  has(4 << 16, 1 << 16, 3 << 16);           // the zero cluster took no space
  has((4 << 20) - (1 << 16), 2 << 16, 4 << 16);
  has(50 << 20, 1 << 16, 6 << 16);
  // 6 data clusters after the header, then L2, L1, refcount table and block.
  EXPECT_EQ(read_file(q).size(), 11u * 65536);
}

TEST(Qcow2Write, MemorySinkMatchesFileOutput) {
  TempDir dir;
  std::string raw = dir / "m.raw", q = dir / "m.qcow2";
  make_random_raw(raw, 13 << 20, 77, 20);
  ASSERT_TRUE(convert(raw, q).ok());
  auto r = open_image(raw, "raw");
  ASSERT_TRUE(r.ok());
  MemorySink sink;
  ASSERT_TRUE(write_qcow2(**r, sink, WriteOptions{}).ok());
  EXPECT_TRUE(sink.bytes() == read_file(q));
}

TEST(Qcow2Write, ReadErrorStopsEitherLayout) {
  std::mt19937_64 rng(4);
  std::vector<uint8_t> bytes = random_bytes(rng, 20 << 20);
  MemoryReader reader(bytes, 13 << 20);
  MemorySink file_like;
  Status s = write_qcow2(reader, file_like, WriteOptions{});
  EXPECT_EQ(s.ok() ? "ok" : s.message(), "mem: read failed at 13631488");
  StreamSink stream;
  s = write_qcow2(reader, stream, WriteOptions{});
  EXPECT_EQ(s.ok() ? "ok" : s.message(), "mem: read failed at 13631488");
}

TEST(Qcow2Write, ReaderWithoutHolesLosesNothing) {
  // Every byte is one data extent; zero clusters still take no space, and
  // a size that ends mid-cluster is zero-padded (a multiple of 512: qemu
  // rounds a qcow2's size down to a sector).
  TempDir dir;
  std::mt19937_64 rng(6);
  std::vector<uint8_t> bytes((6 << 20) + 1024, 0);
  for (uint64_t off : {0ULL, 3ULL << 20, (6ULL << 20) + 100}) {
    std::vector<uint8_t> d = random_bytes(rng, 900);
    std::copy(d.begin(), d.end(), bytes.begin() + static_cast<std::ptrdiff_t>(off));
  }
  MemoryReader reader(bytes);
  MemorySink sink;
  ASSERT_TRUE(write_qcow2(reader, sink, WriteOptions{}).ok());
  // header, 3 data clusters, L2, L1, refcount table, refcount block.
  EXPECT_EQ(sink.bytes().size(), 8u * 65536);
  write_bytes(dir / "r.raw", bytes);
  write_bytes(dir / "r.qcow2", sink.bytes());
  expect_qemu_accepts(dir / "r.raw", dir / "r.qcow2");
}

// ------------------------------------------------------------- reader

TEST(Qcow2Read, ImagesWrittenByQemu) {
  TempDir dir;
  std::string raw = dir / "src.raw";
  make_random_raw(raw, (24 << 20) + 3 * 512, 11, 60);
  const std::vector<uint8_t> want = read_file(raw);
  const char* variants[] = {
      "",
      "-c",
      "-o compat=0.10",
      "-c -o compat=0.10",
      "-o cluster_size=4096",
      "-c -o cluster_size=4096",
      "-o cluster_size=2M",
      "-c -o cluster_size=2M",
      "-o cluster_size=512",
      "-c -o cluster_size=512",
  };
  for (const char* v : variants) {
    SCOPED_TRACE(v);
    std::string q = dir / "q.qcow2";
    test::CommandResult c = run(std::string("qemu-img convert -O qcow2 ") + v + " '" + raw + "' '" + q + "'");
    ASSERT_EQ(c.exit_code, 0) << c.output;
    auto r = open_image(q);
    ASSERT_TRUE(r.ok()) << r.message();
    EXPECT_EQ((*r)->format(), "qcow2");
    expect_reads_as(**r, want);
  }
}

TEST(Qcow2Read, ZeroAndUnallocatedClustersAreHoles) {
  TempDir dir;
  std::string q = dir / "z.qcow2";
  ASSERT_EQ(run("qemu-img create -f qcow2 '" + q + "' 4M").exit_code, 0);
  test::CommandResult io = run("qemu-io -c 'write -P 0xaa 0 1M' -c 'write -z 256k 128k' '" + q + "'");
  ASSERT_EQ(io.exit_code, 0) << io.output;
  auto r = open_image(q);
  ASSERT_TRUE(r.ok()) << r.message();
  std::vector<Extent> want = {{0, 256 << 10, true},
                              {256 << 10, 128 << 10, false},
                              {384 << 10, 640 << 10, true},
                              {1 << 20, 3 << 20, false}};
  EXPECT_EQ((*r)->extents(), want);
  std::vector<uint8_t> bytes(4 << 20, 0);
  std::fill(bytes.begin(), bytes.begin() + (1 << 20), 0xaa);
  std::fill(bytes.begin() + (256 << 10), bytes.begin() + (384 << 10), 0);
  expect_reads_as(**r, bytes);
}

TEST(Qcow2Read, InternalSnapshotsAreIgnored) {
  TempDir dir;
  std::string q = dir / "s.qcow2";
  ASSERT_EQ(run("qemu-img create -f qcow2 '" + q + "' 1M").exit_code, 0);
  ASSERT_EQ(run("qemu-io -c 'write -P 0x11 0 256k' '" + q + "'").exit_code, 0);
  ASSERT_EQ(run("qemu-img snapshot -c before '" + q + "'").exit_code, 0);
  ASSERT_EQ(run("qemu-io -c 'write -P 0x22 64k 64k' '" + q + "'").exit_code, 0);
  auto r = open_image(q);
  ASSERT_TRUE(r.ok()) << r.message();
  std::vector<uint8_t> want(1 << 20, 0);
  std::fill(want.begin(), want.begin() + (256 << 10), 0x11);
  std::fill(want.begin() + (64 << 10), want.begin() + (128 << 10), 0x22);
  expect_reads_as(**r, want);
}

TEST(Qcow2Read, RefusesBackingFile) {
  TempDir dir;
  make_sparse(dir / "base.raw", 1 << 20);
  std::string q = dir / "overlay.qcow2";
  test::CommandResult c = run("qemu-img create -f qcow2 -b base.raw -F raw '" + q + "'");
  ASSERT_EQ(c.exit_code, 0) << c.output;
  EXPECT_EQ(open_error(q), q + ": qcow2 images with a backing file are not supported (backing file: base.raw)");
}

class Qcow2Corrupt : public ::testing::Test {
 protected:
  void SetUp() override {
    raw_ = dir_ / "src.raw";
    q_ = dir_ / "c.qcow2";
    make_random_raw(raw_, 4 << 20, 21, 8);
    std::mt19937_64 rng(1);
    write_at(raw_, 0, random_bytes(rng, 1 << 20));  // data in the first clusters
    ASSERT_EQ(run("qemu-img convert -O qcow2 '" + raw_ + "' '" + q_ + "'").exit_code, 0);
    bytes_ = read_file(q_);
  }
  // Writes the modified image and returns the open error.
  std::string reopen(std::string_view format = "") {
    auto f = File::create(q_);
    CH_CHECK(f.ok());
    CH_CHECK(f->pwrite_full(0, bytes_.data(), bytes_.size()).ok());
    f->close();
    return open_error(q_, format);
  }
  TempDir dir_;
  std::string raw_, q_;
  std::vector<uint8_t> bytes_;
};

TEST_F(Qcow2Corrupt, Unmodified) { EXPECT_EQ(reopen(), "opened"); }

TEST_F(Qcow2Corrupt, BadMagic) {
  bytes_[3] = 0;
  std::vector<uint8_t> head(bytes_.begin(), bytes_.begin() + 512);
  EXPECT_FALSE(probe_qcow2(ProbeInput{head, {}, bytes_.size()}));
  EXPECT_EQ(reopen("qcow2"), q_ + ": not a qcow2 file (bad magic)");
}

TEST_F(Qcow2Corrupt, BadVersion) {
  store_be32(bytes_.data() + 4, 4);
  EXPECT_EQ(reopen(), q_ + ": unsupported qcow2 version 4");
}

TEST_F(Qcow2Corrupt, BadClusterBits) {
  store_be32(bytes_.data() + 20, 22);
  EXPECT_EQ(reopen(), q_ + ": invalid qcow2 header: cluster_bits 22 is outside 9..21");
  store_be32(bytes_.data() + 20, 8);
  EXPECT_EQ(reopen(), q_ + ": invalid qcow2 header: cluster_bits 8 is outside 9..21");
}

TEST_F(Qcow2Corrupt, BadHeaderLength) {
  store_be32(bytes_.data() + 100, 100);
  EXPECT_EQ(reopen(), q_ + ": invalid qcow2 header: header_length 100 (expected a multiple of 8 "
                           "from 104 to the cluster size)");
}

TEST_F(Qcow2Corrupt, L1OffsetPastEnd) {
  store_be64(bytes_.data() + 40, 0x10000000);
  EXPECT_EQ(reopen(), q_ + ": invalid qcow2 header: L1 table at 0x10000000 (1 entries) lies past "
                           "the end of the file (" + std::to_string(bytes_.size()) + " bytes)");
}

TEST_F(Qcow2Corrupt, L1TooBig) {
  store_be32(bytes_.data() + 36, 5000000);
  EXPECT_EQ(reopen(), q_ + ": invalid qcow2 header: L1 table has 5000000 entries, more than the "
                           "4194304 allowed");
}

TEST_F(Qcow2Corrupt, RefcountTablePastEnd) {
  store_be32(bytes_.data() + 56, 100);
  EXPECT_EQ(reopen(), q_ + ": invalid qcow2 header: refcount table at 0x10000 (100 clusters) lies "
                           "past the end of the file (" + std::to_string(bytes_.size()) + " bytes)");
}

TEST_F(Qcow2Corrupt, TruncatedHeader) {
  bytes_.resize(50);
  EXPECT_EQ(reopen(), q_ + ": truncated qcow2 file (50 bytes, shorter than its 104-byte header)");
}

TEST_F(Qcow2Corrupt, TruncatedData) {
  // qemu's layout: header, refcount table, block, L1, L2, then data from
  // 0x50000. Cut the file in the middle of the data.
  ASSERT_GT(bytes_.size(), 0x60000u);
  bytes_.resize(0x58000);
  EXPECT_EQ(reopen(), q_ + ": data cluster at 0x60000 (guest offset 0x10000) lies past the end of "
                           "the file (360448 bytes)");
}

TEST_F(Qcow2Corrupt, L2PastEnd) {
  uint64_t l1 = load_be64(bytes_.data() + 40);
  store_be64(bytes_.data() + l1, 0x7f000000ULL | (1ULL << 63));
  EXPECT_EQ(reopen(), q_ + ": L2 table at 0x7f000000 (L1 index 0) lies past the end of the file (" +
                          std::to_string(bytes_.size()) + " bytes)");
}

TEST_F(Qcow2Corrupt, RefusedFeatures) {
  std::vector<uint8_t> orig = bytes_;
  store_be32(bytes_.data() + 32, 1);
  EXPECT_EQ(reopen(), q_ + ": encrypted qcow2 images are not supported (crypt_method 1)");
  bytes_ = orig;
  store_be64(bytes_.data() + 72, 1 << 2);
  EXPECT_EQ(reopen(), q_ + ": qcow2 images with an external data file are not supported");
  bytes_ = orig;
  store_be64(bytes_.data() + 72, 1 << 4);
  EXPECT_EQ(reopen(), q_ + ": qcow2 images with extended L2 entries are not supported");
  bytes_ = orig;
  store_be64(bytes_.data() + 72, 1 << 3);
  bytes_[104] = 1;
  EXPECT_EQ(reopen(), q_ + ": qcow2 compression type 1 is not supported (only zlib)");
  bytes_ = orig;
  store_be64(bytes_.data() + 72, (1ULL << 9) | 1);
  EXPECT_EQ(reopen(), q_ + ": qcow2 image uses unknown incompatible features 0x200");
}

TEST(Qcow2Read, CorruptCompressedClusterIsAReadError) {
  TempDir dir;
  std::string raw = dir / "t.raw", q = dir / "t.qcow2";
  make_sparse(raw, 1 << 20);
  std::mt19937_64 rng(8);
  write_at(raw, 0, text_bytes(rng, 65536));
  ASSERT_EQ(run("qemu-img convert -c -O qcow2 '" + raw + "' '" + q + "'").exit_code, 0);
  std::vector<uint8_t> b = read_file(q);
  // The compressed payload follows the L2 table at 0x40000.
  uint64_t e = load_be64(b.data() + 0x40000);
  ASSERT_TRUE(e & (1ULL << 62));
  uint64_t coff = e & ((1ULL << 54) - 1);
  for (int i = 0; i < 64; ++i) b[coff + i] = 0xff;
  auto f = File::create(q);
  ASSERT_TRUE(f->pwrite_full(0, b.data(), b.size()).ok());
  auto r = open_image(q);
  ASSERT_TRUE(r.ok()) << r.message();
  std::vector<uint8_t> buf(65536);
  Status s = (*r)->read(0, buf.data(), buf.size());
  char hexoff[32];
  std::snprintf(hexoff, sizeof hexoff, "0x%llx", static_cast<unsigned long long>(coff));
  EXPECT_EQ(s.ok() ? "ok" : s.message(), q + ": compressed cluster at host offset " + hexoff +
                                             " (guest offset 0x0) does not inflate to 65536 bytes");
}

}  // namespace
}  // namespace ch

namespace ch {

// Found by the fuzzer: a hostile backing-file name must not break the
// one-line error (NULs, newlines, terminal escapes).
TEST(Qcow2Fuzzed, BackingFileNameIsMadePrintable) {
  std::string path = "/tmp/qcow2-backing-name-" + std::to_string(getpid()) + ".qcow2";
  std::vector<uint8_t> h(4096, 0);
  const uint8_t magic[] = {'Q', 'F', 'I', 0xfb};
  std::memcpy(h.data(), magic, 4);
  store_be32(h.data() + 4, 3);            // version
  store_be64(h.data() + 8, 512);          // backing_file_offset
  store_be32(h.data() + 16, 12);          // backing_file_size
  store_be32(h.data() + 20, 16);          // cluster_bits
  store_be64(h.data() + 24, 1 << 20);     // size
  store_be32(h.data() + 100, 112);        // header_length
  std::memcpy(h.data() + 512, "a\nb\x1b[2Jc\0zz", 12);
  {
    auto f = File::create(path);
    ASSERT_TRUE(f.ok());
    ASSERT_TRUE(f->pwrite_full(0, h.data(), h.size()).ok());
  }
  auto r = open_image(path, "qcow2");
  ::unlink(path.c_str());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), path + ": qcow2 images with a backing file are not supported (backing file: a?b?[2Jc)");
}

}  // namespace ch

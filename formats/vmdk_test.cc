// VMDK tests. The writer is judged by qemu-img (check, compare, info) and by
// walking the canonical stream layout marker by marker; the reader by files
// qemu-img makes (monolithicSparse, streamOptimized, zeroed grains) and by
// our own output, compared byte for byte with the raw source; refusals and
// corrupt inputs by their exact messages.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include "base/endian.h"
#include "base/file.h"
#include "formats/formats.h"
#include "formats/vmdk_descriptor.h"
#include "tests/test_util.h"

namespace ch {
namespace {

using test::CommandResult;
using test::DataRun;
using test::run_command;
using test::shell_quote;
using test::TempDir;

constexpr uint64_t KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;

std::vector<uint8_t> read_all(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
}

void write_all(const std::string& path, const std::vector<uint8_t>& b) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

// Compares `reader` with the raw file `raw`: every byte where either side
// has data is read from both; beyond the raw size the reader must read zeros.
void expect_same_as_raw(const ImageReader& reader, const std::string& raw) {
  auto src = open_image(raw, "raw");
  ASSERT_TRUE(src.ok()) << src.message();
  const uint64_t raw_size = (*src)->virtual_size();
  ASSERT_GE(reader.virtual_size(), raw_size);
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const Extent& e : (*src)->extents())
    if (e.data) ranges.push_back({e.offset, e.offset + e.length});
  for (const Extent& e : reader.extents())
    if (e.data) ranges.push_back({e.offset, e.offset + e.length});
  std::sort(ranges.begin(), ranges.end());
  std::vector<uint8_t> a(MiB), b(MiB);
  uint64_t done = 0;
  for (auto [start, end] : ranges) {
    for (uint64_t off = std::max(start, done); off < end;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(MiB, end - off));
      ASSERT_TRUE(reader.read(off, a.data(), n).ok()) << off;
      std::fill(b.begin(), b.begin() + n, 0);
      if (off < raw_size) {
        size_t m = static_cast<size_t>(std::min<uint64_t>(n, raw_size - off));
        ASSERT_TRUE((*src)->read(off, b.data(), m).ok());
      }
      ASSERT_EQ(std::memcmp(a.data(), b.data(), n), 0) << "differs in [" << off << ", " << off + n << ")";
      off += n;
      done = std::max(done, off);
    }
  }
  // The extent map claims zeros everywhere else: spot-check a few holes.
  for (const Extent& e : reader.extents()) {
    if (e.data) continue;
    size_t n = static_cast<size_t>(std::min<uint64_t>(e.length, 4096));
    ASSERT_TRUE(reader.read(e.offset, a.data(), n).ok());
    EXPECT_TRUE(std::all_of(a.begin(), a.begin() + n, [](uint8_t c) { return c == 0; }));
  }
}

// Random runs; some aligned to grains, most not.
std::vector<DataRun> random_runs(uint64_t size, int count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<DataRun> runs;
  for (int i = 0; i < count; ++i) {
    uint64_t len = 1 + rng() % (3 * MiB);
    uint64_t off = rng() % size;
    if (i % 2) off = off / (64 * KiB) * (64 * KiB);
    runs.push_back({off, std::min(len, size - off), i % 5 == 4});
  }
  return runs;
}

Status convert(const std::string& src, const std::string& dst, unsigned threads = 0,
               std::string name = "disk.vmdk") {
  WriteOptions o;
  o.threads = threads;
  o.file_name = std::move(name);
  auto r = convert_file(src, "raw", dst, "vmdk", o);
  if (!r.ok()) return r.error();
  return {};
}

struct Case {
  const char* name;
  uint64_t size;
  std::vector<DataRun> runs;
};

TEST(VmdkWriter, RoundTripsThroughQemu) {
  TempDir dir;
  std::vector<Case> cases = {
      {"random", 200 * MiB, random_runs(200 * MiB, 20, 1)},
      {"odd-size", 37 * MiB + 12345, random_runs(37 * MiB + 12345, 8, 2)},
      {"tail-at-odd-end", 3 * MiB + 1000, {{3 * MiB - 5000, 6000, false}}},
      {"past-4GiB", 5 * GiB + 64 * KiB * 3 + 512,
       {{0, 100 * KiB, false}, {4 * GiB - 10000, 3 * MiB, false}, {5 * GiB, 64 * KiB * 3 + 512, false},
        {4 * GiB + 32 * MiB - 512, 1024, false}}},
      {"all-zero-written", 5 * MiB, {{0, 5 * MiB, true}}},
      {"empty-hole", 10 * MiB, {}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    std::string src = dir.file(std::string(c.name) + ".raw");
    std::string dst = dir.file(std::string(c.name) + ".vmdk");
    ASSERT_TRUE(test::make_sparse_file(src, c.size, c.runs, 3).ok());
    Status s = convert(src, dst);
    ASSERT_TRUE(s.ok()) << s.message();
    CommandResult check = run_command("qemu-img check -f vmdk " + shell_quote(dst) + " 2>&1");
    EXPECT_EQ(check.exit_code, 0) << check.output;
    CommandResult cmp = run_command("qemu-img compare -f raw -F vmdk " + shell_quote(src) + " " +
                                    shell_quote(dst) + " 2>&1");
    EXPECT_EQ(cmp.exit_code, 0) << cmp.output;
    EXPECT_NE(cmp.output.find("Images are identical."), std::string::npos) << cmp.output;
    CommandResult info = run_command("qemu-img info -f vmdk " + shell_quote(dst));
    EXPECT_NE(info.output.find("create type: streamOptimized"), std::string::npos) << info.output;
    EXPECT_NE(info.output.find("virtual size: "), std::string::npos);
    EXPECT_NE(info.output.find("(" + std::to_string(vmdk_virtual_size(c.size)) + " bytes)"),
              std::string::npos)
        << info.output;

    auto reader = open_image(dst);
    ASSERT_TRUE(reader.ok()) << reader.message();
    EXPECT_EQ((*reader)->format(), "vmdk");
    EXPECT_EQ((*reader)->virtual_size(), vmdk_virtual_size(c.size));
    expect_same_as_raw(**reader, src);
  }
}

TEST(VmdkWriter, AllZeroImageHasNoGrains) {
  TempDir dir;
  std::string src = dir.file("z.raw"), dst = dir.file("z.vmdk");
  ASSERT_TRUE(test::make_sparse_file(src, 64 * MiB, {{0, 64 * MiB, true}}).ok());
  ASSERT_TRUE(convert(src, dst).ok());
  // Header + descriptor padded to the 64 KiB overhead, GD marker + 1 sector
  // of GD, footer marker + footer, EOS.
  auto f = File::open_read(dst);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(*f->size(), 64 * KiB + 5 * 512);
  auto reader = open_image(dst);
  ASSERT_TRUE(reader.ok()) << reader.message();
  EXPECT_EQ((*reader)->extents(), (std::vector<Extent>{{0, 64 * MiB, false}}));
}

TEST(VmdkWriter, EmptyImage) {
  // qemu-img 7.2 cannot open an empty streamOptimized VMDK, not even its own;
  // our reader must.
  TempDir dir;
  std::string src = dir.file("e.raw"), dst = dir.file("e.vmdk");
  ASSERT_TRUE(test::make_sparse_file(src, 0, {}).ok());
  Status s = convert(src, dst);
  ASSERT_TRUE(s.ok()) << s.message();
  auto reader = open_image(dst);
  ASSERT_TRUE(reader.ok()) << reader.message();
  EXPECT_EQ((*reader)->virtual_size(), 0u);
  EXPECT_TRUE((*reader)->extents().empty());
}

TEST(VmdkWriter, IsDeterministicAcrossThreadCounts) {
  TempDir dir;
  std::string src = dir.file("s.raw");
  ASSERT_TRUE(test::make_sparse_file(src, 100 * MiB + 512, random_runs(100 * MiB, 12, 9)).ok());
  ASSERT_TRUE(convert(src, dir.file("a.vmdk"), 1).ok());
  ASSERT_TRUE(convert(src, dir.file("b.vmdk"), 3).ok());
  ASSERT_TRUE(convert(src, dir.file("c.vmdk"), 0, "other.vmdk").ok());
  auto a = read_all(dir.file("a.vmdk")), b = read_all(dir.file("b.vmdk")),
       c = read_all(dir.file("c.vmdk"));
  EXPECT_EQ(a, b);
  // Only the descriptor (extent name, CID) depends on the name.
  ASSERT_EQ(a.size(), c.size());
  EXPECT_NE(a, c);
  EXPECT_TRUE(std::equal(a.begin() + 64 * KiB, a.end(), c.begin() + 64 * KiB));
}

// Walks the output as a stream consumer (AWS, ovftool) would: header,
// descriptor, then markers in order, with no seeks.
TEST(VmdkWriter, WritesCanonicalStreamLayout) {
  TempDir dir;
  std::string src = dir.file("s.raw"), dst = dir.file("s.vmdk");
  // Grains in GT spans 0 and 2 (span 1 empty), plus a zero grain in data.
  ASSERT_TRUE(test::make_sparse_file(src, 100 * MiB,
                                     {{0, 200 * KiB, false},
                                      {64 * KiB, 64 * KiB, true},
                                      {70 * MiB, 10, false}})
                  .ok());
  ASSERT_TRUE(convert(src, dst, 2, "my disk.vmdk").ok());
  std::vector<uint8_t> f = read_all(dst);
  ASSERT_GE(f.size(), 4 * 512u);
  ASSERT_EQ(f.size() % 512, 0u);
  const uint8_t* h = f.data();
  EXPECT_EQ(std::memcmp(h, "KDMV", 4), 0);
  EXPECT_EQ(load_le32(h + 4), 3u);
  EXPECT_EQ(load_le32(h + 8), 0x30001u);
  EXPECT_EQ(load_le64(h + 12), 100 * MiB / 512);
  EXPECT_EQ(load_le64(h + 20), 128u);
  EXPECT_EQ(load_le64(h + 28), 1u);
  EXPECT_EQ(load_le32(h + 44), 512u);
  EXPECT_EQ(load_le64(h + 48), 0u);
  EXPECT_EQ(load_le64(h + 56), UINT64_MAX);
  const uint64_t overhead = load_le64(h + 64);
  EXPECT_EQ(overhead, 128u);
  EXPECT_EQ(std::memcmp(h + 73, "\n \r\n", 4), 0);
  EXPECT_EQ(load_le16(h + 77), 1u);

  std::string desc(reinterpret_cast<const char*>(f.data() + 512), load_le64(h + 36) * 512);
  VmdkDescriptor d = parse_vmdk_descriptor(desc);
  EXPECT_EQ(d.create_type, "streamOptimized");
  ASSERT_EQ(d.extents.size(), 1u);
  EXPECT_EQ(d.extents[0].sectors, 100 * MiB / 512);
  EXPECT_EQ(d.extents[0].file_name, "my disk.vmdk");
  EXPECT_NE(desc.find("ddb.virtualHWVersion = \"4\"\n"), std::string::npos);
  EXPECT_NE(desc.find("ddb.adapterType = \"lsilogic\"\n"), std::string::npos);
  EXPECT_NE(desc.find("ddb.geometry.heads = \"255\"\n"), std::string::npos);
  EXPECT_NE(desc.find("ddb.geometry.sectors = \"63\"\n"), std::string::npos);

  std::vector<uint64_t> grain_lbas, gt_sectors;
  uint64_t pos = overhead * 512, gd_sector = 0;
  std::vector<std::string> seq;
  for (;;) {
    ASSERT_LE(pos + 512, f.size());
    const uint8_t* m = f.data() + pos;
    uint32_t size = load_le32(m + 8);
    if (size != 0) {  // grain marker
      grain_lbas.push_back(load_le64(m));
      pos += (12 + size + 511) / 512 * 512;
      if (seq.empty() || seq.back() != "grains") seq.push_back("grains");
      continue;
    }
    uint32_t type = load_le32(m + 12);
    uint64_t val = load_le64(m);
    if (type == 0) {
      seq.push_back("eos");
      EXPECT_EQ(pos + 512, f.size());
      break;
    }
    if (type == 1) {
      seq.push_back("gt");
      EXPECT_EQ(val, 4u);
      gt_sectors.push_back(pos / 512 + 1);
    } else if (type == 2) {
      seq.push_back("gd");
      gd_sector = pos / 512 + 1;
    } else if (type == 3) {
      seq.push_back("footer");
      EXPECT_EQ(val, 1u);
    }
    pos += 512 + val * 512;
  }
  EXPECT_EQ(seq, (std::vector<std::string>{"grains", "gt", "grains", "gt", "gd", "footer", "eos"}));
  // 200 KiB = grains 0..3 minus the zeroed grain 1; 70 MiB is grain 1120.
  EXPECT_EQ(grain_lbas, (std::vector<uint64_t>{0, 256, 384, 1120 * 128}));
  ASSERT_EQ(gt_sectors.size(), 2u);
  const uint8_t* gd = f.data() + gd_sector * 512;
  EXPECT_EQ(load_le32(gd), gt_sectors[0]);
  EXPECT_EQ(load_le32(gd + 4), 0u);
  EXPECT_EQ(load_le32(gd + 8), gt_sectors[1]);
  const uint8_t* footer = f.data() + f.size() - 1024;
  EXPECT_EQ(std::memcmp(footer, h, 56), 0);
  EXPECT_EQ(load_le64(footer + 56), gd_sector);
  EXPECT_EQ(std::memcmp(footer + 64, h + 64, 448), 0);
}

// --------------------------------------------------------------- reader

class VmdkReaderQemu : public ::testing::Test {
 protected:
  void SetUp() override {
    src_ = dir_.file("src.raw");
    // Not a multiple of the grain; data in the last, partial grain.
    size_ = 70 * MiB + 3 * 512;
    std::vector<DataRun> runs = random_runs(size_, 10, 5);
    runs.push_back({size_ - 700, 700, false});
    ASSERT_TRUE(test::make_sparse_file(src_, size_, runs, 11).ok());
  }
  void from_qemu(const std::string& opts, const std::string& dst) {
    CommandResult r = run_command("qemu-img convert -f raw -O vmdk " + opts + " " + shell_quote(src_) +
                                  " " + shell_quote(dst) + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  TempDir dir_;
  std::string src_;
  uint64_t size_ = 0;
};

TEST_F(VmdkReaderQemu, ReadsMonolithicSparse) {
  std::string dst = dir_.file("ms.vmdk");
  ASSERT_NO_FATAL_FAILURE(from_qemu("", dst));
  auto r = open_image(dst);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ((*r)->format(), "vmdk");
  EXPECT_EQ((*r)->virtual_size(), size_);
  EXPECT_LT(data_bytes((*r)->extents()), 40 * MiB);  // holes stay holes
  expect_same_as_raw(**r, src_);
}

TEST_F(VmdkReaderQemu, ReadsStreamOptimized) {
  std::string dst = dir_.file("so.vmdk");
  ASSERT_NO_FATAL_FAILURE(from_qemu("-o subformat=streamOptimized", dst));
  auto r = open_image(dst);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ((*r)->virtual_size(), size_);
  expect_same_as_raw(**r, src_);
}

TEST_F(VmdkReaderQemu, ReadsZeroedGrains) {
  std::string dst = dir_.file("zg.vmdk");
  ASSERT_NO_FATAL_FAILURE(from_qemu("-o zeroed_grain=on", dst));
  // Zero the first 1 MiB in place: qemu marks those GTEs 1 (zeroed grain).
  CommandResult z = run_command("qemu-io -f vmdk -c 'write -z 0 1M' " + shell_quote(dst) + " 2>&1");
  ASSERT_EQ(z.exit_code, 0) << z.output;
  CommandResult z2 = run_command("qemu-io -f raw -c 'write -z 0 1M' " + shell_quote(src_) + " 2>&1");
  ASSERT_EQ(z2.exit_code, 0) << z2.output;
  auto r = open_image(dst);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_FALSE((*r)->extents()[0].data);
  EXPECT_GE((*r)->extents()[0].length, MiB);
  expect_same_as_raw(**r, src_);
}

TEST_F(VmdkReaderQemu, ConcurrentReadsAgree) {
  std::string dst = dir_.file("so.vmdk");
  ASSERT_NO_FATAL_FAILURE(from_qemu("-o subformat=streamOptimized", dst));
  auto r = open_image(dst);
  ASSERT_TRUE(r.ok()) << r.message();
  auto raw = open_image(src_, "raw");
  ASSERT_TRUE(raw.ok());
  std::atomic<int> bad{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < 4; ++t) {
    pool.emplace_back([&, t] {
      std::mt19937_64 rng(t);
      std::vector<uint8_t> a(300 * KiB), b(300 * KiB);
      for (int i = 0; i < 200; ++i) {
        uint64_t len = 1 + rng() % a.size();
        uint64_t off = rng() % (size_ - len);
        if (!(*r)->read(off, a.data(), len).ok() || !(*raw)->read(off, b.data(), len).ok() ||
            std::memcmp(a.data(), b.data(), len) != 0)
          ++bad;
      }
    });
  }
  for (auto& t : pool) t.join();
  EXPECT_EQ(bad.load(), 0);
}

// ---------------------------------------------------------- refusals

TEST(VmdkReader, RefusesDescriptorOnlySubformats) {
  TempDir dir;
  for (const char* type : {"monolithicFlat", "twoGbMaxExtentSparse", "twoGbMaxExtentFlat"}) {
    std::string p = dir.file(std::string(type) + ".vmdk");
    CommandResult c = run_command(std::string("qemu-img create -q -f vmdk -o subformat=") + type + " " +
                                  shell_quote(p) + " 1M 2>&1");
    ASSERT_EQ(c.exit_code, 0) << c.output;
    for (const char* fmt : {"", "vmdk"}) {
      auto r = open_image(p, fmt);
      ASSERT_FALSE(r.ok());
      EXPECT_EQ(r.message(), p + ": VMDK create type '" + type +
                                 "' is not supported (single-file monolithicSparse or streamOptimized only)");
    }
  }
}

TEST(VmdkReader, RefusesBareExtentOfSplitSet) {
  TempDir dir;
  std::string p = dir.file("split.vmdk");
  ASSERT_EQ(run_command("qemu-img create -q -f vmdk -o subformat=twoGbMaxExtentSparse " +
                        shell_quote(p) + " 1M").exit_code, 0);
  std::string extent = dir.file("split-s001.vmdk");
  auto r = open_image(extent);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), extent + ": VMDK sparse extent has no embedded descriptor (one extent of a "
                                  "multi-file VMDK?); single-file monolithicSparse or streamOptimized only");
}

TEST(VmdkReader, RefusesDeltaDisks) {
  TempDir dir;
  std::string base = dir.file("base.vmdk"), delta = dir.file("delta.vmdk");
  ASSERT_EQ(run_command("qemu-img create -q -f vmdk " + shell_quote(base) + " 1M").exit_code, 0);
  CommandResult c = run_command("qemu-img create -q -f vmdk -F vmdk -b " + shell_quote(base) + " " +
                                shell_quote(delta) + " 2>&1");
  ASSERT_EQ(c.exit_code, 0) << c.output;
  auto r = open_image(delta);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), delta + ": VMDK delta disks are not supported (parent: " + base + ")");
}

TEST(VmdkReader, RefusesNonVmdkWhenForced) {
  TempDir dir;
  std::string p = dir.file("x.raw");
  ASSERT_TRUE(test::make_sparse_file(p, 4096, {{0, 4096, false}}).ok());
  auto r = open_image(p, "vmdk");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), p + ": not a VMDK file (bad magic)");
}

// A small valid stream of our own, then one field broken at a time.
class VmdkCorrupt : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string src = dir_.file("s.raw");
    ASSERT_TRUE(test::make_sparse_file(src, 2 * MiB, {{0, 300 * KiB, false}, {MiB, 5, false}}, 4).ok());
    good_path_ = dir_.file("good.vmdk");
    ASSERT_TRUE(convert(src, good_path_, 1).ok());
    good_ = read_all(good_path_);
    path_ = dir_.file("bad.vmdk");
  }
  // Writes `bytes`, opens and reads everything; returns the first error.
  std::string error_of(const std::vector<uint8_t>& bytes, std::string_view format = "") {
    write_all(path_, bytes);
    auto r = open_image(path_, format);
    if (!r.ok()) return r.message();
    std::vector<uint8_t> buf((*r)->virtual_size());
    Status s = (*r)->read(0, buf.data(), buf.size());
    return s.ok() ? "" : s.message();
  }
  // Sector of the GD (from the footer) and of the first grain.
  uint64_t gd_sector() const { return load_le64(good_.data() + good_.size() - 1024 + 56); }
  TempDir dir_;
  std::string good_path_, path_;
  std::vector<uint8_t> good_;
};

TEST_F(VmdkCorrupt, GoodFileReads) { EXPECT_EQ(error_of(good_), ""); }

TEST_F(VmdkCorrupt, Version) {
  auto b = good_;
  store_le32(b.data() + 4, 4);
  EXPECT_EQ(error_of(b), path_ + ": VMDK version 4 is not supported (1, 2 or 3 only)");
}

TEST_F(VmdkCorrupt, Capacity) {
  auto b = good_;
  store_le64(b.data() + 12, UINT64_MAX / 256);
  EXPECT_EQ(error_of(b), path_ + ": VMDK capacity of 72057594037927935 sectors is invalid "
                                 "(at most 2^38 sectors, 128 TiB)");
}

TEST_F(VmdkCorrupt, GrainSize) {
  auto b = good_;
  store_le64(b.data() + 20, 100);
  EXPECT_EQ(error_of(b), path_ + ": VMDK grain size of 100 sectors is not a power of two");
  store_le64(b.data() + 20, 0);
  EXPECT_EQ(error_of(b), path_ + ": VMDK grain size of 0 sectors is not a power of two");
  store_le64(b.data() + 20, 1u << 20);
  EXPECT_EQ(error_of(b), path_ + ": VMDK grain size of 1048576 sectors is too big (at most 2048)");
}

TEST_F(VmdkCorrupt, GrainTableSize) {
  auto b = good_;
  store_le32(b.data() + 44, 0);
  EXPECT_EQ(error_of(b), path_ + ": VMDK grain table size of 0 entries is invalid (expected 1 to 65536)");
}

// Bounded memory: the GD is held in memory, so 1-sector grains with 1-entry
// GTs over 128 TiB (a 1 TiB GD) are refused before anything is allocated.
TEST_F(VmdkCorrupt, GrainDirectoryTooBigToHold) {
  auto b = good_;
  for (size_t at : {size_t{0}, b.size() - 1024}) {  // header and footer agree
    store_le64(b.data() + at + 12, uint64_t{1} << 38);
    store_le64(b.data() + at + 20, 1);
    store_le32(b.data() + at + 44, 1);
  }
  EXPECT_EQ(error_of(b), path_ + ": VMDK grain directory of 274877906944 entries is too big "
                                 "(at most 4194304)");
}

TEST_F(VmdkCorrupt, FooterGdPastEnd) {
  auto b = good_;
  store_le64(b.data() + b.size() - 1024 + 56, 1000000);
  EXPECT_EQ(error_of(b), path_ + ": VMDK grain directory at sector 1000000 lies past the end of the file");
}

TEST_F(VmdkCorrupt, GtPastEnd) {
  auto b = good_;
  store_le32(b.data() + gd_sector() * 512, 0x7fffffff);
  EXPECT_EQ(error_of(b),
            path_ + ": VMDK grain table 0 at sector 2147483647 lies past the end of the file");
}

TEST_F(VmdkCorrupt, GtsOverlap) {
  // A 64 MiB capacity has two GD entries; make both name the same GT.
  auto b = good_;
  store_le64(b.data() + 12, 64 * MiB / 512);
  store_le64(b.data() + b.size() - 1024 + 12, 64 * MiB / 512);
  uint64_t gd = gd_sector();
  store_le32(b.data() + gd * 512 + 4, load_le32(b.data() + gd * 512));
  uint32_t gt = load_le32(b.data() + gd * 512);
  EXPECT_EQ(error_of(b), path_ + ": VMDK grain tables at sectors " + std::to_string(gt) + " and " +
                             std::to_string(gt) + " overlap");
}

TEST_F(VmdkCorrupt, GrainPastEnd) {
  auto b = good_;
  uint64_t gt = load_le32(b.data() + gd_sector() * 512);
  store_le32(b.data() + gt * 512 + 4, 0x7ffffff0);
  EXPECT_EQ(error_of(b), path_ + ": VMDK grain at sector 2147483632 (guest offset 0x10000) lies past the "
                                 "end of the file");
}

TEST_F(VmdkCorrupt, CompressedSizeTooBig) {
  auto b = good_;
  store_le32(b.data() + 128 * 512 + 8, 200000);  // first grain marker
  EXPECT_EQ(error_of(b), path_ + ": VMDK compressed grain at sector 128 claims 200000 bytes (at most 131072)");
}

TEST_F(VmdkCorrupt, CompressedSizePastEnd) {
  auto b = good_;
  uint64_t gt = load_le32(b.data() + gd_sector() * 512);
  uint64_t last = 0;  // the grain nearest the end of the file: at 1 MiB, grain 16
  last = load_le32(b.data() + gt * 512 + 16 * 4);
  ASSERT_NE(last, 0u);
  // Declared size fits the marker bound but runs past EOF once the tail is cut.
  b.resize(last * 512 + 512);
  store_le32(b.data() + last * 512 + 8, 100000);
  // The footer is gone with the tail.
  EXPECT_EQ(error_of(b), path_ + ": VMDK footer is missing or invalid (gdOffset is GD_AT_END; "
                                 "incomplete stream?)");
}

TEST_F(VmdkCorrupt, GrainMarkerLba) {
  auto b = good_;
  store_le64(b.data() + 128 * 512, 999);
  EXPECT_EQ(error_of(b), path_ + ": VMDK grain marker at sector 128 names LBA 999, expected 0");
}

TEST_F(VmdkCorrupt, GarbledDeflate) {
  auto b = good_;
  for (int i = 0; i < 64; ++i) b[128 * 512 + 12 + 2 + i] ^= 0x5a;
  EXPECT_EQ(error_of(b), path_ + ": VMDK compressed grain at sector 128 (guest offset 0x0) is corrupt "
                                 "(inflate failed)");
}

TEST_F(VmdkCorrupt, Truncated) {
  for (uint64_t keep : {0ul, 3ul, 511ul, 700ul, 64ul * 1024, good_.size() - 512}) {
    SCOPED_TRACE(keep);
    std::vector<uint8_t> b(good_.begin(), good_.begin() + static_cast<long>(keep));
    std::string e = error_of(b, "vmdk");
    EXPECT_FALSE(e.empty());
    EXPECT_EQ(e.rfind(path_ + ": ", 0), 0u) << e;
  }
  std::vector<uint8_t> b(good_.begin(), good_.begin() + 300);
  EXPECT_EQ(error_of(b, "vmdk"), path_ + ": VMDK header is truncated (file is 300 bytes)");
  b.assign(good_.begin(), good_.begin() + 700);
  EXPECT_EQ(error_of(b), path_ + ": VMDK descriptor at sector 1 (20 sectors) lies past the end of the file");
  b.assign(good_.begin(), good_.begin() + 3);
  EXPECT_EQ(error_of(b, "vmdk"), path_ + ": not a VMDK file (bad magic)");
}

// Any single byte flipped in the metadata (header, descriptor, GT, GD,
// footer) gives a clean error or a clean read, never a crash.
TEST_F(VmdkCorrupt, ByteFlipsNeverCrash) {
  std::vector<uint64_t> spots;
  for (uint64_t i = 0; i < 80; ++i) spots.push_back(i);
  for (uint64_t i = good_.size() - 1536; i < good_.size(); i += 29) spots.push_back(i);
  uint64_t gt = load_le32(good_.data() + gd_sector() * 512);
  for (uint64_t i = gt * 512; i < gt * 512 + 80; ++i) spots.push_back(i);
  for (uint64_t i = 128 * 512; i < 128 * 512 + 40; ++i) spots.push_back(i);
  for (uint64_t at : spots) {
    for (uint8_t x : {0x01, 0xff}) {
      auto b = good_;
      b[at] ^= x;
      (void)error_of(b);
    }
  }
}

TEST(VmdkDescriptor, ParsesQuotedNamesAndCrlf) {
  VmdkDescriptor d = parse_vmdk_descriptor(
      "# Disk DescriptorFile\r\nversion=1\r\ncreateType = \"monolithicSparse\"\r\n"
      "RW 2048 SPARSE \"a b.vmdk\"\r\nRDONLY 10 FLAT \"c.vmdk\" 0\r\n\0garbage");
  EXPECT_EQ(d.create_type, "monolithicSparse");
  ASSERT_EQ(d.extents.size(), 2u);
  EXPECT_EQ(d.extents[0].access, "RW");
  EXPECT_EQ(d.extents[0].sectors, 2048u);
  EXPECT_EQ(d.extents[0].file_name, "a b.vmdk");
  EXPECT_EQ(d.extents[1].type, "FLAT");
  EXPECT_EQ(d.extents[1].file_name, "c.vmdk");
}

TEST(VmdkDescriptor, StreamDescriptorIsDeterministic) {
  std::string a = make_vmdk_stream_descriptor(4194304, "x.vmdk");
  EXPECT_EQ(a, make_vmdk_stream_descriptor(4194304, "x.vmdk"));
  EXPECT_NE(a, make_vmdk_stream_descriptor(4194304, "y.vmdk"));
  EXPECT_NE(a.find("ddb.geometry.cylinders = \"261\"\n"), std::string::npos) << a;
  EXPECT_NE(make_vmdk_stream_descriptor(1, "a\"b\n").find("SPARSE \"a_b_\""), std::string::npos);
}

}  // namespace
}  // namespace ch

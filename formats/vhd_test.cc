// VHD reader and writer, with qemu-img 7.2 as the outside oracle: it must
// report the sizes we intend, compare our files identical to their sources,
// and its own fixed/dynamic files must read back byte-for-byte here.
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <array>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
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

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kGiB = uint64_t(1) << 30;

using test::TempDir;

// The outside oracles (qemu-img, qemu-io, cmp), stderr included.
test::CommandResult run(const std::string& cmd) { return test::run_command(cmd + " 2>&1"); }

uint64_t qemu_virtual_size(const std::string& path, const std::string& fmt) {
  test::CommandResult r = run("qemu-img info -f " + fmt + " --output=json '" + path + "'");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  if (r.exit_code != 0) return ~uint64_t{0};
  return nlohmann::json::parse(r.output)["virtual-size"].get<uint64_t>();
}

uint64_t file_size(const std::string& path) { return std::filesystem::file_size(path); }

uint64_t allocated_bytes(const std::string& path) {
  struct stat st;
  CH_CHECK(stat(path.c_str(), &st) == 0);
  return uint64_t(st.st_blocks) * 512;
}

std::vector<uint8_t> read_at(const std::string& path, uint64_t offset, size_t len) {
  std::vector<uint8_t> buf(len);
  int fd = open(path.c_str(), O_RDONLY);
  CH_CHECK(fd >= 0);
  CH_CHECK(pread(fd, buf.data(), len, static_cast<off_t>(offset)) == static_cast<ssize_t>(len));
  close(fd);
  return buf;
}

void write_at(const std::string& path, uint64_t offset, const void* data, size_t len) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT, 0644);
  CH_CHECK(fd >= 0);
  CH_CHECK(pwrite(fd, data, len, static_cast<off_t>(offset)) == static_cast<ssize_t>(len));
  close(fd);
}

// Creates or resizes PATH (sparse) to SIZE.
bool truncate_file(const std::string& path, uint64_t size) {
  int fd = open(path.c_str(), O_WRONLY | O_CREAT, 0644);
  if (fd < 0) return false;
  bool ok = ftruncate(fd, static_cast<off_t>(size)) == 0;
  close(fd);
  return ok;
}

std::vector<uint8_t> tail_footer(const std::string& path) {
  return read_at(path, file_size(path) - 512, 512);
}

uint32_t checksum_of(const std::vector<uint8_t>& b, size_t at) {
  uint32_t sum = 0;
  for (size_t i = 0; i < b.size(); ++i)
    if (i < at || i >= at + 4) sum += b[i];
  return ~sum;
}

// Rewrites a 512-byte footer at `offset` after `edit`, with a fresh checksum.
template <class F>
void edit_footer(const std::string& path, uint64_t offset, F edit, bool fix_checksum = true) {
  std::vector<uint8_t> f = read_at(path, offset, 512);
  edit(f.data());
  if (fix_checksum) store_be32(f.data() + 64, checksum_of(f, 64));
  write_at(path, offset, f.data(), f.size());
}

template <class F>
void edit_dyn_header(const std::string& path, F edit, bool fix_checksum = true) {
  std::vector<uint8_t> h = read_at(path, 512, 1024);
  edit(h.data());
  if (fix_checksum) store_be32(h.data() + 36, checksum_of(h, 36));
  write_at(path, 512, h.data(), h.size());
}

// A sparse raw file of `size` bytes: random runs of random bytes, some runs
// of explicit zeros (data extents that hold zeros), holes elsewhere.
void make_sparse_raw(const std::string& path, uint64_t size, uint32_t seed, int runs) {
  CH_CHECK(truncate_file(path, size));
  std::mt19937_64 rng(seed);
  for (int i = 0; i < runs && size > 0; ++i) {
    uint64_t len = 1 + rng() % (300 << 10);
    uint64_t off = rng() % size;
    len = std::min(len, size - off);
    std::vector<uint8_t> buf(len, 0);
    if (i % 4 != 3)
      for (auto& b : buf) b = uint8_t(rng() | 1);
    write_at(path, off, buf.data(), buf.size());
  }
}

Status convert(const std::string& src, const std::string& dst, const std::string& name = "disk") {
  WriteOptions opts;
  opts.file_name = name;
  auto r = convert_file(src, "raw", dst, "vhd", opts);
  if (!r.ok()) return r.error();
  return {};
}

std::vector<uint8_t> read_all(const ImageReader& r) {
  std::vector<uint8_t> out(r.virtual_size());
  // Four threads at once, in odd-sized pieces: reads must be thread-safe.
  const size_t piece = 1'000'003;
  std::vector<std::thread> pool;
  std::vector<Status> st(4);
  for (int t = 0; t < 4; ++t) {
    pool.emplace_back([&, t] {
      for (uint64_t off = t * piece; off < out.size(); off += 4 * piece) {
        size_t n = static_cast<size_t>(std::min<uint64_t>(piece, out.size() - off));
        Status s = r.read(off, out.data() + off, n);
        if (!s.ok()) st[t] = s;
      }
    });
  }
  for (auto& th : pool) th.join();
  for (auto& s : st) EXPECT_TRUE(s.ok()) << s.message();
  return out;
}

std::vector<uint8_t> read_file_padded(const std::string& path, uint64_t size) {
  std::vector<uint8_t> out(size, 0);
  uint64_t n = std::min(size, file_size(path));
  if (n) {
    auto b = read_at(path, 0, n);
    std::copy(b.begin(), b.end(), out.begin());
  }
  return out;
}

class EnvVar {
 public:
  explicit EnvVar(const char* name) : name_(name) {
    if (const char* v = getenv(name)) old_ = v;
  }
  ~EnvVar() {
    if (old_) setenv(name_, old_->c_str(), 1);
    else unsetenv(name_);
  }
  void set(const char* v) { setenv(name_, v, 1); }
  void unset() { unsetenv(name_); }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

}  // namespace

// --- Writer -----------------------------------------------------------------

TEST(VhdWrite, RandomSparseLayoutsAgreeWithQemu) {
  TempDir dir;
  std::mt19937 rng(20240601);
  for (int round = 0; round < 4; ++round) {
    // Sizes off the MiB grid, one of them off the sector grid too.
    uint64_t size = (1 + rng() % 24) * kMiB + 512 * (1 + rng() % 2000) + (round == 3 ? 77 : 0);
    std::string src = dir / ("src" + std::to_string(round) + ".raw");
    std::string dst = dir / ("out" + std::to_string(round) + ".vhd");
    make_sparse_raw(src, size, rng(), 12);
    ASSERT_TRUE(convert(src, dst).ok());
    uint64_t vsize = vhd_virtual_size(size);
    ASSERT_EQ(vsize % kMiB, 0u);
    ASSERT_GE(vsize, size);
    ASSERT_LT(vsize - size, kMiB);
    EXPECT_EQ(file_size(dst), vsize + 512);
    EXPECT_EQ(qemu_virtual_size(dst, "vpc"), vsize);
    // Sparse output: 12 runs of at most 300 KiB cannot fill half the file.
    EXPECT_LT(allocated_bytes(dst), vsize / 2 + 8 * kMiB);

    ASSERT_TRUE(truncate_file(src, vsize));  // the rounded guest, zero-padded
    test::CommandResult cmp = run("qemu-img compare -f raw -F vpc '" + src + "' '" + dst + "'");
    EXPECT_EQ(cmp.exit_code, 0) << cmp.output;

    auto r = open_image(dst);
    ASSERT_TRUE(r.ok()) << r.message();
    EXPECT_EQ((*r)->format(), "vhd");
    EXPECT_EQ((*r)->virtual_size(), vsize);
    EXPECT_TRUE(read_all(**r) == read_file_padded(src, vsize));
  }
}

TEST(VhdWrite, DataPast4GiB) {
  TempDir dir;
  std::string src = dir / "big.raw", dst = dir / "big.vhd";
  uint64_t size = 5 * kGiB + 3 * kMiB + 4096 + 300;
  ASSERT_TRUE(truncate_file(src, size));
  std::vector<uint8_t> data(200000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = uint8_t(i * 7 + 1);
  for (uint64_t off : {uint64_t(0), 4 * kGiB - 100000, 4 * kGiB + kGiB / 2, size - data.size()})
    write_at(src, off, data.data(), data.size());
  ASSERT_TRUE(convert(src, dst).ok());
  uint64_t vsize = 5 * kGiB + 4 * kMiB;
  EXPECT_EQ(vhd_virtual_size(size), vsize);
  EXPECT_EQ(file_size(dst), vsize + 512);
  EXPECT_EQ(qemu_virtual_size(dst, "vpc"), vsize);
  EXPECT_LT(allocated_bytes(dst), 16 * kMiB);
  ASSERT_TRUE(truncate_file(src, vsize));
  test::CommandResult cmp = run("qemu-img compare -f raw -F vpc '" + src + "' '" + dst + "'");
  EXPECT_EQ(cmp.exit_code, 0) << cmp.output;

  auto r = open_image(dst, "vhd");
  ASSERT_TRUE(r.ok()) << r.message();
  std::vector<uint8_t> got(data.size());
  for (uint64_t off : {4 * kGiB - 100000, 4 * kGiB + kGiB / 2, size - data.size()}) {
    ASSERT_TRUE((*r)->read(off, got.data(), got.size()).ok());
    EXPECT_TRUE(got == data) << off;
  }
  // The padding to the MiB reads as zeros.
  ASSERT_GT(vsize - size, got.size());
  ASSERT_TRUE((*r)->read(vsize - got.size(), got.data(), got.size()).ok());
  EXPECT_TRUE(std::all_of(got.begin(), got.end(), [](uint8_t b) { return b == 0; }));
}

TEST(VhdWrite, EmptyInputIsAFooterOnly) {
  TempDir dir;
  std::string src = dir / "empty.raw", dst = dir / "empty.vhd";
  ASSERT_TRUE(truncate_file(src, 0));
  ASSERT_TRUE(convert(src, dst).ok());
  EXPECT_EQ(file_size(dst), 512u);
  auto f = tail_footer(dst);
  EXPECT_EQ(load_be64(f.data() + 48), 0u);
  EXPECT_EQ(load_be32(f.data() + 60), 2u);
  // qemu-img 7.2 cannot open this file (a footer at offset 0 makes it look
  // for a dynamic header), so our own reader is the check here.
  auto r = open_image(dst);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ((*r)->format(), "vhd");
  EXPECT_EQ((*r)->virtual_size(), 0u);
  EXPECT_TRUE((*r)->extents().empty());
}

TEST(VhdWrite, FooterMatchesQemuForceSize) {
  TempDir dir;
  EnvVar epoch("SOURCE_DATE_EPOCH");
  epoch.unset();
  for (uint64_t size : {3 * kMiB, 20 * kMiB, 2 * kGiB}) {
    std::string src = dir / "src.raw", ours = dir / "ours.vhd", theirs = dir / "theirs.vhd";
    std::filesystem::remove(src);
    make_sparse_raw(src, size, uint32_t(size), 6);
    ASSERT_TRUE(convert(src, ours).ok());
    test::CommandResult q = run("qemu-img convert -f raw -O vpc -o subformat=fixed,force_size '" + src + "' '" +
                theirs + "'");
    ASSERT_EQ(q.exit_code, 0) << q.output;
    ASSERT_EQ(file_size(ours), file_size(theirs));
    auto a = tail_footer(ours), b = tail_footer(theirs);
    struct Field {
      const char* name;
      size_t at, len;
    };
    const Field fields[] = {{"cookie", 0, 8},          {"features", 8, 4},
                            {"version", 12, 4},        {"data offset", 16, 8},
                            {"creator app", 28, 4},    {"creator version", 32, 4},
                            {"creator host", 36, 4},   {"original size", 40, 8},
                            {"current size", 48, 8},   {"geometry", 56, 4},
                            {"disk type", 60, 4},      {"saved state+reserved", 84, 428}};
    for (const Field& f : fields) {
      EXPECT_TRUE(std::equal(a.begin() + f.at, a.begin() + f.at + f.len, b.begin() + f.at))
          << f.name << " differs at size " << size;
    }
    EXPECT_EQ(load_be32(a.data() + 24), 0u);  // 2000-01-01 without SOURCE_DATE_EPOCH
    EXPECT_EQ(load_be32(a.data() + 64), checksum_of(a, 64));
    EXPECT_EQ(a[68 + 6] >> 4, 4);        // UUID version 4
    EXPECT_EQ(a[68 + 8] & 0xC0, 0x80);   // RFC 4122 variant
    // The data areas agree too.
    test::CommandResult cmp = run("qemu-img compare -f vpc -F vpc '" + theirs + "' '" + ours + "'");
    EXPECT_EQ(cmp.exit_code, 0) << cmp.output;
  }
}

TEST(VhdWrite, DeterministicAndPinnedMetadata) {
  TempDir dir;
  EnvVar epoch("SOURCE_DATE_EPOCH");
  epoch.unset();
  std::string src = dir / "src.raw";
  make_sparse_raw(src, 5 * kMiB + 1024, 7, 10);
  ASSERT_TRUE(convert(src, dir / "a.vhd", "disk").ok());
  ASSERT_TRUE(convert(src, dir / "b.vhd", "disk").ok());
  ASSERT_TRUE(convert(src, dir / "c.vhd", "other").ok());
  EXPECT_EQ(run("cmp '" + dir / "a.vhd" + "' '" + dir / "b.vhd" + "'").exit_code, 0);
  auto a = tail_footer(dir / "a.vhd"), c = tail_footer(dir / "c.vhd");
  EXPECT_FALSE(std::equal(a.begin() + 68, a.begin() + 84, c.begin() + 68));  // UUID
  EXPECT_TRUE(std::equal(a.begin(), a.begin() + 64, c.begin()));

  epoch.set("1700000000");
  ASSERT_TRUE(convert(src, dir / "d.vhd").ok());
  auto d = tail_footer(dir / "d.vhd");
  EXPECT_EQ(load_be32(d.data() + 24), 1700000000u - 946684800u);
  EXPECT_EQ(load_be32(d.data() + 64), checksum_of(d, 64));
  epoch.set("100");  // before 2000: clamped to the epoch of the field
  ASSERT_TRUE(convert(src, dir / "e.vhd").ok());
  EXPECT_EQ(load_be32(tail_footer(dir / "e.vhd").data() + 24), 0u);

  epoch.set("yesterday");
  WriteOptions opts;
  auto r = convert_file(src, "raw", dir / "f.vhd", "vhd", opts);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "converting " + src +
                             " to vhd: SOURCE_DATE_EPOCH 'yesterday' is not a non-negative "
                             "whole number of seconds");
  EXPECT_FALSE(std::filesystem::exists(dir / "f.vhd"));
}

// --- Reader -----------------------------------------------------------------

TEST(VhdRead, ImagesMadeByQemu) {
  TempDir dir;
  // 9 MiB + 5 sectors, with a 4 MiB all-zero stretch so that a dynamic image
  // has unallocated blocks; CHS rounding makes qemu's size larger.
  uint64_t size = 9 * kMiB + 5 * 512;
  std::string src = dir / "src.raw";
  make_sparse_raw(src, size, 99, 20);
  std::vector<uint8_t> zeros(4 * kMiB, 0);
  write_at(src, 2 * kMiB, zeros.data(), zeros.size());
  std::vector<uint8_t> edge(4096, 0xAB);
  write_at(src, size - edge.size(), edge.data(), edge.size());

  const char* variants[] = {"subformat=dynamic", "subformat=fixed",
                            "subformat=fixed,force_size", "subformat=dynamic,force_size"};
  for (const char* o : variants) {
    SCOPED_TRACE(o);
    std::string img = dir / "q.vhd";
    std::filesystem::remove(img);
    test::CommandResult q = run("qemu-img convert -f raw -O vpc -o " + std::string(o) + " '" + src + "' '" +
                img + "'");
    ASSERT_EQ(q.exit_code, 0) << q.output;
    auto r = open_image(img);  // probed: fixed ones have no footer at 0
    ASSERT_TRUE(r.ok()) << r.message();
    EXPECT_EQ((*r)->format(), "vhd");
    uint64_t vsize = qemu_virtual_size(img, "vpc");
    EXPECT_EQ((*r)->virtual_size(), vsize);
    ASSERT_GE(vsize, size);
    EXPECT_TRUE(read_all(**r) == read_file_padded(src, vsize));

    const auto& ex = (*r)->extents();
    ASSERT_FALSE(ex.empty());
    EXPECT_EQ(ex.front().offset, 0u);
    EXPECT_EQ(ex.back().offset + ex.back().length, vsize);
    if (std::string(o).find("dynamic") != std::string::npos) {
      // Blocks 1..2 (2-6 MiB) hold only zeros: qemu leaves them unallocated.
      bool found = false;
      for (const Extent& e : ex)
        if (!e.data && e.offset <= 2 * kMiB && e.offset + e.length >= 6 * kMiB) found = true;
      EXPECT_TRUE(found);
    }

    // Through our writer and back: same guest bytes as qemu sees in theirs.
    std::string ours = dir / "ours.vhd";
    WriteOptions opts;
    ASSERT_TRUE(convert_file(img, "", ours, "vhd", opts).ok());
    test::CommandResult cmp = run("qemu-img compare -f vpc -F vpc '" + img + "' '" + ours + "'");
    EXPECT_EQ(cmp.exit_code, 0) << cmp.output;
  }
}

TEST(VhdRead, SizeRuleFollowsQemu72) {
  TempDir dir;
  std::string img = dir / "c.vhd";
  const uint64_t current = 8 * kMiB;
  ASSERT_TRUE(truncate_file(img, current));
  std::vector<uint8_t> footer(512, 0);
  write_at(img, current, footer.data(), footer.size());
  struct Case {
    const char* creator;
    uint16_t c;
    uint8_t h, s;
  };
  // 100x4x17 sectors = 3481600 bytes, less than current_size.
  const Case cases[] = {{"vpc ", 100, 4, 17},   {"qemu", 100, 4, 17},  {"qem2", 100, 4, 17},
                        {"win ", 100, 4, 17},   {"d2v ", 100, 4, 17},  {"CTXS", 100, 4, 17},
                        {"tap\0", 100, 4, 17},  {"wa\0\0", 100, 4, 17}, {"vs  ", 100, 4, 17},
                        {"vpc ", 65535, 16, 255}};
  for (const Case& k : cases) {
    edit_footer(img, current, [&](uint8_t* f) {
      std::memset(f, 0, 512);
      std::memcpy(f, "conectix", 8);
      store_be32(f + 8, 2);
      store_be32(f + 12, 0x10000);
      store_be64(f + 16, ~uint64_t{0});
      std::memcpy(f + 28, k.creator, 4);
      store_be64(f + 40, current);
      store_be64(f + 48, current);
      store_be16(f + 56, k.c);
      f[58] = k.h;
      f[59] = k.s;
      store_be32(f + 60, 2);
    });
    auto r = open_image(img, "vhd");
    ASSERT_TRUE(r.ok()) << r.message();
    EXPECT_EQ((*r)->virtual_size(), qemu_virtual_size(img, "vpc"))
        << "creator '" << std::string(k.creator, 4) << "'";
  }
}

TEST(VhdRead, Probe) {
  std::array<uint8_t, 512> footer{};
  std::memcpy(footer.data(), "conectix", 8);
  std::array<uint8_t, 512> other{};
  EXPECT_TRUE(probe_vhd({footer, other, 4096}));  // dynamic: copy at 0
  EXPECT_TRUE(probe_vhd({other, footer, 4096}));  // fixed: footer at the end
  EXPECT_FALSE(probe_vhd({other, other, 4096}));
  EXPECT_FALSE(probe_vhd({{}, {}, 0}));
}

class VhdReadErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string src = dir_ / "src.raw";
    make_sparse_raw(src, 6 * kMiB, 5, 8);
    std::vector<uint8_t> data(4096, 0x5A);
    write_at(src, 0, data.data(), data.size());  // block 0 allocated
    fixed_ = dir_ / "fixed.vhd";
    dynamic_ = dir_ / "dynamic.vhd";
    test::CommandResult a = run("qemu-img convert -f raw -O vpc -o subformat=fixed,force_size '" + src + "' '" +
                fixed_ + "'");
    test::CommandResult b = run("qemu-img convert -f raw -O vpc -o subformat=dynamic '" + src + "' '" +
                dynamic_ + "'");
    ASSERT_EQ(a.exit_code, 0) << a.output;
    ASSERT_EQ(b.exit_code, 0) << b.output;
    ASSERT_TRUE(open_image(fixed_).ok());
    ASSERT_TRUE(open_image(dynamic_).ok());
  }
  std::string open_error(const std::string& path, const std::string& fmt = "vhd") {
    auto r = open_image(path, fmt);
    return r.ok() ? "(opened)" : r.message();
  }
  // Both footers of the dynamic image.
  template <class F>
  void edit_dynamic_footers(F edit) {
    edit_footer(dynamic_, 0, edit);
    edit_footer(dynamic_, file_size(dynamic_) - 512, edit);
  }
  TempDir dir_;
  std::string fixed_, dynamic_;
};

TEST_F(VhdReadErrors, NotAVhd) {
  std::string p = dir_ / "zeros.img";
  ASSERT_TRUE(truncate_file(p, 4096));
  EXPECT_EQ(open_error(p), p + ": not a VHD file (no \"conectix\" footer)");
  std::string tiny = dir_ / "tiny.img";
  ASSERT_TRUE(truncate_file(tiny, 100));
  EXPECT_EQ(open_error(tiny), tiny + ": not a VHD file (no \"conectix\" footer)");
}

TEST_F(VhdReadErrors, FooterChecksum) {
  edit_footer(fixed_, file_size(fixed_) - 512, [](uint8_t* f) { f[24] ^= 1; }, false);
  EXPECT_EQ(open_error(fixed_), fixed_ + ": VHD footer checksum mismatch");
  EXPECT_EQ(open_error(fixed_, ""), fixed_ + ": VHD footer checksum mismatch");  // probed
  edit_footer(dynamic_, 0, [](uint8_t* f) { f[100] = 1; }, false);
  EXPECT_EQ(open_error(dynamic_), dynamic_ + ": VHD footer checksum mismatch");
}

TEST_F(VhdReadErrors, CurrentSizeNotSectorMultiple) {
  edit_footer(fixed_, file_size(fixed_) - 512, [](uint8_t* f) { store_be64(f + 48, 6 * kMiB - 1); });
  EXPECT_EQ(open_error(fixed_), fixed_ + ": VHD current size 6291455 is not a multiple of 512");
}

TEST_F(VhdReadErrors, FixedSizePastDataArea) {
  edit_footer(fixed_, file_size(fixed_) - 512, [](uint8_t* f) { store_be64(f + 48, 7 * kMiB); });
  EXPECT_EQ(open_error(fixed_),
            fixed_ + ": VHD virtual size 7340032 exceeds the data area of 6291456 bytes");
}

TEST_F(VhdReadErrors, UnsupportedDiskType) {
  edit_footer(fixed_, file_size(fixed_) - 512, [](uint8_t* f) { store_be32(f + 60, 5); });
  EXPECT_EQ(open_error(fixed_), fixed_ + ": unsupported VHD disk type 5");
}

TEST_F(VhdReadErrors, Differencing) {
  edit_dynamic_footers([](uint8_t* f) { store_be32(f + 60, 4); });
  edit_dyn_header(dynamic_, [](uint8_t* h) {
    const char* name = "base.vhd";
    for (size_t i = 0; name[i]; ++i) store_be16(h + 64 + 2 * i, uint16_t(name[i]));
  });
  EXPECT_EQ(open_error(dynamic_),
            dynamic_ + ": differencing VHD images are not supported (parent: base.vhd)");
  EXPECT_EQ(open_error(dynamic_, ""),
            dynamic_ + ": differencing VHD images are not supported (parent: base.vhd)");
}

// Found by fuzzing (the qcow2 twin): a name read from the file must not
// break the one-line message with newlines or terminal escapes.
TEST_F(VhdReadErrors, DifferencingParentWithControlCharacters) {
  edit_dynamic_footers([](uint8_t* f) { store_be32(f + 60, 4); });
  edit_dyn_header(dynamic_, [](uint8_t* h) {
    const char name[] = "a\nb\x1b[2Jc";
    for (size_t i = 0; name[i]; ++i) store_be16(h + 64 + 2 * i, uint16_t(name[i]));
  });
  EXPECT_EQ(open_error(dynamic_),
            dynamic_ + ": differencing VHD images are not supported (parent: a?b?[2Jc)");
}

TEST_F(VhdReadErrors, DynamicHeaderChecksum) {
  edit_dyn_header(dynamic_, [](uint8_t* h) { h[900] = 7; }, false);
  EXPECT_EQ(open_error(dynamic_), dynamic_ + ": VHD dynamic header checksum mismatch");
}

TEST_F(VhdReadErrors, DynamicHeaderCookie) {
  edit_dyn_header(dynamic_, [](uint8_t* h) { std::memcpy(h, "cxspars!", 8); });
  EXPECT_EQ(open_error(dynamic_),
            dynamic_ + ": VHD dynamic header has a bad cookie (expected \"cxsparse\")");
}

TEST_F(VhdReadErrors, DynamicHeaderPastEof) {
  uint64_t size = file_size(dynamic_);
  edit_dynamic_footers([&](uint8_t* f) { store_be64(f + 16, size - 512); });
  EXPECT_EQ(open_error(dynamic_), dynamic_ + ": VHD dynamic header at offset " +
                                      std::to_string(size - 512) +
                                      " lies past the end of the file");
}

TEST_F(VhdReadErrors, BlockSizeNotPowerOfTwo) {
  edit_dyn_header(dynamic_, [](uint8_t* h) { store_be32(h + 32, 3 * kMiB); });
  EXPECT_EQ(open_error(dynamic_),
            dynamic_ + ": VHD block size 3145728 is not a power of two of at least 512 bytes");
}

TEST_F(VhdReadErrors, TableTooSmall) {
  edit_dyn_header(dynamic_, [](uint8_t* h) { store_be32(h + 28, 1); });
  uint64_t vsize = qemu_virtual_size(fixed_, "vpc");  // force_size: exactly 6 MiB
  ASSERT_EQ(vsize, 6 * kMiB);
  auto r = open_image(dynamic_, "vhd");
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.message().starts_with(dynamic_ + ": VHD block allocation table (1 entries of "
                                                 "2097152 bytes) is too small for virtual size "))
      << r.message();
}

TEST_F(VhdReadErrors, TablePastEof) {
  uint64_t size = file_size(dynamic_);
  uint32_t entries = 0;
  edit_dyn_header(dynamic_, [&](uint8_t* h) {
    store_be64(h + 16, size - 8);
    entries = load_be32(h + 28);
  });
  EXPECT_EQ(open_error(dynamic_), dynamic_ + ": VHD block allocation table at offset " +
                                      std::to_string(size - 8) + " (" + std::to_string(entries) +
                                      " entries) lies past the end of the file");
}

TEST_F(VhdReadErrors, BlockPastEof) {
  uint64_t size = file_size(dynamic_);
  uint8_t entry[4];
  store_be32(entry, uint32_t(size / 512 - 2));  // bitmap fits, data does not
  write_at(dynamic_, 1536, entry, 4);
  EXPECT_EQ(open_error(dynamic_), dynamic_ + ": VHD block 0 at offset " +
                                      std::to_string((size / 512 - 2) * 512) +
                                      " lies past the end of the file");
}

// Found by fuzzing: the BAT is held in memory, so a header claiming 2^25
// entries (a 128 MiB table, free in a sparse file) is refused by size.
TEST_F(VhdReadErrors, TableTooBigToHold) {
  edit_dynamic_footers([](uint8_t* f) {
    store_be64(f + 48, (uint64_t{1} << 25) * 2 * kMiB);  // 64 TiB
    store_be16(f + 56, 65535);  // CHS sentinel: current size is authoritative
    f[58] = 16;
    f[59] = 255;
  });
  edit_dyn_header(dynamic_, [](uint8_t* h) { store_be32(h + 28, uint32_t{1} << 25); });
  EXPECT_EQ(open_error(dynamic_), dynamic_ + ": VHD block allocation table of 33554432 entries "
                                             "is too big (at most 16777216)");
}

TEST_F(VhdReadErrors, TruncatedDynamic) {
  // The trailing footer is gone; the copy at 0 still opens the file, and the
  // last block is found to be cut short.
  uint64_t size = file_size(dynamic_);
  ASSERT_TRUE(truncate_file(dynamic_, size - 512 - 4096));
  auto r = open_image(dynamic_);
  ASSERT_FALSE(r.ok());
  EXPECT_TRUE(r.message().starts_with(dynamic_ + ": VHD block ")) << r.message();
  EXPECT_TRUE(r.message().ends_with(" lies past the end of the file")) << r.message();
}

}  // namespace ch

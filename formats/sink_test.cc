// Sinks: FileSink must leave exactly the bytes a MemorySink collects for the
// same calls, whichever path (buffered, direct, hole, patch) each call takes.
#include "formats/sink.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "base/file.h"
#include "tests/test_util.h"

namespace ch {
namespace {

std::vector<uint8_t> pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  std::mt19937 rng(seed);
  for (auto& b : v) b = static_cast<uint8_t>(rng() | 1);  // never zero
  return v;
}

// The same calls on any sink.
Status drive(Sink& s) {
  auto small = pattern(1000, 1), large = pattern(5 << 20, 2), mid = pattern(300 << 10, 3);
  CH_TRY(s.write(small.data(), small.size()));  // buffered
  CH_TRY(s.write_zeros(100));                   // bytes inside data
  CH_TRY(s.write(mid.data(), mid.size()));      // direct, after a flush
  CH_TRY(s.write_zeros(1 << 20));               // a hole
  CH_TRY(s.write(small.data(), small.size()));
  CH_TRY(s.write(large.data(), large.size()));
  CH_TRY(s.write(small.data(), 10));            // still buffered when patched
  if (s.can_patch()) {
    auto p = pattern(64, 4);
    CH_TRY(s.patch(0, p.data(), p.size()));                       // written long ago
    CH_TRY(s.patch(500 << 10, p.data(), p.size()));               // inside the hole
    CH_TRY(s.patch(s.position() - 5, p.data(), 5));               // in the buffer
  }
  CH_TRY(s.write_zeros(70000));  // trailing hole
  return s.finish();
}

std::vector<uint8_t> read_all(const std::string& path) {
  auto f = File::open_read(path);
  CH_CHECK(f.ok());
  std::vector<uint8_t> v(static_cast<size_t>(*f->size()));
  CH_CHECK(f->pread_full(0, v.data(), v.size()).ok());
  return v;
}

TEST(FileSink, SameBytesAsMemorySink) {
  test::TempDir dir;
  MemorySink mem;
  ASSERT_TRUE(drive(mem).ok());
  auto file = FileSink::create(dir / "out");
  ASSERT_TRUE(file.ok()) << file.message();
  ASSERT_TRUE(drive(**file).ok());
  EXPECT_EQ((*file)->position(), mem.position());
  ASSERT_TRUE((*file)->commit(false).ok());
  std::vector<uint8_t> got = read_all(dir / "out");
  ASSERT_EQ(got.size(), mem.bytes().size());
  EXPECT_TRUE(got == mem.bytes());
}

TEST(FileSink, UncommittedLeavesNothing) {
  test::TempDir dir;
  {
    auto file = FileSink::create(dir / "out");
    ASSERT_TRUE(file.ok());
    ASSERT_TRUE(drive(**file).ok());
  }
  EXPECT_EQ(test::run_command("ls -A " + test::shell_quote(dir.path())).output, "");
}

class NoPatchSink : public Sink {
 public:
  Status write(const uint8_t*, size_t len) override { pos_ += len; return {}; }
  Status write_zeros(uint64_t len) override { pos_ += len; return {}; }
  Status finish() override { return {}; }
};

TEST(SinkDeathTest, PatchOnAStreamAborts) {
  NoPatchSink s;
  EXPECT_FALSE(s.can_patch());
  uint8_t b = 1;
  ASSERT_TRUE(s.write(&b, 1).ok());
  EXPECT_DEATH(s.patch(0, &b, 1).ok(), "patch\\(\\) on a sink that cannot go back");
}

TEST(SinkDeathTest, PatchPastPositionAborts) {
  MemorySink s;
  uint8_t b[2] = {1, 2};
  ASSERT_TRUE(s.write(b, 1).ok());
  EXPECT_DEATH(s.patch(0, b, 2).ok(), "internal error");
}

}  // namespace
}  // namespace ch

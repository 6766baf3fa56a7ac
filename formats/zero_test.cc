#include "formats/zero.h"

#include <gtest/gtest.h>

#include <vector>

namespace ch {

TEST(Zero, DetectsAnyNonZeroByte) {
  std::vector<uint8_t> buf(70000, 0);
  for (size_t off = 0; off < 200; ++off) {
    EXPECT_TRUE(is_zero(buf.data() + off, buf.size() - off));
  }
  for (size_t pos : {0u, 1u, 7u, 63u, 64u, 65535u, 69999u}) {
    buf[pos] = 1;
    EXPECT_FALSE(is_zero(buf.data(), buf.size())) << pos;
    buf[pos] = 0;
  }
  EXPECT_TRUE(is_zero(buf.data(), 0));
}

}  // namespace ch

#include "formats/zero.h"

#include <cstring>

namespace ch {

bool is_zero(const uint8_t* p, size_t n) {
  // Unaligned head byte-wise, then 64-byte blocks OR-reduced (the compiler
  // vectorises the inner loop), early exit per block.
  while (n > 0 && (reinterpret_cast<uintptr_t>(p) & 7) != 0) {
    if (*p) return false;
    ++p;
    --n;
  }
  while (n >= 64) {
    uint64_t w[8];
    std::memcpy(w, p, 64);
    uint64_t acc = w[0] | w[1] | w[2] | w[3] | w[4] | w[5] | w[6] | w[7];
    if (acc) return false;
    p += 64;
    n -= 64;
  }
  while (n > 0) {
    if (*p) return false;
    ++p;
    --n;
  }
  return true;
}

}  // namespace ch

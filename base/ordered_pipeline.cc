#include "base/ordered_pipeline.h"

#include <cstdlib>
#include <string>

namespace ch {

// CLOUD_HELPER_THREADS overrides the core count (benchmarks, tests).
unsigned default_threads() {
  if (const char* env = std::getenv("CLOUD_HELPER_THREADS")) {
    int v = std::atoi(env);
    if (v > 0) return static_cast<unsigned>(v);
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw ? hw : 1;
}

}  // namespace ch

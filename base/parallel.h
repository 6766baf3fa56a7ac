// A small worker pool for the per-region (or per-definition) work of a step.
#pragma once

#include <cstddef>
#include <functional>

namespace ch {

// Runs FN(0..N-1) on up to MAX_WORKERS threads and waits for all of them.
// FN must not throw; it records its own outcome (by index).
void run_parallel(size_t n, size_t max_workers, const std::function<void(size_t)>& fn);

}  // namespace ch

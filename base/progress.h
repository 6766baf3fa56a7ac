// Progress of one long operation: workers add bytes, the CLI (helper/) polls
// and renders. Nothing here prints.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

namespace ch {

class Progress {
 public:
  Progress() = default;
  void start(std::string label, uint64_t total) {
    label_ = std::move(label);
    total_.store(total);
    done_.store(0);
  }
  void advance(uint64_t bytes) { done_.fetch_add(bytes, std::memory_order_relaxed); }
  uint64_t done() const { return done_.load(std::memory_order_relaxed); }
  uint64_t total() const { return total_.load(); }
  const std::string& label() const { return label_; }

 private:
  std::string label_;
  std::atomic<uint64_t> total_{0};
  std::atomic<uint64_t> done_{0};
};

// Null-safe helper for optional progress pointers.
inline void advance(Progress* p, uint64_t bytes) {
  if (p) p->advance(bytes);
}

}  // namespace ch

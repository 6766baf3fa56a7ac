#include "clouds/poll.h"

#include <algorithm>
#include <cstdlib>
#include <thread>

namespace ch {

namespace {

double poll_scale() {
  const char* v = std::getenv("CLOUD_HELPER_POLL_SCALE");
  if (v == nullptr || *v == '\0') return 1.0;
  char* end = nullptr;
  double scale = std::strtod(v, &end);
  if (end == v || *end != '\0' || !(scale > 0)) return 1.0;
  return scale;
}

std::chrono::milliseconds scale_ms(std::chrono::milliseconds ms, double scale) {
  return std::chrono::milliseconds(static_cast<int64_t>(static_cast<double>(ms.count()) * scale));
}

}  // namespace

std::chrono::milliseconds poll_scaled(std::chrono::milliseconds d) { return scale_ms(d, poll_scale()); }

PollOptions PollOptions::scaled() const {
  const double scale = poll_scale();
  PollOptions out = *this;
  out.initial = scale_ms(initial, scale);
  out.max = scale_ms(max, scale);
  return out;
}

Status poll_until(const std::string& what, const PollOptions& options,
                  const std::function<Result<bool>(std::string* state)>& step) {
  const PollOptions o = options.scaled();
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + o.timeout;
  std::chrono::milliseconds delay = o.initial;
  for (;;) {
    std::string state;
    Result<bool> done = step(&state);
    if (!done.ok()) return done.error();
    if (*done) return {};
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) {
      const auto waited = std::chrono::duration_cast<std::chrono::seconds>(now - start).count();
      std::string message = "timed out after " + std::to_string(waited) + " s waiting for " + what;
      if (!state.empty()) message += " (last state: " + state + ")";
      return Error{message};
    }
    // Never sleep past the deadline: the last answer is taken at it.
    auto sleep = std::min<std::chrono::steady_clock::duration>(delay, deadline - now);
    std::this_thread::sleep_for(sleep);
    delay = std::min(o.max, std::chrono::milliseconds(static_cast<int64_t>(
                                static_cast<double>(delay.count()) * std::max(1.0, o.factor))));
    if (delay.count() <= 0) delay = std::chrono::milliseconds(1);
  }
}

}  // namespace ch

// Waiting for slow cloud work (snapshots completing, AMIs becoming
// available, import tasks) by asking again with a growing interval. Every
// waiter of aws, gcp, alicloud and oci goes through poll_until, so intervals, the timeout
// message and the test speed-up live in one place.
//
// CLOUD_HELPER_POLL_SCALE (a factor, "0.001") multiplies every interval, so
// tests against emulators wait milliseconds instead of seconds; timeouts are
// not scaled (tests that want a short one pass it).
#pragma once

#include <chrono>
#include <functional>
#include <string>

#include "base/result.h"

namespace ch {

struct PollOptions {
  std::chrono::milliseconds initial{5000};  // first wait after a pending answer
  std::chrono::milliseconds max{30000};     // the interval grows to this...
  double factor = 1.5;                      // ...by this factor per answer
  std::chrono::seconds timeout{3600};       // give up after this long in total
  // The options above with their intervals multiplied by
  // CLOUD_HELPER_POLL_SCALE (unset, unparsable or <= 0: 1).
  PollOptions scaled() const;
};

// D multiplied by CLOUD_HELPER_POLL_SCALE: for other waits that must shrink
// in tests with the intervals (grace periods, per-request retry windows).
std::chrono::milliseconds poll_scaled(std::chrono::milliseconds d);

// Calls STEP until it returns true (done), an Error (failed: returned as is),
// or the timeout passes. STEP sets *state to a short description of what it
// saw ("pending", "pending 45%") which the timeout error quotes:
// "timed out after 1800 s waiting for AMI ami-1 in us-east-1 to become
// available (last state: pending)". WHAT names the wait. Intervals are
// options.scaled().
Status poll_until(const std::string& what, const PollOptions& options,
                  const std::function<Result<bool>(std::string* state)>& step);

}  // namespace ch

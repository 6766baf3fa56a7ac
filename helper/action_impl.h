// Entry points of each action, for the table in helper/actions.cc. Split by
// what they work on: image_actions.cc (convert, checksum: local files),
// hook_actions.cc (sign, release: user commands), actions.cc (state, the
// cloud steps, rollback).
#pragma once

#include <string>
#include <vector>

#include "helper/actions.h"

namespace ch {

#define CH_DECLARE_ACTION(name)                                                        \
  void validate_##name(const ImageMetadata& meta, const RunOptions& opts,              \
                       std::vector<std::string>& problems);                            \
  ActionResult run_##name(ImageMetadata& meta, const RunOptions& opts)

CH_DECLARE_ACTION(convert);
CH_DECLARE_ACTION(checksum);
CH_DECLARE_ACTION(sign);
CH_DECLARE_ACTION(release);

#undef CH_DECLARE_ACTION

// "PATH: ACTION: CAUSE"
inline std::string problem(const ImageMetadata& meta, std::string_view action,
                           const std::string& cause) {
  return meta.path() + ": " + std::string(action) + ": " + cause;
}

// ActionResult for a failure.
inline ActionResult failed(std::string error, bool bad_input = false) {
  ActionResult r;
  r.outcome = Outcome::kFailed;
  r.bad_input = bad_input;
  r.error = std::move(error);
  return r;
}

inline ActionResult skipped(std::string notice) {
  ActionResult r;
  r.outcome = Outcome::kSkipped;
  r.notice = std::move(notice);
  return r;
}

// The image's format: image_format, else the cloud's default; empty when
// neither is known.
std::string effective_image_format(const ImageMetadata& meta);

}  // namespace ch

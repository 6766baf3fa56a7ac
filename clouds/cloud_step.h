// What a cloud's step (upload, import, publish, rollback) receives and
// returns. Steps live in clouds/<name>/ and are registered in
// helper/cloud_table.cc; helper/ turns their result into output and an exit
// code.
//
// Persistence: the CLI holds the YAML's lock for the whole step and saves
// META after it returns, but a step must not wait until then to record a
// remote side effect: a SIGKILL would lose it and the re-run would leak or
// duplicate it. So a step records every id it creates (upload id, snapshot,
// AMI, copy) in META and calls checkpoint() BEFORE going on; the re-run finds
// it there and resumes or cleans up.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/file.h"
#include "base/progress.h"
#include "base/result.h"
#include "clouds/operations.h"
#include "metadata/image_metadata.h"

namespace ch {

struct CloudStepOptions {
  bool dry_run = false;  // print the requests it would make, change nothing
  bool force = false;
  // Check the YAML and local files only, and return: a bad_input failure
  // for the first problem, success otherwise. No request, no change to META.
  // The CLI runs this before taking the lock, for every file given.
  bool validate_only = false;
  Progress* progress = nullptr;
  // Saves META now (atomically, under the lock the CLI holds). A no-op on a
  // dry run. Thread-safe only if the caller serialises its META updates.
  std::function<Status()> checkpoint = [] { return Status(); };
};

struct CloudStepResult {
  Status status;                   // the step's failure, if it failed as a whole
  bool bad_input = false;          // ...because of the YAML or local files (exit 2), before any request
  bool skipped = false;            // already done: nothing was sent
  bool partial = false;            // some targets failed, others succeeded (exit 3)
  std::string notice;              // one line for stderr (the skip notice, a warning)
  std::vector<std::string> lines;  // stdout lines in text mode (per-region summary)
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();  // merged into --output json

  static CloudStepResult failure(Error e) {
    CloudStepResult r;
    r.status = std::move(e);
    return r;
  }
  static CloudStepResult invalid(Error e) {
    CloudStepResult r = failure(std::move(e));
    r.bad_input = true;
    return r;
  }
  // An action this cloud has no use for (import for nocloud, upload for a
  // cloud that takes the image in its import): exit 0 with NOTICE
  // ("PATH: import: does not apply to cloud nocloud (storage only)"), so an
  // orchestrator can call every action for every cloud.
  static CloudStepResult not_applicable(std::string notice) {
    CloudStepResult r;
    r.skipped = true;
    r.notice = std::move(notice);
    return r;
  }
};

using CloudStep = CloudStepResult (*)(ImageMetadata& meta, const CloudStepOptions& opts);

// The image file a step sends: `image_file` resolved against the YAML's
// directory, and its size. A missing key or file is an Error (bad input).
struct ImageFile {
  std::string path;
  uint64_t size = 0;
};
inline Result<ImageFile> image_file_of(const ImageMetadata& meta) {
  auto image_file = meta.get_string("image_file");
  if (!image_file) return Error{"no image_file (run convert first)"};
  ImageFile f{meta.resolve(*image_file)};
  if (!regular_file(f.path, &f.size)) return Error{"image_file " + f.path + " is missing or not a regular file"};
  return f;
}

// upload's answer once `uploaded` is recorded and --force is not given: a
// skip whose notice names where it went (`upload_url`, else PLACE).
// nullopt: the upload is to be done.
inline std::optional<CloudStepResult> upload_already_done(const ImageMetadata& meta, const CloudStepOptions& opts,
                                                          const std::string& place) {
  if (!meta.get_string("uploaded") || opts.force) return std::nullopt;
  CloudStepResult r;
  r.skipped = true;
  r.notice = meta.path() + ": upload: already uploaded to " + meta.get_string("upload_url").value_or(place) + " at " +
             *meta.get_string("uploaded") + " (--force redoes it)";
  return r;
}

// The end of a rollback once the uploaded object is deleted (or never was):
// forgets operations.upload, `uploaded` and `upload_url`, saves, and returns
// R, which says "nothing to roll back" when it has no line.
inline CloudStepResult rollback_forget_upload(ImageMetadata& meta, const CloudStepOptions& opts, CloudStepResult r) {
  op_remove_section(meta, "upload");
  meta.remove("uploaded");
  meta.remove("upload_url");
  if (Status saved = opts.checkpoint(); !saved.ok()) return CloudStepResult::failure(saved.error());
  if (r.lines.empty()) r.lines.push_back("nothing to roll back");
  return r;
}

}  // namespace ch

// Declares VAR from a Result expression, or returns its error as the step's
// failure.
#define CH_STEP_ASSIGN(var, expr)                                        \
  auto var##_step_result_ = (expr);                                      \
  if (!var##_step_result_.ok())                                          \
    return ::ch::CloudStepResult::failure(var##_step_result_.error());   \
  auto var = std::move(var##_step_result_).value()

// Returns a failed Status expression as the step's failure.
#define CH_STEP_TRY(expr)                                                    \
  do {                                                                       \
    auto&& ch_step_try_r_ = (expr);                                          \
    if (!ch_step_try_r_.ok()) return ::ch::CloudStepResult::failure(ch_step_try_r_.error()); \
  } while (0)

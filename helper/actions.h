// The per-image actions of contract.md, as a table: each validates an
// ImageMetadata (reporting every problem, touching nothing) and then runs on
// it, recording its state in the metadata. helper/cli.cc does the loading,
// locking, saving, printing and exit codes around them.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "helper/progress_view.h"
#include "metadata/image_metadata.h"

namespace ch {

struct RunOptions {
  bool dry_run = false;
  bool force = false;
  bool json = false;
  ProgressMode progress = ProgressMode::kOff;
};

enum class Outcome { kDone, kSkipped, kFailed, kPartial };
std::string_view outcome_name(Outcome o);  // "done" | "skipped" | "failed" | "partial"

struct ActionResult {
  Outcome outcome = Outcome::kDone;
  bool bad_input = false;         // a failure that is the input's fault (exit 2)
  std::string error;              // "PATH: ACTION: cause" (no "cloud_helper: ")
  std::string notice;             // one line for stderr, e.g. the skip notice
  std::vector<std::string> text;  // lines for stdout in text mode
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();  // merged into the JSON object
};

struct Action {
  std::string_view name;
  std::string_view summary;  // one line for --help
  bool writes;               // locks and saves the YAML (state does not)
  // Appends every problem that stops this action on META, each one line
  // "PATH: ..." without the "cloud_helper: " prefix. Reads files, never
  // writes them.
  void (*validate)(const ImageMetadata& meta, const RunOptions& opts,
                   std::vector<std::string>& problems);
  ActionResult (*run)(ImageMetadata& meta, const RunOptions& opts);
};

const std::vector<Action>& action_table();
const Action* find_action(std::string_view name);
// "convert, checksum, upload, import, publish, release, sign, state, rollback"
std::string action_names();

// Checks every action shares: a known cloud and image_format when given.
void validate_common(const ImageMetadata& meta, std::string_view action,
                     std::vector<std::string>& problems);

// The top-level keys whose values differ between BEFORE and AFTER, as JSON
// (null for a removed key). Scalars written plain that read as integers or
// booleans become JSON numbers and booleans.
nlohmann::ordered_json metadata_changes(const ImageMetadata& before, const ImageMetadata& after);
nlohmann::ordered_json meta_to_json(const MetaValue& v);

// 'it'\''s' — one word for /bin/sh, whatever S holds.
std::string shell_quote(std::string_view s);

}  // namespace ch

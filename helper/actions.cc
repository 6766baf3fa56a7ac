// The action table, the checks every action shares, and the actions that
// belong to clouds (upload, import, publish, rollback) or only read (state).
// Cloud actions dispatch through helper/cloud_table.h: a cloud whose step is
// not built yet is an input error naming the cloud, never a silent success.
#include "helper/actions.h"

#include <algorithm>
#include <cctype>

#include "formats/formats.h"
#include "helper/action_impl.h"
#include "helper/cloud_table.h"

namespace ch {

namespace {

// ---- cloud steps -------------------------------------------------------------

CloudStep CloudCapabilities::*step_of(std::string_view action) {
  if (action == "upload") return &CloudCapabilities::upload;
  if (action == "import") return &CloudCapabilities::import;
  if (action == "publish") return &CloudCapabilities::publish;
  return &CloudCapabilities::rollback;
}

// Problems with META's cloud for ACTION; the capabilities when usable.
const CloudCapabilities* check_cloud_step(const ImageMetadata& meta, std::string_view action,
                                          std::vector<std::string>& problems) {
  Status s = require_keys(meta, {"cloud"}, action);
  if (!s.ok()) {
    problems.push_back(s.message());
    return nullptr;
  }
  const CloudCapabilities* cloud = find_cloud(*meta.get_string("cloud"));
  if (!cloud) return nullptr;  // validate_common reported it
  if (!(cloud->*step_of(action))) {
    problems.push_back(
        problem(meta, action, "not supported for cloud '" + std::string(cloud->name) + "' yet"));
    return nullptr;
  }
  // The cloud's own checks of the YAML and local files, before any lock or request.
  ImageMetadata copy = meta;
  CloudStepOptions check;
  check.validate_only = true;
  CloudStepResult r = (cloud->*step_of(action))(copy, check);
  if (!r.status.ok()) {
    problems.push_back(problem(meta, action, r.status.message()));
    return nullptr;
  }
  return cloud;
}

ActionResult run_cloud_step(ImageMetadata& meta, const RunOptions& opts, std::string_view action) {
  std::vector<std::string> problems;
  const CloudCapabilities* cloud = check_cloud_step(meta, action, problems);
  if (!cloud) return failed(problems.empty() ? problem(meta, action, "no cloud") : problems[0], true);
  Progress progress;
  CloudStepOptions step_opts;
  step_opts.dry_run = opts.dry_run;
  step_opts.force = opts.force;
  step_opts.progress = &progress;
  if (!opts.dry_run) step_opts.checkpoint = [&meta] { return meta.save(); };
  CloudStepResult r;
  {
    ProgressView view(progress, opts.progress, std::string(action) + " " + meta.path());
    r = (cloud->*step_of(action))(meta, step_opts);
  }
  ActionResult out;
  if (!r.status.ok()) {
    out = failed(problem(meta, action, r.status.message()), r.bad_input);
  } else if (r.skipped) {
    out = skipped(r.notice.empty() ? problem(meta, action, "already done") : r.notice);
  } else if (r.partial) {
    out.outcome = Outcome::kPartial;
    out.error = problem(meta, action, r.notice.empty() ? "some targets failed" : r.notice);
  } else {
    out.notice = r.notice;
  }
  if (opts.dry_run && r.status.ok()) {
    // As convert's dry run: "PATH: ACTION: would ..." lines, nothing done.
    out.outcome = Outcome::kSkipped;
    out.extra["dry_run"] = true;
    for (std::string& line : r.lines) line = problem(meta, action, line);
  }
  out.text = std::move(r.lines);
  for (const auto& [k, v] : r.extra.items()) out.extra[k] = v;
  return out;
}

#define CH_CLOUD_ACTION(name)                                                                \
  void validate_##name(const ImageMetadata& meta, const RunOptions&,                         \
                       std::vector<std::string>& problems) {                                 \
    check_cloud_step(meta, #name, problems);                                                 \
  }                                                                                          \
  ActionResult run_##name(ImageMetadata& meta, const RunOptions& opts) {                     \
    return run_cloud_step(meta, opts, #name);                                                \
  }

CH_CLOUD_ACTION(upload)
CH_CLOUD_ACTION(import)
CH_CLOUD_ACTION(publish)
#undef CH_CLOUD_ACTION

// ---- rollback ----------------------------------------------------------------

// Keys that show cloud side effects a rollback would undo.
constexpr std::string_view kRollbackKeys[] = {"uploaded", "upload_url", "imported", "import_id",
                                              "operations"};

bool has_value(const ImageMetadata& meta, std::string_view key) {
  return require_keys(meta, {key}, "").ok();
}

void validate_rollback(const ImageMetadata& meta, const RunOptions&,
                       std::vector<std::string>& problems) {
  // Once an image is public, others may already use it: undoing it is a
  // deliberate deprecation, not a rollback.
  for (std::string_view key : {"released", "published"}) {
    if (has_value(meta, key)) {
      std::string when = meta.get_string(key).value_or("");
      problems.push_back(problem(meta, "rollback",
                                 "refused: the image was " + std::string(key) + " (" + when +
                                     "); rollback only undoes unpublished upload/import"));
      return;
    }
  }
  bool anything = std::any_of(std::begin(kRollbackKeys), std::end(kRollbackKeys),
                              [&](std::string_view k) { return has_value(meta, k); });
  if (anything) check_cloud_step(meta, "rollback", problems);
}

ActionResult run_rollback(ImageMetadata& meta, const RunOptions& opts) {
  bool anything = std::any_of(std::begin(kRollbackKeys), std::end(kRollbackKeys),
                              [&](std::string_view k) { return has_value(meta, k); });
  if (!anything) return skipped(meta.path() + ": rollback: nothing to roll back");
  return run_cloud_step(meta, opts, "rollback");
}

// ---- state -------------------------------------------------------------------

constexpr std::string_view kSteps[] = {"built",    "checksums", "signed",  "uploaded",
                                       "imported", "published", "released"};

void validate_state(const ImageMetadata&, const RunOptions&, std::vector<std::string>&) {}

std::string scalar_or_summary(const MetaValue& v) {
  if (v.is_scalar()) return v.scalar();
  std::string s;
  if (v.is_map()) {
    for (const auto& [k, item] : v.map()) {
      if (!s.empty()) s += ", ";
      s += k + " " + scalar_or_summary(item);
    }
  } else {
    for (const MetaValue& item : v.list()) {
      if (!s.empty()) s += ", ";
      s += scalar_or_summary(item);
    }
  }
  return s;
}

ActionResult run_state(ImageMetadata& meta, const RunOptions&) {
  ActionResult r;
  nlohmann::ordered_json steps = nlohmann::ordered_json::object();
  std::string name = meta.get_string("name").value_or("(no name)");
  std::string cloud = meta.get_string("cloud").value_or("(no cloud)");
  r.text.push_back(meta.path() + ": " + name + " (" + cloud + ")");
  for (std::string_view step : kSteps) {
    const MetaValue* v = meta.get(step);
    bool done = has_value(meta, step);
    steps[std::string(step)] = done ? meta_to_json(*v) : nlohmann::ordered_json(nullptr);
    std::string label = std::string(step);
    label.resize(11, ' ');
    r.text.push_back("  " + label + (done ? "done     " + scalar_or_summary(*v) : "pending"));
  }
  const MetaValue* artifacts = meta.get("artifacts");
  bool any_artifacts = artifacts && !artifacts->is_null() &&
                       !(artifacts->is_scalar() && artifacts->scalar().empty());
  r.text.push_back("  artifacts  " + (any_artifacts ? scalar_or_summary(*artifacts) : "none"));
  for (std::string_view key : {"image_file", "image_format", "image_size", "virtual_size"}) {
    if (const MetaValue* v = meta.get(key)) r.extra[std::string(key)] = meta_to_json(*v);
  }
  r.extra["name"] = meta.get_string("name") ? nlohmann::ordered_json(name) : nlohmann::ordered_json(nullptr);
  r.extra["cloud"] = meta.get_string("cloud") ? nlohmann::ordered_json(cloud) : nlohmann::ordered_json(nullptr);
  r.extra["steps"] = steps;
  r.extra["artifacts"] = any_artifacts ? meta_to_json(*artifacts) : nlohmann::ordered_json::object();
  return r;
}

bool same_value(const MetaValue& a, const MetaValue& b) {
  if (a.v.index() != b.v.index()) return false;
  if (a.is_scalar()) return a.scalar() == b.scalar() && a.is_null() == b.is_null();
  if (a.is_list()) {
    if (a.list().size() != b.list().size()) return false;
    for (size_t i = 0; i < a.list().size(); ++i)
      if (!same_value(a.list()[i], b.list()[i])) return false;
    return true;
  }
  if (a.map().size() != b.map().size()) return false;
  for (size_t i = 0; i < a.map().size(); ++i) {
    if (a.map()[i].first != b.map()[i].first) return false;
    if (!same_value(a.map()[i].second, b.map()[i].second)) return false;
  }
  return true;
}

}  // namespace

std::string_view outcome_name(Outcome o) {
  switch (o) {
    case Outcome::kDone: return "done";
    case Outcome::kSkipped: return "skipped";
    case Outcome::kFailed: return "failed";
    case Outcome::kPartial: return "partial";
  }
  return "?";
}

const std::vector<Action>& action_table() {
  static const std::vector<Action> table = {
      {"convert", "write the image in the cloud's format (sets built, image_file, ...)", true,
       validate_convert, run_convert},
      {"checksum", "digest image_file (sets checksums, writes IMAGE.sha256 ... sidecars)", true,
       validate_checksum, run_checksum},
      {"upload", "upload image_file to the cloud's storage (sets uploaded)", true,
       validate_upload, run_upload},
      {"import", "import the upload as a cloud image (sets imported)", true, validate_import,
       run_import},
      {"publish", "copy to regions, set permissions and tags (sets published, artifacts)", true,
       validate_publish, run_publish},
      {"release", "run release_cmd (sets released)", true, validate_release, run_release},
      {"sign", "run signing_cmd on image_file (sets signed)", true, validate_sign, run_sign},
      {"state", "print what is done and what is pending; changes nothing", false,
       validate_state, run_state},
      {"rollback", "undo unpublished upload/import side effects", true, validate_rollback,
       run_rollback},
  };
  return table;
}

const Action* find_action(std::string_view name) {
  for (const Action& a : action_table())
    if (a.name == name) return &a;
  return nullptr;
}

std::string action_names() {
  std::string s;
  for (const Action& a : action_table()) {
    if (!s.empty()) s += ", ";
    s += a.name;
  }
  return s;
}

std::string effective_image_format(const ImageMetadata& meta) {
  if (auto f = meta.get_string("image_format")) return *f;
  if (auto c = meta.get_string("cloud"))
    if (const CloudCapabilities* cloud = find_cloud(*c)) return std::string(cloud->default_format);
  return "";
}

void validate_common(const ImageMetadata& meta, std::string_view action,
                     std::vector<std::string>& problems) {
  const MetaValue* cloud = meta.get("cloud");
  if (cloud && !cloud->is_null()) {
    if (!cloud->is_scalar() || !find_cloud(cloud->scalar())) {
      std::string got = cloud->is_scalar() ? cloud->scalar() : "a list or mapping";
      problems.push_back(problem(meta, action,
                                 "unknown cloud '" + got + "' (expected " + cloud_names() + ")"));
    }
  }
  const MetaValue* format = meta.get("image_format");
  if (format && !format->is_null()) {
    if (!format->is_scalar() || !find_output_format(format->scalar())) {
      std::string got = format->is_scalar() ? format->scalar() : "a list or mapping";
      problems.push_back(problem(meta, action,
                                 "unknown image_format '" + got + "' (expected " +
                                     output_format_names() + ")"));
    }
  }
}

nlohmann::ordered_json meta_to_json(const MetaValue& v) {
  if (v.is_null()) return nullptr;
  if (v.is_scalar()) {
    const std::string& s = v.scalar();
    if (v.style == ScalarStyle::kPlain) {
      if (s == "true") return true;
      if (s == "false") return false;
      if (!s.empty() && s.size() < 20 &&
          std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); }))
        return std::stoull(s);
    }
    return s;
  }
  if (v.is_list()) {
    nlohmann::ordered_json a = nlohmann::ordered_json::array();
    for (const MetaValue& item : v.list()) a.push_back(meta_to_json(item));
    return a;
  }
  nlohmann::ordered_json o = nlohmann::ordered_json::object();
  for (const auto& [k, item] : v.map()) o[k] = meta_to_json(item);
  return o;
}

nlohmann::ordered_json metadata_changes(const ImageMetadata& before, const ImageMetadata& after) {
  nlohmann::ordered_json changes = nlohmann::ordered_json::object();
  for (const std::string& key : after.keys()) {
    const MetaValue* a = after.get(key);
    const MetaValue* b = before.get(key);
    if (!b || !same_value(*a, *b)) changes[key] = meta_to_json(*a);
  }
  for (const std::string& key : before.keys())
    if (!after.has(key)) changes[key] = nullptr;
  return changes;
}

std::string shell_quote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

}  // namespace ch

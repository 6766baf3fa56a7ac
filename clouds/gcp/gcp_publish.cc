// cloud: gcp, publish — who may use the image, and when it ends.
//
// Converges on every run:
//  - IAM: the members of roles/compute.imageUser become what they are plus
//    allAuthenticatedUsers (public: true; GCP refuses allUsers on images)
//    and gcp.image_users. getIamPolicy, then setIamPolicy with the policy's
//    etag, so a concurrent change is never overwritten (a stale etag is
//    answered 409/412: read again and retry); other bindings are kept.
//  - Deprecation: end_of_life (and gcp.obsolete_on / delete_on) set as the
//    image's deprecation timestamps when they differ. Compute treats them
//    as information and changes the state only when told, so the state is
//    ACTIVE while end_of_life is ahead and DEPRECATED once it has passed.
// artifacts.global gets the image (projects/P/global/images/NAME).
#include <algorithm>
#include <ctime>

#include "clouds/gcp/gcp_config.h"
#include "clouds/gcp/gcp_session.h"
#include "clouds/gcp/gcp_steps.h"
#include "clouds/operations.h"
#include "helper/output.h"

namespace ch {

namespace {

using json = nlohmann::json;

constexpr const char* kImageUser = "roles/compute.imageUser";

// Adds MEMBERS to ROLE's unconditional binding; true when POLICY changed.
bool add_members(json& policy, const std::vector<std::string>& members) {
  if (!policy.contains("bindings") || !policy["bindings"].is_array()) policy["bindings"] = json::array();
  json* binding = nullptr;
  for (json& b : policy["bindings"])
    if (b.value("role", "") == kImageUser && !b.contains("condition")) binding = &b;
  bool changed = false;
  for (const std::string& m : members) {
    if (!binding) {
      policy["bindings"].push_back({{"role", kImageUser}, {"members", json::array()}});
      binding = &policy["bindings"].back();
    }
    json& list = (*binding)["members"];
    if (!list.is_array()) list = json::array();
    if (std::find(list.begin(), list.end(), m) == list.end()) {
      list.push_back(m);
      changed = true;
    }
  }
  return changed;
}

Status converge_iam(ComputeClient& compute, const std::string& image, const std::vector<std::string>& members,
                    std::vector<std::string>& lines) {
  if (members.empty()) return {};
  for (int attempt = 1;; ++attempt) {
    CH_ASSIGN(policy, compute.get_iam_policy(image));
    if (!add_members(policy, members)) {
      lines.push_back("IAM: " + std::string(kImageUser) + " already has every member");
      return {};
    }
    // Version 3 is required when a binding has a condition; any policy may say 3.
    policy["version"] = 3;
    auto set = compute.set_iam_policy(image, policy);
    if (set.ok()) {
      std::string who;
      for (const std::string& m : members) who += (who.empty() ? "" : ", ") + m;
      lines.push_back("IAM: " + std::string(kImageUser) + " granted to " + who);
      return {};
    }
    bool stale = set.error().http_status == 409 || set.error().http_status == 412;
    if (!stale || attempt == 5) return set.error();
    log_info("gcp: the IAM policy of " + image + " changed meanwhile (" + set.error().message + "); reading it again");
  }
}

std::string now_rfc3339() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// The deprecation status wanted, {} when nothing is configured.
json wanted_deprecation(const GcpConfig& c) {
  if (c.deprecated_on.empty() && c.obsolete_on.empty() && c.delete_on.empty()) return json::object();
  std::string now = now_rfc3339();  // RFC 3339 UTC in one format compares as text
  std::string state = "ACTIVE";
  if (!c.deprecated_on.empty() && c.deprecated_on <= now) state = "DEPRECATED";
  if (!c.obsolete_on.empty() && c.obsolete_on <= now) state = "OBSOLETE";
  if (!c.delete_on.empty() && c.delete_on <= now) state = "DELETED";
  json d = {{"state", state}};
  if (!c.deprecated_on.empty()) d["deprecated"] = c.deprecated_on;
  if (!c.obsolete_on.empty()) d["obsolete"] = c.obsolete_on;
  if (!c.delete_on.empty()) d["deleted"] = c.delete_on;
  return d;
}

bool same_deprecation(const json& have, const json& want) {
  for (const char* k : {"state", "deprecated", "obsolete", "deleted"}) {
    std::string a = have.is_object() ? have.value(k, "") : "", b = want.value(k, "");
    if (k == std::string("state") && a.empty()) a = "ACTIVE";
    auto ta = parse_rfc3339(a), tb = parse_rfc3339(b);
    if (ta && tb ? *ta != *tb : a != b) return false;
  }
  return true;
}

}  // namespace

CloudStepResult gcp_publish(ImageMetadata& meta, const CloudStepOptions& opts) {
  GcpEnv env = GcpEnv::from_process();
  auto cfg = read_gcp_config(meta, gcp_env_project(env));
  if (!cfg.ok()) return CloudStepResult::invalid(cfg.error());
  std::string import_id = meta.get_string("import_id").value_or("");
  if (!meta.get_string("imported") || import_id.empty())
    return CloudStepResult::invalid(Error{"no imported image (import_id): run import first"});
  // projects/P/global/images/NAME
  const std::string marker = "/global/images/";
  size_t at = import_id.find(marker);
  if (import_id.rfind("projects/", 0) != 0 || at == std::string::npos)
    return CloudStepResult::invalid(Error{"import_id '" + import_id + "' is not projects/P/global/images/NAME"});
  const std::string project = import_id.substr(9, at - 9);
  const std::string image = import_id.substr(at + marker.size());
  if (opts.validate_only) return {};
  const GcpConfig& c = *cfg;
  std::vector<std::string> members;
  if (c.is_public) members.push_back("allAuthenticatedUsers");
  for (const std::string& m : c.image_users) members.push_back(m);
  json deprecation = wanted_deprecation(c);

  if (opts.dry_run) {
    CloudStepResult r;
    std::string who;
    for (const std::string& m : members) who += (who.empty() ? "" : ", ") + m;
    if (!members.empty())
      r.lines.push_back("would getIamPolicy of " + import_id + " and setIamPolicy adding " + who + " to " + kImageUser +
                        " when missing");
    if (!deprecation.empty()) r.lines.push_back("would POST deprecate " + deprecation.dump() + " when it differs");
    r.lines.push_back("would record artifacts.global: " + import_id);
    return r;
  }

  CH_STEP_ASSIGN(session, open_gcp_session(true, project));
  ComputeClient& compute = *session->compute;
  CH_STEP_ASSIGN(img, compute.get_image(image));
  if (!img) return CloudStepResult::failure(Error{"image " + import_id + " does not exist (deleted? re-run import with --force)"});
  if (img->value("status", "") != "READY")
    return CloudStepResult::failure(Error{"image " + import_id + " is " + img->value("status", "?") + ", not READY"});
  CloudStepResult r;
  CH_STEP_TRY(converge_iam(compute, image, members, r.lines));
  if (!deprecation.empty()) {
    json have = img->value("deprecated", json::object());
    if (same_deprecation(have, deprecation)) {
      r.lines.push_back("deprecation: already " + deprecation.dump());
    } else {
      std::string rid = new_request_id("deprecate " + import_id + " " + deprecation.dump());
      CH_STEP_ASSIGN(op, compute.deprecate(image, deprecation, rid));
      CH_STEP_TRY(compute.wait(op.value("name", ""), "images.deprecate " + import_id));
      r.lines.push_back("deprecation: set " + deprecation.dump());
    }
  }
  map_set(meta, "artifacts", "global", import_id);
  meta.set_timestamp("published", utc_now_iso8601());
  r.lines.push_back("published " + import_id);
  r.extra["artifacts"]["global"] = import_id;
  r.extra["members"] = members;
  return r;
}

}  // namespace ch

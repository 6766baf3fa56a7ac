// cloud: azure, publish — every version replicated to the target regions,
// and its public (community) id recorded.
//
// Converges on every run: each version's target regions become the union of
// what it has and what the YAML lists (`regions`, or `all` physical regions
// of the subscription), and its end of life, exclude-from-latest and tags
// are set again when they differ. When `public: true` the gallery must be a
// community gallery; its sharing is switched on only when
// azure.community.enable says so. artifacts gets, per definition, the
// community image id /CommunityGalleries/{public name}/Images/{def}/Versions/{ver}
// (public) or the version's resource id (private), as soon as that
// definition is done. A definition that fails does not stop the others:
// exit 3 with a per-definition summary.
#include <algorithm>
#include <mutex>
#include <thread>

#include "clouds/azure/azure_config.h"
#include "clouds/azure/azure_gallery.h"
#include "clouds/azure/azure_session.h"
#include "clouds/azure/azure_steps.h"
#include "clouds/operations.h"
#include "helper/output.h"

namespace ch {

namespace {

using json = nlohmann::json;

std::string str(const json& j, const char* pointer) {
  const json::json_pointer p(pointer);
  return j.contains(p) && j.at(p).is_string() ? j.at(p).get<std::string>() : "";
}

// The subscription's physical regions (locations of regionType Physical).
Result<std::vector<std::string>> physical_regions(ArmClient& arm, const AzureConfig& c) {
  CH_ASSIGN(all, arm.list("/subscriptions/" + c.subscription_id + "/locations", kArmApiSubscriptions));
  std::vector<std::string> out;
  for (const json& l : all)
    if (str(l, "/metadata/regionType") == "Physical" && l.contains("name")) out.push_back(l["name"].get<std::string>());
  std::sort(out.begin(), out.end());
  return out;
}

// The gallery's community public name, switching sharing on when asked.
Result<std::string> community_public_name(ArmClient& arm, const AzureConfig& c) {
  CH_ASSIGN(gallery, arm.get(azure_gallery_id(c), kArmApiGallery));
  if (!gallery) return Error{"gallery " + c.gallery + " does not exist"};
  std::string permissions = str(*gallery, "/properties/sharingProfile/permissions");
  if (permissions != "Community")
    return Error{"public: true, but gallery " + c.gallery + " is not a community gallery (sharing permissions " +
                 (permissions.empty() ? std::string("Private") : permissions) +
                 "); create it with azure.community.public_name_prefix, or share it in the portal"};
  const json::json_pointer enabled_p("/properties/sharingProfile/communityGalleryInfo/communityGalleryEnabled");
  bool enabled = gallery->contains(enabled_p) && gallery->at(enabled_p).is_boolean() && gallery->at(enabled_p).get<bool>();
  if (!enabled) {
    if (!c.community_enable)
      return Error{"public: true, but community sharing of gallery " + c.gallery +
                   " is off; set azure.community.enable: true to switch it on (it makes every image in it public)"};
    log_info("azure: enabling community sharing of gallery " + c.gallery);
    CH_ASSIGN(shared, arm.post(azure_gallery_id(c) + "/share", kArmApiGallery, json{{"operationType", "EnableCommunity"}}));
    (void)shared;
    CH_ASSIGN(again, arm.get(azure_gallery_id(c), kArmApiGallery));
    if (!again) return Error{"gallery " + c.gallery + " disappeared"};
    gallery = again;
  }
  const json::json_pointer names("/properties/sharingProfile/communityGalleryInfo/publicNames");
  if (!gallery->contains(names) || !gallery->at(names).is_array() || gallery->at(names).empty())
    return Error{"gallery " + c.gallery + " has no community public name"};
  return gallery->at(names)[0].get<std::string>();
}

struct Outcome {
  bool ok = false;
  std::string line;
};

}  // namespace

CloudStepResult azure_publish(ImageMetadata& meta, const CloudStepOptions& opts) {
  AzureEnv env;
  auto cloud = azure_cloud_from_process(&env);
  if (!cloud.ok()) return CloudStepResult::invalid(cloud.error());
  auto cfg = read_azure_config(meta, env.get("AZURE_SUBSCRIPTION_ID"));
  if (!cfg.ok()) return CloudStepResult::invalid(cfg.error());
  if (!meta.get_string("imported") || !meta.get_string("import_id"))
    return CloudStepResult::invalid(Error{"no imported image (import_id): run import first"});
  if (opts.validate_only) return {};
  const AzureConfig& c = *cfg;
  if (opts.dry_run) {
    CloudStepResult r;
    std::string regions = c.all_regions ? std::string("every physical region of the subscription") : "";
    for (const std::string& rg : c.regions) regions += (regions.empty() ? "" : ", ") + rg;
    for (const AzureDefinition& d : c.definitions)
      r.lines.push_back("would PATCH " + d.name + "/" + c.version + " target regions to " + regions);
    if (c.is_public)
      r.lines.push_back("would read gallery " + c.gallery + "'s community public name" +
                        (c.community_enable ? " (enabling community sharing when off)" : ""));
    return r;
  }

  CH_STEP_ASSIGN(session, open_azure_session(true));
  ArmClient& arm = *session->arm;
  std::vector<std::string> regions = c.regions;
  if (c.all_regions) {
    CH_STEP_ASSIGN(all, physical_regions(arm, c));
    for (const std::string& r : all)
      if (std::find(regions.begin(), regions.end(), r) == regions.end()) regions.push_back(r);
  }
  std::string public_name;
  if (c.is_public) {
    auto pn = community_public_name(arm, c);
    if (!pn.ok()) return CloudStepResult::failure(pn.error());
    public_name = *pn;
  }

  std::mutex mu;
  std::vector<Outcome> outcomes(c.definitions.size());
  std::vector<std::thread> workers;
  for (size_t i = 0; i < c.definitions.size(); ++i) {
    workers.emplace_back([&, i] {
      const AzureDefinition& d = c.definitions[i];
      std::string id = azure_version_id(c, d.name);
      std::string label = d.name + "/" + c.version;
      auto fail = [&](const Error& e) { outcomes[i] = {false, label + ": failed: " + e.message}; };
      auto version = arm.get(id, kArmApiGallery);
      if (!version.ok()) return fail(version.error());
      if (!*version) return fail(Error{"the image version does not exist (was it deleted? re-run import with --force)"});
      std::vector<std::string> have = version_regions(**version);
      std::vector<std::string> want = have;
      for (const std::string& r : regions)
        if (std::find(want.begin(), want.end(), r) == want.end()) want.push_back(r);
      json profile = (**version)["properties"]["publishingProfile"];
      json target = publishing_profile(c, {});
      // Keep the entries that are there as they are (their replica counts may
      // have been tuned by hand); add the missing ones.
      json regions_json = profile.value("targetRegions", json::array());
      for (const std::string& r : want)
        if (std::find(have.begin(), have.end(), r) == have.end())
          regions_json.push_back({{"name", r}, {"regionalReplicaCount", c.replica_count}, {"storageAccountType", c.storage_account_type}});
      bool changed = want.size() != have.size() ||
                     profile.value("excludeFromLatest", false) != c.exclude_from_latest ||
                     (!c.end_of_life.empty() && profile.value("endOfLifeDate", "").substr(0, 10) != c.end_of_life.substr(0, 10));
      json tags = (**version).value("tags", json::object());
      for (const auto& [k, v] : c.tags)
        if (tags.value(k, "") != v) {
          tags[k] = v;
          changed = true;
        }
      if (changed) {
        json patch_profile = {{"targetRegions", regions_json}, {"excludeFromLatest", c.exclude_from_latest}};
        if (!c.end_of_life.empty()) patch_profile["endOfLifeDate"] = c.end_of_life;
        log_info("azure: " + label + ": target regions " + std::to_string(have.size()) + " -> " +
                 std::to_string(want.size()));
        auto patched = arm.patch(id, kArmApiGallery, json{{"tags", tags}, {"properties", {{"publishingProfile", patch_profile}}}});
        if (!patched.ok()) return fail(patched.error());
        std::string state = str(*patched, "/properties/provisioningState");
        if (!state.empty() && state != "Succeeded") return fail(Error{"the update ended " + state});
      }
      std::string artifact = id;
      if (c.is_public) {
        artifact = "/CommunityGalleries/" + public_name + "/Images/" + d.name + "/Versions/" + c.version;
        // Read it back the way users will find it.
        std::string community = "/subscriptions/" + c.subscription_id + "/providers/Microsoft.Compute/locations/" +
                                c.location + "/communityGalleries/" + public_name + "/images/" + d.name +
                                "/versions/" + c.version;
        auto seen = arm.get(community, kArmApiGallery);
        if (!seen.ok()) return fail(seen.error());
        if (!*seen) return fail(Error{"not visible as community image " + artifact + " yet"});
        std::string unique = str(**seen, "/identifier/uniqueId");
        if (!unique.empty()) artifact = unique;
      }
      {
        std::lock_guard<std::mutex> lock(mu);
        map_set(meta, "artifacts", d.name, artifact);
        Status s = opts.checkpoint();
        if (!s.ok()) return fail(s.error());
      }
      outcomes[i] = {true, label + ": " + std::to_string(want.size()) + " regions: " + artifact};
    });
  }
  for (std::thread& t : workers) t.join();

  CloudStepResult r;
  size_t ok = 0;
  for (const Outcome& o : outcomes) {
    ok += o.ok;
    r.lines.push_back(o.line);
  }
  r.extra["regions"] = regions;
  if (ok == outcomes.size()) {
    meta.set_timestamp("published", utc_now_iso8601());
    return r;
  }
  std::string failed;
  for (const Outcome& o : outcomes)
    if (!o.ok) failed += (failed.empty() ? "" : "; ") + o.line;
  if (ok == 0) {
    r.status = Error{failed};
    return r;
  }
  // Exit 3: some definitions are published, the others say why not.
  r.partial = true;
  r.notice = std::string{std::to_string(outcomes.size() - ok) + " of " + std::to_string(outcomes.size()) +
                   " definitions failed: " + failed};
  return r;
}

}  // namespace ch

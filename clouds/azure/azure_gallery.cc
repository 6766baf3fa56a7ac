#include "clouds/azure/azure_gallery.h"

#include <algorithm>

#include "clouds/azure/azure_session.h"
#include "clouds/operations.h"
#include "helper/output.h"

namespace ch {

namespace {

using json = nlohmann::json;

json tags_json(const AzureConfig& c) {
  json t = json::object();
  for (const auto& [k, v] : c.tags) t[k] = v;
  return t;
}

std::string str(const json& j, const char* pointer) {
  const json::json_pointer p(pointer);
  return j.contains(p) && j.at(p).is_string() ? j.at(p).get<std::string>() : "";
}

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

bool terminal(const std::string& state) { return state == "Succeeded" || state == "Failed" || state == "Canceled"; }

// Waits for RESOURCE when a killed run left it mid-way; returns its state.
Result<std::string> settle(ArmClient& arm, const std::string& id, std::string_view api, const json& body) {
  std::string state = str(body, "/properties/provisioningState");
  if (terminal(state) || state.empty()) return state.empty() ? std::string("Succeeded") : state;
  CH_ASSIGN(after, arm.wait_provisioned(id, api));
  if (!after) return std::string("Deleted");
  return str(*after, "/properties/provisioningState");
}

}  // namespace

json gallery_body(const AzureConfig& c) {
  json props = json::object();
  if (!c.description.empty()) props["description"] = c.description;
  if (!c.public_name_prefix.empty()) {
    json info = {{"publicNamePrefix", c.public_name_prefix}};
    if (!c.publisher_uri.empty()) info["publisherUri"] = c.publisher_uri;
    if (!c.publisher_contact.empty()) info["publisherContact"] = c.publisher_contact;
    if (!c.community_eula.empty()) info["eula"] = c.community_eula;
    props["sharingProfile"] = {{"permissions", "Community"}, {"communityGalleryInfo", info}};
  }
  return {{"location", c.location}, {"tags", tags_json(c)}, {"properties", props}};
}

json definition_body(const AzureConfig& c, const AzureDefinition& d) {
  bool gen2 = d.generation == "V2";
  std::string controllers = c.disk_controller_types;
  if (!gen2) controllers = "SCSI";  // NVMe disks need Gen2
  json features = json::array({{{"name", "DiskControllerTypes"}, {"value", controllers}},
                               {{"name", "IsAcceleratedNetworkSupported"},
                                {"value", c.accelerated_networking ? "True" : "False"}}});
  if (gen2 && c.trusted_launch) features.push_back({{"name", "SecurityType"}, {"value", "TrustedLaunchSupported"}});
  json props = {{"identifier", {{"publisher", c.publisher}, {"offer", c.offer}, {"sku", d.sku}}},
                {"osType", "Linux"},
                {"osState", "Generalized"},
                {"hyperVGeneration", d.generation},
                {"architecture", c.architecture},
                {"features", features}};
  if (!c.description.empty()) props["description"] = c.description;
  if (!c.eula.empty()) props["eula"] = c.eula;
  if (!c.release_note_uri.empty()) props["releaseNoteUri"] = c.release_note_uri;
  if (!c.privacy_statement_uri.empty()) props["privacyStatementUri"] = c.privacy_statement_uri;
  return {{"location", c.location}, {"tags", tags_json(c)}, {"properties", props}};
}

std::string definition_mismatch(const json& existing, const json& want) {
  std::string out;
  auto check = [&](const char* pointer, const char* label, std::string dflt) {
    std::string have = str(existing, pointer);
    if (have.empty()) have = dflt;
    std::string need = str(want, pointer);
    if (!iequal(have, need)) out += std::string(out.empty() ? "" : ", ") + label + " " + have + " (needs " + need + ")";
  };
  check("/properties/identifier/publisher", "publisher", "");
  check("/properties/identifier/offer", "offer", "");
  check("/properties/identifier/sku", "sku", "");
  check("/properties/osType", "osType", "");
  check("/properties/osState", "osState", "");
  check("/properties/hyperVGeneration", "hyperVGeneration", "V1");  // Azure's default
  check("/properties/architecture", "architecture", "x64");
  return out;
}

json publishing_profile(const AzureConfig& c, const std::vector<std::string>& regions) {
  json targets = json::array();
  for (const std::string& r : regions)
    targets.push_back({{"name", r}, {"regionalReplicaCount", c.replica_count}, {"storageAccountType", c.storage_account_type}});
  json p = {{"targetRegions", targets},
            {"replicaCount", c.replica_count},
            {"storageAccountType", c.storage_account_type},
            {"excludeFromLatest", c.exclude_from_latest}};
  if (!c.end_of_life.empty()) p["endOfLifeDate"] = c.end_of_life;
  return p;
}

json version_body(const AzureConfig& c, const VersionSource& src) {
  json storage;
  if (!src.managed_image_id.empty()) {
    storage = {{"source", {{"id", src.managed_image_id}}}};
  } else {
    storage = {{"osDiskImage",
                {{"source", {{"uri", src.blob_url}, {"storageAccountId", src.storage_account_id}}},
                 {"hostCaching", "ReadOnly"}}}};
  }
  return {{"location", c.location},
          {"tags", tags_json(c)},
          {"properties", {{"publishingProfile", publishing_profile(c, {c.location})}, {"storageProfile", storage}}}};
}

std::string managed_image_name(const ImageMetadata& meta, const AzureDefinition& d) {
  std::string name = meta.get_string("name").value_or("image");
  return d.generation == "V1" ? name + "-gen1" : name;
}

std::string azure_region_name(std::string_view name) {
  std::string out;
  for (char ch : name)
    if (ch != ' ') out += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

std::vector<std::string> version_regions(const json& version) {
  std::vector<std::string> out;
  const json::json_pointer p("/properties/publishingProfile/targetRegions");
  if (!version.contains(p) || !version.at(p).is_array()) return out;
  for (const json& t : version.at(p))
    if (t.contains("name") && t["name"].is_string()) out.push_back(azure_region_name(t["name"].get<std::string>()));
  return out;
}

Result<std::string> ensure_managed_image(ArmClient& arm, const AzureConfig& c, const AzureDefinition& d,
                                         const std::string& name, const std::string& blob_url,
                                         ImageMetadata& meta, std::mutex& mu, const LockedCheckpoint& checkpoint) {
  std::string id = azure_managed_image_id(c, name);
  std::string key = "image/" + name;
  CH_ASSIGN(existing, arm.get(id, kArmApiCompute));
  bool recorded;
  {
    std::lock_guard<std::mutex> lock(mu);
    recorded = op_get(meta, "import", key).has_value();
  }
  if (existing) {
    std::string uri = str(*existing, "/properties/storageProfile/osDisk/blobUri");
    if (!recorded && uri != blob_url)
      return Error{"managed image " + name + " already exists (from " + (uri.empty() ? "another source" : uri) +
                   "); not replaced"};
    CH_ASSIGN(state, settle(arm, id, kArmApiCompute, *existing));
    if (state == "Succeeded") {
      std::lock_guard<std::mutex> lock(mu);
      op_set(meta, "import", key, id);
      return id;
    }
    log_info("azure: managed image " + name + " is " + state + ": deleting it to make it again");
    CH_TRY(arm.del(id, kArmApiCompute));
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    op_set(meta, "import", key, id);
  }
  CH_TRY(checkpoint());
  json body = {{"location", c.location},
               {"tags", json::object()},
               {"properties",
                {{"hyperVGeneration", d.generation},
                 {"storageProfile",
                  {{"osDisk", {{"osType", "Linux"}, {"osState", "Generalized"}, {"blobUri", blob_url}, {"caching", "ReadWrite"}}}}}}}};
  for (const auto& [k, v] : c.tags) body["tags"][k] = v;
  log_info("azure: creating managed image " + name);
  CH_ASSIGN(made, arm.put(id, kArmApiCompute, body));
  (void)made;
  return id;
}

Status ensure_version(ArmClient& arm, const AzureConfig& c, const AzureDefinition& d, const VersionSource& src,
                      ImageMetadata& meta, std::mutex& mu, const LockedCheckpoint& checkpoint) {
  std::string id = azure_version_id(c, d.name);
  std::string key = "version/" + d.name;
  CH_ASSIGN(existing, arm.get(id, kArmApiGallery));
  bool recorded;
  {
    std::lock_guard<std::mutex> lock(mu);
    recorded = op_get(meta, "import", key) == id;
  }
  if (existing) {
    std::string uri = str(*existing, "/properties/storageProfile/osDiskImage/source/uri");
    std::string image = str(*existing, "/properties/storageProfile/source/id");
    bool same_source = src.managed_image_id.empty() ? uri == src.blob_url : iequal(image, src.managed_image_id);
    if (!recorded && !same_source)
      return Error{"gallery image version " + d.name + "/" + c.version +
                   " already exists and was made from another source; choose another azure.image_version"};
    CH_ASSIGN(state, settle(arm, id, kArmApiGallery, *existing));
    if (state == "Succeeded") {
      {
        std::lock_guard<std::mutex> lock(mu);
        op_set(meta, "import", key, id);
      }
      return checkpoint();  // takes MU itself
    }
    log_info("azure: image version " + d.name + "/" + c.version + " is " + state + ": deleting it to make it again");
    CH_TRY(arm.del(id, kArmApiGallery));
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    op_set(meta, "import", key, id);
  }
  CH_TRY(checkpoint());
  log_info("azure: creating image version " + d.name + "/" + c.version + " in " + c.location);
  LroOptions lro;
  lro.on_poll = [name = d.name + "/" + c.version](const std::string& s) {
    log_debug("azure: image version " + name + ": " + s);
  };
  CH_ASSIGN(made, arm.put(id, kArmApiGallery, version_body(c, src), lro));
  std::string state = str(made, "/properties/provisioningState");
  if (!state.empty() && state != "Succeeded")
    return Error{"gallery image version " + d.name + "/" + c.version + " ended " + state};
  return {};
}

}  // namespace ch

// cloud: oci, import — a custom image from the uploaded object
// (Core Services API: CreateImage with imageSourceDetails
// objectStorageTuple), then its image capability schema and shape
// compatibility entries, as Oracle's console "Edit image capabilities" and
// "Edit shapes" do.
//
// operations.import records {region, image_id, work_request_id} before the
// wait, then schema_id and the shapes added. CreateImage carries an
// opc-retry-token derived from the image name and the object, so a retry
// whose first answer was lost does not make a second image; a re-run with
// nothing recorded adopts an image of the same display name in the
// compartment (ListImages) instead of importing again.
#include <algorithm>

#include "clouds/poll.h"
#include "clouds/oci/oci_client.h"
#include "clouds/oci/oci_steps.h"
#include "clouds/operations.h"
#include "clouds/signing/digest.h"
#include "helper/output.h"

namespace ch {

namespace {

using nlohmann::json;

constexpr std::string_view kApi = "/20160918";

struct Plan {
  OciImageConfig config;
  OciObjectRef object;
  std::string upload_url;
  std::string source_type;  // QCOW2 | VMDK
};

Result<Plan> plan_import(const ImageMetadata& meta) {
  Plan p;
  CH_ASSIGN(config, read_oci_config(meta));
  p.config = config;
  if (p.config.compartment_id.empty()) return Error{"import needs oci.compartment_id (the compartment's OCID)"};
  auto url = meta.get_string("upload_url");
  if (!url || !meta.get_string("uploaded")) return Error{"not uploaded yet (run upload first)"};
  p.upload_url = *url;
  CH_ASSIGN(object, parse_oci_object_url(*url));
  p.object = object;
  std::string format = meta.get_string("image_format").value_or("qcow2");
  if (format != "qcow2" && format != "vmdk")
    return Error{"OCI imports QCOW2 or VMDK images, not image_format '" + format + "'"};
  p.source_type = format == "qcow2" ? "QCOW2" : "VMDK";
  return p;
}

// What Oracle's console writes for these settings: one allowed value each,
// the image's own, as the default (source IMAGE).
json schema_data(const OciImageConfig& c) {
  auto enumstring = [](const std::string& v) {
    return json{{"descriptorType", "enumstring"}, {"source", "IMAGE"}, {"values", {v}}, {"defaultValue", v}};
  };
  return json{{"Compute.Firmware", enumstring(c.firmware)},
              {"Compute.LaunchMode", enumstring(c.launch_mode)},
              {"Compute.SecureBoot", {{"descriptorType", "boolean"}, {"source", "IMAGE"}, {"defaultValue", c.secure_boot}}},
              {"Network.AttachmentType", enumstring(c.nic_attachment)}};
}

// Tokens are at most 64 characters; the same image and object give the same one.
std::string retry_token(const std::string& what, const Plan& p) {
  return "cloudhelper-" + what + "-" + sha256_hex(p.config.name + "\n" + p.upload_url).substr(0, 40);
}

class Importer {
 public:
  Importer(OciSession& s, const Plan& p) : s_(s), p_(p), iaas_(s.endpoints.iaas + std::string(kApi)) {}

  // An image of this display name in the compartment that is (or is becoming) usable.
  Result<std::string> find_image() {
    std::string page;
    do {
      OciCall c{"ListImages", "GET", iaas_ + "/images",
                {{"compartmentId", p_.config.compartment_id}, {"displayName", p_.config.name}}};
      if (!page.empty()) c.query.push_back({"page", page});
      CH_ASSIGN(r, s_.client->call(c));
      json j = json::parse(r.body, nullptr, false);
      if (j.is_array())
        for (const json& img : j) {
          std::string state = img.value("lifecycleState", "");
          if (state == "AVAILABLE" || state == "IMPORTING" || state == "PROVISIONING") return img.value("id", "");
        }
      page = r.header("opc-next-page");
    } while (!page.empty());
    return std::string();
  }

  // CreateImage: the image id and its work request id.
  Result<std::pair<std::string, std::string>> create_image() {
    json source = {{"sourceType", "objectStorageTuple"}, {"namespaceName", p_.object.namespace_name},
                   {"bucketName", p_.object.bucket}, {"objectName", p_.object.object},
                   {"sourceImageType", p_.source_type}};
    if (!p_.config.operating_system.empty()) source["operatingSystem"] = p_.config.operating_system;
    if (!p_.config.operating_system_version.empty()) source["operatingSystemVersion"] = p_.config.operating_system_version;
    json body = {{"compartmentId", p_.config.compartment_id}, {"displayName", p_.config.name},
                 {"launchMode", p_.config.launch_mode}, {"imageSourceDetails", source}};
    if (!p_.config.tags.empty()) body["freeformTags"] = p_.config.tags;
    OciCall c{"CreateImage", "POST", iaas_ + "/images", {}, body.dump(), {{"opc-retry-token", retry_token("image", p_)}}};
    CH_ASSIGN(r, s_.client->call(c));
    json j = json::parse(r.body, nullptr, false);
    std::string id = j.is_object() ? j.value("id", "") : "";
    if (id.empty()) return Error{"OCI CreateImage: no image id in the answer"};
    return std::make_pair(id, r.header("opc-work-request-id"));
  }

  Status wait_work_request(const std::string& id, const std::string& image_id) {
    PollOptions po;
    po.initial = std::chrono::milliseconds(2000);
    po.max = std::chrono::milliseconds(20000);
    po.timeout = std::chrono::seconds(4 * 3600);
    return poll_until("work request " + id + " importing image " + image_id, po.scaled(),
                      [&](std::string* state) -> Result<bool> {
                        CH_ASSIGN(j, s_.client->call_json({"GetWorkRequest", "GET", iaas_ + "/workRequests/" + oci_segment(id)}));
                        std::string status = j.value("status", "");
                        *state = status + " " + std::to_string(static_cast<int>(j.value("percentComplete", 0.0))) + "%";
                        if (status == "SUCCEEDED") return true;
                        if (status == "FAILED" || status == "CANCELED") return Error{work_request_failure(id, status)};
                        return false;
                      });
  }

  std::string work_request_failure(const std::string& id, const std::string& status) {
    std::string msg = "importing image " + p_.config.name + ": work request " + id + " " + status;
    auto errors = s_.client->call_json({"ListWorkRequestErrors", "GET", iaas_ + "/workRequests/" + oci_segment(id) + "/errors"});
    if (errors.ok() && errors->is_array() && !errors->empty())
      msg += ": " + (*errors)[0].value("code", "") + ": " + (*errors)[0].value("message", "");
    return msg + " (run rollback to delete the image, then import again)";
  }

  Result<json> get_image(const std::string& id) {
    return s_.client->call_json({"GetImage", "GET", iaas_ + "/images/" + oci_segment(id)});
  }

  Status wait_available(const std::string& id) {
    PollOptions po;
    po.initial = std::chrono::milliseconds(2000);
    po.max = std::chrono::milliseconds(20000);
    po.timeout = std::chrono::seconds(4 * 3600);
    return poll_until("image " + id + " to become AVAILABLE", po.scaled(), [&](std::string* state) -> Result<bool> {
      CH_ASSIGN(img, get_image(id));
      *state = img.value("lifecycleState", "");
      if (*state == "AVAILABLE") return true;
      if (*state == "IMPORTING" || *state == "PROVISIONING") return false;
      return Error{"image " + id + " is " + *state + " (run rollback, then import again)"};
    });
  }

  // The image's capability schema: the one recorded or found, updated when
  // its data differ; else a new one against the current global version.
  Result<std::string> ensure_schema(const std::string& image_id, std::string schema_id, bool* created) {
    json want = schema_data(p_.config);
    if (schema_id.empty()) {
      CH_ASSIGN(list, s_.client->call_json({"ListComputeImageCapabilitySchemas", "GET",
                                            iaas_ + "/computeImageCapabilitySchemas",
                                            {{"compartmentId", p_.config.compartment_id}, {"imageId", image_id}}}));
      if (list.is_array() && !list.empty()) schema_id = list[0].value("id", "");
    }
    if (!schema_id.empty()) {
      CH_ASSIGN(have, s_.client->call_json({"GetComputeImageCapabilitySchema", "GET",
                                            iaas_ + "/computeImageCapabilitySchemas/" + oci_segment(schema_id)}));
      if (have.value("schemaData", json::object()) != want) {
        OciCall c{"UpdateComputeImageCapabilitySchema", "PUT",
                  iaas_ + "/computeImageCapabilitySchemas/" + oci_segment(schema_id), {}, json{{"schemaData", want}}.dump()};
        CH_TRY(s_.client->call(c));
      }
      return schema_id;
    }
    CH_ASSIGN(globals, s_.client->call_json({"ListComputeGlobalImageCapabilitySchemas", "GET",
                                             iaas_ + "/computeGlobalImageCapabilitySchemas"}));
    if (!globals.is_array() || globals.empty())
      return Error{"OCI ListComputeGlobalImageCapabilitySchemas: no global image capability schema"};
    std::string version = globals[0].value("currentVersionName", "");
    if (version.empty()) return Error{"OCI ListComputeGlobalImageCapabilitySchemas: no currentVersionName"};
    json body = {{"compartmentId", p_.config.compartment_id},
                 {"computeGlobalImageCapabilitySchemaVersionName", version},
                 {"imageId", image_id},
                 {"displayName", p_.config.name + "-capabilities"},
                 {"schemaData", want}};
    OciCall c{"CreateComputeImageCapabilitySchema", "POST", iaas_ + "/computeImageCapabilitySchemas", {},
              body.dump(), {{"opc-retry-token", retry_token("schema", p_)}}};
    CH_ASSIGN(made, s_.client->call_json(c));
    std::string id = made.value("id", "");
    if (id.empty()) return Error{"OCI CreateComputeImageCapabilitySchema: no id in the answer"};
    *created = true;
    return id;
  }

  Status add_shape(const std::string& image_id, const std::string& shape) {
    OciCall c{"AddImageShapeCompatibilityEntry", "PUT",
              iaas_ + "/images/" + oci_segment(image_id) + "/shapes/" + oci_segment(shape), {}, "{}"};
    CH_TRY(s_.client->call(c));
    return {};
  }

 private:
  OciSession& s_;
  const Plan& p_;
  std::string iaas_;
};

}  // namespace

CloudStepResult oci_import(ImageMetadata& meta, const CloudStepOptions& opts) {
  auto plan = plan_import(meta);
  if (!plan.ok()) return CloudStepResult::invalid(plan.error());
  if (opts.validate_only) return {};
  const Plan& p = *plan;
  if (meta.get_string("imported") && !opts.force) {
    CloudStepResult r;
    r.skipped = true;
    r.notice = meta.path() + ": import: already imported as " + meta.get_string("import_id").value_or("?") + " at " +
               *meta.get_string("imported") + " (--force redoes it)";
    return r;
  }
  if (opts.dry_run) {
    CloudStepResult r;
    std::string obj = "oci://" + p.object.bucket + "@" + p.object.namespace_name + "/" + p.object.object;
    r.lines.push_back("would CreateImage " + p.config.name + " in " + p.config.compartment_id + " from " + obj + " (" +
                      p.source_type + ", launch mode " + p.config.launch_mode + ") and wait for its work request");
    r.lines.push_back("would CreateComputeImageCapabilitySchema: firmware " + p.config.firmware + ", secure boot " +
                      (p.config.secure_boot ? "true" : "false") + ", launch mode " + p.config.launch_mode +
                      ", NIC attachment " + p.config.nic_attachment);
    for (const std::string& s : p.config.shapes) r.lines.push_back("would AddImageShapeCompatibilityEntry " + s);
    return r;
  }

  CH_STEP_ASSIGN(session, open_oci_session(p.config.home_region));
  Importer im(*session, p);
  std::string image_id = op_get(meta, "import", "image_id").value_or("");
  std::string work_request = op_get(meta, "import", "work_request_id").value_or("");
  CloudStepResult r;
  if (image_id.empty()) {
    CH_STEP_ASSIGN(found, im.find_image());
    if (!found.empty()) {
      image_id = found;
      log_info(meta.path() + ": import: adopting image " + image_id + " (" + p.config.name + ")");
      r.lines.push_back("adopted image " + image_id);
    } else {
      CH_STEP_ASSIGN(made, im.create_image());
      image_id = made.first;
      work_request = made.second;
      log_info(meta.path() + ": import: CreateImage " + image_id + " (work request " + work_request + ")");
    }
    op_set(meta, "import", "region", session->region);
    op_set(meta, "import", "image_id", image_id);
    if (!work_request.empty()) op_set(meta, "import", "work_request_id", work_request);
    CH_STEP_TRY(opts.checkpoint());
  }
  if (op_get(meta, "import", "image_state") != "AVAILABLE") {
    if (!work_request.empty()) CH_STEP_TRY(im.wait_work_request(work_request, image_id));
    CH_STEP_TRY(im.wait_available(image_id));
    op_set(meta, "import", "image_state", "AVAILABLE");
    CH_STEP_TRY(opts.checkpoint());
  }
  bool schema_created = false;
  CH_STEP_ASSIGN(schema_id, im.ensure_schema(image_id, op_get(meta, "import", "schema_id").value_or(""), &schema_created));
  op_set(meta, "import", "schema_id", schema_id);
  CH_STEP_TRY(opts.checkpoint());
  for (const std::string& shape : p.config.shapes) CH_STEP_TRY(im.add_shape(image_id, shape));
  if (!p.config.shapes.empty()) {
    std::string joined;
    for (const std::string& s : p.config.shapes) joined += (joined.empty() ? "" : ",") + s;
    op_set(meta, "import", "shapes", joined);
  }
  meta.set_timestamp("imported", utc_now_iso8601());
  meta.set_string("import_id", image_id);
  meta.set_string("import_region", session->region);
  r.lines.push_back("imported " + p.config.name + " as " + image_id + " in " + session->region + " (capability schema " +
                    schema_id + (schema_created ? ", created" : "") + "; " + std::to_string(p.config.shapes.size()) +
                    " shape(s))");
  r.extra["import_id"] = image_id;
  r.extra["import_region"] = session->region;
  r.extra["schema_id"] = schema_id;
  return r;
}

}  // namespace ch

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

#include "clouds/oci/oci_client.h"
#include "clouds/oci/oci_image.h"
#include "clouds/oci/oci_steps.h"
#include "clouds/operations.h"
#include "clouds/signing/digest.h"
#include "helper/output.h"

namespace ch {

namespace {

using nlohmann::json;


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
  CH_ASSIGN(source_type, oci_source_image_type(meta));
  p.source_type = source_type;
  return p;
}

// Tokens are at most 64 characters; the same image and object give the same one.
std::string retry_token(const std::string& what, const Plan& p) {
  return "cloudhelper-" + what + "-" + sha256_hex(p.config.name + "\n" + p.upload_url).substr(0, 40);
}

class Importer {
 public:
  Importer(OciSession& s, const Plan& p) : s_(s), p_(p), iaas_(s.endpoints.core()) {}

  Result<std::string> find_image() { return oci_find_image(*s_.client, iaas_, p_.config); }

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

  // A failed import leaves an image behind: say how to start over.
  Status wait_work_request(const std::string& id, const std::string& image_id) {
    Status st = oci_wait_work_request(*s_.client, iaas_, id, image_id, p_.config.name);
    if (!st.ok()) return Error{st.message() + " (run rollback to delete the image, then import again)", st.error().code,
                               st.error().http_status};
    return st;
  }

  Status wait_available(const std::string& id) {
    Status st = oci_wait_image_available(*s_.client, iaas_, id);
    if (!st.ok() && st.error().http_status == 0) return Error{st.message() + " (run rollback, then import again)"};
    return st;
  }

  Result<std::string> ensure_schema(const std::string& image_id, std::string schema_id, bool* created) {
    return oci_ensure_schema(*s_.client, iaas_, p_.config, image_id, std::move(schema_id), retry_token("schema", p_),
                             created);
  }

  Status add_shapes(const std::string& image_id) { return oci_add_shapes(*s_.client, iaas_, p_.config, image_id); }

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
    std::string obj = p.object.url();
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
  CH_STEP_TRY(im.add_shapes(image_id));
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

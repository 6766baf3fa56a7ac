#include "clouds/oci/oci_image.h"

#include <set>

#include "clouds/poll.h"
#include "clouds/signing/digest.h"

namespace ch {

using nlohmann::json;

namespace {

PollOptions image_poll() {
  PollOptions po;
  po.initial = std::chrono::milliseconds(2000);
  po.max = std::chrono::milliseconds(20000);
  po.timeout = std::chrono::seconds(4 * 3600);
  return po.scaled();
}

}  // namespace

Result<std::string> oci_source_image_type(const ImageMetadata& meta) {
  std::string format = meta.get_string("image_format").value_or("qcow2");
  if (format != "qcow2" && format != "vmdk")
    return Error{"OCI imports QCOW2 or VMDK images, not image_format '" + format + "'"};
  return std::string(format == "qcow2" ? "QCOW2" : "VMDK");
}

Result<std::string> oci_find_image(OciClient& client, const std::string& iaas, const OciImageConfig& c) {
  std::string page;
  do {
    OciCall call{"ListImages", "GET", iaas + "/images", {{"compartmentId", c.compartment_id}, {"displayName", c.name}}};
    if (!page.empty()) call.query.push_back({"page", page});
    CH_ASSIGN(r, client.call(call));
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

Status oci_wait_work_request(OciClient& client, const std::string& iaas, const std::string& id,
                             const std::string& image_id, const std::string& image_name) {
  return poll_until("work request " + id + " of image " + image_id, image_poll(),
                    [&](std::string* state) -> Result<bool> {
                      CH_ASSIGN(j, client.call_json({"GetWorkRequest", "GET", iaas + "/workRequests/" + oci_segment(id)}));
                      std::string status = j.value("status", "");
                      *state = status + " " + std::to_string(static_cast<int>(j.value("percentComplete", 0.0))) + "%";
                      if (status == "SUCCEEDED") return true;
                      if (status != "FAILED" && status != "CANCELED") return false;
                      std::string msg = j.value("operationType", std::string("CreateImage")) == "ExportImage"
                                            ? "exporting image " + image_name
                                            : "importing image " + image_name;
                      msg += ": work request " + id + " " + status;
                      auto errors = client.call_json(
                          {"ListWorkRequestErrors", "GET", iaas + "/workRequests/" + oci_segment(id) + "/errors"});
                      if (errors.ok() && errors->is_array() && !errors->empty())
                        msg += ": " + (*errors)[0].value("code", "") + ": " + (*errors)[0].value("message", "");
                      return Error{msg};
                    });
}

Status oci_wait_image_available(OciClient& client, const std::string& iaas, const std::string& id) {
  return poll_until("image " + id + " to become AVAILABLE", image_poll(), [&](std::string* state) -> Result<bool> {
    CH_ASSIGN(img, client.call_json({"GetImage", "GET", iaas + "/images/" + oci_segment(id)}));
    *state = img.value("lifecycleState", "");
    if (*state == "AVAILABLE") return true;
    if (*state == "IMPORTING" || *state == "PROVISIONING") return false;
    return Error{"image " + id + " is " + *state};
  });
}

json oci_schema_data(const OciImageConfig& c) {
  auto enumstring = [](const std::string& v) {
    return json{{"descriptorType", "enumstring"}, {"source", "IMAGE"}, {"values", {v}}, {"defaultValue", v}};
  };
  return json{{"Compute.Firmware", enumstring(c.firmware)},
              {"Compute.LaunchMode", enumstring(c.launch_mode)},
              {"Compute.SecureBoot", {{"descriptorType", "boolean"}, {"source", "IMAGE"}, {"defaultValue", c.secure_boot}}},
              {"Network.AttachmentType", enumstring(c.nic_attachment)}};
}

Result<std::string> oci_ensure_schema(OciClient& client, const std::string& iaas, const OciImageConfig& c,
                                      const std::string& image_id, std::string schema_id, const std::string& token,
                                      bool* created) {
  json want = oci_schema_data(c);
  if (schema_id.empty()) {
    CH_ASSIGN(list, client.call_json({"ListComputeImageCapabilitySchemas", "GET", iaas + "/computeImageCapabilitySchemas",
                                      {{"compartmentId", c.compartment_id}, {"imageId", image_id}}}));
    if (list.is_array() && !list.empty()) schema_id = list[0].value("id", "");
  }
  if (!schema_id.empty()) {
    CH_ASSIGN(have, client.call_json({"GetComputeImageCapabilitySchema", "GET",
                                      iaas + "/computeImageCapabilitySchemas/" + oci_segment(schema_id)}));
    if (have.value("schemaData", json::object()) != want) {
      OciCall call{"UpdateComputeImageCapabilitySchema", "PUT",
                   iaas + "/computeImageCapabilitySchemas/" + oci_segment(schema_id), {}, json{{"schemaData", want}}.dump()};
      CH_TRY(client.call(call));
    }
    return schema_id;
  }
  CH_ASSIGN(globals, client.call_json({"ListComputeGlobalImageCapabilitySchemas", "GET",
                                       iaas + "/computeGlobalImageCapabilitySchemas"}));
  if (!globals.is_array() || globals.empty())
    return Error{"OCI ListComputeGlobalImageCapabilitySchemas: no global image capability schema"};
  std::string version = globals[0].value("currentVersionName", "");
  if (version.empty()) return Error{"OCI ListComputeGlobalImageCapabilitySchemas: no currentVersionName"};
  json body = {{"compartmentId", c.compartment_id},
               {"computeGlobalImageCapabilitySchemaVersionName", version},
               {"imageId", image_id},
               {"displayName", c.name + "-capabilities"},
               {"schemaData", want}};
  OciCall call{"CreateComputeImageCapabilitySchema", "POST", iaas + "/computeImageCapabilitySchemas", {},
               body.dump(), {{"opc-retry-token", token}}};
  CH_ASSIGN(made, client.call_json(call));
  std::string id = made.value("id", "");
  if (id.empty()) return Error{"OCI CreateComputeImageCapabilitySchema: no id in the answer"};
  *created = true;
  return id;
}

Status oci_add_shapes(OciClient& client, const std::string& iaas, const OciImageConfig& c, const std::string& image_id) {
  for (const std::string& shape : c.shapes) {
    OciCall call{"AddImageShapeCompatibilityEntry", "PUT",
                 iaas + "/images/" + oci_segment(image_id) + "/shapes/" + oci_segment(shape), {}, "{}"};
    CH_TRY(client.call(call));
  }
  return {};
}

std::string oci_par_prefix(const std::string& image_name, const OciObjectRef& object) {
  return "cloudhelper-" + sha256_hex(image_name + "\n" + object.namespace_name + "/" + object.bucket + "/" + object.object)
                              .substr(0, 16) + "-";
}

Status oci_delete_pars(OciClient& client, const std::string& objectstorage, const OciObjectRef& object,
                       const std::string& prefix, const std::vector<std::string>& ids, int* deleted) {
  std::string base = objectstorage + "/n/" + oci_segment(object.namespace_name) + "/b/" + oci_segment(object.bucket) + "/p/";
  std::set<std::string> todo(ids.begin(), ids.end());
  std::string page;
  do {
    OciCall call{"ListPreauthenticatedRequests", "GET", base, {{"objectNamePrefix", object.object}}};
    if (!page.empty()) call.query.push_back({"page", page});
    CH_ASSIGN(r, client.send(call));
    if (r.status == 404) break;  // no bucket: no requests either
    if (r.status < 200 || r.status > 299) return oci_error(call, r);
    json j = json::parse(r.body, nullptr, false);
    if (j.is_array())
      for (const json& par : j)
        if (par.value("name", "").starts_with(prefix) && par.value("objectName", "").starts_with(object.object))
          todo.insert(par.value("id", ""));
    page = r.header("opc-next-page");
  } while (!page.empty());
  for (const std::string& id : todo) {
    if (id.empty()) continue;
    OciCall call{"DeletePreauthenticatedRequest", "DELETE", base + oci_segment(id)};
    CH_ASSIGN(r, client.send(call));
    if (r.status != 404 && (r.status < 200 || r.status > 299)) return oci_error(call, r);
    if (r.status != 404) ++*deleted;
  }
  return {};
}

}  // namespace ch

// The image calls import (home region) and publish (every other region)
// share: find an image by display name, wait for its work request and for
// AVAILABLE, converge its capability schema and shape compatibility entries.
// IAAS is the region's Core Services base URL ending in /20160918.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"
#include "clouds/oci/oci_client.h"
#include "clouds/oci/oci_config.h"

namespace ch {

// An image of C.name in C.compartment_id that is (or is becoming) usable; "" : none.
// CreateImage's sourceImageType for the image's image_format (QCOW2 or
// VMDK); an error for a format OCI does not import.
Result<std::string> oci_source_image_type(const ImageMetadata& meta);

Result<std::string> oci_find_image(OciClient& client, const std::string& iaas, const OciImageConfig& c);
// Waits until work request ID (making IMAGE_ID) succeeded; FAILED/CANCELED
// is an error with the work request's first error.
Status oci_wait_work_request(OciClient& client, const std::string& iaas, const std::string& id,
                             const std::string& image_id, const std::string& image_name);
Status oci_wait_image_available(OciClient& client, const std::string& iaas, const std::string& id);
// What Oracle's console writes for C's settings (one allowed value each, the default).
nlohmann::json oci_schema_data(const OciImageConfig& c);
// The image's capability schema: SCHEMA_ID or the one found for the image,
// updated when its data differ; else a new one against the current global
// version, made with opc-retry-token TOKEN (*CREATED set).
Result<std::string> oci_ensure_schema(OciClient& client, const std::string& iaas, const OciImageConfig& c,
                                      const std::string& image_id, std::string schema_id, const std::string& token,
                                      bool* created);
// AddImageShapeCompatibilityEntry for each of C.shapes (PUT: idempotent).
Status oci_add_shapes(OciClient& client, const std::string& iaas, const OciImageConfig& c, const std::string& image_id);

// Pre-authenticated requests (read-only URLs of the uploaded object) that
// publish makes so that other regions can import it. Their names start with
// oci_par_prefix(image name, object), so that ones whose id was never
// recorded (an answer lost, a kill) are found again by listing.
std::string oci_par_prefix(const std::string& image_name, const OciObjectRef& object);
// Deletes the PARs of IDS (404 is done) and every PAR named with PREFIX on
// OBJECT (or on an object named OBJECT...: publish's exported copy); OBJECTSTORAGE is the home region's endpoint. *DELETED counts them.
Status oci_delete_pars(OciClient& client, const std::string& objectstorage, const OciObjectRef& object,
                       const std::string& prefix, const std::vector<std::string>& ids, int* deleted);

}  // namespace ch

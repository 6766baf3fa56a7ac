// cloud: oci (Oracle Cloud Infrastructure) — the four cloud steps,
// registered in helper/cloud_table.cc.
//
//   upload   image_file (qcow2, or vmdk) → storage_url
//            (oci://bucket@namespace/prefix/) by multipart upload: parts in
//            parallel with Content-MD5, resumed after a kill
//            (ListMultipartUploadParts), committed with if-none-match: * so
//            an object someone else made is never replaced without --force
//   import   CreateImage from the object (QCOW2/VMDK, launch mode,
//            opc-retry-token), waited on through its work request; then the
//            image capability schema (firmware, secure boot, launch mode, NIC
//            attachment; against the current global schema version) and the
//            shape compatibility entries of oci.shapes
//   publish  records the home image in artifacts, and imports into every
//            other region of `regions`: a read-only pre-authenticated request
//            on the uploaded object, CreateImage from its URL there, schema
//            and shapes, regions in parallel; ExportImage first when the
//            object is gone (clouds/oci/oci_publish.cc)
//   rollback the other regions' images, the requests and the exported copy,
//            the capability schema, the image, the multipart upload or the
//            object — for an unpublished image
#pragma once

#include "clouds/cloud_step.h"

namespace ch {

CloudStepResult oci_upload(ImageMetadata& meta, const CloudStepOptions& opts);
CloudStepResult oci_store(ImageMetadata& meta, const CloudStepOptions& opts);  // upload, any image_format
CloudStepResult oci_import(ImageMetadata& meta, const CloudStepOptions& opts);
CloudStepResult oci_publish(ImageMetadata& meta, const CloudStepOptions& opts);
CloudStepResult oci_rollback(ImageMetadata& meta, const CloudStepOptions& opts);

}  // namespace ch

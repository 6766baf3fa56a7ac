// cloud: gcp — the four cloud steps, registered in helper/cloud_table.cc.
//
//   upload   the GCE tarball (gce-tar: disk.raw in a gzipped oldgnu tar) to
//            storage_url gs://bucket/prefix/ by a resumable upload
//            (operations.upload.session before the first byte; a re-run
//            asks the session and sends the rest); crc32c and md5Hash of the
//            object checked against the file
//   import   images.insert from the object (rawDisk.source), architecture,
//            guestOsFeatures, family, labels, licenses, storage locations,
//            shielded VM keys; the operation followed to DONE; sets
//            imported, import_id (projects/P/global/images/NAME), import_region global
//   publish  converging: the imageUser IAM binding (allAuthenticatedUsers
//            when public, gcp.image_users), deprecation at end_of_life;
//            artifacts.global = the image
//   rollback the image (waiting for its deletion), the object, an unfinished
//            upload session — for an unpublished image
#pragma once

#include "clouds/cloud_step.h"

namespace ch {

CloudStepResult gcp_upload(ImageMetadata& meta, const CloudStepOptions& opts);
CloudStepResult gcp_store(ImageMetadata& meta, const CloudStepOptions& opts);  // upload, any image_format
CloudStepResult gcp_import(ImageMetadata& meta, const CloudStepOptions& opts);
CloudStepResult gcp_publish(ImageMetadata& meta, const CloudStepOptions& opts);
CloudStepResult gcp_rollback(ImageMetadata& meta, const CloudStepOptions& opts);

}  // namespace ch

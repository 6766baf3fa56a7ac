// cloud: nocloud — storage only: the image (and its checksum and signature
// sidecars) goes to storage_url, and nothing is imported anywhere.
//
//   upload   file:///dir/ (or file:///dir/name): a sparse, atomic local copy
//            (a temporary name, fsync, rename; holes stay holes);
//            s3://bucket/prefix/: S3 or any S3-compatible store
//            (AWS_ENDPOINT_URL_S3), as cloud aws uploads it;
//            gs://bucket/prefix/, oss://bucket/prefix/,
//            oci://bucket@namespace/prefix/: as clouds gcp, alicloud and oci
//            upload (resumable, verified), in any image_format
//   import   does not apply (exit 0 with a notice)
//   publish  does not apply (exit 0 with a notice)
//   rollback deletes what upload stored (refused when the YAML records
//            another cloud's import)
#pragma once

#include "clouds/cloud_step.h"

namespace ch {

CloudStepResult nocloud_upload(ImageMetadata& meta, const CloudStepOptions& opts);
CloudStepResult nocloud_import(ImageMetadata& meta, const CloudStepOptions& opts);
CloudStepResult nocloud_publish(ImageMetadata& meta, const CloudStepOptions& opts);
CloudStepResult nocloud_rollback(ImageMetadata& meta, const CloudStepOptions& opts);

}  // namespace ch

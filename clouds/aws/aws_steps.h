// cloud: aws — the four cloud steps, registered in helper/cloud_table.cc.
//
//   upload   image_file (+ .sha256/.sha512 sidecars) → storage_url (S3),
//            multipart, resumable (operations.upload.upload_id)
//   import   ebs-direct (default): image → EBS snapshot, block by block;
//            import-snapshot: the uploaded S3 object → ImportSnapshot task;
//            then RegisterImage; sets imported, import_id, import_region
//   publish  CopyImage to every region (`regions` or `all`), tags, launch
//            permission, deprecation; artifacts per region; exit 3 when
//            some regions fail
//   rollback everything above that is recorded, for an unpublished image
//
// Each step validates the YAML before its first request, records every
// remote id in `operations` and checkpoints before going on.
#pragma once

#include "clouds/cloud_step.h"

namespace ch {

CloudStepResult aws_upload(ImageMetadata& meta, const CloudStepOptions& opts);
CloudStepResult aws_import(ImageMetadata& meta, const CloudStepOptions& opts);
CloudStepResult aws_publish(ImageMetadata& meta, const CloudStepOptions& opts);
CloudStepResult aws_rollback(ImageMetadata& meta, const CloudStepOptions& opts);

}  // namespace ch

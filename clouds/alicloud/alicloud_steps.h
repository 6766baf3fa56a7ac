// cloud: alicloud — the four cloud steps, registered in helper/cloud_table.cc.
//
//   upload   image_file → storage_url (oss://bucket/prefix/) by multipart
//            upload: parts in parallel with Content-MD5, resumed after a
//            kill (ListParts), the object's CRC-64 checked against the
//            file; sets uploaded, upload_url (operations.upload)
//   import   ECS ImportImage of the object in the home region (ClientToken,
//            adopted by name on a re-run), waited for until Available;
//            sets imported, import_id, import_region (operations.import)
//   publish  CopyImage to every other region (parallel, ClientToken), share
//            publicly (ModifyImageSharePermission IsPublic) when public,
//            TagResources; artifacts REGION → image id; exit 3 when some
//            regions fail, converging on a re-run
//   rollback DeleteImage of copies, then the imported image; abort the
//            multipart upload or delete the object — for an unpublished image
#pragma once

#include "clouds/cloud_step.h"

namespace ch {

CloudStepResult alicloud_upload(ImageMetadata& meta, const CloudStepOptions& opts);
CloudStepResult alicloud_store(ImageMetadata& meta, const CloudStepOptions& opts);  // upload, any image_format
CloudStepResult alicloud_import(ImageMetadata& meta, const CloudStepOptions& opts);
CloudStepResult alicloud_publish(ImageMetadata& meta, const CloudStepOptions& opts);
CloudStepResult alicloud_rollback(ImageMetadata& meta, const CloudStepOptions& opts);

}  // namespace ch

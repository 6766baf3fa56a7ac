// cloud: azure — the four cloud steps, registered in helper/cloud_table.cc.
//
//   upload   the fixed VHD (or a raw image, footer made on the fly) →
//            storage_url as a page blob: zero ranges never sent, Content-MD5
//            per page and for the blob, resumable (operations.upload)
//   import   resource group, storage account and gallery checked (created
//            when azure.create says so); image definitions (Gen2, and Gen1
//            for x86_64 BIOS images) created when absent and never changed;
//            a gallery image version per definition, from the blob or a
//            managed image; sets imported, import_id, import_region
//   publish  target regions added to every version (converging), community
//            sharing checked (enabled when azure.community.enable), the
//            community image id (or the version id) per definition in
//            artifacts; exit 3 when some definitions fail
//   rollback versions, managed images, definitions this image made (when
//            empty), the blob — for an unpublished image
#pragma once

#include "clouds/cloud_step.h"

namespace ch {

CloudStepResult azure_upload(ImageMetadata& meta, const CloudStepOptions& opts);
CloudStepResult azure_import(ImageMetadata& meta, const CloudStepOptions& opts);
CloudStepResult azure_publish(ImageMetadata& meta, const CloudStepOptions& opts);
CloudStepResult azure_rollback(ImageMetadata& meta, const CloudStepOptions& opts);

}  // namespace ch

// cloud: openstack — the four cloud steps, registered in helper/cloud_table.cc.
//
//   upload   does not apply: Glance takes the image file itself in import
//            (there is no separate object store step), so upload answers
//            not_applicable and an orchestrator may call it anyway
//   import   per region of `regions` (default OS_REGION_NAME), up to four
//            regions in parallel, every region checked against the catalog
//            first (an unknown one: exit 2 before any Glance request): a
//            Glance v2 image (disk and container format, min_disk, the
//            hw_*/os_* properties, openstack.tags), its id recorded in
//            operations.import.REGION and saved BEFORE it is created (saves
//            serialised), the data sent by PUT .../file (progress), or
//            glance-direct (stage + import) or web-download (import of
//            openstack.source_url) with the import task waited for, then
//            Glance's os_hash_value (sha512) and checksum (md5) compared
//            with the file; a re-run adopts what a killed run left. A failing
//            region does not stop the others (exit 3; 1 when all fail);
//            imported, import_id, import_region once all have their image
//   publish  every region brought to the wanted visibility (public,
//            community, shared, or private), imported first where it is
//            missing, tags made openstack.tags and a shared image's members
//            made openstack.members (missing added, others removed), in
//            parallel; artifacts REGION → image id; a failing region does
//            not stop the others (exit 3)
//   rollback the images this image created, every region
#pragma once

#include "clouds/cloud_step.h"

namespace ch {

CloudStepResult openstack_upload(ImageMetadata& meta, const CloudStepOptions& opts);
CloudStepResult openstack_import(ImageMetadata& meta, const CloudStepOptions& opts);
CloudStepResult openstack_publish(ImageMetadata& meta, const CloudStepOptions& opts);
CloudStepResult openstack_rollback(ImageMetadata& meta, const CloudStepOptions& opts);

}  // namespace ch

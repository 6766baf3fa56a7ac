// The `operations` mapping of the per-image YAML: every remote resource a
// step creates, recorded (and checkpointed) before the step goes on, so that
// a re-run after a kill resumes it and rollback can delete it. One section
// per step, each a flat mapping of strings:
//
//   operations:
//     upload:  {url: s3://b/k, region: us-east-1, upload_id: 2~x}   # upload_id until completed
//     import:  {method: ebs-direct, region: us-east-1, snapshot_id: snap-1,
//               snapshot_state: completed, image_id: ami-1}
//     publish: {eu-west-2: ami-2, us-west-1: ami-3}                 # copies, by region
//
// Values are kept as strings; a section with no keys left is removed, and
// `operations` itself when it is empty. Thread-safety is the caller's.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "metadata/image_metadata.h"

namespace ch {

// operations.SECTION.KEY, nullopt when absent, null or empty.
std::optional<std::string> op_get(const ImageMetadata& meta, std::string_view section,
                                  std::string_view key);
// Every KEY: VALUE of operations.SECTION, in file order.
std::vector<std::pair<std::string, std::string>> op_entries(const ImageMetadata& meta,
                                                            std::string_view section);
void op_set(ImageMetadata& meta, std::string_view section, std::string_view key,
            std::string value);
void op_remove(ImageMetadata& meta, std::string_view section, std::string_view key);
void op_remove_section(ImageMetadata& meta, std::string_view section);

// Top-level mapping KEY (artifacts, say): one entry, nullopt when absent.
std::optional<std::string> map_get(const ImageMetadata& meta, std::string_view key,
                                   std::string_view entry);
void map_set(ImageMetadata& meta, std::string_view key, std::string_view entry, std::string value);
std::vector<std::pair<std::string, std::string>> map_entries(const ImageMetadata& meta,
                                                             std::string_view key);

}  // namespace ch

// The VMDK text descriptor: "key=value" lines, one extent line per extent
// file and a "ddb." disk database (see formats/vmdk.cc for where it lives).
// Parsing is lenient about what it ignores (comments, unknown keys, blank
// lines, CRLF) and strict about the two things a single-file reader needs:
// createType and the extent lines.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ch {

struct VmdkExtentLine {
  std::string access;      // RW, RDONLY, NOACCESS
  uint64_t sectors = 0;    // size of the extent in 512-byte sectors
  std::string type;        // SPARSE, FLAT, ZERO, VMFS, ...
  std::string file_name;   // without quotes
};

struct VmdkDescriptor {
  std::string create_type;  // without quotes; empty when absent
  std::string parent_hint;  // parentFileNameHint of a delta disk; empty when absent
  std::vector<VmdkExtentLine> extents;
};

// Parses descriptor text up to the first NUL byte (embedded descriptors are
// zero-padded to whole sectors). Never fails: unknown lines are ignored.
VmdkDescriptor parse_vmdk_descriptor(std::string_view text);

// The descriptor written at sector 1 of a streamOptimized file. The CID is
// derived from the capacity and the file name (deterministic output);
// characters that would break the quoted extent file name are replaced.
std::string make_vmdk_stream_descriptor(uint64_t capacity_sectors, std::string_view file_name);

}  // namespace ch

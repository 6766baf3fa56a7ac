// The table of formats: input readers with probes, output writers. One file
// per format implements the entry points declared here (formats/raw.cc,
// qcow2.cc, vhd.cc, vmdk.cc, gce_tar.cc); formats/registry.cc ties them to
// names, as qemu's block driver table does.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/file.h"
#include "base/progress.h"
#include "base/result.h"
#include "formats/image_reader.h"
#include "formats/sink.h"

namespace ch {

struct WriteOptions {
  unsigned threads = 0;           // 0 = default_threads()
  Progress* progress = nullptr;   // advanced by guest bytes processed
  // Name recorded inside the output where a format has one (VMDK extent
  // line). Never affects determinism otherwise.
  std::string file_name = "disk";
  // convert_file: fsync the output before renaming it into place. The YAML
  // actions keep this on (state is recorded right after); the standalone
  // form turns it off, as qemu-img convert does not sync either.
  bool durable = true;
};

// What a probe sees: the first bytes of the file (up to 64 KiB), its last
// 512 bytes (VHD footers live there) and its size.
struct ProbeInput {
  std::span<const uint8_t> head;
  std::span<const uint8_t> tail;
  uint64_t file_size = 0;
};

struct InputFormat {
  std::string_view name;
  bool (*probe)(const ProbeInput&);
  Result<std::unique_ptr<ImageReader>> (*open)(File file);
};

struct OutputFormat {
  std::string_view name;
  // Guest size the output will describe for an input of `virtual_size`
  // (VHD rounds up to a MiB, gce-tar to a GiB).
  uint64_t (*output_virtual_size)(uint64_t virtual_size);
  Status (*write)(const ImageReader& in, Sink& out, const WriteOptions& opts);
};

// Inputs in probe order (raw last: it accepts anything).
const std::vector<InputFormat>& input_formats();
const std::vector<OutputFormat>& output_formats();
const InputFormat* find_input_format(std::string_view name);
const OutputFormat* find_output_format(std::string_view name);
// "raw, vhd, qcow2, vmdk, gce-tar"
std::string output_format_names();

// Per-format entry points.
bool probe_qcow2(const ProbeInput&);
bool probe_vhd(const ProbeInput&);
bool probe_vmdk(const ProbeInput&);
bool probe_raw(const ProbeInput&);
Result<std::unique_ptr<ImageReader>> open_raw(File file);
Result<std::unique_ptr<ImageReader>> open_qcow2(File file);
Result<std::unique_ptr<ImageReader>> open_vhd(File file);
Result<std::unique_ptr<ImageReader>> open_vmdk(File file);

Status write_raw(const ImageReader& in, Sink& out, const WriteOptions& opts);
Status write_vhd(const ImageReader& in, Sink& out, const WriteOptions& opts);
Status write_qcow2(const ImageReader& in, Sink& out, const WriteOptions& opts);
Status write_vmdk(const ImageReader& in, Sink& out, const WriteOptions& opts);
Status write_gce_tar(const ImageReader& in, Sink& out, const WriteOptions& opts);
uint64_t vhd_virtual_size(uint64_t);       // round up to 1 MiB (Azure)
// The 512-byte footer write_vhd puts after VIRTUAL_SIZE (a whole MiB) data
// bytes, for a disk written as FILE_NAME: what an upload that makes the VHD
// on the fly (raw data, zero padding, this footer) appends. Errors: a bad
// SOURCE_DATE_EPOCH.
Result<std::array<uint8_t, 512>> vhd_fixed_footer(uint64_t virtual_size, const std::string& file_name);
uint64_t gce_tar_virtual_size(uint64_t);   // round up to 1 GiB (GCE)
uint64_t vmdk_virtual_size(uint64_t);       // round up to the 64 KiB grain

// Convenience used by the CLI: open SRC (probing when src_format is empty),
// write DST as dst_format through a FileSink, commit atomically.
struct ConvertResult {
  std::string src_format;
  uint64_t virtual_size = 0;   // of the output
  uint64_t file_size = 0;      // bytes of DST
};
Result<ConvertResult> convert_file(const std::string& src, std::string_view src_format,
                                   const std::string& dst, std::string_view dst_format,
                                   const WriteOptions& opts);

}  // namespace ch

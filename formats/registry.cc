#include <algorithm>

#include "formats/formats.h"

namespace ch {

namespace {
uint64_t same_size(uint64_t n) { return n; }
}  // namespace

const std::vector<InputFormat>& input_formats() {
  // Probe order: formats with a magic first; raw accepts anything.
  static const std::vector<InputFormat> table = {
      {"qcow2", probe_qcow2, open_qcow2},
      {"vmdk", probe_vmdk, open_vmdk},
      {"vhd", probe_vhd, open_vhd},
      {"raw", probe_raw, open_raw},
  };
  return table;
}

const std::vector<OutputFormat>& output_formats() {
  static const std::vector<OutputFormat> table = {
      {"raw", same_size, write_raw},
      {"vhd", vhd_virtual_size, write_vhd},
      {"qcow2", same_size, write_qcow2},
      {"vmdk", vmdk_virtual_size, write_vmdk},
      {"gce-tar", gce_tar_virtual_size, write_gce_tar},
  };
  return table;
}

const InputFormat* find_input_format(std::string_view name) {
  for (const InputFormat& f : input_formats())
    if (f.name == name) return &f;
  return nullptr;
}

const OutputFormat* find_output_format(std::string_view name) {
  for (const OutputFormat& f : output_formats())
    if (f.name == name) return &f;
  return nullptr;
}

std::string output_format_names() {
  std::string s;
  for (const OutputFormat& f : output_formats()) {
    if (!s.empty()) s += ", ";
    s += f.name;
  }
  return s;
}

Result<ConvertResult> convert_file(const std::string& src, std::string_view src_format,
                                   const std::string& dst, std::string_view dst_format,
                                   const WriteOptions& opts) {
  const OutputFormat* out = find_output_format(dst_format);
  if (!out) {
    return Error{"unknown output format '" + std::string(dst_format) + "' (expected " +
                 output_format_names() + ")"};
  }
  CH_ASSIGN(reader, open_image(src, src_format));
  CH_ASSIGN(sink, FileSink::create(dst));
  if (opts.progress) opts.progress->start("converting " + src, reader->virtual_size());
  Status s = out->write(*reader, *sink, opts);
  if (!s.ok()) return s.error().wrap("converting " + src + " to " + std::string(dst_format));
  CH_TRY(sink->finish());
  uint64_t file_size = sink->position();
  CH_TRY(sink->commit(opts.durable));
  return ConvertResult{std::string(reader->format()), out->output_virtual_size(reader->virtual_size()),
                       file_size};
}

}  // namespace ch

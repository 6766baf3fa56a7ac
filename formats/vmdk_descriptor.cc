#include "formats/vmdk_descriptor.h"

#include <cstdio>

namespace ch {

namespace {

std::string_view trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r')) --e;
  return s.substr(b, e - b);
}

std::string_view unquote(std::string_view s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

// Splits an extent line: ACCESS SECTORS TYPE ["FILE" [OFFSET]]. The file
// name is quoted and may contain spaces.
bool parse_extent_line(std::string_view line, VmdkExtentLine& out) {
  std::vector<std::string_view> tok;
  size_t i = 0;
  while (i < line.size() && tok.size() < 3) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t b = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > b) tok.push_back(line.substr(b, i - b));
  }
  if (tok.size() < 3) return false;
  uint64_t n = 0;
  for (char c : tok[1]) {
    if (c < '0' || c > '9' || n > (UINT64_MAX - 9) / 10) return false;
    n = n * 10 + static_cast<uint64_t>(c - '0');
  }
  out.access = std::string(tok[0]);
  out.sectors = n;
  out.type = std::string(tok[2]);
  std::string_view rest = trim(line.substr(i));
  if (!rest.empty() && rest.front() == '"') {
    size_t close = rest.find('"', 1);
    out.file_name = std::string(rest.substr(1, close == std::string_view::npos ? rest.npos : close - 1));
  }
  return true;
}

}  // namespace

VmdkDescriptor parse_vmdk_descriptor(std::string_view text) {
  if (size_t nul = text.find('\0'); nul != std::string_view::npos) text = text.substr(0, nul);
  VmdkDescriptor d;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = trim(text.substr(0, nl));
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (line.empty() || line.front() == '#') continue;
    if (line.starts_with("RW ") || line.starts_with("RDONLY ") || line.starts_with("NOACCESS ") ||
        line.starts_with("RW\t") || line.starts_with("RDONLY\t") || line.starts_with("NOACCESS\t")) {
      VmdkExtentLine e;
      if (parse_extent_line(line, e)) d.extents.push_back(std::move(e));
      continue;
    }
    size_t eq = line.find('=');
    if (eq == std::string_view::npos) continue;
    std::string_view key = trim(line.substr(0, eq));
    std::string value(unquote(trim(line.substr(eq + 1))));
    if (key == "createType") d.create_type = std::move(value);
    if (key == "parentFileNameHint") d.parent_hint = std::move(value);
  }
  return d;
}

std::string make_vmdk_stream_descriptor(uint64_t capacity_sectors, std::string_view file_name) {
  std::string name;
  for (char c : file_name) name += (c == '"' || static_cast<unsigned char>(c) < 0x20) ? '_' : c;
  if (name.empty()) name = "disk";
  // FNV-1a over the capacity and the name. 0xffffffff is "no parent" and
  // 0xfffffffe "unset" to VMware, so steer clear of both.
  uint32_t cid = 2166136261u;
  auto mix = [&](uint8_t b) { cid = (cid ^ b) * 16777619u; };
  for (int i = 0; i < 8; ++i) mix(static_cast<uint8_t>(capacity_sectors >> (8 * i)));
  for (char c : name) mix(static_cast<uint8_t>(c));
  if (cid >= 0xfffffffeu) cid = 0x12345678u;
  // ESX/OVF expect SCSI geometry: 255 heads, 63 sectors (16 heads is IDE).
  uint64_t cylinders = capacity_sectors / (255 * 63);
  char buf[64];
  std::string s = "# Disk DescriptorFile\nversion=1\n";
  std::snprintf(buf, sizeof buf, "CID=%08x\n", cid);
  s += buf;
  s += "parentCID=ffffffff\ncreateType=\"streamOptimized\"\n\n# Extent description\n";
  s += "RW " + std::to_string(capacity_sectors) + " SPARSE \"" + name + "\"\n\n";
  s += "# The Disk Data Base\n#DDB\n\n";
  s += "ddb.virtualHWVersion = \"4\"\n";
  s += "ddb.geometry.cylinders = \"" + std::to_string(cylinders) + "\"\n";
  s += "ddb.geometry.heads = \"255\"\n";
  s += "ddb.geometry.sectors = \"63\"\n";
  s += "ddb.adapterType = \"lsilogic\"\n";
  return s;
}

}  // namespace ch

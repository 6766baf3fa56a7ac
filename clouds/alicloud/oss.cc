#include "clouds/alicloud/oss.h"

#include <isa-l/crc64.h>

#include <algorithm>
#include <memory>

#include <pugixml.hpp>

namespace ch {

namespace {

std::string unquote(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::toupper(c); });
  return s;
}

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    if (ch == '&') o += "&amp;";
    else if (ch == '<') o += "&lt;";
    else if (ch == '>') o += "&gt;";
    else if (ch == '"') o += "&quot;";
    else o += ch;
  }
  return o;
}

OssCall call(const OssObject& o, std::string method, std::string what) {
  OssCall c;
  c.what = std::move(what);
  c.method = std::move(method);
  c.region = o.region;
  c.bucket = o.bucket;
  c.key = o.key;
  return c;
}

Result<pugi::xml_node> parse(pugi::xml_document& doc, const std::string& body, const char* root,
                             const std::string& what) {
  if (!doc.load_buffer(body.data(), body.size()) || !doc.child(root))
    return Error{what + ": the response is not a " + std::string(root) + " document"};
  return doc.child(root);
}

}  // namespace

Result<uint64_t> file_crc64(const File& file, uint64_t offset, uint64_t length) {
  constexpr size_t kChunk = 1 << 20;
  std::unique_ptr<uint8_t[]> buf(new uint8_t[kChunk]);
  uint64_t crc = 0;
  for (uint64_t done = 0; done < length;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk, length - done));
    CH_TRY(file.pread_full(offset + done, buf.get(), n));
    crc = crc64_ecma_refl(crc, buf.get(), n);
    done += n;
  }
  return crc;
}

Result<std::string> oss_initiate_multipart(AliClient& c, const OssObject& o) {
  OssCall k = call(o, "POST", "OSS InitiateMultipartUpload of");
  k.query = {{"uploads", ""}};
  k.headers = {{"Content-Type", "application/octet-stream"}};
  CH_ASSIGN(resp, c.oss(k));
  pugi::xml_document doc;
  CH_ASSIGN(root, parse(doc, resp.body, "InitiateMultipartUploadResult", k.what));
  std::string id = root.child_value("UploadId");
  if (id.empty()) return Error{k.what + " " + o.url() + ": no UploadId in the response"};
  return id;
}

Result<OssPart> oss_upload_part(AliClient& c, const OssObject& o, const std::string& upload_id, uint32_t number,
                                const File& file, uint64_t offset, uint64_t length, const std::string& md5_base64,
                                const std::string& md5_hex, const std::function<void(uint64_t)>& progress) {
  OssCall k = call(o, "PUT", "OSS UploadPart " + std::to_string(number) + " of");
  k.query = {{"partNumber", std::to_string(number)}, {"uploadId", upload_id}};
  k.headers = {{"Content-MD5", md5_base64}};
  FileBody body{file.fd(), offset, length};
  k.file_body = &body;
  k.progress = progress;
  CH_ASSIGN(resp, c.oss(k));
  OssPart p{number, length, unquote(resp.header("ETag"))};
  if (upper(p.etag) != upper(md5_hex))
    return Error{k.what + " " + o.url() + ": OSS answered ETag " + p.etag + ", not the part's MD5 " + md5_hex};
  return p;
}

Result<std::vector<OssPart>> oss_list_parts(AliClient& c, const OssObject& o, const std::string& upload_id) {
  std::vector<OssPart> parts;
  std::string marker;
  for (;;) {
    OssCall k = call(o, "GET", "OSS ListParts of");
    k.query = {{"uploadId", upload_id}, {"max-parts", "1000"}};
    if (!marker.empty()) k.query.push_back({"part-number-marker", marker});
    CH_ASSIGN(resp, c.oss(k));
    pugi::xml_document doc;
    CH_ASSIGN(root, parse(doc, resp.body, "ListPartsResult", k.what));
    for (pugi::xml_node p : root.children("Part"))
      parts.push_back({static_cast<uint32_t>(p.child("PartNumber").text().as_uint()), p.child("Size").text().as_ullong(),
                       unquote(p.child_value("ETag"))});
    if (std::string(root.child_value("IsTruncated")) != "true") break;
    std::string next = root.child_value("NextPartNumberMarker");
    if (next.empty() || next == marker) return Error{k.what + " " + o.url() + ": truncated without a NextPartNumberMarker"};
    marker = next;
  }
  return parts;
}

Result<std::string> oss_complete_multipart(AliClient& c, const OssObject& o, const std::string& upload_id,
                                           const std::vector<OssPart>& parts) {
  OssCall k = call(o, "POST", "OSS CompleteMultipartUpload of");
  k.query = {{"uploadId", upload_id}};
  k.headers = {{"Content-Type", "application/xml"}};
  k.body = "<CompleteMultipartUpload>";
  for (const OssPart& p : parts)
    k.body += "<Part><PartNumber>" + std::to_string(p.number) + "</PartNumber><ETag>\"" + xml_escape(p.etag) +
              "\"</ETag></Part>";
  k.body += "</CompleteMultipartUpload>";
  CH_ASSIGN(resp, c.oss(k));
  pugi::xml_document doc;
  CH_ASSIGN(root, parse(doc, resp.body, "CompleteMultipartUploadResult", k.what));
  (void)root;
  return resp.header("x-oss-hash-crc64ecma");
}

Status oss_abort_multipart(AliClient& c, const OssObject& o, const std::string& upload_id) {
  OssCall k = call(o, "DELETE", "OSS AbortMultipartUpload of");
  k.query = {{"uploadId", upload_id}};
  k.accept = {404};  // NoSuchUpload: already gone
  CH_ASSIGN(resp, c.oss(k));
  (void)resp;
  return {};
}

Result<std::optional<OssHead>> oss_head(AliClient& c, const OssObject& o) {
  OssCall k = call(o, "HEAD", "OSS HeadObject");
  k.accept = {400, 403, 404};
  CH_ASSIGN(resp, c.oss(k));
  if (resp.status == 404) return std::optional<OssHead>();
  if (resp.status != 200) {
    // A HEAD answer has no error document, only x-oss-ec: ask for one byte
    // to get the error's code and message for the report.
    OssCall g = call(o, "GET", "OSS HeadObject");
    g.headers = {{"Range", "bytes=0-0"}};
    CH_ASSIGN(again, c.oss(g));
    (void)again;
    return Error{k.what + " oss://" + o.bucket + "/" + o.key + ": HTTP " + std::to_string(resp.status)};
  }
  OssHead h;
  h.size = std::strtoull(resp.header("Content-Length").c_str(), nullptr, 10);
  h.etag = unquote(resp.header("ETag"));
  h.crc64 = resp.header("x-oss-hash-crc64ecma");
  return std::optional<OssHead>(h);
}

Status oss_delete(AliClient& c, const OssObject& o) {
  OssCall k = call(o, "DELETE", "OSS DeleteObject");
  CH_ASSIGN(resp, c.oss(k));
  (void)resp;
  return {};
}

}  // namespace ch

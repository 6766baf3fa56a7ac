// The single calls of a multipart upload and their inputs: part layout,
// per-part digests, object headers.
#include "clouds/aws/s3_multipart.h"

#include <openssl/evp.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <thread>
#include <utility>

#include "clouds/aws/aws_xml.h"
#include "clouds/http/ascii_case.h"
#include "clouds/http/retry.h"
#include "clouds/signing/digest.h"
#include "clouds/signing/sigv4.h"
#include "helper/output.h"

namespace ch {

namespace {

constexpr uint64_t kMiB = 1ull << 20;
constexpr size_t kHashChunk = 1 << 20;         // one pread per MiB while hashing
constexpr size_t kMaxUserMetadata = 2048;      // S3: user metadata headers total at most 2 KB
constexpr size_t kMaxTags = 10;                // S3: at most 10 tags per object
constexpr int kCompleteAttempts = 4;           // of a Complete answered "200 <Error>"

using MdCtx = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

MdCtx new_ctx(const EVP_MD* md) {
  MdCtx ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  CH_CHECK(ctx && EVP_DigestInit_ex(ctx.get(), md, nullptr) == 1);
  return ctx;
}

std::string finish(EVP_MD_CTX* ctx, std::string* raw) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  CH_CHECK(EVP_DigestFinal_ex(ctx, out, &len) == 1);
  if (raw) raw->assign(reinterpret_cast<const char*>(out), len);
  return hex_encode({out, len});
}

std::string unquote(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

bool printable_ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
}

std::string human_size(uint64_t bytes) {
  if (bytes % (1ull << 30) == 0 && bytes > 0) return std::to_string(bytes >> 30) + " GiB";
  if (bytes % kMiB == 0 && bytes > 0) return std::to_string(bytes >> 20) + " MiB";
  return std::to_string(bytes) + " bytes";
}

}  // namespace

uint64_t S3PartLayout::length(uint32_t number, uint64_t file_size) const {
  uint64_t off = offset(number);
  return off >= file_size ? 0 : std::min(part_size, file_size - off);
}

Result<S3PartLayout> s3_part_layout(uint64_t file_size, uint64_t requested) {
  S3PartLayout l;
  if (requested == 0) {
    l.part_size = kS3DefaultPartSize;
    uint64_t needed = (file_size + kS3MaxParts - 1) / kS3MaxParts;
    if (needed > l.part_size) l.part_size = (needed + kMiB - 1) / kMiB * kMiB;
    if (l.part_size > kS3MaxPartSize) {
      return Error{"a file of " + std::to_string(file_size) +
                   " bytes exceeds S3's largest multipart object (10000 parts of 5 GiB)"};
    }
  } else {
    if (requested < kS3MinPartSize || requested > kS3MaxPartSize) {
      return Error{"part size " + std::to_string(requested) + " is outside S3's 5 MiB..5 GiB"};
    }
    l.part_size = requested;
  }
  uint64_t count = (file_size + l.part_size - 1) / l.part_size;
  if (count > kS3MaxParts) {
    return Error{"part size " + std::to_string(l.part_size) + " splits " + human_size(file_size) +
                 " into " + std::to_string(count) + " parts; S3 allows 10000"};
  }
  l.count = static_cast<uint32_t>(count);
  return l;
}

Result<RangeDigests> digest_file_range(const File& file, uint64_t offset, uint64_t length) {
  MdCtx md5 = new_ctx(EVP_md5());
  MdCtx sha = new_ctx(EVP_sha256());
  std::unique_ptr<char[]> buf(new char[kHashChunk]);
  for (uint64_t done = 0; done < length;) {
    size_t n = static_cast<size_t>(std::min<uint64_t>(kHashChunk, length - done));
    CH_TRY(file.pread_full(offset + done, buf.get(), n));
    CH_CHECK(EVP_DigestUpdate(md5.get(), buf.get(), n) == 1);
    CH_CHECK(EVP_DigestUpdate(sha.get(), buf.get(), n) == 1);
    done += n;
  }
  RangeDigests d;
  std::string raw;
  d.md5_hex = finish(md5.get(), &raw);
  d.md5_base64 = base64_encode(bytes_of(raw));
  d.sha256_hex = finish(sha.get(), &raw);
  d.sha256_base64 = base64_encode(bytes_of(raw));
  return d;
}

std::string content_md5(std::string_view bytes) {
  MdCtx md5 = new_ctx(EVP_md5());
  CH_CHECK(EVP_DigestUpdate(md5.get(), bytes.data(), bytes.size()) == 1);
  std::string raw;
  finish(md5.get(), &raw);
  return base64_encode(bytes_of(raw));
}

Status check_s3_object_options(const S3UploadOptions& o) {
  size_t meta_bytes = 0;
  for (const auto& [name, value] : o.metadata) {
    if (name.empty() || !std::all_of(name.begin(), name.end(), [](char c) {
          return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_';
        })) {
      return Error{"S3 metadata name '" + name + "': use only letters, digits, '-' and '_'"};
    }
    if (!printable_ascii(value)) {
      return Error{"S3 metadata '" + name + "': the value must be printable US-ASCII"};
    }
    meta_bytes += name.size() + value.size();
  }
  if (!o.sha256.empty()) {
    if (o.sha256.size() != 64 || !std::all_of(o.sha256.begin(), o.sha256.end(), [](char c) {
          return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
        })) {
      return Error{"sha256 '" + o.sha256 + "' is not 64 lowercase hex digits"};
    }
    meta_bytes += 6 + 64;
  }
  if (meta_bytes > kMaxUserMetadata) {
    return Error{"S3 user metadata of " + std::to_string(meta_bytes) + " bytes exceeds S3's 2 KB"};
  }
  if (o.tags.size() > kMaxTags) {
    return Error{std::to_string(o.tags.size()) + " S3 object tags; S3 allows 10"};
  }
  if (!printable_ascii(o.content_type)) return Error{"content type must be printable US-ASCII"};
  return ok_status();
}

std::vector<HttpHeader> s3_object_headers(const S3UploadOptions& o) {
  std::vector<HttpHeader> h;
  if (!o.content_type.empty()) h.push_back({"Content-Type", o.content_type});
  if (!o.tags.empty()) {
    std::string tagging;
    for (const auto& [k, v] : o.tags) {
      if (!tagging.empty()) tagging += '&';
      tagging += aws_uri_encode(k, false) + "=" + aws_uri_encode(v, false);
    }
    h.push_back({"x-amz-tagging", tagging});
  }
  for (const auto& [name, value] : o.metadata) {
    if (ascii_lowercase(name) == "sha256" && !o.sha256.empty()) continue;  // the field wins
    h.push_back({"x-amz-meta-" + ascii_lowercase(name), value});
  }
  if (!o.sha256.empty()) h.push_back({"x-amz-meta-sha256", o.sha256});
  return h;
}

Result<std::string> s3_create_multipart_upload(AwsClient& client, const std::string& region,
                                               const S3Url& url, const S3UploadOptions& options) {
  AwsClient::RestCall call = s3_object_call(region, url, "POST", "S3 CreateMultipartUpload");
  call.request.query.push_back({"uploads", ""});
  call.request.headers = s3_object_headers(options);
  call.request.headers.push_back({"x-amz-checksum-algorithm", "SHA256"});
  CH_ASSIGN(resp, client.rest(call));
  pugi::xml_document doc;
  CH_TRY(parse_aws_xml(resp.body, doc, call.what));
  std::string id = xml_child_text(xml_root(doc), "UploadId");
  if (id.empty()) return Error{call.what + ": no UploadId in the response"};
  return id;
}

Result<S3Part> s3_upload_part(AwsClient& client, const std::string& region, const S3Url& url,
                              const std::string& upload_id, uint32_t number, const File& file,
                              uint64_t offset, uint64_t length, const RangeDigests& digests,
                              const std::function<void(uint64_t)>& progress, bool part_checksum) {
  AwsClient::RestCall call =
      s3_object_call(region, url, "PUT", "S3 UploadPart " + std::to_string(number) + " of");
  call.request.query.push_back({"partNumber", std::to_string(number)});
  call.request.query.push_back({"uploadId", upload_id});
  call.request.headers.push_back({"Content-MD5", digests.md5_base64});
  if (part_checksum) {
    call.request.headers.push_back({"x-amz-sdk-checksum-algorithm", "SHA256"});
    call.request.headers.push_back({"x-amz-checksum-sha256", digests.sha256_base64});
  }
  call.payload_sha256 = digests.sha256_hex;
  FileBody body{file.fd(), offset, length};
  SendOptions so;
  so.file_body = &body;
  so.on_upload_progress = progress;
  CH_ASSIGN(resp, client.rest(call, so));
  S3Part part{number, length, unquote(resp.header("ETag")), resp.header("x-amz-checksum-sha256")};
  if (part.etag.empty()) return Error{call.what + ": no ETag in the response"};
  return part;
}

Result<std::vector<S3Part>> s3_list_parts(AwsClient& client, const std::string& region,
                                          const S3Url& url, const std::string& upload_id,
                                          int page_size, std::string* checksum_algorithm) {
  std::vector<S3Part> parts;
  if (checksum_algorithm) checksum_algorithm->clear();
  std::string marker;
  for (;;) {
    AwsClient::RestCall call = s3_object_call(region, url, "GET", "S3 ListParts of");
    call.request.query.push_back({"uploadId", upload_id});
    call.request.query.push_back({"max-parts", std::to_string(page_size)});
    if (!marker.empty()) call.request.query.push_back({"part-number-marker", marker});
    CH_ASSIGN(resp, client.rest(call));
    pugi::xml_document doc;
    CH_TRY(parse_aws_xml(resp.body, doc, call.what));
    pugi::xml_node root = xml_root(doc);
    if (checksum_algorithm && checksum_algorithm->empty())
      *checksum_algorithm = xml_child_text(root, "ChecksumAlgorithm");
    for (pugi::xml_node p : xml_children(root, "Part")) {
      S3Part part;
      part.number = xml_child(p, "PartNumber").text().as_uint();
      part.size = xml_child(p, "Size").text().as_ullong();
      part.etag = unquote(xml_child_text(p, "ETag"));
      part.checksum_sha256 = xml_child_text(p, "ChecksumSHA256");
      parts.push_back(std::move(part));
    }
    if (xml_child_text(root, "IsTruncated") != "true") break;
    std::string next = xml_child_text(root, "NextPartNumberMarker");
    if (next.empty() || next == marker) {
      return Error{call.what + ": truncated page without a usable NextPartNumberMarker"};
    }
    marker = std::move(next);
  }
  return parts;
}

Result<S3Object> s3_complete_multipart_upload(AwsClient& client, const std::string& region,
                                              const S3Url& url, const std::string& upload_id,
                                              const std::vector<S3Part>& parts, uint64_t file_size) {
  AwsClient::RestCall call = s3_object_call(region, url, "POST", "S3 CompleteMultipartUpload");
  call.request.query.push_back({"uploadId", upload_id});
  std::string body = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
  for (const S3Part& p : parts) {
    body += "<Part><PartNumber>" + std::to_string(p.number) + "</PartNumber><ETag>\"" +
            xml_escape(p.etag) + "\"</ETag>" +
            (p.checksum_sha256.empty() ? ""
                                       : "<ChecksumSHA256>" + xml_escape(p.checksum_sha256) + "</ChecksumSHA256>") +
            "</Part>";
  }
  body += "</CompleteMultipartUpload>";
  call.request.body = std::move(body);
  call.request.headers.push_back({"Content-Type", "application/xml"});
  pugi::xml_document doc;
  pugi::xml_node root;
  HttpResponse resp;
  for (int attempt = 1;; ++attempt) {
    CH_ASSIGN(answer, client.rest(call));
    resp = std::move(answer);
    CH_TRY(parse_aws_xml(resp.body, doc, call.what));
    root = xml_root(doc);
    // S3: Complete may answer 200 and still fail, with an <Error> document
    // (it sends 200 early to keep the connection alive while it assembles
    // the parts); InternalError or SlowDown there is worth another try, as
    // it would be in a 4xx/5xx.
    if (!xml_is(root, "Error")) break;
    Error e = aws_error(call.what, resp);
    if (attempt >= kCompleteAttempts || !is_retryable_response(400, resp.body)) return e;
    log_info(e.message + "; retrying");
    std::this_thread::sleep_for(std::chrono::milliseconds(250) * (1 << (attempt - 1)));
  }
  S3Object o;
  o.bucket = url.bucket;
  o.key = url.key;
  o.etag = unquote(xml_child_text(root, "ETag"));
  o.size = file_size;
  o.version_id = resp.header("x-amz-version-id");
  return o;
}

}  // namespace ch

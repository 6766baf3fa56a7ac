// s3:// URLs, single-object calls, buckets and the listing/aborting of
// multipart uploads. The upload driver lives in s3_upload.cc, the multipart
// calls in s3_multipart.cc.
#include "clouds/aws/s3.h"

#include <algorithm>
#include <cctype>
#include <utility>

#include "clouds/aws/s3_multipart.h"
#include "clouds/aws/aws_xml.h"
#include "clouds/signing/sigv4.h"
#include "helper/output.h"

namespace ch {

namespace {

constexpr size_t kMaxKeyBytes = 1024;  // S3: object keys are at most 1024 bytes of UTF-8
constexpr uint64_t kGetRange = 8ull << 20;  // bytes per ranged GET

bool starts_with(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool ends_with(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

bool is_ipv4_form(std::string_view s) {
  int groups = 0;
  size_t start = 0;
  while (start <= s.size()) {
    size_t dot = s.find('.', start);
    std::string_view g = s.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (g.empty() || g.size() > 3 || !std::all_of(g.begin(), g.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return false;
    }
    ++groups;
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return groups == 4;
}

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string unquote(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

uint64_t parse_u64(const std::string& s) {
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') break;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

AwsClient::RestCall bucket_call(const std::string& region, const std::string& bucket,
                                std::string method, std::string what) {
  AwsClient::RestCall call;
  call.service = AwsService::kS3;
  call.region = region;
  call.bucket = bucket;
  call.raw_path = "/";
  call.request.method = std::move(method);
  call.what = std::move(what);
  return call;
}

}  // namespace

// ---------------------------------------------------------------------------
// URLs

Status check_s3_bucket_name(std::string_view b) {
  if (b.size() < 3 || b.size() > 63) return Error{"must be 3 to 63 characters long"};
  for (char c : b) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
    if (!ok) return Error{"must use only lowercase letters, digits, '.' and '-'"};
  }
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (!alnum(b.front()) || !alnum(b.back())) return Error{"must begin and end with a letter or digit"};
  if (b.find("..") != std::string_view::npos) return Error{"must not contain two adjacent periods"};
  if (is_ipv4_form(b)) return Error{"must not be formatted as an IP address"};
  for (std::string_view p : {"xn--", "sthree-", "amzn-s3-demo-"}) {
    if (starts_with(b, p)) return Error{"must not start with the reserved prefix '" + std::string(p) + "'"};
  }
  for (std::string_view s : {"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"}) {
    if (ends_with(b, s)) return Error{"must not end with the reserved suffix '" + std::string(s) + "'"};
  }
  return ok_status();
}

Result<S3Url> parse_s3_url(std::string_view url) {
  std::string shown(url);
  if (!starts_with(url, "s3://")) return Error{"'" + shown + "': not an s3:// URL"};
  std::string_view rest = url.substr(5);
  size_t slash = rest.find('/');
  S3Url out;
  out.bucket = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) out.key = std::string(rest.substr(slash + 1));
  if (out.bucket.empty()) return Error{shown + ": no bucket name"};
  Status st = check_s3_bucket_name(out.bucket);
  if (!st.ok()) return Error{shown + ": invalid S3 bucket name '" + out.bucket + "': " + st.message()};
  if (out.key.size() > kMaxKeyBytes) return Error{shown + ": S3 object key longer than 1024 bytes"};
  return out;
}

std::string s3_url_string(const S3Url& url) { return "s3://" + url.bucket + "/" + url.key; }

S3Url s3_object_url(const S3Url& base, std::string_view name) {
  if (!base.is_prefix()) return base;
  return S3Url{base.bucket, base.key + std::string(name)};
}

// ---------------------------------------------------------------------------
// Objects

AwsClient::RestCall s3_object_call(const std::string& region, const S3Url& url, std::string method,
                                   std::string what) {
  AwsClient::RestCall call;
  call.service = AwsService::kS3;
  call.region = region;
  call.bucket = url.bucket;
  call.raw_path = "/" + url.key;
  call.request.method = std::move(method);
  call.what = std::move(what) + " " + s3_url_string(url);
  return call;
}

Result<std::optional<S3Object>> s3_head_object(AwsClient& client, const std::string& region,
                                               const S3Url& url) {
  AwsClient::RestCall call = s3_object_call(region, url, "HEAD", "S3 HeadObject");
  call.accept = {404};
  SendOptions so;
  so.no_response_body = true;
  CH_ASSIGN(resp, client.rest(call, so));
  if (resp.status == 404) return std::optional<S3Object>();
  S3Object o;
  o.bucket = url.bucket;
  o.key = url.key;
  o.etag = unquote(resp.header("ETag"));
  o.size = parse_u64(resp.header("Content-Length"));
  o.version_id = resp.header("x-amz-version-id");
  o.content_type = resp.header("Content-Type");
  constexpr std::string_view kMeta = "x-amz-meta-";
  for (const HttpHeader& h : resp.headers) {
    std::string name = lowercase(h.name);
    if (starts_with(name, kMeta)) o.metadata[name.substr(kMeta.size())] = resp.header(h.name);
  }
  return std::optional<S3Object>(std::move(o));
}

Status s3_get_object(AwsClient& client, const std::string& region, const S3Url& url,
                     const std::function<bool(std::string_view chunk)>& sink) {
  // In ranges held in memory, not one streamed GET: a retried range then
  // starts clean, where a retried stream would hand SINK its start again.
  uint64_t total = 0;
  for (uint64_t offset = 0;; ) {
    AwsClient::RestCall call = s3_object_call(region, url, "GET", "S3 GetObject");
    call.request.headers.push_back(
        {"Range", "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + kGetRange - 1)});
    call.accept = {416};  // S3: any range of an empty object is unsatisfiable
    CH_ASSIGN(resp, client.rest(call));
    if (resp.status == 416 && offset == 0) return ok_status();
    if (resp.status == 416) return aws_error(call.what, resp);
    if (resp.status == 200) {  // the server ignored Range: this is the whole object
      if (offset == 0 && !resp.body.empty() && !sink(resp.body)) return Error{call.what + ": aborted by the reader"};
      return offset == 0 ? ok_status() : Status(Error{call.what + ": the server ignored the Range header"});
    }
    // "bytes FIRST-LAST/TOTAL"
    std::string range = resp.header("Content-Range");
    size_t slash = range.rfind('/');
    if (slash == std::string::npos) return Error{call.what + ": HTTP 206 without a usable Content-Range"};
    total = parse_u64(range.substr(slash + 1));
    if (resp.body.empty()) return Error{call.what + ": HTTP 206 with an empty body at offset " + std::to_string(offset)};
    if (!sink(resp.body)) return Error{call.what + ": aborted by the reader"};
    offset += resp.body.size();
    if (offset >= total) return ok_status();
  }
}

Result<std::string> s3_get_object_bytes(AwsClient& client, const std::string& region,
                                        const S3Url& url) {
  std::string out;
  CH_TRY(s3_get_object(client, region, url, [&](std::string_view chunk) {
    out.append(chunk);
    return true;
  }));
  return out;
}

Result<S3Object> s3_put_object_bytes(AwsClient& client, const std::string& region, const S3Url& url,
                                     const std::string& body, const std::string& content_type,
                                     const std::map<std::string, std::string>& metadata) {
  S3UploadOptions opts;
  opts.content_type = content_type;
  opts.metadata = metadata;
  CH_TRY(check_s3_object_options(opts));
  AwsClient::RestCall call = s3_object_call(region, url, "PUT", "S3 PutObject");
  call.request.headers = s3_object_headers(opts);
  call.request.headers.push_back({"Content-MD5", content_md5(body)});
  call.request.body = body;
  CH_ASSIGN(resp, client.rest(call));
  S3Object o;
  o.bucket = url.bucket;
  o.key = url.key;
  o.etag = unquote(resp.header("ETag"));
  o.size = body.size();
  o.version_id = resp.header("x-amz-version-id");
  o.content_type = content_type;
  return o;
}

Status s3_delete_object(AwsClient& client, const std::string& region, const S3Url& url) {
  CH_TRY(client.rest(s3_object_call(region, url, "DELETE", "S3 DeleteObject")));
  return ok_status();
}

// ---------------------------------------------------------------------------
// Multipart uploads in progress

Result<std::vector<S3MultipartUpload>> s3_list_uploads(AwsClient& client, const std::string& region,
                                                       const std::string& bucket,
                                                       const std::string& prefix) {
  std::vector<S3MultipartUpload> out;
  std::string key_marker, id_marker;
  const std::string what = "S3 ListMultipartUploads s3://" + bucket + "/" + prefix;
  for (int page = 0;; ++page) {
    AwsClient::RestCall call = bucket_call(region, bucket, "GET", what);
    call.request.query.push_back({"uploads", ""});
    if (!prefix.empty()) call.request.query.push_back({"prefix", prefix});
    if (!key_marker.empty()) call.request.query.push_back({"key-marker", key_marker});
    if (!id_marker.empty()) call.request.query.push_back({"upload-id-marker", id_marker});
    CH_ASSIGN(resp, client.rest(call));
    pugi::xml_document doc;
    CH_TRY(parse_aws_xml(resp.body, doc, what));
    pugi::xml_node root = xml_root(doc);
    for (pugi::xml_node u : xml_children(root, "Upload")) {
      out.push_back({xml_child_text(u, "Key"), xml_child_text(u, "UploadId"),
                     xml_child_text(u, "Initiated")});
    }
    if (xml_child_text(root, "IsTruncated") != "true") break;
    std::string next_key = xml_child_text(root, "NextKeyMarker");
    std::string next_id = xml_child_text(root, "NextUploadIdMarker");
    if (next_key.empty() || (next_key == key_marker && next_id == id_marker)) {
      return Error{what + ": truncated page without a usable NextKeyMarker"};
    }
    key_marker = std::move(next_key);
    id_marker = std::move(next_id);
  }
  return out;
}

Status s3_abort_upload(AwsClient& client, const std::string& region, const S3Url& url,
                       const std::string& upload_id) {
  AwsClient::RestCall call = s3_object_call(region, url, "DELETE", "S3 AbortMultipartUpload");
  call.request.query.push_back({"uploadId", upload_id});
  call.accept = {404};
  CH_ASSIGN(resp, client.rest(call));
  if (resp.status == 404) {
    Error e = aws_error(call.what, resp);
    if (e.code != "NoSuchUpload") return e;  // NoSuchBucket and the like are real failures
    log_debug("S3: upload " + upload_id + " of " + s3_url_string(url) + " was already gone");
  }
  return ok_status();
}

// ---------------------------------------------------------------------------
// Buckets

Status s3_create_bucket(AwsClient& client, const std::string& region, const std::string& bucket) {
  Status valid = check_s3_bucket_name(bucket);
  if (!valid.ok()) return Error{"invalid S3 bucket name '" + bucket + "': " + valid.message()};
  AwsClient::RestCall call = bucket_call(region, bucket, "PUT", "S3 CreateBucket " + bucket);
  if (region != "us-east-1") {
    // S3: us-east-1 takes no LocationConstraint; every other region needs it.
    call.request.body =
        "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        "<LocationConstraint>" + xml_escape(region) + "</LocationConstraint>"
        "</CreateBucketConfiguration>";
    call.request.headers.push_back({"Content-Type", "application/xml"});
  }
  call.accept = {409};
  CH_ASSIGN(resp, client.rest(call));
  if (resp.status == 409) {
    Error e = aws_error(call.what, resp);
    if (e.code != "BucketAlreadyOwnedByYou") return e;
  }
  return ok_status();
}

Result<std::string> s3_bucket_region(AwsClient& client, const std::string& bucket,
                                     const std::string& hint_region) {
  Status valid = check_s3_bucket_name(bucket);
  if (!valid.ok()) return Error{"invalid S3 bucket name '" + bucket + "': " + valid.message()};
  const std::string what = "S3 HeadBucket " + bucket;
  AwsClient::RestCall head = bucket_call(hint_region, bucket, "HEAD", what);
  // S3 names the region even when the hint is wrong (301) or we may not
  // read the bucket (403); a HEAD answer has no error body to parse.
  head.accept = {301, 400, 403, 404};
  SendOptions so;
  so.no_response_body = true;
  CH_ASSIGN(resp, client.rest(head, so));
  if (resp.status == 404) {
    std::string msg = what + ": HTTP 404 NoSuchBucket: the bucket does not exist";
    if (!resp.request_id.empty()) msg += " (request id " + resp.request_id + ")";
    return Error{msg, "NoSuchBucket", 404};
  }
  std::string region = resp.header("x-amz-bucket-region");
  if (!region.empty()) return region;
  if (resp.status >= 300) {
    std::string msg = what + ": HTTP " + std::to_string(resp.status) + " without x-amz-bucket-region";
    if (!resp.request_id.empty()) msg += " (request id " + resp.request_id + ")";
    return Error{msg, "", resp.status};
  }
  AwsClient::RestCall loc = bucket_call(hint_region, bucket, "GET", "S3 GetBucketLocation " + bucket);
  loc.request.query.push_back({"location", ""});
  CH_ASSIGN(lresp, client.rest(loc));
  pugi::xml_document doc;
  CH_TRY(parse_aws_xml(lresp.body, doc, loc.what));
  std::string constraint = xml_root(doc).text().as_string();
  // S3: an empty constraint means us-east-1, and "EU" is eu-west-1's legacy name.
  if (constraint.empty() || constraint == "null") return std::string("us-east-1");
  if (constraint == "EU") return std::string("eu-west-1");
  return constraint;
}

}  // namespace ch

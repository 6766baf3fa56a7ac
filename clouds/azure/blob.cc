// The Blob service REST calls (blob.h states the contract). Every call is
// rebuilt and re-authorised per attempt (x-ms-date moves on) and sent
// through send_with_retry; a non-2xx answer becomes one error line from the
// service's <Error><Code/><Message/></Error> document (or, for HEAD, which
// has no body, its x-ms-error-code header) and x-ms-request-id.
#include "clouds/azure/blob.h"

#include <pugixml.hpp>

#include <algorithm>
#include <utility>

#include "clouds/http/ascii_case.h"
#include "helper/output.h"

namespace ch {

namespace {

bool is_2xx(long s) { return s >= 200 && s < 300; }

uint64_t parse_u64(std::string_view s) {
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') break;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

std::string first_line(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  s = s.substr(b);
  s = s.substr(0, s.find_first_of("\r\n"));
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return std::string(s);
}

std::string_view status_text(long status) {
  switch (status) {
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 409: return "Conflict";
    case 412: return "Precondition Failed";
    case 413: return "Request Entity Too Large";
    case 416: return "Range Not Satisfiable";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "";
  }
}

// The first child element named NAME, whatever its namespace prefix.
pugi::xml_node child(pugi::xml_node node, std::string_view name) {
  for (pugi::xml_node c = node.first_child(); c; c = c.next_sibling()) {
    if (c.type() != pugi::node_element) continue;
    std::string_view n = c.name();
    size_t colon = n.find(':');
    if ((colon == std::string_view::npos ? n : n.substr(colon + 1)) == name) return c;
  }
  return {};
}

std::string child_text(pugi::xml_node node, std::string_view name) { return child(node, name).child_value(); }

Error blob_error(const std::string& what, const HttpResponse& resp) {
  std::string code = resp.header("x-ms-error-code");
  std::string message;
  pugi::xml_document doc;
  size_t lt = resp.body.find('<');
  if (lt != std::string::npos && doc.load_buffer(resp.body.data() + lt, resp.body.size() - lt)) {
    pugi::xml_node root = doc.document_element();
    std::string c = child_text(root, "Code");
    if (!c.empty()) code = c;
    message = first_line(child_text(root, "Message"));
  } else if (!resp.body.empty()) {
    message = first_line(std::string_view(resp.body).substr(0, 200));  // a proxy's plain-text page
  }
  std::string out = what + ": HTTP " + std::to_string(resp.status);
  if (!code.empty()) {
    out += " " + code;
  } else if (!status_text(resp.status).empty()) {
    out += " " + std::string(status_text(resp.status));
  }
  if (!message.empty()) out += ": " + message;
  if (!resp.request_id.empty()) out += " (request id " + resp.request_id + ")";
  return Error{out, code, resp.status};
}

Status parse_xml(const std::string& body, pugi::xml_document& doc, const std::string& what) {
  size_t lt = body.find('<');
  if (lt == std::string::npos) return Error{what + ": the response is not an XML document"};
  pugi::xml_parse_result r = doc.load_buffer(body.data() + lt, body.size() - lt);
  if (!r) {
    return Error{what + ": malformed XML in the response: " + std::string(r.description()) + " at offset " +
                 std::to_string(r.offset + lt)};
  }
  return ok_status();
}

// One call: what the request is, and how it is built before authorisation.
struct BlobCall {
  std::string what;       // "Put Page az://a/c/d.vhd (bytes 0-511)"
  HttpRequest request;    // method, path, query, headers (no auth)
};

// "/CONTAINER" or "/CONTAINER/NAME" under the endpoint's own path.
Result<HttpRequest> base_request(const BlobLocation& loc, bool container_only, const std::string& what) {
  Result<HttpRequest> req = request_from_url(loc.endpoint);
  if (!req.ok()) return req.error().wrap(what);
  std::string prefix = req->path == "/" ? "" : req->path;
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  if (container_only) {
    req->path = prefix + "/" + loc.container;
  } else {
    req->path = prefix + loc.url().substr(loc.endpoint.size());  // "/container/encoded-name"
  }
  req->query.clear();
  return req;
}

}  // namespace

BlobClient::BlobClient(HttpClient& client, StorageAuth auth, RetryPolicy policy)
    : client_(client), auth_(std::move(auth)), policy_(policy) {}

namespace {

Result<HttpResponse> send_call(HttpClient& client, const RetryPolicy& policy, const StorageAuth& auth,
                               const BlobCall& call, const SendOptions& base_options, int* attempts = nullptr) {
  SendOptions options = base_options;
  if (options.label.empty()) options.label = call.what;
  RetryStats stats;
  Result<HttpResponse> resp = send_with_retry(
      client, policy,
      [&](int) -> Result<HttpRequest> {
        HttpRequest r = call.request;
        Status st = authorize_storage_request(r, auth);
        if (!st.ok()) return st.error().wrap(call.what);
        return r;
      },
      options, &stats);
  if (attempts) *attempts = stats.attempts;
  if (!resp.ok()) return resp.error().wrap(call.what);
  return resp;
}

}  // namespace

Result<std::optional<BlobProperties>> BlobClient::properties(const BlobLocation& blob) {
  BlobCall call{"Get Blob Properties " + blob.az_url(), {}};
  CH_ASSIGN(req, base_request(blob, false, call.what));
  call.request = std::move(req);
  call.request.method = "HEAD";
  SendOptions so;
  so.no_response_body = true;
  CH_ASSIGN(resp, send_call(client_, policy_, auth_, call, so));
  if (resp.status == 404) return std::optional<BlobProperties>();
  if (!is_2xx(resp.status)) return blob_error(call.what, resp);
  BlobProperties p;
  p.content_length = parse_u64(resp.header("Content-Length"));
  p.blob_type = resp.header("x-ms-blob-type");
  p.content_md5 = resp.header("Content-MD5");
  p.content_type = resp.header("Content-Type");
  p.etag = resp.header("ETag");
  for (const HttpHeader& h : resp.headers) {
    std::string name = ascii_lowercase(h.name);
    if (name.rfind("x-ms-meta-", 0) == 0) p.metadata[name.substr(10)] = resp.header(h.name);
  }
  return std::optional<BlobProperties>(std::move(p));
}

Result<bool> BlobClient::container_exists(const BlobLocation& container) {
  BlobCall call{"Get Container Properties az://" + container.account + "/" + container.container, {}};
  CH_ASSIGN(req, base_request(container, true, call.what));
  call.request = std::move(req);
  call.request.method = "HEAD";
  call.request.query.push_back({"restype", "container"});
  SendOptions so;
  so.no_response_body = true;
  CH_ASSIGN(resp, send_call(client_, policy_, auth_, call, so));
  if (resp.status == 404) return false;
  if (!is_2xx(resp.status)) return blob_error(call.what, resp);
  return true;
}

Status BlobClient::create_container(const BlobLocation& container) {
  BlobCall call{"Create Container az://" + container.account + "/" + container.container, {}};
  CH_ASSIGN(req, base_request(container, true, call.what));
  call.request = std::move(req);
  call.request.method = "PUT";
  call.request.query.push_back({"restype", "container"});
  CH_ASSIGN(resp, send_call(client_, policy_, auth_, call, {}));
  if (is_2xx(resp.status)) return ok_status();
  Error e = blob_error(call.what, resp);
  if (resp.status == 409 && e.code == "ContainerAlreadyExists") return ok_status();
  return e;
}

Status BlobClient::create_page_blob(const BlobLocation& blob, uint64_t size,
                                    const std::map<std::string, std::string>& metadata, bool if_none_match) {
  BlobCall call{"Put Blob (page blob) " + blob.az_url(), {}};
  if (size % 512 != 0) return Error{call.what + ": size " + std::to_string(size) + " is not a multiple of 512"};
  CH_ASSIGN(req, base_request(blob, false, call.what));
  call.request = std::move(req);
  call.request.method = "PUT";
  auto& h = call.request.headers;
  h.push_back({"x-ms-blob-type", "PageBlob"});
  h.push_back({"x-ms-blob-content-length", std::to_string(size)});
  h.push_back({"x-ms-blob-content-type", "application/octet-stream"});
  h.push_back({"Content-Length", "0"});
  for (const auto& [k, v] : metadata) h.push_back({"x-ms-meta-" + k, v});
  if (if_none_match) h.push_back({"If-None-Match", "*"});
  int attempts = 0;
  CH_ASSIGN(resp, send_call(client_, policy_, auth_, call, {}, &attempts));
  if (is_2xx(resp.status)) return ok_status();
  Error e = blob_error(call.what, resp);
  if (if_none_match && attempts > 1 && e.code == "BlobAlreadyExists") {
    // An earlier attempt may have created it and lost its answer: accept
    // the blob when it is exactly what this call makes.
    Result<std::optional<BlobProperties>> p = properties(blob);
    if (p.ok() && *p && (*p)->blob_type == "PageBlob" && (*p)->content_length == size) {
      bool same = true;
      for (const auto& [k, v] : metadata) {
        auto it = (*p)->metadata.find(ascii_lowercase(k));
        same &= it != (*p)->metadata.end() && it->second == v;
      }
      if (same) {
        log_info(call.what + ": a retried request found the blob the lost attempt created");
        return ok_status();
      }
    }
  }
  return e;
}

Status BlobClient::put_page(const BlobLocation& blob, uint64_t offset, std::string_view data, const FileBody* body,
                            const std::string& md5_base64) {
  const uint64_t len = body ? body->length : data.size();
  BlobCall call{"Put Page " + blob.az_url() + " (bytes " + std::to_string(offset) + "-" +
                    std::to_string(offset + len - 1) + ")",
                {}};
  if ((body != nullptr) == !data.empty()) return Error{call.what + ": exactly one of data and file body must be given"};
  if (len == 0 || len % 512 != 0 || offset % 512 != 0 || len > (4u << 20)) {
    return Error{call.what + ": pages must be 512-byte aligned, 512 bytes to 4 MiB"};
  }
  CH_ASSIGN(req, base_request(blob, false, call.what));
  call.request = std::move(req);
  call.request.method = "PUT";
  call.request.query.push_back({"comp", "page"});
  auto& h = call.request.headers;
  h.push_back({"x-ms-page-write", "update"});
  h.push_back({"x-ms-range", "bytes=" + std::to_string(offset) + "-" + std::to_string(offset + len - 1)});
  h.push_back({"Content-Length", std::to_string(len)});
  if (!md5_base64.empty()) h.push_back({"Content-MD5", md5_base64});
  SendOptions so;
  if (body) {
    so.file_body = body;
  } else {
    call.request.body = std::string(data);
  }
  CH_ASSIGN(resp, send_call(client_, policy_, auth_, call, so));
  if (!is_2xx(resp.status)) return blob_error(call.what, resp);
  return ok_status();
}

Result<std::vector<PageRange>> BlobClient::page_ranges(const BlobLocation& blob) {
  const std::string what = "Get Page Ranges " + blob.az_url();
  std::vector<PageRange> out;
  std::string marker;
  for (;;) {
    BlobCall call{what, {}};
    CH_ASSIGN(req, base_request(blob, false, what));
    call.request = std::move(req);
    call.request.query.push_back({"comp", "pagelist"});
    if (!marker.empty()) call.request.query.push_back({"marker", marker});
    CH_ASSIGN(resp, send_call(client_, policy_, auth_, call, {}));
    if (!is_2xx(resp.status)) return blob_error(what, resp);
    pugi::xml_document doc;
    CH_TRY(parse_xml(resp.body, doc, what));
    pugi::xml_node root = doc.document_element();
    for (pugi::xml_node r = root.first_child(); r; r = r.next_sibling()) {
      std::string_view n = r.name();
      if (n != "PageRange") continue;
      out.push_back({parse_u64(child_text(r, "Start")), parse_u64(child_text(r, "End"))});
    }
    marker = child_text(root, "NextMarker");
    if (marker.empty()) break;
  }
  std::sort(out.begin(), out.end(), [](const PageRange& a, const PageRange& b) { return a.start < b.start; });
  return out;
}

Status BlobClient::set_content_md5(const BlobLocation& blob, const std::string& md5_base64,
                                   const std::string& content_type) {
  BlobCall call{"Set Blob Properties " + blob.az_url(), {}};
  CH_ASSIGN(req, base_request(blob, false, call.what));
  call.request = std::move(req);
  call.request.method = "PUT";
  call.request.query.push_back({"comp", "properties"});
  call.request.headers.push_back({"x-ms-blob-content-md5", md5_base64});
  if (!content_type.empty()) call.request.headers.push_back({"x-ms-blob-content-type", content_type});
  call.request.headers.push_back({"Content-Length", "0"});
  CH_ASSIGN(resp, send_call(client_, policy_, auth_, call, {}));
  if (!is_2xx(resp.status)) return blob_error(call.what, resp);
  return ok_status();
}

Status BlobClient::delete_blob(const BlobLocation& blob) {
  BlobCall call{"Delete Blob " + blob.az_url(), {}};
  CH_ASSIGN(req, base_request(blob, false, call.what));
  call.request = std::move(req);
  call.request.method = "DELETE";
  call.request.headers.push_back({"x-ms-delete-snapshots", "include"});
  CH_ASSIGN(resp, send_call(client_, policy_, auth_, call, {}));
  if (is_2xx(resp.status) || resp.status == 404) return ok_status();
  return blob_error(call.what, resp);
}

Result<std::vector<std::string>> BlobClient::list_blobs(const BlobLocation& container, const std::string& prefix) {
  const std::string what = "List Blobs az://" + container.account + "/" + container.container + "/" + prefix;
  std::vector<std::string> out;
  std::string marker;
  for (;;) {
    BlobCall call{what, {}};
    CH_ASSIGN(req, base_request(container, true, what));
    call.request = std::move(req);
    call.request.query.push_back({"restype", "container"});
    call.request.query.push_back({"comp", "list"});
    if (!prefix.empty()) call.request.query.push_back({"prefix", prefix});
    if (!marker.empty()) call.request.query.push_back({"marker", marker});
    CH_ASSIGN(resp, send_call(client_, policy_, auth_, call, {}));
    if (!is_2xx(resp.status)) return blob_error(what, resp);
    pugi::xml_document doc;
    CH_TRY(parse_xml(resp.body, doc, what));
    pugi::xml_node root = doc.document_element();
    pugi::xml_node blobs = child(root, "Blobs");
    for (pugi::xml_node b = blobs.first_child(); b; b = b.next_sibling()) {
      if (std::string_view(b.name()) == "Blob") out.push_back(child_text(b, "Name"));
    }
    marker = child_text(root, "NextMarker");
    if (marker.empty()) break;
  }
  return out;
}

}  // namespace ch

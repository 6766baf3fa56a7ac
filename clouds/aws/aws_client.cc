// Every attempt of a call is built from scratch: fresh credentials (a
// refreshed session may replace the old one between retries) and the
// current time (SigV4 signatures are valid for 15 minutes, and a retried
// request after a long backoff must not carry a stale X-Amz-Date).
#include "clouds/aws/aws_client.h"

#include <openssl/evp.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <pugixml.hpp>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <vector>

#include "clouds/signing/digest.h"
#include "helper/output.h"

namespace ch {

namespace {

constexpr std::string_view kEc2Version = "2016-11-15";
constexpr size_t kMaxMessage = 500;  // bytes of a service message quoted in an Error

std::chrono::sys_seconds now_seconds() {
  return std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

// One line, bounded: service messages may span lines or quote whole documents.
std::string one_line(std::string_view s) {
  std::string out;
  bool space = false;
  for (char c : s) {
    if (c == '\n' || c == '\r' || c == '\t' || c == ' ') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
    if (out.size() >= kMaxMessage) {
      out += "...";
      break;
    }
  }
  return out;
}

// "ValidationException:http://internal.amazon.com/coral/..." and
// "com.amazon.coral.service#ValidationException" both mean ValidationException.
std::string short_error_type(std::string_view type) {
  size_t colon = type.find(':');
  if (colon != std::string_view::npos) type = type.substr(0, colon);
  size_t hash = type.rfind('#');
  if (hash != std::string_view::npos) type = type.substr(hash + 1);
  return trim(type);
}

struct ErrorDoc {
  std::string code;
  std::string message;
  std::string request_id;
  std::string region;    // S3 redirects and AuthorizationHeaderMalformed
  std::string endpoint;  // S3 PermanentRedirect
};

// S3: <Error><Code/><Message/><RequestId/></Error>; EC2:
// <Response><Errors><Error>..</Error></Errors><RequestID/></Response>;
// STS/IAM: <ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/>.
bool parse_xml_error(std::string_view body, ErrorDoc* out) {
  pugi::xml_document doc;
  if (!doc.load_buffer(body.data(), body.size())) return false;
  pugi::xml_node error = doc.select_node("//Error").node();
  if (!error) return false;
  out->code = trim(error.child_value("Code"));
  out->message = error.child_value("Message");
  out->region = trim(error.child_value("Region"));
  out->endpoint = trim(error.child_value("Endpoint"));
  for (const char* name : {"RequestId", "RequestID"}) {
    if (!out->request_id.empty()) break;
    out->request_id = trim(error.child_value(name));
    if (out->request_id.empty()) {
      pugi::xml_node n = doc.select_node((std::string("//") + name).c_str()).node();
      if (n) out->request_id = trim(n.child_value());
    }
  }
  return true;
}

// REST-JSON (EBS): {"__type": "...#Code", "message": "..."}; some services
// spell them "code"/"Code"/"Message".
bool parse_json_error(std::string_view body, ErrorDoc* out) {
  nlohmann::json doc = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) return false;
  auto text = [&](std::initializer_list<const char*> names) -> std::string {
    for (const char* n : names) {
      auto it = doc.find(n);
      if (it != doc.end() && it->is_string()) return it->get<std::string>();
    }
    return "";
  };
  out->code = short_error_type(text({"__type", "code", "Code"}));
  out->message = text({"message", "Message", "errorMessage"});
  return true;
}

// S3 answers a request sent to the wrong region with a 301 (or 307 while a
// new bucket's DNS propagates) carrying the right region in a header.
std::string redirect_region(const HttpResponse& response, const ErrorDoc& doc) {
  std::string region = response.header("x-amz-bucket-region");
  if (region.empty()) region = doc.region;
  return region;
}

Result<std::string> hash_file_range(const FileBody& body) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  CH_CHECK(ctx && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) == 1);
  std::vector<unsigned char> buffer(1 << 20);
  uint64_t done = 0;
  while (done < body.length) {
    size_t want = static_cast<size_t>(std::min<uint64_t>(buffer.size(), body.length - done));
    ssize_t n = ::pread(body.fd, buffer.data(), want, static_cast<off_t>(body.offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0)
      return Error{"reading " + std::to_string(body.length) + " bytes at offset " +
                   std::to_string(body.offset) + " to hash them: " + std::strerror(errno)};
    if (n == 0)
      return Error{"reading " + std::to_string(body.length) + " bytes at offset " +
                   std::to_string(body.offset) + " to hash them: file ends after " +
                   std::to_string(body.offset + done) + " bytes"};
    CH_CHECK(EVP_DigestUpdate(ctx.get(), buffer.data(), static_cast<size_t>(n)) == 1);
    done += static_cast<uint64_t>(n);
  }
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  CH_CHECK(EVP_DigestFinal_ex(ctx.get(), md, &len) == 1);
  return hex_encode({md, len});
}

bool is_2xx(long status) { return status >= 200 && status < 300; }

std::string call_name(const AwsClient::RestCall& call) {
  if (!call.what.empty()) return call.what;
  std::string name = upper(aws_service_name(call.service)) + " " + call.request.method + " ";
  if (call.service == AwsService::kS3)
    name += "s3://" + call.bucket + (call.raw_path.empty() || call.raw_path[0] == '/' ? "" : "/") +
            call.raw_path;
  else
    name += call.raw_path;
  return name + " (" + call.region + ")";
}

}  // namespace

std::string aws_query_body(const std::string& action, const std::string& version,
                           const std::vector<std::pair<std::string, std::string>>& params) {
  std::string body = "Action=" + aws_uri_encode(action, false) +
                     "&Version=" + aws_uri_encode(version, false);
  for (const auto& [k, v] : params) {
    body += '&';
    body += aws_uri_encode(k, false);
    body += '=';
    body += aws_uri_encode(v, false);
  }
  return body;
}

Error aws_error(const std::string& what, const HttpResponse& response) {
  ErrorDoc doc;
  std::string_view body = response.body;
  size_t first = body.find_first_not_of(" \t\r\n");
  bool parsed = false;
  if (first != std::string_view::npos) {
    if (body[first] == '<') parsed = parse_xml_error(body, &doc);
    else if (body[first] == '{') parsed = parse_json_error(body, &doc);
  }
  if (doc.code.empty()) doc.code = short_error_type(response.header("x-amzn-ErrorType"));
  // A proxy's HTML page or a plain-text answer: quote its start.
  if (!parsed && doc.message.empty() && first != std::string_view::npos)
    doc.message = std::string(body.substr(first, 200));
  std::string request_id = !response.request_id.empty() ? response.request_id : doc.request_id;
  if (request_id.empty()) request_id = response.header("x-amz-request-id");
  if (request_id.empty()) request_id = response.header("x-amzn-RequestId");

  std::string message = what + ": HTTP " + std::to_string(response.status);
  if (!doc.code.empty()) {
    message += " " + doc.code;
  } else if (!http_status_text(response.status).empty()) {
    message += " " + std::string(http_status_text(response.status));
  }
  std::string text = one_line(doc.message);
  if (!text.empty()) message += ": " + text;
  if (!request_id.empty()) message += " (request id " + request_id + ")";
  return Error{message, doc.code, response.status};
}

AwsClient::AwsClient(HttpClient& http, AwsCredentialProvider& credentials, AwsEnv env,
                     RetryPolicy retry)
    : http_(http),
      credentials_(credentials),
      env_(std::move(env)),
      retry_(retry),
      profile_endpoint_url_(profile_endpoint_url(env_)) {}

Result<std::string> AwsClient::ec2(const std::string& region, const std::string& action,
                                   const std::vector<std::pair<std::string, std::string>>& params) {
  return query(AwsService::kEc2, region, action, std::string(kEc2Version), params);
}

Result<std::string> AwsClient::query(AwsService service, const std::string& region,
                                     const std::string& action, const std::string& version,
                                     const std::vector<std::pair<std::string, std::string>>& params) {
  const std::string what = upper(aws_service_name(service)) + " " + action + " (" + region + ")";
  auto endpoint_result = resolve_aws_endpoint(service, region, env_, {}, profile_endpoint_url_);
  if (!endpoint_result.ok()) return endpoint_result.error().wrap(what);
  const AwsEndpoint& endpoint = *endpoint_result;

  HttpRequest base;
  base.method = "POST";
  base.scheme = endpoint.scheme;
  base.host = endpoint.host;
  base.port = endpoint.port;
  base.path = endpoint.base_path.empty() ? "/" : endpoint.base_path + "/";
  base.headers.push_back({"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"});
  base.body = aws_query_body(action, version, params);
  SigningOptions signing;
  signing.payload = PayloadHash::kGiven;
  signing.payload_sha256 = sha256_hex(base.body);
  const std::string service_name(aws_service_name(service));

  auto make_request = [&](int) -> Result<HttpRequest> {
    auto creds = credentials_.get();
    if (!creds.ok()) return creds.error().wrap(what);
    auto signed_request = sign_request(base, *creds, region, service_name, now_seconds(), signing);
    if (!signed_request.ok()) return signed_request.error().wrap(what);
    return std::move(signed_request->request);
  };
  SendOptions send_options;
  send_options.label = what;
  auto response = send_with_retry(http_, retry_, make_request, send_options);
  if (!response.ok()) {
    if (response.error().message.rfind(what, 0) == 0) return response.error();
    return response.error().wrap(what);
  }
  if (!is_2xx(response->status)) return aws_error(what, *response);
  return std::move(response->body);
}

Result<HttpResponse> AwsClient::rest(const RestCall& call, const SendOptions& options) {
  const std::string what = call_name(call);
  const bool s3 = call.service == AwsService::kS3;
  auto endpoint_result =
      resolve_aws_endpoint(call.service, call.region, env_, s3 ? call.bucket : "", profile_endpoint_url_);
  if (!endpoint_result.ok()) return endpoint_result.error().wrap(what);
  const AwsEndpoint& endpoint = *endpoint_result;

  HttpRequest base = call.request;
  base.scheme = endpoint.scheme;
  base.host = endpoint.host;
  base.port = endpoint.port;
  std::string raw_path = call.raw_path;
  if (!raw_path.empty() && raw_path[0] != '/') raw_path.insert(0, "/");
  std::string path = endpoint.base_path;
  if (s3 && !call.bucket.empty()) {
    if (endpoint.s3_path_style) {
      path += "/" + aws_uri_encode(call.bucket, false);
    } else {
      base.host = call.bucket + "." + endpoint.host;
    }
  }
  path += aws_encode_path(raw_path);
  base.path = path.empty() ? "/" : path;

  SigningOptions signing = s3 ? s3_signing_options() : SigningOptions{};
  if (call.unsigned_payload && endpoint.scheme == "https") {
    // Over TLS the transport protects the body; S3 and EBS accept the literal
    // in the x-amz-content-sha256 header.
    signing.payload = PayloadHash::kUnsigned;
    signing.add_content_sha256_header = true;
  } else if (!call.payload_sha256.empty()) {
    signing.payload = PayloadHash::kGiven;
    signing.payload_sha256 = call.payload_sha256;
  } else if (options.file_body != nullptr) {
    // Hashed once: the file must not change during the call (s3.h says so).
    auto hash = hash_file_range(*options.file_body);
    if (!hash.ok()) return hash.error().wrap(what);
    signing.payload = PayloadHash::kGiven;
    signing.payload_sha256 = *hash;
  } else {
    signing.payload = PayloadHash::kGiven;
    signing.payload_sha256 = sha256_hex(base.body);
  }
  const std::string service_name(aws_service_name(call.service));

  auto make_request = [&](int) -> Result<HttpRequest> {
    auto creds = credentials_.get();
    if (!creds.ok()) return creds.error().wrap(what);
    auto signed_request =
        sign_request(base, *creds, call.region, service_name, now_seconds(), signing);
    if (!signed_request.ok()) return signed_request.error().wrap(what);
    return std::move(signed_request->request);
  };
  SendOptions send_options = options;
  if (base.method == "HEAD") send_options.no_response_body = true;
  if (send_options.label.empty()) send_options.label = what;
  auto response = send_with_retry(http_, retry_, make_request, send_options);
  if (!response.ok()) {
    if (response.error().message.rfind(what, 0) == 0) return response.error();
    return response.error().wrap(what);
  }
  const long status = response->status;
  if (is_2xx(status)) return std::move(*response);
  for (long accepted : call.accept)
    if (accepted == status) return std::move(*response);

  Error error = aws_error(what, *response);
  if (s3 && status >= 300 && status < 400) {
    ErrorDoc doc;
    parse_xml_error(response->body, &doc);
    std::string region = redirect_region(*response, doc);
    std::string bucket = call.bucket.empty() ? std::string("the bucket") : "bucket '" + call.bucket + "'";
    std::string message = what + ": HTTP " + std::to_string(status) +
                          (error.code.empty() ? std::string() : " " + error.code) + ": ";
    if (!region.empty())
      message += bucket + " is in region " + region + ", not " + call.region + "; use that region";
    else if (!doc.endpoint.empty())
      message += bucket + " must be addressed at " + doc.endpoint + " (another region)";
    else
      message += "S3 redirected the request, probably to another region of " + bucket;
    std::string id = response->request_id.empty() ? doc.request_id : response->request_id;
    if (!id.empty()) message += " (request id " + id + ")";
    error.message = message;
  }
  return error;
}

}  // namespace ch

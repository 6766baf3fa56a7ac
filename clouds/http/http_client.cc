// libcurl's easy interface, one easy handle per running request.
//
// Connection reuse: every easy handle keeps its own cache of live
// connections across curl_easy_reset, and the pool hands a request the idle
// handle that last talked to the same origin, so sequential requests to a
// host ride one connection and N concurrent workers keep N connections
// warm. The connection cache is deliberately not put in a CURLSH: libcurl
// documents sharing it between concurrent threads as unsupported
// (CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT). The share holds what is safe to
// share under locks: the DNS cache and TLS sessions (resumption saves a
// round trip per new connection).
//
// Request bodies are never copied into libcurl: a read callback serves them
// from the request string or with pread from the FileBody, and a seek
// callback lets libcurl rewind when it resends on a fresh connection (a
// reused connection the server had closed).
#include "clouds/http/http_client.h"

#include <curl/curl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "clouds/http/ascii_case.h"
#include "clouds/http/http_log.h"
#include "clouds/http/http_url.h"
#include "helper/output.h"

namespace ch {

namespace {

// Where each cloud puts its request id, in order of preference.
constexpr std::string_view kRequestIdHeaders[] = {
    "x-amz-request-id", "x-amzn-RequestId", "x-ms-request-id",        "x-guploader-uploadid",
    "x-acs-request-id", "x-oss-request-id", "opc-request-id",         "x-openstack-request-id",
};

// Probes for dead peers on idle pooled connections (NAT gateways drop idle
// flows after ~350 s on AWS; 30 s keeps them alive and notices loss early).
constexpr long kTcpKeepIdleSeconds = 30;
constexpr long kTcpKeepIntervalSeconds = 15;
// Larger than libcurl's 64 KiB defaults: fewer callbacks per 8+ MiB part.
constexpr long kUploadBufferBytes = 512 * 1024;
constexpr long kDownloadBufferBytes = 512 * 1024;

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\t' || s.back() == '\r' || s.back() == '\n'))
    s.remove_suffix(1);
  return s;
}

const HttpHeader* find_header(const std::vector<HttpHeader>& headers, std::string_view name) {
  for (const HttpHeader& h : headers)
    if (ascii_iequals(h.name, name)) return &h;
  return nullptr;
}

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] { CH_CHECK(curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK); });
}

struct EasyDeleter {
  void operator()(CURL* h) const { curl_easy_cleanup(h); }
};
using EasyHandle = std::unique_ptr<CURL, EasyDeleter>;

struct SlistDeleter {
  void operator()(curl_slist* l) const { curl_slist_free_all(l); }
};
using Slist = std::unique_ptr<curl_slist, SlistDeleter>;

// DNS cache and TLS sessions shared by all handles of one client, one lock
// per kind of data as libcurl asks.
class Share {
 public:
  Share() : share_(curl_share_init()) {
    CH_CHECK(share_ != nullptr);
    CH_CHECK(curl_share_setopt(share_, CURLSHOPT_LOCKFUNC, &Share::lock) == CURLSHE_OK);
    CH_CHECK(curl_share_setopt(share_, CURLSHOPT_UNLOCKFUNC, &Share::unlock) == CURLSHE_OK);
    CH_CHECK(curl_share_setopt(share_, CURLSHOPT_USERDATA, this) == CURLSHE_OK);
    CH_CHECK(curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS) == CURLSHE_OK);
    CH_CHECK(curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) == CURLSHE_OK);
  }
  ~Share() { curl_share_cleanup(share_); }
  Share(const Share&) = delete;
  Share& operator=(const Share&) = delete;
  CURLSH* get() const { return share_; }

 private:
  static void lock(CURL*, curl_lock_data data, curl_lock_access, void* self) {
    static_cast<Share*>(self)->mutex_for(data).lock();
  }
  static void unlock(CURL*, curl_lock_data data, void* self) {
    static_cast<Share*>(self)->mutex_for(data).unlock();
  }
  std::mutex& mutex_for(curl_lock_data data) {
    size_t i = static_cast<size_t>(data);
    return mutexes_[i < mutexes_.size() ? i : 0];
  }

  CURLSH* share_;
  std::array<std::mutex, CURL_LOCK_DATA_LAST> mutexes_;
};

// At most MAX handles lent out at once (the in-flight bound); returned
// handles wait, with their live connections, for the next request to the
// same origin.
class HandlePool {
 public:
  struct Lease {
    EasyHandle handle;
    std::string origin;  // scheme://host:port of its last request
  };

  explicit HandlePool(int max) : max_(max) {}

  Lease acquire(const std::string& origin) {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [&] { return in_flight_ < max_; });
    ++in_flight_;
    // Most recently used first: its connection is the least likely to have
    // been closed by the server's idle timeout.
    for (size_t i = idle_.size(); i-- > 0;) {
      if (idle_[i].origin == origin) return take(i);
    }
    // Otherwise the least recently used: its connections are the stalest.
    if (!idle_.empty()) return take(0);
    lk.unlock();
    EasyHandle h(curl_easy_init());
    CH_CHECK(h != nullptr);
    return Lease{std::move(h), origin};
  }

  void release(Lease lease) {
    {
      std::lock_guard<std::mutex> lk(mu_);
      idle_.push_back(std::move(lease));
      --in_flight_;
    }
    cv_.notify_one();
  }

  int in_flight() {
    std::lock_guard<std::mutex> lk(mu_);
    return in_flight_;
  }

  // Idle handles must go before the CURLSH they use.
  void clear() {
    std::lock_guard<std::mutex> lk(mu_);
    idle_.clear();
  }

 private:
  Lease take(size_t i) {
    Lease l = std::move(idle_[i]);
    idle_.erase(idle_.begin() + static_cast<std::ptrdiff_t>(i));
    return l;
  }

  std::mutex mu_;
  std::condition_variable cv_;
  const int max_;
  int in_flight_ = 0;
  std::vector<Lease> idle_;  // least recently used first
};

// State of one transfer, shared with the libcurl callbacks.
struct Transfer {
  const SendOptions* options = nullptr;
  // Request body: MEMORY, or FILE when set.
  std::string_view memory;
  const FileBody* file = nullptr;
  uint64_t body_size = 0;
  uint64_t body_pos = 0;
  std::string body_error;  // set by the read callback when the source failed
  // Response.
  HttpResponse response;
  long status = 0;  // of the response whose headers are being read
  bool sink_refused = false;
  uint64_t upload_reported = 0;
};

size_t on_read(char* buf, size_t size, size_t count, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  size_t want = static_cast<size_t>(std::min<uint64_t>(size * count, t->body_size - t->body_pos));
  if (want == 0) return 0;
  if (t->file == nullptr) {
    std::memcpy(buf, t->memory.data() + t->body_pos, want);
    t->body_pos += want;
    return want;
  }
  uint64_t offset = t->file->offset + t->body_pos;
  ssize_t got;
  do {
    got = pread(t->file->fd, buf, want, static_cast<off_t>(offset));
  } while (got < 0 && errno == EINTR);
  if (got < 0) {
    t->body_error = "reading the request body at file offset " + std::to_string(offset) + ": " +
                    std::strerror(errno);
    return CURL_READFUNC_ABORT;
  }
  if (got == 0) {
    t->body_error = "the request body's file ends at offset " + std::to_string(offset) +
                    ", inside the " + std::to_string(t->file->length) + " bytes from offset " +
                    std::to_string(t->file->offset);
    return CURL_READFUNC_ABORT;
  }
  t->body_pos += static_cast<uint64_t>(got);
  return static_cast<size_t>(got);
}

int on_seek(void* userdata, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(userdata);
  if (origin != SEEK_SET || offset < 0 || static_cast<uint64_t>(offset) > t->body_size)
    return CURL_SEEKFUNC_CANTSEEK;
  t->body_pos = static_cast<uint64_t>(offset);
  return CURL_SEEKFUNC_OK;
}

// "HTTP/1.1 200 OK" -> 200; 0 when malformed.
long parse_status_line(std::string_view line) {
  size_t sp = line.find(' ');
  if (sp == std::string_view::npos || line.size() < sp + 4) return 0;
  long code = 0;
  for (size_t i = sp + 1; i < sp + 4; ++i) {
    if (line[i] < '0' || line[i] > '9') return 0;
    code = code * 10 + (line[i] - '0');
  }
  return code;
}

size_t on_header(char* data, size_t size, size_t count, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  size_t len = size * count;
  std::string_view line(data, len);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.size() >= 5 && line.substr(0, 5) == "HTTP/") {
    // A new response (after 100 Continue, say): only the final one counts.
    t->response.headers.clear();
    t->status = parse_status_line(line);
    return len;
  }
  if (line.empty()) return len;
  std::vector<HttpHeader>& headers = t->response.headers;
  if ((line.front() == ' ' || line.front() == '\t') && !headers.empty()) {
    headers.back().value += ' ';  // obsolete line folding
    headers.back().value += trim(line);
    return len;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return len;
  headers.push_back(HttpHeader{std::string(trim(line.substr(0, colon))),
                               std::string(trim(line.substr(colon + 1)))});
  return len;
}

size_t on_body(char* data, size_t size, size_t count, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  size_t len = size * count;
  // Error documents stay in the response so the caller can read them.
  if (t->options->body_sink && t->status >= 200 && t->status < 300) {
    if (!t->options->body_sink(std::string_view(data, len))) {
      t->sink_refused = true;
      return CURL_WRITEFUNC_ERROR;
    }
    return len;
  }
  t->response.body.append(data, len);
  return len;
}

int on_progress(void* userdata, curl_off_t, curl_off_t, curl_off_t, curl_off_t ulnow) {
  auto* t = static_cast<Transfer*>(userdata);
  // After a rewind ULNOW restarts from 0: bytes are reported once.
  if (ulnow > 0 && static_cast<uint64_t>(ulnow) > t->upload_reported) {
    t->options->on_upload_progress(static_cast<uint64_t>(ulnow) - t->upload_reported);
    t->upload_reported = static_cast<uint64_t>(ulnow);
  }
  return 0;
}

TransportFailure classify(CURLcode rc, CURL* h) {
  switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
      return TransportFailure::kResolve;
    case CURLE_COULDNT_CONNECT:
      return TransportFailure::kConnect;
    case CURLE_OPERATION_TIMEDOUT: {
      // Timed out before the request could be sent: the connect timeout.
      curl_off_t pretransfer = 0;
      curl_easy_getinfo(h, CURLINFO_PRETRANSFER_TIME_T, &pretransfer);
      return pretransfer == 0 ? TransportFailure::kConnect : TransportFailure::kTimeout;
    }
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_QUIC_CONNECT_ERROR:
    case CURLE_BAD_CONTENT_ENCODING:
      return TransportFailure::kConnection;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
      return TransportFailure::kTls;
    default:
      return TransportFailure::kOther;
  }
}

// Options that hold the CURL handle's pointers to our data must be set per
// request; everything is set per request since curl_easy_reset clears all.
template <class T>
void set(CURL* h, CURLoption option, T value) {
  CURLcode rc = curl_easy_setopt(h, option, value);
  if (rc != CURLE_OK) {
    std::fprintf(stderr, "cloud_helper: internal error: curl_easy_setopt(%d): %s\n",
                 static_cast<int>(option), curl_easy_strerror(rc));
    std::abort();
  }
}

std::string origin_of(const HttpRequest& r) {
  uint16_t port = r.port != 0 ? r.port : (r.scheme == "http" ? 80 : 443);
  return r.scheme + "://" + r.host + ":" + std::to_string(port);
}

// "Name: value", or "Name;" for an empty value ("Name:" would tell libcurl
// to drop its own header of that name).
void append_header(Slist& list, std::string_view name, std::string_view value) {
  std::string line(name);
  if (value.empty()) {
    line += ';';
  } else {
    line += ": ";
    line += value;
  }
  curl_slist* next = curl_slist_append(list.get(), line.c_str());
  CH_CHECK(next != nullptr);
  list.release();
  list.reset(next);
}

// Drops a header libcurl would add on its own ("Name:").
void suppress_header(Slist& list, const HttpRequest& r, std::string_view name) {
  if (find_header(r.headers, name) != nullptr) return;
  std::string line(name);
  line += ':';
  curl_slist* next = curl_slist_append(list.get(), line.c_str());
  CH_CHECK(next != nullptr);
  list.release();
  list.reset(next);
}

}  // namespace

std::string HttpResponse::header(std::string_view name) const {
  const HttpHeader* h = find_header(headers, name);
  return h ? std::string(trim(h->value)) : std::string();
}

std::string ca_file_from_env() {
  for (const char* name :
       {"AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"}) {
    const char* v = std::getenv(name);
    if (v != nullptr && *v != '\0') return v;
  }
  return "";
}

struct HttpClient::Impl {
  explicit Impl(Config c) : config(std::move(c)), pool(config.max_in_flight) {
    if (config.user_agent.empty()) config.user_agent = "cloud_helper/" CLOUD_HELPER_VERSION;
  }
  ~Impl() {
    CH_CHECK(pool.in_flight() == 0);
    pool.clear();  // before `share` is destroyed
  }

  Config config;
  Share share;
  HandlePool pool;
};

namespace {

HttpClient::Config default_config() {
  HttpClient::Config c;
  c.ca_file = ca_file_from_env();
  return c;
}

}  // namespace

HttpClient::HttpClient() : HttpClient(default_config()) {}

HttpClient::HttpClient(Config config) {
  CH_CHECK(config.max_in_flight >= 1);
  global_init();
  impl_ = std::make_unique<Impl>(std::move(config));
}

HttpClient::~HttpClient() = default;

const HttpClient::Config& HttpClient::config() const { return impl_->config; }

Result<HttpResponse> HttpClient::send(const HttpRequest& request, const SendOptions& options) {
  Outcome out = send_classified(request, options);
  if (out.error.kind != TransportFailure::kNone) return Error{out.error.message};
  return std::move(out.response);
}

HttpClient::Outcome HttpClient::send_classified(const HttpRequest& request,
                                                const SendOptions& options) {
  const Config& config = impl_->config;
  Outcome out;
  auto fail = [&](TransportFailure kind, std::string_view cause) {
    out.error.kind = kind;
    out.error.message = request.method + " " + redacted_url(request) + ": " + std::string(cause);
    return out;
  };

  CH_CHECK(options.file_body == nullptr || request.body.empty());
  Transfer t;
  t.options = &options;
  t.file = options.file_body;
  t.memory = request.body;
  t.body_size = t.file ? t.file->length : request.body.size();
  const bool has_body = t.file != nullptr || !request.body.empty();
  const std::string& method = request.method;
  if (method.empty()) return fail(TransportFailure::kOther, "empty HTTP method");
  if (method == "HEAD" && has_body)
    return fail(TransportFailure::kOther, "a HEAD request has a body");
  if (const HttpHeader* cl = find_header(request.headers, "Content-Length")) {
    if (trim(cl->value) != std::to_string(t.body_size))
      return fail(TransportFailure::kOther,
                  "Content-Length header " + std::string(trim(cl->value)) +
                      " differs from the body's " + std::to_string(t.body_size) + " bytes");
  }

  Slist headers;
  for (const HttpHeader& h : request.headers) append_header(headers, h.name, h.value);
  suppress_header(headers, request, "Expect");
  suppress_header(headers, request, "Accept");
  if (method == "POST") suppress_header(headers, request, "Content-Type");

  const std::string url = wire_url(request);
  const bool debug = log_enabled(LogLevel::kDebug);

  HandlePool::Lease lease = impl_->pool.acquire(origin_of(request));
  struct Returner {
    HandlePool& pool;
    HandlePool::Lease& lease;
    ~Returner() { pool.release(std::move(lease)); }
  } returner{impl_->pool, lease};
  CURL* h = lease.handle.get();
  lease.origin = origin_of(request);

  if (debug) log_debug(request_debug_line(request, t.body_size));
  const auto start = std::chrono::steady_clock::now();

  char errbuf[CURL_ERROR_SIZE];
  errbuf[0] = '\0';
  curl_easy_reset(h);
  set(h, CURLOPT_SHARE, impl_->share.get());
  set(h, CURLOPT_URL, url.c_str());
  set(h, CURLOPT_PATH_AS_IS, 1L);  // S3 keys may hold "..": send the path as given
  set(h, CURLOPT_PROTOCOLS_STR, "http,https");
  set(h, CURLOPT_NOSIGNAL, 1L);
  set(h, CURLOPT_ERRORBUFFER, errbuf);
  set(h, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1));
  set(h, CURLOPT_FOLLOWLOCATION, 0L);
  set(h, CURLOPT_SSL_VERIFYPEER, 1L);
  set(h, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!config.ca_file.empty()) set(h, CURLOPT_CAINFO, config.ca_file.c_str());
  set(h, CURLOPT_CONNECTTIMEOUT, config.connect_timeout_seconds);
  if (config.stall_seconds > 0) {
    set(h, CURLOPT_LOW_SPEED_LIMIT, config.stall_bytes_per_second);
    set(h, CURLOPT_LOW_SPEED_TIME, config.stall_seconds);
  }
  long timeout = options.request_timeout_seconds > 0 ? options.request_timeout_seconds
                                                     : config.request_timeout_seconds;
  if (timeout > 0) set(h, CURLOPT_TIMEOUT, timeout);
  set(h, CURLOPT_TCP_KEEPALIVE, 1L);
  set(h, CURLOPT_TCP_KEEPIDLE, kTcpKeepIdleSeconds);
  set(h, CURLOPT_TCP_KEEPINTVL, kTcpKeepIntervalSeconds);
  set(h, CURLOPT_BUFFERSIZE, kDownloadBufferBytes);
  set(h, CURLOPT_UPLOAD_BUFFERSIZE, kUploadBufferBytes);
  if (find_header(request.headers, "User-Agent") == nullptr)
    set(h, CURLOPT_USERAGENT, config.user_agent.c_str());
  set(h, CURLOPT_HTTPHEADER, headers.get());
  set(h, CURLOPT_HEADERFUNCTION, &on_header);
  set(h, CURLOPT_HEADERDATA, &t);
  set(h, CURLOPT_WRITEFUNCTION, &on_body);
  set(h, CURLOPT_WRITEDATA, &t);
  set(h, CURLOPT_READFUNCTION, &on_read);
  set(h, CURLOPT_READDATA, &t);
  set(h, CURLOPT_SEEKFUNCTION, &on_seek);
  set(h, CURLOPT_SEEKDATA, &t);
  if (options.on_upload_progress) {
    set(h, CURLOPT_NOPROGRESS, 0L);
    set(h, CURLOPT_XFERINFOFUNCTION, &on_progress);
    set(h, CURLOPT_XFERINFODATA, &t);
  }

  const curl_off_t size = static_cast<curl_off_t>(t.body_size);
  if (method == "HEAD") {
    set(h, CURLOPT_NOBODY, 1L);
  } else if (method == "POST") {
    set(h, CURLOPT_POST, 1L);
    set(h, CURLOPT_POSTFIELDSIZE_LARGE, size);
  } else if (has_body || method == "PUT") {
    // libcurl's upload mode sends PUT; CUSTOMREQUEST renames it (PATCH, ...).
    set(h, CURLOPT_UPLOAD, 1L);
    set(h, CURLOPT_INFILESIZE_LARGE, size);
    if (method != "PUT") set(h, CURLOPT_CUSTOMREQUEST, method.c_str());
  } else {
    if (options.no_response_body) set(h, CURLOPT_NOBODY, 1L);
    if (method != "GET") set(h, CURLOPT_CUSTOMREQUEST, method.c_str());
  }

  CURLcode rc = curl_easy_perform(h);

  HttpExchangeStats stats;
  stats.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  curl_off_t up = 0, down = 0;
  curl_easy_getinfo(h, CURLINFO_SIZE_UPLOAD_T, &up);
  curl_easy_getinfo(h, CURLINFO_SIZE_DOWNLOAD_T, &down);
  stats.bytes_up = static_cast<uint64_t>(up);
  stats.bytes_down = static_cast<uint64_t>(down);

  if (rc != CURLE_OK) {
    TransportFailure kind = classify(rc, h);
    std::string cause = errbuf[0] != '\0' ? std::string(errbuf) : curl_easy_strerror(rc);
    if (!t.body_error.empty()) {
      kind = TransportFailure::kBodySource;
      cause = t.body_error;
    } else if (t.sink_refused) {
      kind = TransportFailure::kOther;
      cause = "body sink refused";
    }
    if (debug) log_debug(failure_debug_line(request, cause, stats));
    return fail(kind, cause);
  }

  out.response = std::move(t.response);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out.response.status);
  for (std::string_view name : kRequestIdHeaders) {
    std::string id = out.response.header(name);
    if (!id.empty()) {
      out.response.request_id = std::move(id);
      break;
    }
  }
  out.error.kind = TransportFailure::kNone;
  if (debug) log_debug(response_debug_line(request, out.response, stats));
  return out;
}

std::string_view http_status_text(long status) {
  switch (status) {
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 307: return "Temporary Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 409: return "Conflict";
    case 411: return "Length Required";
    case 412: return "Precondition Failed";
    case 413: return "Payload Too Large";
    case 416: return "Range Not Satisfiable";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
  }
}

}  // namespace ch

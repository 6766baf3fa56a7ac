#include "clouds/http/http_client.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <optional>
#include <thread>

#include "helper/output.h"
#include "tests/test_http_server.h"
#include "tests/test_util.h"

namespace ch {
namespace {

using test::HttpTestServer;
using test::ReceivedRequest;
using test::ScriptedResponse;
::testing::AssertionResult contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "\"" << text << "\" lacks \"" << part << "\"";
}

::testing::AssertionResult starts_with(const std::string& text, const std::string& prefix) {
  if (text.compare(0, prefix.size(), prefix) == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "\"" << text << "\" does not start with \"" << prefix << "\"";
}

HttpClient::Config fast_config() {
  HttpClient::Config c;
  c.connect_timeout_seconds = 2;
  c.stall_seconds = 2;
  c.max_in_flight = 4;
  return c;
}

HttpRequest request_to(const HttpTestServer& server, const std::string& method,
                       const std::string& target) {
  Result<HttpRequest> r = request_from_url(server.url(target));
  CH_CHECK(r.ok());
  r->method = method;
  return *r;
}

std::string pattern(size_t n, uint64_t seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>(test::generated_byte(i + seed));
  return s;
}

// Writes DATA to a new file and returns an open descriptor (closed by the caller).
int write_temp_file(const test::TempDir& dir, const std::string& data) {
  std::string path = dir / "body";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  CH_CHECK(fd >= 0);
  CH_CHECK(::write(fd, data.data(), data.size()) == static_cast<ssize_t>(data.size()));
  return fd;
}

// A port on 127.0.0.1 that nobody listens on.
uint16_t unused_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CH_CHECK(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  socklen_t len = sizeof addr;
  CH_CHECK(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST(HttpClientTest, GetReturnsStatusHeadersAndBody) {
  HttpTestServer server;
  server.enqueue(
      {.status = 200, .headers = {{"X-Foo", "  bar  "}, {"ETag", "\"e1\""}}, .body = "hello"});
  HttpClient client(fast_config());
  HttpRequest req = request_to(server, "GET", "/a/b%20c?x=1&y=%2F");
  req.headers.push_back({"X-Custom", "v"});
  Result<HttpResponse> r = client.send(req);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "hello");
  EXPECT_EQ(r->header("x-foo"), "bar");
  EXPECT_EQ(r->header("ETag"), "\"e1\"");
  EXPECT_EQ(r->header("Missing"), "");
  EXPECT_EQ(r->request_id, "");

  std::vector<ReceivedRequest> got = server.requests();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].method, "GET");
  EXPECT_EQ(got[0].target, "/a/b%20c?x=1&y=%2F");
  EXPECT_EQ(got[0].header("Host"), "127.0.0.1:" + std::to_string(server.port()));
  EXPECT_EQ(got[0].header("User-Agent"), "cloud_helper/" CLOUD_HELPER_VERSION);
  EXPECT_EQ(got[0].header("X-Custom"), "v");
  // Only Host, User-Agent and our own headers: no Accept, no Expect.
  EXPECT_EQ(got[0].headers.size(), 3u);
  EXPECT_EQ(client.config().user_agent, "cloud_helper/" CLOUD_HELPER_VERSION);
}

TEST(HttpClientTest, PathIsSentAsGiven) {
  HttpTestServer server;
  HttpClient client(fast_config());
  ASSERT_TRUE(client.send(request_to(server, "GET", "/b/../k//x/./y")).ok());
  EXPECT_EQ(server.requests().at(0).target, "/b/../k//x/./y");
}

TEST(HttpClientTest, PutSendsBodyWithOneContentLengthAndNoExpect) {
  HttpTestServer server;
  HttpClient client(fast_config());
  HttpRequest req = request_to(server, "PUT", "/k");
  req.headers = {{"Content-Type", "text/plain"}, {"Content-Length", "4"}, {"x-amz-meta-empty", ""}};
  req.body = "data";
  Result<HttpResponse> r = client.send(req);
  ASSERT_TRUE(r.ok()) << r.message();
  ReceivedRequest got = server.requests().at(0);
  EXPECT_EQ(got.method, "PUT");
  EXPECT_EQ(got.body, "data");
  EXPECT_EQ(got.count("Content-Length"), 1);
  EXPECT_EQ(got.header("Content-Length"), "4");
  EXPECT_EQ(got.header("Content-Type"), "text/plain");
  EXPECT_EQ(got.count("x-amz-meta-empty"), 1);
  EXPECT_EQ(got.count("Expect"), 0);
}

TEST(HttpClientTest, ContentLengthThatDiffersFromTheBodyIsRefused) {
  HttpTestServer server;
  HttpClient client(fast_config());
  HttpRequest req = request_to(server, "PUT", "/k");
  req.headers = {{"Content-Length", "5"}};
  req.body = "data";
  HttpClient::Outcome out = client.send_classified(req);
  EXPECT_EQ(out.error.kind, TransportFailure::kOther);
  EXPECT_EQ(out.error.message, "PUT " + server.url("/k") +
                                   ": Content-Length header 5 differs from the body's 4 bytes");
  EXPECT_TRUE(server.requests().empty());
}

TEST(HttpClientTest, EmptyPutSendsContentLengthZero) {
  HttpTestServer server;
  HttpClient client(fast_config());
  ASSERT_TRUE(client.send(request_to(server, "PUT", "/k")).ok());
  ReceivedRequest got = server.requests().at(0);
  EXPECT_EQ(got.method, "PUT");
  EXPECT_EQ(got.header("Content-Length"), "0");
}

TEST(HttpClientTest, PostSendsNoDefaultContentTypeAndNoExpect) {
  HttpTestServer server;
  HttpClient client(fast_config());
  HttpRequest req = request_to(server, "POST", "/");
  req.body = pattern(2 << 20, 7);  // big enough for libcurl's 100-continue logic
  ASSERT_TRUE(client.send(req).ok());
  req.headers = {{"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"}};
  req.body = "Action=DescribeRegions&Version=2016-11-15";
  ASSERT_TRUE(client.send(req).ok());
  req.body.clear();
  ASSERT_TRUE(client.send(req).ok());

  std::vector<ReceivedRequest> got = server.requests();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[0].method, "POST");
  EXPECT_EQ(got[0].body, pattern(2 << 20, 7));
  EXPECT_EQ(got[0].count("Content-Type"), 0);
  EXPECT_EQ(got[0].count("Expect"), 0);
  EXPECT_EQ(got[1].body, "Action=DescribeRegions&Version=2016-11-15");
  EXPECT_EQ(got[1].count("Content-Type"), 1);
  EXPECT_EQ(got[1].header("Content-Type"), "application/x-www-form-urlencoded; charset=utf-8");
  EXPECT_EQ(got[2].header("Content-Length"), "0");
}

TEST(HttpClientTest, HeadReturnsHeadersWithoutWaitingForABody) {
  HttpTestServer server;
  server.enqueue({.status = 200, .body = "0123456789"});  // announced, not sent for HEAD
  HttpClient client(fast_config());
  Result<HttpResponse> r = client.send(request_to(server, "HEAD", "/k"));
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("Content-Length"), "10");
  EXPECT_EQ(r->body, "");
  EXPECT_EQ(server.requests().at(0).method, "HEAD");
}

TEST(HttpClientTest, DeleteAndPatchUseTheirMethods) {
  HttpTestServer server;
  server.enqueue({.status = 204});
  HttpClient client(fast_config());
  Result<HttpResponse> r = client.send(request_to(server, "DELETE", "/k?versionId=1"));
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->status, 204);
  HttpRequest patch = request_to(server, "PATCH", "/k");
  patch.headers = {{"Content-Type", "application/json"}};
  patch.body = R"({"a":1})";
  ASSERT_TRUE(client.send(patch).ok());

  std::vector<ReceivedRequest> got = server.requests();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].method, "DELETE");
  EXPECT_EQ(got[0].target, "/k?versionId=1");
  EXPECT_EQ(got[0].count("Content-Length"), 0);
  EXPECT_EQ(got[1].method, "PATCH");
  EXPECT_EQ(got[1].body, R"({"a":1})");
}

TEST(HttpClientTest, FileBodyStreamsTheRangeAndReportsProgress) {
  test::TempDir dir;
  const std::string data = pattern(1 << 20, 3);
  int fd = write_temp_file(dir, data);
  HttpTestServer server;
  HttpClient client(fast_config());
  FileBody file{fd, 12345, 300000};
  SendOptions options;
  options.file_body = &file;
  std::atomic<uint64_t> progress{0};
  options.on_upload_progress = [&](uint64_t delta) { progress += delta; };
  Result<HttpResponse> r = client.send(request_to(server, "PUT", "/part"), options);
  ::close(fd);
  ASSERT_TRUE(r.ok()) << r.message();
  ReceivedRequest got = server.requests().at(0);
  EXPECT_EQ(got.header("Content-Length"), "300000");
  EXPECT_TRUE(got.body == data.substr(12345, 300000));
  EXPECT_EQ(progress.load(), 300000u);
}

TEST(HttpClientTest, FileBodyPastTheEndOfTheFileIsABodySourceFailure) {
  test::TempDir dir;
  int fd = write_temp_file(dir, pattern(1000, 1));
  HttpTestServer server;
  HttpClient client(fast_config());
  FileBody file{fd, 500, 1000};
  SendOptions options;
  options.file_body = &file;
  HttpClient::Outcome out = client.send_classified(request_to(server, "PUT", "/part"), options);
  ::close(fd);
  EXPECT_EQ(out.error.kind, TransportFailure::kBodySource);
  EXPECT_EQ(out.error.message, "PUT " + server.url("/part") +
                                   ": the request body's file ends at offset 1000, inside the "
                                   "1000 bytes from offset 500");

  FileBody bad{-1, 0, 10};
  options.file_body = &bad;
  out = client.send_classified(request_to(server, "PUT", "/part"), options);
  EXPECT_EQ(out.error.kind, TransportFailure::kBodySource);
  EXPECT_TRUE(contains(out.error.message,
                       "reading the request body at file offset 0: Bad file descriptor"));
}

TEST(HttpClientTest, BodySinkTakesSuccessfulBodiesOnly) {
  HttpTestServer server;
  server.enqueue({.status = 200, .generated_body_bytes = 3 << 20});
  server.enqueue({.status = 404, .body = "<Error><Code>NoSuchKey</Code></Error>"});
  HttpClient client(fast_config());
  std::string sunk;
  SendOptions options;
  options.body_sink = [&](std::string_view chunk) {
    sunk += chunk;
    return true;
  };
  Result<HttpResponse> r = client.send(request_to(server, "GET", "/k"), options);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->body, "");
  ASSERT_EQ(sunk.size(), 3u << 20);
  EXPECT_TRUE(sunk == pattern(3 << 20, 0));

  sunk.clear();
  r = client.send(request_to(server, "GET", "/k"), options);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(r->body, "<Error><Code>NoSuchKey</Code></Error>");
  EXPECT_EQ(sunk, "");
}

TEST(HttpClientTest, BodySinkRefusalAbortsTheTransfer) {
  HttpTestServer server;
  server.enqueue({.status = 200, .body = "abc"});
  HttpClient client(fast_config());
  SendOptions options;
  options.body_sink = [](std::string_view) { return false; };
  HttpClient::Outcome out = client.send_classified(request_to(server, "GET", "/k"), options);
  EXPECT_EQ(out.error.kind, TransportFailure::kOther);
  EXPECT_EQ(out.error.message, "GET " + server.url("/k") + ": body sink refused");
}

TEST(HttpClientTest, LargeDownloadIntoTheResponse) {
  constexpr uint64_t kSize = 64 << 20;
  HttpTestServer server;
  server.enqueue({.status = 200, .generated_body_bytes = kSize});
  HttpClient client(fast_config());
  Result<HttpResponse> r = client.send(request_to(server, "GET", "/big"));
  ASSERT_TRUE(r.ok()) << r.message();
  ASSERT_EQ(r->body.size(), kSize);
  uint64_t mismatches = 0;
  for (uint64_t i = 0; i < kSize; ++i)
    mismatches += static_cast<uint8_t>(r->body[i]) != test::generated_byte(i);
  EXPECT_EQ(mismatches, 0u);
}

TEST(HttpClientTest, LargeUploadFromAFile) {
  constexpr size_t kSize = 64 << 20;
  test::TempDir dir;
  const std::string data = pattern(kSize, 11);
  int fd = write_temp_file(dir, data);
  HttpTestServer server;
  HttpClient client(fast_config());
  FileBody file{fd, 0, kSize};
  SendOptions options;
  options.file_body = &file;
  uint64_t progress = 0;
  options.on_upload_progress = [&](uint64_t delta) { progress += delta; };
  Result<HttpResponse> r = client.send(request_to(server, "PUT", "/big"), options);
  ::close(fd);
  ASSERT_TRUE(r.ok()) << r.message();
  std::vector<ReceivedRequest> got = server.requests();
  ASSERT_EQ(got.at(0).body.size(), kSize);
  EXPECT_TRUE(got[0].body == data);
  EXPECT_EQ(progress, kSize);
}

TEST(HttpClientTest, SequentialRequestsReuseOneConnection) {
  HttpTestServer server;
  HttpClient client(fast_config());
  for (int i = 0; i < 6; ++i) {
    HttpRequest req = request_to(server, i % 2 ? "PUT" : "GET", "/k" + std::to_string(i));
    if (i % 2) req.body = "x";
    Result<HttpResponse> r = client.send(req);
    ASSERT_TRUE(r.ok()) << r.message();
  }
  EXPECT_EQ(server.connections(), 1);
  for (const ReceivedRequest& r : server.requests()) EXPECT_EQ(r.connection, 1);
}

TEST(HttpClientTest, ServerClosingAnIdleConnectionIsNotAFailure) {
  HttpTestServer server;
  server.enqueue({.status = 200, .close_after = true});
  HttpClient client(fast_config());
  ASSERT_TRUE(client.send(request_to(server, "GET", "/1")).ok());
  HttpRequest put = request_to(server, "PUT", "/2");
  put.body = "payload";
  Result<HttpResponse> r = client.send(put);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(server.connections(), 2);
  EXPECT_EQ(server.requests().at(1).body, "payload");
}

// The server drops a kept-alive connection just as the next request
// arrives; libcurl resends on a new connection, rewinding the body.
TEST(HttpClientTest, ResendOnADeadReusedConnectionRewindsTheBody) {
  test::TempDir dir;
  const std::string data = pattern(100000, 5);
  int fd = write_temp_file(dir, data);
  HttpTestServer server;
  server.enqueue({.status = 200});
  server.enqueue({.fault = ScriptedResponse::Fault::kCloseWithoutResponse});
  server.enqueue({.status = 201});
  HttpClient client(fast_config());
  ASSERT_TRUE(client.send(request_to(server, "GET", "/1")).ok());
  FileBody file{fd, 10, 90000};
  SendOptions options;
  options.file_body = &file;
  uint64_t progress = 0;
  options.on_upload_progress = [&](uint64_t delta) { progress += delta; };
  Result<HttpResponse> r = client.send(request_to(server, "PUT", "/2"), options);
  ::close(fd);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->status, 201);
  std::vector<ReceivedRequest> got = server.requests();
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(got[1].connection, 1);
  EXPECT_EQ(got[2].connection, 2);
  EXPECT_TRUE(got[1].body == data.substr(10, 90000));
  EXPECT_TRUE(got[2].body == data.substr(10, 90000));
  EXPECT_EQ(progress, 90000u);
}

TEST(HttpClientTest, MaxInFlightIsHonoured) {
  HttpTestServer server;
  server.set_handler([](const ReceivedRequest&) {
    return ScriptedResponse{.status = 200, .delay = std::chrono::milliseconds(15)};
  });
  HttpClient client(fast_config());  // max_in_flight 4
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 32; ++i) {
    threads.emplace_back([&, i] {
      Result<HttpResponse> r = client.send(request_to(server, "GET", "/t" + std::to_string(i)));
      if (r.ok() && r->status == 200) ++ok;
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(ok.load(), 32);
  EXPECT_EQ(server.requests().size(), 32u);
  EXPECT_LE(server.max_concurrent(), 4);
  EXPECT_GE(server.max_concurrent(), 2);
  EXPECT_LE(server.connections(), 4);
}

TEST(HttpClientTest, RedirectsAreReturnedNotFollowed) {
  HttpTestServer server;
  server.enqueue({.status = 302, .headers = {{"Location", "/elsewhere"}}});
  HttpClient client(fast_config());
  Result<HttpResponse> r = client.send(request_to(server, "GET", "/k"));
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->status, 302);
  EXPECT_EQ(r->header("Location"), "/elsewhere");
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(HttpClientTest, OnlyTheFinalResponsesHeadersAreKept) {
  HttpTestServer server;
  server.enqueue({.status = 200, .headers = {{"X-Final", "1"}}, .interim_continue = true});
  HttpClient client(fast_config());
  Result<HttpResponse> r = client.send(request_to(server, "GET", "/k"));
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->header("X-Interim"), "");
  EXPECT_EQ(r->header("X-Final"), "1");
}

TEST(HttpClientTest, RequestIdFromTheFirstKnownHeader) {
  HttpTestServer server;
  server.enqueue({.headers = {{"x-ms-request-id", "MS1"}, {"x-amz-request-id", "AMZ1"}}});
  server.enqueue({.headers = {{"x-amzn-RequestId", "  JSON1 "}}});
  server.enqueue({.headers = {{"opc-request-id", "OCI1"}}});
  HttpClient client(fast_config());
  EXPECT_EQ(client.send(request_to(server, "GET", "/")).value().request_id, "AMZ1");
  EXPECT_EQ(client.send(request_to(server, "GET", "/")).value().request_id, "JSON1");
  EXPECT_EQ(client.send(request_to(server, "GET", "/")).value().request_id, "OCI1");
}

TEST(HttpClientTest, ConnectionRefusedIsAConnectFailure) {
  HttpClient client(fast_config());
  Result<HttpRequest> req =
      request_from_url("http://127.0.0.1:" + std::to_string(unused_port()) + "/x");
  ASSERT_TRUE(req.ok());
  req->method = "PUT";
  HttpClient::Outcome out = client.send_classified(*req);
  EXPECT_EQ(out.error.kind, TransportFailure::kConnect);
  EXPECT_TRUE(
      starts_with(out.error.message, "PUT http://127.0.0.1:" + std::to_string(req->port) + "/x: "));
  Result<HttpResponse> r = client.send(*req);
  ASSERT_FALSE(r.ok());
  // The same message but for libcurl's "after N ms", which varies.
  auto untimed = [](std::string m) {
    size_t a = m.find(" after "), b = m.find(" ms", a);
    return a == std::string::npos || b == std::string::npos ? m : m.erase(a, b + 3 - a);
  };
  EXPECT_EQ(untimed(r.message()), untimed(out.error.message));
}

TEST(HttpClientTest, StallIsATimeout) {
  HttpTestServer server;
  // Little enough before the stall that the speed (averaged by libcurl
  // over the last seconds) is below the limit from the start.
  server.enqueue({.status = 200,
                  .generated_body_bytes = 200,
                  .fault = ScriptedResponse::Fault::kStallMidBody});
  HttpClient::Config config = fast_config();
  config.stall_seconds = 1;
  config.stall_bytes_per_second = 1000;
  HttpClient client(config);
  auto start = std::chrono::steady_clock::now();
  HttpClient::Outcome out = client.send_classified(request_to(server, "GET", "/slow"));
  EXPECT_EQ(out.error.kind, TransportFailure::kTimeout) << out.error.message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(4));
}

TEST(HttpClientTest, CloseMidResponseIsAConnectionFailure) {
  HttpTestServer server;
  server.enqueue({.status = 200,
                  .body = std::string(1000, 'x'),
                  .fault = ScriptedResponse::Fault::kCloseMidBody});
  server.enqueue({.fault = ScriptedResponse::Fault::kCloseWithoutResponse});
  HttpClient client(fast_config());
  HttpClient::Outcome out = client.send_classified(request_to(server, "GET", "/k"));
  EXPECT_EQ(out.error.kind, TransportFailure::kConnection) << out.error.message;
  out = client.send_classified(request_to(server, "GET", "/k"));
  EXPECT_EQ(out.error.kind, TransportFailure::kConnection) << out.error.message;
  EXPECT_EQ(out.error.message, "GET " + server.url("/k") + ": Empty reply from server");
}

TEST(HttpClientTest, TlsHandshakeFailureIsATlsFailure) {
  HttpTestServer server;  // speaks plain HTTP
  HttpClient client(fast_config());
  Result<HttpRequest> req =
      request_from_url("https://127.0.0.1:" + std::to_string(server.port()) + "/k?sig=s3cr3t");
  ASSERT_TRUE(req.ok());
  HttpClient::Outcome out = client.send_classified(*req);
  EXPECT_EQ(out.error.kind, TransportFailure::kTls) << out.error.message;
  EXPECT_TRUE(starts_with(out.error.message, "GET https://127.0.0.1:" +
                                                 std::to_string(server.port()) + "/k?sig=***: "));
}

TEST(HttpClientTest, DebugLogShowsEachExchangeWithSecretsRedacted) {
  HttpTestServer server;
  server.enqueue({.status = 200,
                  .headers = {{"x-amz-request-id", "REQ1"}, {"Set-Cookie", "session=c00k1e"}},
                  .body = "ok"});
  HttpClient client(fast_config());
  HttpRequest req = request_to(server, "PUT", "/k?partNumber=2&X-Amz-Signature=deadbeef");
  req.headers = {{"Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE, Signature=f00d"}};
  req.body = "abc";
  set_log_level(LogLevel::kDebug);
  ::testing::internal::CaptureStderr();
  Result<HttpResponse> r = client.send(req);
  std::string log = ::testing::internal::GetCapturedStderr();
  set_log_level(LogLevel::kInfo);
  ASSERT_TRUE(r.ok()) << r.message();
  const std::string url = server.url("/k?partNumber=2&X-Amz-Signature=***");
  EXPECT_TRUE(
      contains(log, "cloud_helper: http: PUT " + url + " (3 B body) [Authorization: ***]\n"));
  EXPECT_TRUE(contains(log, "cloud_helper: http: PUT " + url + " -> 200 ("));
  EXPECT_TRUE(contains(log,
                       " ms, 3 B up, 2 B down, request id REQ1) [x-amz-request-id: REQ1] "
                       "[Set-Cookie: ***]"));
  EXPECT_EQ(log.find("deadbeef"), std::string::npos);
  EXPECT_EQ(log.find("AKIDEXAMPLE"), std::string::npos);
  EXPECT_EQ(log.find("c00k1e"), std::string::npos);

  // Nothing at the default level.
  ::testing::internal::CaptureStderr();
  ASSERT_TRUE(client.send(req).ok());
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
}

// Sets or clears environment variables for one test, restoring them after.
class EnvOverride {
 public:
  void set(const char* name, const char* value) {
    if (saved_.count(name) == 0) {
      const char* old = std::getenv(name);
      saved_[name] = old ? std::optional<std::string>(old) : std::nullopt;
    }
    value ? ::setenv(name, value, 1) : ::unsetenv(name);
  }
  ~EnvOverride() {
    for (const auto& [name, value] : saved_)
      value ? ::setenv(name.c_str(), value->c_str(), 1) : ::unsetenv(name.c_str());
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

TEST(HttpClientTest, CaFileFromTheEnvironment) {
  EnvOverride env;
  for (const char* name : {"AWS_CA_BUNDLE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE"})
    env.set(name, nullptr);
  EXPECT_EQ(ca_file_from_env(), "");
  env.set("SSL_CERT_FILE", "/etc/ssl/b.pem");
  EXPECT_EQ(ca_file_from_env(), "/etc/ssl/b.pem");
  env.set("AWS_CA_BUNDLE", "/nonexistent/ca.pem");
  EXPECT_EQ(ca_file_from_env(), "/nonexistent/ca.pem");
  HttpClient client;
  EXPECT_EQ(client.config().ca_file, "/nonexistent/ca.pem");
  EXPECT_EQ(client.config().max_in_flight, 16);

  // A CA file that cannot be read fails the TLS setup, before any request.
  HttpTestServer server;
  Result<HttpRequest> req = request_from_url("https://127.0.0.1:" + std::to_string(server.port()));
  ASSERT_TRUE(req.ok());
  HttpClient::Outcome out = client.send_classified(*req);
  EXPECT_EQ(out.error.kind, TransportFailure::kTls) << out.error.message;
  EXPECT_TRUE(server.requests().empty());
}

}  // namespace
}  // namespace ch

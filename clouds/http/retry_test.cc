#include "clouds/http/retry.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <vector>

#include "helper/output.h"
#include "tests/test_http_server.h"

namespace ch {
namespace {

using std::chrono::milliseconds;
using test::HttpTestServer;
using test::ScriptedResponse;

HttpClient::Config fast_config() {
  HttpClient::Config c;
  c.connect_timeout_seconds = 2;
  c.stall_seconds = 2;
  c.max_in_flight = 2;
  return c;
}

std::string xml_error(const std::string& code) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" + code +
         "</Code><Message>m</Message><RequestId>R</RequestId></Error>";
}

// Sends to SERVER's TARGET with POLICY, recording the attempts passed to
// make_request and the delays slept.
struct Attempts {
  std::vector<int> attempts;
  std::vector<milliseconds> sleeps;
  RetryStats stats;
  Result<HttpResponse> result = Error{"not run"};
};

Attempts run(HttpClient& client, const RetryPolicy& policy, const std::string& url,
             const std::string& method = "GET") {
  Attempts r;
  r.result = send_with_retry(
      client, policy,
      [&](int attempt) -> Result<HttpRequest> {
        r.attempts.push_back(attempt);
        Result<HttpRequest> req = request_from_url(url);
        if (req.ok()) req->method = method;
        return req;
      },
      {}, &r.stats, [&](milliseconds d) { r.sleeps.push_back(d); });
  return r;
}

TEST(RetryTest, ServerErrorThenSuccess) {
  HttpTestServer server;
  server.enqueue({.status = 503, .body = xml_error("SlowDown")});
  server.enqueue({.status = 200, .body = "done"});
  HttpClient client(fast_config());
  Attempts r = run(client, RetryPolicy{}, server.url("/k"));
  ASSERT_TRUE(r.result.ok()) << r.result.message();
  EXPECT_EQ(r.result->status, 200);
  EXPECT_EQ(r.result->body, "done");
  EXPECT_EQ(r.stats.attempts, 2);
  EXPECT_EQ(r.stats.retries, 1);
  EXPECT_EQ(r.attempts, (std::vector<int>{1, 2}));
  ASSERT_EQ(r.sleeps.size(), 1u);
  EXPECT_LE(r.sleeps[0], milliseconds(200));  // first retry: U(0, base)
}

TEST(RetryTest, ThrottlingCodeInA400IsRetriedOtherCodesAreNot) {
  HttpTestServer server;
  server.enqueue({.status = 400, .body = xml_error("SlowDown")});
  server.enqueue({.status = 200});
  server.enqueue({.status = 400, .body = xml_error("InvalidParameter")});
  HttpClient client(fast_config());
  Attempts r = run(client, RetryPolicy{}, server.url("/k"));
  ASSERT_TRUE(r.result.ok()) << r.result.message();
  EXPECT_EQ(r.result->status, 200);
  EXPECT_EQ(r.stats.attempts, 2);

  r = run(client, RetryPolicy{}, server.url("/k"));
  ASSERT_TRUE(r.result.ok()) << r.result.message();
  EXPECT_EQ(r.result->status, 400);
  EXPECT_EQ(r.result->body, xml_error("InvalidParameter"));
  EXPECT_EQ(r.stats.attempts, 1);
  EXPECT_EQ(r.stats.retries, 0);
  EXPECT_TRUE(r.sleeps.empty());
}

TEST(RetryTest, RetryAfterIsHonouredAndCapped) {
  HttpTestServer server;
  server.enqueue({.status = 429, .headers = {{"Retry-After", "3"}}});
  server.enqueue({.status = 503, .headers = {{"Retry-After", "120"}}});
  server.enqueue({.status = 200});
  HttpClient client(fast_config());
  Attempts r = run(client, RetryPolicy{}, server.url("/k"));
  ASSERT_TRUE(r.result.ok()) << r.result.message();
  EXPECT_EQ(r.result->status, 200);
  EXPECT_EQ(r.sleeps, (std::vector<milliseconds>{milliseconds(3000), milliseconds(20000)}));
}

TEST(RetryTest, AttemptBudgetExhaustedOnResponsesReturnsTheLastResponse) {
  HttpTestServer server;
  server.set_handler([](const test::ReceivedRequest&) {
    return ScriptedResponse{.status = 500, .body = xml_error("InternalError")};
  });
  HttpClient client(fast_config());
  RetryPolicy policy;
  policy.max_attempts = 3;
  Attempts r = run(client, policy, server.url("/k"));
  ASSERT_TRUE(r.result.ok()) << r.result.message();
  EXPECT_EQ(r.result->status, 500);
  EXPECT_EQ(r.stats.attempts, 3);
  EXPECT_EQ(r.stats.retries, 2);
  EXPECT_EQ(server.requests().size(), 3u);
}

TEST(RetryTest, TransportFailureBudgetExhaustedIsAnError) {
  HttpTestServer server;
  server.set_handler([](const test::ReceivedRequest&) {
    return ScriptedResponse{.fault = ScriptedResponse::Fault::kCloseWithoutResponse};
  });
  HttpClient client(fast_config());
  RetryPolicy policy;
  policy.max_attempts = 3;
  Attempts r = run(client, policy, server.url("/k?X-Amz-Signature=s3cr3t"), "PUT");
  ASSERT_FALSE(r.result.ok());
  EXPECT_EQ(r.result.message(), "PUT " + server.url("/k?X-Amz-Signature=***") +
                                    ": after 3 attempts: Empty reply from server");
  EXPECT_EQ(r.stats.attempts, 3);
  EXPECT_EQ(r.sleeps.size(), 2u);
}

TEST(RetryTest, SleepBudgetEndsRetriesEarly) {
  HttpTestServer server;
  server.enqueue({.status = 503, .headers = {{"Retry-After", "10"}}});
  HttpClient client(fast_config());
  RetryPolicy policy;
  policy.max_total_sleep = milliseconds(5000);
  Attempts r = run(client, policy, server.url("/k"));
  ASSERT_TRUE(r.result.ok()) << r.result.message();
  EXPECT_EQ(r.result->status, 503);
  EXPECT_EQ(r.stats.attempts, 1);
  EXPECT_TRUE(r.sleeps.empty());
}

TEST(RetryTest, TransportFailureRetriedThenSuccess) {
  HttpTestServer server;
  server.enqueue({.fault = ScriptedResponse::Fault::kCloseWithoutResponse});
  server.enqueue({.status = 200, .body = "ok"});
  HttpClient client(fast_config());
  Attempts r = run(client, RetryPolicy{}, server.url("/k"));
  ASSERT_TRUE(r.result.ok()) << r.result.message();
  EXPECT_EQ(r.result->body, "ok");
  EXPECT_EQ(r.stats.attempts, 2);
}

TEST(RetryTest, TlsFailureIsNotRetried) {
  HttpTestServer server;
  HttpClient client(fast_config());
  Attempts r =
      run(client, RetryPolicy{}, "https://127.0.0.1:" + std::to_string(server.port()) + "/k");
  ASSERT_FALSE(r.result.ok());
  EXPECT_EQ(r.stats.attempts, 1);
  EXPECT_EQ(r.result.message().rfind("GET https://127.0.0.1:", 0), 0u) << r.result.message();
  EXPECT_EQ(r.result.message().find("attempt"), std::string::npos);
}

TEST(RetryTest, MakeRequestErrorIsReturned) {
  HttpClient client(fast_config());
  RetryStats stats;
  Result<HttpResponse> r = send_with_retry(
      client, RetryPolicy{}, [](int) -> Result<HttpRequest> { return Error{"no credentials"}; }, {},
      &stats);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "no credentials");
  EXPECT_EQ(stats.attempts, 0);
}

TEST(RetryTest, JitteredDelaysStayUnderTheExponentialCap) {
  HttpTestServer server;
  server.set_handler([](const test::ReceivedRequest&) { return ScriptedResponse{.status = 503}; });
  HttpClient client(fast_config());
  RetryPolicy policy;
  policy.max_attempts = 7;
  policy.base_delay = milliseconds(100);
  policy.max_delay = milliseconds(400);
  Attempts r = run(client, policy, server.url("/k"));
  ASSERT_EQ(r.sleeps.size(), 6u);
  const milliseconds caps[] = {milliseconds(100), milliseconds(200), milliseconds(400),
                               milliseconds(400), milliseconds(400), milliseconds(400)};
  for (size_t i = 0; i < r.sleeps.size(); ++i) {
    EXPECT_GE(r.sleeps[i], milliseconds(0));
    EXPECT_LE(r.sleeps[i], caps[i]) << i;
  }
}

TEST(RetryTest, EachRetryIsLoggedWithoutQueryValues) {
  HttpTestServer server;
  server.enqueue({.status = 503, .body = xml_error("SlowDown")});
  server.enqueue({.status = 200});
  HttpClient client(fast_config());
  RetryPolicy policy;
  policy.base_delay = milliseconds(0);
  ::testing::internal::CaptureStderr();
  Attempts r = run(client, policy, server.url("/b/k?partNumber=2&X-Amz-Signature=s3cr3t"), "PUT");
  std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(r.result.ok()) << r.result.message();
  EXPECT_EQ(log, "cloud_helper: retrying PUT 127.0.0.1:" + std::to_string(server.port()) +
                     "/b/k after HTTP 503 SlowDown (attempt 2 of 8, in 0 ms)\n");
}

TEST(RetryTest, DefaultSleepIsUsedWithoutAHook) {
  HttpTestServer server;
  server.enqueue({.status = 408});
  server.enqueue({.status = 200});
  HttpClient client(fast_config());
  RetryPolicy policy;
  policy.base_delay = milliseconds(1);
  RetryStats stats;
  Result<HttpResponse> r = send_with_retry(
      client, policy, [&](int) { return request_from_url(server.url("/k")); }, {}, &stats);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(stats.retries, 1);
}

// Restores CLOUD_HELPER_RETRY_SCALE as it was when the test started.
class ScaleEnvTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* v = std::getenv("CLOUD_HELPER_RETRY_SCALE");
    had_ = v != nullptr;
    if (had_) saved_ = v;
  }
  void TearDown() override {
    had_ ? ::setenv("CLOUD_HELPER_RETRY_SCALE", saved_.c_str(), 1)
         : ::unsetenv("CLOUD_HELPER_RETRY_SCALE");
  }

 private:
  bool had_ = false;
  std::string saved_;
};

using RetryPolicyTest = ScaleEnvTest;

TEST_F(RetryPolicyTest, FromEnvScalesAllDelays) {
  ::setenv("CLOUD_HELPER_RETRY_SCALE", "0.5", 1);
  RetryPolicy p = RetryPolicy::from_env();
  EXPECT_EQ(p.max_attempts, 8);
  EXPECT_EQ(p.base_delay, milliseconds(100));
  EXPECT_EQ(p.max_delay, milliseconds(10000));
  EXPECT_EQ(p.max_total_sleep, milliseconds(60000));
  ::setenv("CLOUD_HELPER_RETRY_SCALE", "0", 1);
  p = RetryPolicy::from_env();
  EXPECT_EQ(p.base_delay, milliseconds(0));
  EXPECT_EQ(p.max_delay, milliseconds(0));
  EXPECT_EQ(p.max_total_sleep, milliseconds(0));
  for (const char* bad : {"fast", "-1", "0.5x", ""}) {
    ::setenv("CLOUD_HELPER_RETRY_SCALE", bad, 1);
    EXPECT_EQ(RetryPolicy::from_env().base_delay, milliseconds(200)) << bad;
  }
  ::unsetenv("CLOUD_HELPER_RETRY_SCALE");
  EXPECT_EQ(RetryPolicy::from_env().max_delay, milliseconds(20000));
}

TEST_F(RetryPolicyTest, ZeroScaleStillRetries) {
  HttpTestServer server;
  server.enqueue({.status = 503, .headers = {{"Retry-After", "5"}}});
  server.enqueue({.status = 200});
  HttpClient client(fast_config());
  ::setenv("CLOUD_HELPER_RETRY_SCALE", "0", 1);
  RetryPolicy policy = RetryPolicy::from_env();
  ::unsetenv("CLOUD_HELPER_RETRY_SCALE");
  Attempts r = run(client, policy, server.url("/k"));
  ASSERT_TRUE(r.result.ok()) << r.result.message();
  EXPECT_EQ(r.result->status, 200);
  EXPECT_EQ(r.sleeps, (std::vector<milliseconds>{milliseconds(0)}));
}

TEST(RetryableResponseTest, StatusAlone) {
  for (long status : {500L, 502L, 503L, 504L, 599L, 429L, 408L})
    EXPECT_TRUE(is_retryable_response(status, "")) << status;
  for (long status : {200L, 204L, 302L, 400L, 401L, 403L, 404L, 409L, 501L})
    EXPECT_FALSE(is_retryable_response(status, "")) << status;
}

TEST(RetryableResponseTest, AwsXml) {
  EXPECT_TRUE(is_retryable_response(400, xml_error("RequestTimeout")));
  EXPECT_TRUE(is_retryable_response(403, xml_error("RequestTimeTooSkewed")) == false);
  EXPECT_TRUE(is_retryable_response(400, xml_error("PriorRequestNotComplete")));
  EXPECT_FALSE(is_retryable_response(400, xml_error("InvalidParameterValue")));
  // EC2's query protocol.
  EXPECT_TRUE(is_retryable_response(
      503,
      "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>m</Message></Error>"
      "</Errors><RequestID>r</RequestID></Response>"));
  EXPECT_TRUE(is_retryable_response(
      400,
      "<Response><Errors><Error><Code>EC2ThrottledException</Code></Error></Errors></Response>"));
  EXPECT_FALSE(is_retryable_response(400,
                                     "<Response><Errors><Error><Code>InvalidAMIName.Duplicate</"
                                     "Code></Error></Errors></Response>"));
}

TEST(RetryableResponseTest, AwsJson) {
  EXPECT_TRUE(is_retryable_response(400, R"({"__type":"ThrottlingException","message":"slow"})"));
  EXPECT_TRUE(is_retryable_response(
      400, R"({"__type":"com.amazon.coral.availability#ThrottlingException","message":"m"})"));
  EXPECT_TRUE(
      is_retryable_response(400, R"({"__type":"TooManyRequestsException:http://internal"})"));
  EXPECT_FALSE(is_retryable_response(
      400, R"({"__type":"com.amazonaws.ebs#ValidationException","Message":"bad"})"));
  EXPECT_FALSE(is_retryable_response(403, R"({"__type":"AccessDeniedException"})"));
}

TEST(RetryableResponseTest, Azure) {
  const std::string busy =
      "\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>ServerBusy</Code>"
      "<Message>Egress is over the account limit.</Message></Error>";
  EXPECT_TRUE(is_retryable_response(503, busy));
  EXPECT_TRUE(is_retryable_response(400, "<Error><Code>OperationTimedOut</Code></Error>"));
  EXPECT_FALSE(is_retryable_response(409, "<Error><Code>BlobAlreadyExists</Code></Error>"));
  // Resource Manager JSON.
  EXPECT_TRUE(is_retryable_response(400, R"({"error":{"code":"TooManyRequests","message":"m"}})"));
  EXPECT_FALSE(
      is_retryable_response(400, R"({"error":{"code":"InvalidParameter","message":"m"}})"));
}

TEST(RetryableResponseTest, GcpJson) {
  EXPECT_TRUE(is_retryable_response(403, R"({"error":{"code":403,"message":"Rate Limit Exceeded",
      "errors":[{"message":"Rate Limit Exceeded","domain":"usageLimits","reason":"rateLimitExceeded"}]}})"));
  EXPECT_TRUE(
      is_retryable_response(400, R"({"error":{"code":400,"errors":[{"reason":"backendError"}]}})"));
  EXPECT_FALSE(is_retryable_response(403, R"({"error":{"code":403,"message":"Forbidden",
      "errors":[{"message":"Forbidden","domain":"global","reason":"forbidden"}]}})"));
}

TEST(RetryableResponseTest, AliCloud) {
  EXPECT_TRUE(
      is_retryable_response(400, R"({"RequestId":"r","Code":"Throttling.User","Message":"m"})"));
  EXPECT_TRUE(is_retryable_response(400, "<Error><Code>Throttling.Api</Code></Error>"));
  EXPECT_FALSE(is_retryable_response(400, "<Error><Code>Throttling.</Code></Error>"));
  EXPECT_FALSE(is_retryable_response(400, R"({"Code":"InvalidImageName.Duplicated"})"));
}

TEST(RetryableTransportTest, Kinds) {
  for (TransportFailure k : {TransportFailure::kResolve, TransportFailure::kConnect,
                             TransportFailure::kTimeout, TransportFailure::kConnection})
    EXPECT_TRUE(is_retryable_transport(k));
  for (TransportFailure k : {TransportFailure::kNone, TransportFailure::kTls,
                             TransportFailure::kBodySource, TransportFailure::kOther})
    EXPECT_FALSE(is_retryable_transport(k));
}

TEST(ResponseErrorCodeTest, Forms) {
  EXPECT_EQ(response_error_code(xml_error(" SlowDown ")), "SlowDown");
  EXPECT_EQ(response_error_code("<Error><Code>X"), "");
  EXPECT_EQ(response_error_code(R"({"__type":"a.b#C:http://x"})"), "C");
  EXPECT_EQ(response_error_code(R"({"code":"NotAuthorizedOrNotFound","message":"m"})"),
            "NotAuthorizedOrNotFound");
  EXPECT_EQ(response_error_code(R"({"error":"invalid_grant","error_description":"d"})"),
            "invalid_grant");
  EXPECT_EQ(response_error_code(R"({"error":{"code":404,"errors":[]}})"), "");
  EXPECT_EQ(response_error_code("{not json"), "");
  EXPECT_EQ(response_error_code(""), "");
  EXPECT_EQ(response_error_code("\xEF\xBB\xBF{\"code\":\"ServerBusy\"}"), "ServerBusy");
  EXPECT_EQ(response_error_code("plain text"), "");
}

TEST(RetryAfterTest, SecondsAndDates) {
  using namespace std::chrono;
  const system_clock::time_point now =
      sys_days{year{2024} / 3 / 5} + hours{8} + minutes{49} + seconds{7};
  EXPECT_EQ(retry_after_seconds("7", now), 7);
  EXPECT_EQ(retry_after_seconds(" 120 ", now), 120);
  EXPECT_EQ(retry_after_seconds("0", now), 0);
  EXPECT_EQ(retry_after_seconds("Tue, 05 Mar 2024 08:49:37 GMT", now), 30);
  EXPECT_EQ(retry_after_seconds("Tue, 05 Mar 2024 08:49:37 GMT", now + milliseconds(500)), 30);
  EXPECT_EQ(retry_after_seconds("Mon, 04 Mar 2024 08:49:37 GMT", now), 0);
  EXPECT_EQ(retry_after_seconds("", now), -1);
  EXPECT_EQ(retry_after_seconds("soon", now), -1);
  EXPECT_EQ(retry_after_seconds("-5", now), -1);
  EXPECT_EQ(retry_after_seconds("Tue, 05 Foo 2024 08:49:37 GMT", now), -1);
  EXPECT_EQ(retry_after_seconds("Tue, 31 Feb 2024 08:49:37 GMT", now), -1);
  EXPECT_EQ(retry_after_seconds("Tue, 05 Mar 2024 08:49:37 UTC", now), -1);
  EXPECT_EQ(retry_after_seconds("Tuesday, 05-Mar-24 08:49:37 GMT", now), -1);
}

}  // namespace
}  // namespace ch

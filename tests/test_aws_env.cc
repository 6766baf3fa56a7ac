#include "tests/test_aws_env.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>

#include "clouds/aws/credentials.h"
#include "tests/test_util.h"

namespace ch::test {
namespace {

const char kHowToStart[] =
    "AWS emulators not running: run ctest (fixture aws) or "
    "python3 tests/aws/emulators.py start --dir /tmp/x and export the variables in /tmp/x/env";

// The checks AwsTestEnv::boto3 offers every script (documented there).
const char kPreambleChecks[] = R"PY(
def error_code(f):
    try:
        f()
        return 'ok'
    except botocore.exceptions.ClientError as e:
        return e.response['Error']['Code']

def snapshot_block_digests(sid, e=None):
    e = e or ebs
    digests, kw = {}, {}
    while True:
        r = e.list_snapshot_blocks(SnapshotId=sid, **kw)
        for b in r['Blocks']:
            data = e.get_snapshot_block(SnapshotId=sid, BlockIndex=b['BlockIndex'],
                                        BlockToken=b.get('BlockToken') or 'x')['BlockData'].read()
            digests[b['BlockIndex']] = hashlib.sha256(data).hexdigest()
        if not r.get('NextToken'):
            return r['BlockSize'], digests
        kw = {'NextToken': r['NextToken']}

def file_block_digests(path, bs):
    out = {}
    with open(path, 'rb') as f:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        off = 0
        while off < size:
            try:
                start = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:  # ENXIO: nothing but a hole left
                break
            end = os.lseek(fd, start, os.SEEK_HOLE)
            i = start // bs
            while i * bs < end:
                data = os.pread(fd, bs, i * bs).ljust(bs, b'\0')
                if data.count(0) != bs:
                    out[i] = hashlib.sha256(data).hexdigest()
                i += 1
            off = i * bs
    return out

def compare_snapshot_with_file(sid, path, e=None):
    bs, got = snapshot_block_digests(sid, e)
    want = file_block_digests(path, bs)
    return {'block_size': bs, 'blocks': len(got),
            'missing': sorted(set(want) - set(got))[:5], 'extra': sorted(set(got) - set(want))[:5],
            'differ': sorted(i for i in want if i in got and got[i] != want[i])[:5], 'match': got == want}
)PY";

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string tail(const std::string& text, size_t max_chars) {
  return text.size() <= max_chars ? text : "..." + text.substr(text.size() - max_chars);
}

Status check_answers(const char* var, const std::string& url, const std::string& path) {
  auto r = loopback_http("GET", url + path);
  if (!r.ok()) return Error{std::string(kHowToStart) + " (" + var + "=" + url + ": " + r.message() + ")"};
  if (r->status != 200) {
    return Error{std::string(kHowToStart) + " (" + var + "=" + url + path + " answered HTTP " +
                 std::to_string(r->status) + ")"};
  }
  return {};
}

Status expect_ok(const std::string& what, const Result<LoopbackResponse>& r) {
  if (!r.ok()) return r.error().wrap(what);
  if (r->status != 200) {
    return Error{what + ": HTTP " + std::to_string(r->status) + ": " + tail(r->body, 300)};
  }
  return {};
}

}  // namespace

Result<LoopbackResponse> loopback_http(const std::string& method, const std::string& url,
                                       const std::string& body) {
  CH_ASSIGN(request, request_from_url(url));
  request.method = method;
  request.body = body;
  request.headers.push_back({"Content-Type", "application/json"});
  HttpClient::Config config;
  config.request_timeout_seconds = 30;  // control calls answer at once; an import poll may take a moment
  HttpClient http(config);
  CH_ASSIGN(response, http.send(request));
  return LoopbackResponse{static_cast<int>(response.status), std::move(response.body)};
}

Result<AwsTestEnv> AwsTestEnv::load() {
  AwsTestEnv env;
  struct Var {
    const char* name;
    std::string* field;
  } vars[] = {{"CLOUD_HELPER_AWS_ENDPOINT", &env.endpoint},
              {"CLOUD_HELPER_MOTO_URL", &env.moto_url},
              {"CLOUD_HELPER_AWS_FAULT_ENDPOINT", &env.fault_endpoint},
              {"CLOUD_HELPER_AWS_AUTH_ENDPOINT", &env.auth_endpoint},
              {"CLOUD_HELPER_AWS_AUTH_KEYS", &env.auth_keys_path}};
  for (const Var& v : vars) {
    const char* value = std::getenv(v.name);
    if (!value || !*value) return Error{std::string(kHowToStart) + " (" + v.name + " is not set)"};
    *v.field = value;
  }
  CH_TRY(check_answers("CLOUD_HELPER_AWS_ENDPOINT", env.endpoint, "/_gap/health"));
  CH_TRY(check_answers("CLOUD_HELPER_AWS_FAULT_ENDPOINT", env.fault_endpoint, "/_fault/health"));
  // moto's dashboard: a page that is not an AWS action (actions would count
  // against the signature-checking server's no-auth allowance).
  CH_TRY(check_answers("CLOUD_HELPER_MOTO_URL", env.moto_url, "/moto-api/"));
  CH_TRY(check_answers("CLOUD_HELPER_AWS_AUTH_ENDPOINT", env.auth_endpoint, "/moto-api/"));
  return env;
}

Result<AwsKeys> AwsTestEnv::auth_keys() const {
  std::string text = slurp(auth_keys_path);
  auto doc = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.contains("access_key_id") || !doc.contains("secret_access_key")) {
    return Error{"reading " + auth_keys_path + ": not the JSON emulators.py writes (access_key_id, secret_access_key)"};
  }
  return AwsKeys{doc["access_key_id"].get<std::string>(), doc["secret_access_key"].get<std::string>()};
}

Result<std::string> AwsTestEnv::boto3(const std::string& python_code) const {
  return boto3_at(endpoint, python_code);
}

Result<std::string> AwsTestEnv::boto3_at(const std::string& at, const std::string& python_code) const {
  const auto& q = py_literal;
  std::string preamble =
      "import base64, hashlib, json, os, sys, time\n"
      "for _v in ('AWS_PROFILE', 'AWS_DEFAULT_PROFILE', 'AWS_ENDPOINT_URL'):\n"
      "    os.environ.pop(_v, None)\n"
      "os.environ['AWS_CONFIG_FILE'] = os.environ['AWS_SHARED_CREDENTIALS_FILE'] = os.devnull\n"
      "import boto3, botocore.config, botocore.exceptions\n"
      "ENDPOINT = " + q(at) + "\n"
      "MOTO_URL = " + q(moto_url) + "\n"
      "FAULT_ENDPOINT = " + q(fault_endpoint) + "\n"
      "AUTH_ENDPOINT = " + q(auth_endpoint) + "\n"
      "REGION = " + q(region) + "\n"
      "AUTH_KEYS = json.load(open(" + q(auth_keys_path) + ")) if os.path.exists(" + q(auth_keys_path) +
      ") else {}\n"
      "_CONFIG = botocore.config.Config(retries={'total_max_attempts': 1}, s3={'addressing_style': 'path'})\n"
      "def client(service, endpoint=None, region=None, key='test', secret='test'):\n"
      "    return boto3.client(service, endpoint_url=endpoint or ENDPOINT, region_name=region or REGION,\n"
      "                        aws_access_key_id=key, aws_secret_access_key=secret, config=_CONFIG)\n"
      "s3, ec2, ebs, iam = client('s3'), client('ec2'), client('ebs'), client('iam')\n" +
      kPreambleChecks + "# ---- test code ----\n";
  TempDir dir;
  std::ofstream(dir / "script.py", std::ios::binary) << preamble << python_code << "\n";
  CommandResult r = run_command("python3 " + shell_quote(dir / "script.py") + " 2>" + shell_quote(dir / "stderr"));
  if (r.exit_code != 0) {
    return Error{"boto3 script failed (exit " + std::to_string(r.exit_code) + "): " +
                 tail(slurp(dir / "stderr"), 1500) + "\n--- script ---\n" + python_code};
  }
  return r.output;
}

Status AwsTestEnv::set_faults(const std::string& rule, const nlohmann::json& config) const {
  return expect_ok("setting fault proxy rule " + rule,
                   loopback_http("POST", fault_endpoint + "/_fault/config?rule=" + rule, config.dump()));
}

Status AwsTestEnv::clear_faults(const std::string& rule) const {
  return expect_ok("removing fault proxy rule " + rule,
                   loopback_http("DELETE", fault_endpoint + "/_fault/config?rule=" + rule));
}

Result<nlohmann::json> AwsTestEnv::fault_stats() const {
  auto r = loopback_http("GET", fault_endpoint + "/_fault/stats");
  CH_TRY(expect_ok("reading the fault proxy stats", r));
  auto doc = nlohmann::json::parse(r->body, nullptr, false);
  if (doc.is_discarded()) return Error{"fault proxy stats are not JSON: " + tail(r->body, 200)};
  return doc;
}

Status AwsTestEnv::set_image_block_public_access(const std::string& state) const {
  return expect_ok("setting image block public access",
                   loopback_http("POST", endpoint + "/_gap/image-block-public-access?state=" + state));
}

Status AwsTestEnv::set_import_polls(int polls) const {
  return expect_ok("setting the import poll count",
                   loopback_http("POST", endpoint + "/_gap/config",
                                 nlohmann::json{{"import_polls", polls}}.dump()));
}

void AwsTest::SetUp() {
  auto env = AwsTestEnv::load();
  if (!env.ok()) GTEST_FAIL() << env.message();
  env_ = std::move(env).value();
}

std::string py_literal(const std::string& text) { return nlohmann::json(text).dump(); }

void use_fast_waits() {
  ::setenv("CLOUD_HELPER_POLL_SCALE", "0.001", /*overwrite=*/0);
  ::setenv("CLOUD_HELPER_RETRY_SCALE", "0.01", /*overwrite=*/0);
}

AwsTestClient::AwsTestClient(const std::string& url, const AwsKeys& keys, const RetryPolicy& retry) {
  AwsEnv env;
  env.vars["AWS_ENDPOINT_URL"] = url;
  env.home = "/nonexistent";  // no ~/.aws/config endpoint_url or profile
  credentials = static_aws_credentials(AwsCredentials{keys.access_key_id, keys.secret_access_key, ""}, "test");
  client = std::make_unique<AwsClient>(http, *credentials, std::move(env), retry);
}

void AwsClientTest::SetUp() {
  AwsTest::SetUp();
  if (HasFatalFailure()) return;
  use_fast_waits();
  client_ = std::make_unique<AwsTestClient>(aws().endpoint);
}

std::string unique_name(const std::string& prefix) {
  static std::atomic<unsigned> counter{0};
  static const unsigned run = std::random_device{}();
  std::string test = "x";
  if (const auto* info = ::testing::UnitTest::GetInstance()->current_test_info()) {
    test = std::string(info->test_suite_name()) + "-" + info->name();
  }
  auto clean = [](const std::string& s) {
    std::string out;
    for (char c : s) {
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
      if (ok) {
        out += c;
      } else if (!out.empty() && out.back() != '-') {
        out += '-';
      }
    }
    return out;
  };
  char suffix[32];
  std::snprintf(suffix, sizeof suffix, "-%x%05x%x", static_cast<unsigned>(getpid()) & 0xfffff,
                run & 0xfffff, counter.fetch_add(1));
  std::string head = clean(prefix + "-" + test);
  size_t room = 63 - std::string(suffix).size();
  if (head.size() > room) head.resize(room);
  while (!head.empty() && head.back() == '-') head.pop_back();
  return head + suffix;
}

}  // namespace ch::test

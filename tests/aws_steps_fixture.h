// What the end-to-end tests of `cloud_helper upload/import/publish/rollback`
// for cloud: aws share (tests/aws_steps_*_test.cc): the built binary run in
// a temporary directory against the AWS emulators (tests/aws/README.md) with
// a hermetic environment, sparse test images, boto3 checks of what really
// exists in moto, and a private fault proxy whose rules and counters belong
// to one test alone.
//
// moto's state is shared by every test of the run and by tests running in
// parallel: every bucket, image name and tag value comes from
// unique_name(), and results are looked up by those names.
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "clouds/operations.h"
#include "metadata/image_metadata.h"
#include "tests/test_aws_env.h"
#include "tests/step_fixture.h"
#include "tests/test_util.h"

extern char** environ;

namespace ch::test::aws_steps {

using nlohmann::json;

// A Python string literal.
inline std::string py(const std::string& s) { return json(s).dump(); }

// Lines of TEXT without their newlines.
inline std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

// Checks run through boto3 (tests/test_aws_env.h preamble), each printing
// plain data that the tests compare: independent of our own AWS client.
inline const char kPyHelpers[] = R"PY(
def blocks_of(sid, e=None):
    e = e or ebs
    blocks, token = {}, None
    while True:
        kw = dict(SnapshotId=sid, MaxResults=10000)
        if token:
            kw['NextToken'] = token
        r = e.list_snapshot_blocks(**kw)
        for b in r['Blocks']:
            data = e.get_snapshot_block(SnapshotId=sid, BlockIndex=b['BlockIndex'],
                                        BlockToken=b['BlockToken'])['BlockData'].read()
            blocks[b['BlockIndex']] = hashlib.sha256(data).hexdigest()
        token = r.get('NextToken')
        if not token:
            return r['BlockSize'], blocks

def nonzero_blocks(path, bs):
    out = {}
    with open(path, 'rb') as f:
        i = 0
        while True:
            b = f.read(bs)
            if not b:
                return out
            if b.count(0) != len(b):
                out[i] = hashlib.sha256(b.ljust(bs, b'\0')).hexdigest()
            i += 1

def compare_snapshot(sid, raw, e=None):
    bs, got = blocks_of(sid, e)
    want = nonzero_blocks(raw, bs)
    return {'block_size': bs, 'blocks': len(got), 'want_blocks': len(want),
            'missing': sorted(set(want) - set(got))[:5], 'extra': sorted(set(got) - set(want))[:5],
            'differ': [i for i in want if i in got and got[i] != want[i]][:5], 'match': got == want}

def amis(region, name, e=None):
    e = e or client('ec2', region=region)
    out = []
    for i in e.describe_images(Owners=['self'], Filters=[{'Name': 'name', 'Values': [name]}])['Images']:
        lp = e.describe_image_attribute(ImageId=i['ImageId'], Attribute='launchPermission')
        out.append({'id': i['ImageId'], 'state': i.get('State'), 'arch': i.get('Architecture'),
                    'tags': {t['Key']: t['Value'] for t in i.get('Tags', [])},
                    'boot_mode': i.get('BootMode'), 'imds': i.get('ImdsSupport'),
                    'ena': i.get('EnaSupport'), 'deprecation': i.get('DeprecationTime'),
                    'public': i.get('Public'), 'launch': lp.get('LaunchPermissions', []),
                    'snapshots': [b['Ebs']['SnapshotId'] for b in i.get('BlockDeviceMappings', [])
                                  if 'SnapshotId' in b.get('Ebs', {})]})
    return out

def tagged_snapshots(region, name, e=None):
    e = e or client('ec2', region=region)
    snaps = e.describe_snapshots(OwnerIds=['self'], Filters=[{'Name': 'tag:Name', 'Values': [name]}])
    return sorted(s['SnapshotId'] for s in snaps['Snapshots'])

def snapshot_exists(region, sid):
    try:
        client('ec2', region=region).describe_snapshots(SnapshotIds=[sid])
        return True
    except Exception as ex:
        if 'NotFound' in str(ex):
            return False
        raise

def keys_under(bucket, prefix, s=None):
    s = s or s3
    return sorted(o['Key'] for o in s.list_objects_v2(Bucket=bucket, Prefix=prefix).get('Contents', []))

def object_sha256(bucket, key, s=None):
    h = hashlib.sha256()
    for chunk in (s or s3).get_object(Bucket=bucket, Key=key)['Body'].iter_chunks(1 << 20):
        h.update(chunk)
    return h.hexdigest()

def file_sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()

def multipart_uploads(bucket, s=None):
    return [u['Key'] for u in (s or s3).list_multipart_uploads(Bucket=bucket).get('Uploads', [])]
)PY";

// fault_proxy.py on a free loopback port in front of UPSTREAM, owned by one
// test: its rules see only that test's requests, and its counters count only
// them ("no request was sent", "no creating call on a re-run"). The shared
// proxy cannot scope faults to one test's EC2/EBS calls by id, so a rule
// matching everything would hit tests running beside it.
class PrivateFaultProxy {
 public:
  static Result<std::unique_ptr<PrivateFaultProxy>> start(const std::string& upstream,
                                                          const std::string& log_path) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      if (fd >= 0) close(fd);
      return Error{"no free loopback port for a fault proxy"};
    }
    int port = ntohs(addr.sin_port);
    close(fd);
    auto p = std::unique_ptr<PrivateFaultProxy>(new PrivateFaultProxy);
    p->url = "http://127.0.0.1:" + std::to_string(port);
    std::string script = std::string(CLOUD_HELPER_SOURCE_DIR) + "/tests/aws/fault_proxy.py";
    std::string port_s = std::to_string(port);
    const char* argv[] = {"python3", script.c_str(), "--port", port_s.c_str(), "--upstream",
                          upstream.c_str(), nullptr};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    int rc = posix_spawnp(&p->pid_, "python3", &fa, nullptr, const_cast<char**>(argv), environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) return Error{"cannot start fault_proxy.py: " + std::string(strerror(rc))};
    for (int i = 0; i < 400; ++i) {
      auto r = loopback_http("GET", p->url + "/_fault/health");
      if (r.ok() && r->status == 200) return p;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    return Error{"fault_proxy.py did not answer on " + p->url + ": " + slurp(log_path)};
  }

  ~PrivateFaultProxy() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
  }

  // One rule, "all", matching every request.
  Status set_faults(const json& config) const {
    auto r = loopback_http("POST", url + "/_fault/config?rule=all", config.dump());
    if (!r.ok()) return r.error();
    if (r->status != 200) return Error{"fault proxy config: HTTP " + std::to_string(r->status) + " " + r->body};
    return {};
  }
  Result<json> stats() const {
    CH_ASSIGN(r, loopback_http("GET", url + "/_fault/stats"));
    auto doc = json::parse(r.body, nullptr, false);
    if (doc.is_discarded()) return Error{"fault proxy stats: " + r.body};
    return doc;
  }

  std::string url;

 private:
  PrivateFaultProxy() = default;
  pid_t pid_ = -1;
};

// The EC2/EBS/S3 calls that create something; a re-run that skips or only
// converges must forward none of them.
inline const char* const kCreatingCalls[] = {
    "s3:PutObject",        "s3:CreateMultipartUpload", "s3:UploadPart",   "s3:CompleteMultipartUpload",
    "ebs:StartSnapshot",   "ebs:PutSnapshotBlock",     "ebs:CompleteSnapshot",
    "ec2:RegisterImage",   "ec2:CopyImage",            "ec2:ImportSnapshot"};

// The creating calls among a proxy's forwarded counters ("POST ec2:CopyImage": 1).
inline std::vector<std::string> creating_calls(const json& stats) {
  std::vector<std::string> out;
  const json forwarded = stats.value("forwarded", json::object());
  for (const auto& [label, n] : forwarded.items()) {
    std::string op = label.substr(label.find(' ') + 1);  // "POST ec2:CopyImage" → "ec2:CopyImage"
    for (const char* call : kCreatingCalls)
      if (op == call) out.push_back(label + " x" + std::to_string(n.get<int>()));
  }
  return out;
}

class AwsSteps : public AwsTest, protected StepFixture {
 protected:
  void SetUp() override {
    AwsTest::SetUp();
    if (HasFatalFailure()) return;
    endpoint_ = aws().endpoint;
    keys_ = aws().keys;
    name_ = unique_name("img");
    bucket_ = unique_name("b");
  }

  // A bucket in us-east-1: moto accepts an unsigned CreateBucket.
  void make_bucket(const std::string& bucket) {
    auto r = loopback_http("PUT", aws().moto_url + "/" + bucket);
    ASSERT_TRUE(r.ok()) << r.message();
    ASSERT_EQ(r->status, 200) << r->body;
  }

  // The environment the binary runs with: nothing inherited but PATH, so
  // neither the developer's ~/.aws nor AWS_* variables leak in.
  std::string env_text(const std::string& extra = "") const {
    return hermetic_env("AWS_ENDPOINT_URL=" + shell_quote(endpoint_) +
                        " AWS_ACCESS_KEY_ID=" + shell_quote(keys_.access_key_id) +
                        " AWS_SECRET_ACCESS_KEY=" + shell_quote(keys_.secret_access_key) +
                        " AWS_REGION=us-east-1 AWS_EC2_METADATA_DISABLED=true"
                        " CLOUD_HELPER_POLL_SCALE=0.001 CLOUD_HELPER_RETRY_SCALE=0.01 " +
                        extra);
  }
  std::string command(const std::string& args, const std::string& extra_env = "") const {
    return command_with(env_text(extra_env), args);
  }

  // Runs `cloud_helper --no-progress ARGS` (shell text) in the temp dir.
  StepRun run(const std::string& args, const std::string& extra_env = "") const {
    return run_with(env_text(extra_env), args);
  }

  // Starts `cloud_helper ARGS`, polls YAML every 5 ms until READY(meta)
  // holds, then SIGKILLs it. False when it ended first (exit code in *code).
  template <typename Ready>
  bool run_and_kill(const std::string& args, const std::string& yaml, Ready ready, int* code) {
    return kill_when(command(args), yaml, ready, code);
  }


  // Runs a boto3 check (kPyHelpers defined) at ENDPOINT that prints one
  // JSON document.
  Result<json> check_at(const std::string& endpoint, const std::string& code) const {
    CH_ASSIGN(out, aws().boto3_at(endpoint, std::string(kPyHelpers) + code));
    auto doc = json::parse(out, nullptr, false);
    if (doc.is_discarded()) return Error{"boto3 check printed no JSON: " + out};
    return doc;
  }
  Result<json> check(const std::string& code) const { return check_at(aws().endpoint, code); }

  // A sparse raw disk of SIZE bytes: pseudo-random runs scattered over it,
  // one run of written zeros (a data extent EBS must not receive), holes
  // elsewhere; EXTRA_DATA more random bytes at size/8 (for slower runs).
  void make_disk(const std::string& name, uint64_t size, uint64_t seed = 1, uint64_t extra_data = 0) {
    const uint64_t MiB = 1 << 20;
    std::vector<DataRun> runs = {
        {0, MiB + 4096},                           // boot area, crossing a 512 KiB block edge
        {size / 4 + 12345, 700 * 1024},            // unaligned
        {size / 2, 2 * MiB, /*zeros=*/true},       // allocated zeros
        {size / 2 + 3 * MiB - 300 * 1024, 600 * 1024},
        {size - MiB, MiB},                         // the last block
    };
    if (extra_data) runs.push_back({size / 8, extra_data});
    Status s = make_sparse_file(dir_.file(name), size, runs, seed);
    ASSERT_TRUE(s.ok()) << s.message();
  }

  // The YAML inputs of an aws image named name_; EXTRA is appended.
  std::string yaml_inputs(const std::string& extra = "") const {
    return "name: " + name_ + "\ncloud: aws\narch: x86_64\nfirmware: uefi\nlocal_image: disk.img\n" +
           "storage_url: s3://" + bucket_ + "/prefix/\n" + extra;
  }

  std::string endpoint_;  // AWS_ENDPOINT_URL for the binary
  AwsKeys keys_;
  std::string name_;      // image name (AMI name, Name tag)
  std::string bucket_;
};

#define ASSERT_CHECK(var, expr)                   \
  auto var##_r = (expr);                          \
  ASSERT_TRUE(var##_r.ok()) << var##_r.message(); \
  json var = *var##_r

}  // namespace ch::test::aws_steps

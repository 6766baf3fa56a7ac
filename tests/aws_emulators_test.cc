// Proves the AWS test harness itself (tests/aws/, tests/test_aws_env.h):
// the gap proxy really builds imported snapshots from raw, VHD and VMDK
// objects (read back block by block through moto's EBS direct API and
// compared with the source file), injects what moto drops from images,
// enforces image block public access and S3/EBS integrity checks; the fault
// proxy injects and counts; the signature-checking moto rejects bad
// signatures and accepts the IAM user's keys. Everything is checked through
// boto3 or awscli, independent of our own C++ AWS client.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "tests/test_aws_env.h"
#include "tests/test_util.h"

namespace ch::test {
namespace {

using nlohmann::json;

// Runs a boto3 snippet that prints one JSON document.
Result<json> run_json(const AwsTestEnv& env, const std::string& code) {
  CH_ASSIGN(out, env.boto3(code));
  auto doc = json::parse(out, nullptr, false);
  if (doc.is_discarded()) return Error{"boto3 script printed no JSON: " + out};
  return doc;
}

#define ASSERT_JSON(var, env, code)              \
  auto var##_r = run_json(env, code);            \
  ASSERT_TRUE(var##_r.ok()) << var##_r.message(); \
  json var = *var##_r

// Uploads PATH, imports it as FORMAT through the gap proxy, polls the task
// to its end, and reads the snapshot back through EBS direct APIs, comparing
// it with RAW (the disk the image file holds).
const char kImportAndCompare[] = R"PY(
s3.upload_file(PATH, BUCKET, KEY)
task = ec2.import_snapshot(Description='harness', ClientToken=KEY,
                           DiskContainer={'Format': FORMAT, 'UserBucket': {'S3Bucket': BUCKET, 'S3Key': KEY}})
statuses = [task['SnapshotTaskDetail']['Status']]
for _ in range(200):
    d = ec2.describe_import_snapshot_tasks(ImportTaskIds=[task['ImportTaskId']])['ImportSnapshotTasks'][0]['SnapshotTaskDetail']
    statuses.append(d['Status'])
    if d['Status'] in ('completed', 'deleted'):
        break
    time.sleep(0.05)
out = {'statuses': statuses, 'detail': d}
if d['Status'] == 'completed':
    sid = d['SnapshotId']
    listing = ebs.list_snapshot_blocks(SnapshotId=sid)
    bs = listing['BlockSize']
    blocks = {b['BlockIndex']: ebs.get_snapshot_block(SnapshotId=sid, BlockIndex=b['BlockIndex'],
                                                      BlockToken=b['BlockToken'])['BlockData'].read()
              for b in listing['Blocks']}
    size = os.path.getsize(RAW)
    snap_hash = hashlib.sha256()
    for off in range(0, size, bs):
        snap_hash.update(blocks.get(off // bs, bytes(bs))[:min(bs, size - off)])
    out.update(block_size=bs, volume_size=listing['VolumeSize'], blocks=sorted(blocks),
               snapshot_sha256=snap_hash.hexdigest(),
               raw_sha256=hashlib.sha256(open(RAW, 'rb').read()).hexdigest(),
               ec2_volume_size=ec2.describe_snapshots(SnapshotIds=[sid])['Snapshots'][0]['VolumeSize'])
print(json.dumps(out))
)PY";

const char kMakeSnapshot[] = R"PY(
def make_snapshot():
    s = ebs.start_snapshot(VolumeSize=1)
    ebs.complete_snapshot(SnapshotId=s['SnapshotId'], ChangedBlocksCount=0)
    return s['SnapshotId']
)PY";

class AwsEmulatorsTest : public AwsTest {
 protected:
  // 5 MiB - 512 bytes (blocks 0..9 of 512 KiB): data in blocks 0, 3+4 (a run
  // across their boundary) and 9 (the short last block); block 6 holds
  // written zeros and must not become a snapshot block.
  static constexpr uint64_t kDiskSize = (5 << 20) - 512;
  const std::vector<int> kDataBlocks = {0, 3, 4, 9};

  void SetUp() override {
    AwsTest::SetUp();
    if (HasFatalFailure()) return;
    ASSERT_TRUE(make_sparse_file(dir_ / "disk.raw", kDiskSize,
                                 {{0, 5000}, {(2 << 20) - 100, 300}, {3 << 20, 512 << 10, true},
                                  {kDiskSize - 1000, 1000}})
                    .ok());
    bucket_ = unique_name("import");
    auto r = aws().boto3("s3.create_bucket(Bucket=" + py_literal(bucket_) + ")");
    ASSERT_TRUE(r.ok()) << r.message();
  }

  // Converts disk.raw with qemu-img (the outside oracle for the formats).
  std::string convert(const std::string& name, const std::string& qemu_args) {
    std::string out = dir_ / name;
    auto r = run_command("qemu-img convert -f raw " + qemu_args + " " + shell_quote(dir_ / "disk.raw") + " " +
                         shell_quote(out) + " 2>&1");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return out;
  }

  void expect_import_matches(const std::string& path, const std::string& format) {
    std::string code = "PATH = " + py_literal(path) + "\nRAW = " + py_literal(dir_ / "disk.raw") +
                       "\nBUCKET = " + py_literal(bucket_) + "\nKEY = " + py_literal(unique_name(format)) +
                       "\nFORMAT = " + py_literal(format) + "\n" + kImportAndCompare;
    ASSERT_JSON(out, aws(), code);
    SCOPED_TRACE(out.dump());
    ASSERT_EQ(out["detail"]["Status"], "completed");
    EXPECT_EQ(out["statuses"].front(), "active");
    EXPECT_EQ(out["statuses"][1], "active");  // completes over a couple of polls
    EXPECT_EQ(out["detail"]["Format"], format);
    EXPECT_EQ(out["block_size"], 524288);
    EXPECT_EQ(out["volume_size"], 1);
    EXPECT_EQ(out["ec2_volume_size"], 1);
    EXPECT_EQ(out["blocks"], json(kDataBlocks));
    EXPECT_EQ(out["snapshot_sha256"], out["raw_sha256"]);
  }

  TempDir dir_;
  std::string bucket_;
};

TEST_F(AwsEmulatorsTest, ImportSnapshotFromRawBuildsTheSnapshot) {
  expect_import_matches(dir_ / "disk.raw", "RAW");
}

TEST_F(AwsEmulatorsTest, ImportSnapshotFromFixedVhdBuildsTheSnapshot) {
  expect_import_matches(convert("disk.vhd", "-O vpc -o subformat=fixed,force_size=on"), "VHD");
}

TEST_F(AwsEmulatorsTest, ImportSnapshotFromDynamicVhdBuildsTheSnapshot) {
  expect_import_matches(convert("dyn.vhd", "-O vpc -o subformat=dynamic,force_size=on"), "VHD");
}

TEST_F(AwsEmulatorsTest, ImportSnapshotFromStreamOptimizedVmdkBuildsTheSnapshot) {
  expect_import_matches(convert("disk.vmdk", "-O vmdk -o subformat=streamOptimized"), "VMDK");
}

TEST_F(AwsEmulatorsTest, ImportSnapshotRejectsWhatAwsRejects) {
  std::string key = unique_name("notvmdk");
  ASSERT_JSON(out, aws(), "BUCKET = " + py_literal(bucket_) + "\nKEY = " + py_literal(key) + "\nRAW = " +
                              py_literal(dir_ / "disk.raw") + R"PY(
s3.upload_file(RAW, BUCKET, KEY)
out = {}
try:
    ec2.import_snapshot(DiskContainer={'Format': 'QCOW2', 'UserBucket': {'S3Bucket': BUCKET, 'S3Key': KEY}})
except ec2.exceptions.ClientError as e:
    out['qcow2'] = e.response['Error']['Code']
tid = ec2.import_snapshot(DiskContainer={'Format': 'VMDK', 'UserBucket': {'S3Bucket': BUCKET, 'S3Key': KEY}})['ImportTaskId']
missing = ec2.import_snapshot(DiskContainer={'Format': 'RAW', 'Url': 's3://' + BUCKET + '/no-such-key'})['ImportTaskId']
for _ in range(200):
    d = ec2.describe_import_snapshot_tasks(ImportTaskIds=[tid, missing])['ImportSnapshotTasks']
    if all(t['SnapshotTaskDetail']['Status'] != 'active' for t in d):
        break
    time.sleep(0.05)
out['vmdk'] = d[0]['SnapshotTaskDetail']
out['missing'] = d[1]['SnapshotTaskDetail']
try:
    ec2.describe_import_snapshot_tasks(ImportTaskIds=['import-snap-0123456789abcdef0'])
except ec2.exceptions.ClientError as e:
    out['unknown'] = e.response['Error']['Code']
print(json.dumps(out))
)PY");
  SCOPED_TRACE(out.dump());
  EXPECT_EQ(out["qcow2"], "InvalidParameter");
  EXPECT_EQ(out["vmdk"]["Status"], "deleted");
  EXPECT_EQ(out["vmdk"]["StatusMessage"],
            "ClientError: Disk validation failed [Unsupported VMDK File Format: no sparse extent header ('KDMV')]");
  EXPECT_EQ(out["missing"]["Status"], "deleted");
  EXPECT_EQ(out["missing"]["StatusMessage"], "ClientError: Disk validation failed [Invalid S3 source location]");
  EXPECT_EQ(out["unknown"], "InvalidConversionTaskId");
}

TEST_F(AwsEmulatorsTest, ImportSnapshotClientTokenIsIdempotent) {
  std::string key = unique_name("token");
  ASSERT_JSON(out, aws(), "BUCKET = " + py_literal(bucket_) + "\nKEY = " + py_literal(key) + "\nRAW = " +
                              py_literal(dir_ / "disk.raw") + R"PY(
s3.upload_file(RAW, BUCKET, KEY)
dc = {'Format': 'RAW', 'UserBucket': {'S3Bucket': BUCKET, 'S3Key': KEY}}
a = ec2.import_snapshot(DiskContainer=dc, ClientToken=KEY)['ImportTaskId']
b = ec2.import_snapshot(DiskContainer=dc, ClientToken=KEY)['ImportTaskId']
try:
    ec2.import_snapshot(DiskContainer=dict(dc, Format='VHD'), ClientToken=KEY)
    mismatch = None
except ec2.exceptions.ClientError as e:
    mismatch = e.response['Error']['Code']
print(json.dumps({'a': a, 'b': b, 'mismatch': mismatch}))
)PY");
  EXPECT_EQ(out["a"], out["b"]);
  EXPECT_EQ(out["mismatch"], "IdempotentParameterMismatch");
}

TEST_F(AwsEmulatorsTest, RegisterImageKeepsWhatMotoDropsAndDeprecationIsInjected) {
  std::string name = unique_name("image");
  ASSERT_JSON(out, aws(), std::string(kMakeSnapshot) + "NAME = " + py_literal(name) + R"PY(
from datetime import datetime, timedelta, timezone
snap = make_snapshot()
image = ec2.register_image(
    Name=NAME, Architecture='arm64', RootDeviceName='/dev/xvda', VirtualizationType='hvm',
    BlockDeviceMappings=[{'DeviceName': '/dev/xvda', 'Ebs': {'SnapshotId': snap, 'VolumeType': 'gp3'}}],
    BootMode='uefi', ImdsSupport='v2.0', TpmSupport='v2.0', EnaSupport=True, SriovNetSupport='simple',
    TagSpecifications=[{'ResourceType': 'image', 'Tags': [{'Key': 'name', 'Value': NAME}]}])['ImageId']
at = (datetime.now(timezone.utc) + timedelta(days=30)).replace(second=29, microsecond=0)
ec2.enable_image_deprecation(ImageId=image, DeprecateAt=at)
described = ec2.describe_images(ImageIds=[image])['Images'][0]
ec2.disable_image_deprecation(ImageId=image)
after = ec2.describe_images(ImageIds=[image])['Images'][0]
try:
    ec2.register_image(Name=NAME)
    dup = None
except ec2.exceptions.ClientError as e:
    dup = e.response['Error']['Code']
print(json.dumps({'image': described, 'after': after, 'snap': snap, 'dup': dup,
                  'want': at.strftime('%Y-%m-%dT%H:%M:00.000Z')}, default=str))
)PY");
  SCOPED_TRACE(out.dump());
  const json& image = out["image"];
  EXPECT_EQ(image["DeprecationTime"], out["want"]);  // seconds rounded to the minute
  EXPECT_FALSE(out["after"].contains("DeprecationTime"));
  EXPECT_EQ(image["Architecture"], "arm64");
  EXPECT_EQ(image["VirtualizationType"], "hvm");
  EXPECT_EQ(image["RootDeviceName"], "/dev/xvda");
  EXPECT_EQ(image["RootDeviceType"], "ebs");
  EXPECT_EQ(image["BootMode"], "uefi");
  EXPECT_EQ(image["ImdsSupport"], "v2.0");
  EXPECT_EQ(image["TpmSupport"], "v2.0");
  EXPECT_EQ(image["EnaSupport"], true);
  EXPECT_EQ(image["SriovNetSupport"], "simple");
  ASSERT_EQ(image["BlockDeviceMappings"].size(), 1u);
  EXPECT_EQ(image["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"], out["snap"]);
  EXPECT_EQ(image["BlockDeviceMappings"][0]["Ebs"]["VolumeType"], "gp3");
  EXPECT_EQ(image["BlockDeviceMappings"][0]["Ebs"]["VolumeSize"], 1);
  EXPECT_EQ(image["Tags"], json::parse(R"([{"Key": "name", "Value": ")" + image["Name"].get<std::string>() + "\"}]"));
  EXPECT_EQ(out["dup"], "InvalidAMIName.Duplicate");
}

TEST_F(AwsEmulatorsTest, CopyImageAcrossRegionsCopiesTagsWhenAsked) {
  std::string name = unique_name("copy");
  ASSERT_JSON(out, aws(), std::string(kMakeSnapshot) + "NAME = " + py_literal(name) + R"PY(
snap = make_snapshot()
image = ec2.register_image(Name=NAME, RootDeviceName='/dev/xvda', VirtualizationType='hvm', BootMode='uefi',
    BlockDeviceMappings=[{'DeviceName': '/dev/xvda', 'Ebs': {'SnapshotId': snap}}])['ImageId']
ec2.create_tags(Resources=[image], Tags=[{'Key': 'k', 'Value': NAME}])
west = client('ec2', region='eu-west-2')
tagged = west.copy_image(SourceImageId=image, SourceRegion=REGION, Name=NAME, CopyImageTags=True)['ImageId']
bare = west.copy_image(SourceImageId=image, SourceRegion=REGION, Name=NAME + '-bare')['ImageId']
imgs = {i['ImageId']: i for i in west.describe_images(ImageIds=[tagged, bare])['Images']}
print(json.dumps({'tagged': imgs[tagged], 'bare': imgs[bare], 'snap': snap}, default=str))
)PY");
  SCOPED_TRACE(out.dump());
  EXPECT_EQ(out["tagged"]["Tags"].size(), 1u);
  EXPECT_TRUE(out["bare"]["Tags"].empty());
  EXPECT_EQ(out["tagged"]["BootMode"], "uefi");
  EXPECT_EQ(out["tagged"]["RootDeviceName"], "/dev/xvda");
  // The copy's snapshot is a new one in the destination region.
  EXPECT_NE(out["tagged"]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"], out["snap"]);
}

TEST_F(AwsEmulatorsTest, ImageBlockPublicAccessBlocksPublicSharingAndResetUnshares) {
  std::string name = unique_name("bpa");
  ASSERT_TRUE(aws().set_image_block_public_access("block-new-sharing").ok());
  std::string code = "NAME = " + py_literal(name) + R"PY(
image = ec2.register_image(Name=NAME)['ImageId']
state = ec2.get_image_block_public_access_state()['ImageBlockPublicAccessState']
try:
    ec2.modify_image_attribute(ImageId=image, LaunchPermission={'Add': [{'Group': 'all'}]})
    err = None
except ec2.exceptions.ClientError as e:
    err = [e.response['Error']['Code'], e.response['Error']['Message']]
print(json.dumps({'image': image, 'state': state, 'err': err}))
)PY";
  auto blocked = run_json(aws(), code);
  // Reset before asserting: other tests share the setting.
  ASSERT_TRUE(aws().set_image_block_public_access("unblocked").ok());
  ASSERT_TRUE(blocked.ok()) << blocked.message();
  EXPECT_EQ((*blocked)["state"], "block-new-sharing");
  EXPECT_EQ((*blocked)["err"][0], "OperationNotPermitted");
  EXPECT_EQ((*blocked)["err"][1],
            "You can\u2019t publicly share this image because block public access for AMIs is enabled for this "
            "account. To publicly share the image, you must call the DisableImageBlockPublicAccess API.");
  ASSERT_JSON(now, aws(), "IMAGE = " + py_literal((*blocked)["image"]) + R"PY(
ec2.modify_image_attribute(ImageId=IMAGE, LaunchPermission={'Add': [{'Group': 'all'}]})
public = ec2.describe_images(ImageIds=[IMAGE])['Images'][0]['Public']
ec2.reset_image_attribute(ImageId=IMAGE, Attribute='launchPermission')
print(json.dumps({'public': public, 'after_reset': ec2.describe_images(ImageIds=[IMAGE])['Images'][0]['Public']}))
)PY");
  EXPECT_EQ(now["public"], true);
  EXPECT_EQ(now["after_reset"], false);  // ResetImageAttribute: moto lacks it, the gap proxy has it
}

TEST_F(AwsEmulatorsTest, GapProxyChecksS3AndEbsIntegrityLikeAws) {
  ASSERT_JSON(out, aws(), "BUCKET = " + py_literal(bucket_) + R"PY(
body = b'x' * 1000
md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
sha = base64.b64encode(hashlib.sha256(body).digest()).decode()
out = {
  'md5_bad': error_code(lambda: s3.put_object(Bucket=BUCKET, Key='a', Body=body, ContentMD5=base64.b64encode(b'0' * 16).decode())),
  'md5_ok': error_code(lambda: s3.put_object(Bucket=BUCKET, Key='a', Body=body, ContentMD5=md5)),
  'sha_bad': error_code(lambda: s3.put_object(Bucket=BUCKET, Key='b', Body=body, ChecksumSHA256=md5 * 2)),
  'sha_ok': error_code(lambda: s3.put_object(Bucket=BUCKET, Key='b', Body=body, ChecksumSHA256=sha)),
}
snap = ebs.start_snapshot(VolumeSize=1)
block = os.urandom(524288)
digest = hashlib.sha256(block).digest()
put = lambda idx, c: error_code(lambda: ebs.put_snapshot_block(SnapshotId=snap['SnapshotId'], BlockIndex=idx,
    BlockData=block, DataLength=len(block), Checksum=c, ChecksumAlgorithm='SHA256'))
out['block_size'] = snap['BlockSize']
out['block_bad'] = put(3, sha)
out['block_ok'] = put(3, base64.b64encode(digest).decode())
complete = lambda c: error_code(lambda: ebs.complete_snapshot(SnapshotId=snap['SnapshotId'], ChangedBlocksCount=1,
    Checksum=c, ChecksumAlgorithm='SHA256', ChecksumAggregationMethod='LINEAR'))
out['aggregate_bad'] = complete(base64.b64encode(digest).decode())
out['aggregate_ok'] = complete(base64.b64encode(hashlib.sha256(digest).digest()).decode())
print(json.dumps(out))
)PY");
  EXPECT_EQ(out, json::parse(R"({"md5_bad": "BadDigest", "md5_ok": "ok", "sha_bad": "BadDigest", "sha_ok": "ok",
    "block_size": 524288, "block_bad": "ValidationException", "block_ok": "ok",
    "aggregate_bad": "ValidationException", "aggregate_ok": "ok"})"));
}

TEST_F(AwsEmulatorsTest, FaultProxyInjectsAndCounts) {
  std::string rule = unique_name("rule");
  ASSERT_TRUE(aws()
                  .set_faults(rule, {{"match", "s3:PutObject " + bucket_ + "/"},
                                     {"sequence", {"drop", "drop_after", "status500", "status503", "throttle"}}})
                  .ok());
  auto out = aws().boto3_at(aws().fault_endpoint, "BUCKET = " + py_literal(bucket_) + R"PY(
res = []
for i in range(6):
    try:
        s3.put_object(Bucket=BUCKET, Key='k%d' % i, Body=b'data')
        res.append('ok')
    except s3.exceptions.ClientError as e:
        res.append(e.response['Error']['Code'])
    except Exception as e:
        res.append(type(e).__name__)
keys = sorted(o['Key'] for o in client('s3', endpoint=MOTO_URL).list_objects_v2(Bucket=BUCKET).get('Contents', []))
print(json.dumps({'res': res, 'keys': keys}))
)PY");
  ASSERT_TRUE(aws().clear_faults(rule).ok());
  ASSERT_TRUE(out.ok()) << out.message();
  json doc = json::parse(*out);
  EXPECT_EQ(doc["res"], json::parse(R"(["ConnectionClosedError", "ConnectionClosedError", "InternalError",
                                        "SlowDown", "SlowDown", "ok"])"));
  // drop_after reached moto: the object exists though its client saw an error.
  EXPECT_EQ(doc["keys"], json::parse(R"(["k1", "k5"])"));
  auto stats = aws().fault_stats();
  ASSERT_TRUE(stats.ok()) << stats.message();
  EXPECT_EQ((*stats)["faults_by_rule"].contains(rule), false);  // removed with its rule
  EXPECT_EQ((*stats)["forwarded_targets"]["s3:PutObject " + bucket_ + "/k0"], nullptr);
  EXPECT_EQ((*stats)["forwarded_targets"]["s3:PutObject " + bucket_ + "/k1"], 1);
  EXPECT_EQ((*stats)["forwarded_targets"]["s3:PutObject " + bucket_ + "/k5"], 1);
}

TEST_F(AwsEmulatorsTest, FaultProxyAnswersInEachServicesFormat) {
  std::string rule = unique_name("svc");
  std::string name = unique_name("svc-img");
  ASSERT_TRUE(aws()
                  .set_faults(rule, {{"match", "ec2:DescribeImages .*" + name + "|ebs:StartSnapshot " + name},
                                     {"sequence", {"throttle", "status503", "throttle", "status500"}}})
                  .ok());
  auto out = aws().boto3_at(aws().fault_endpoint, "NAME = " + py_literal(name) + R"PY(
def code(f):
    try:
        f()
        return 'ok'
    except Exception as e:
        return [e.response['ResponseMetadata']['HTTPStatusCode'], e.response['Error']['Code']]
flt = [{'Name': 'name', 'Values': [NAME]}]
print(json.dumps([code(lambda: ec2.describe_images(Filters=flt)), code(lambda: ec2.describe_images(Filters=flt)),
                  code(lambda: ebs.start_snapshot(VolumeSize=1, ClientToken=NAME)),
                  code(lambda: ebs.start_snapshot(VolumeSize=1, ClientToken=NAME)),
                  code(lambda: ec2.describe_images(Filters=flt))]))
)PY");
  ASSERT_TRUE(aws().clear_faults(rule).ok());
  ASSERT_TRUE(out.ok()) << out.message();
  EXPECT_EQ(json::parse(*out), json::parse(R"([[400, "RequestLimitExceeded"], [503, "Unavailable"],
      [400, "ThrottlingException"], [500, "InternalServerException"], "ok"])"));
}

TEST_F(AwsEmulatorsTest, SignatureCheckingMotoRejectsBadSignaturesAndAcceptsTheIamUser) {
  auto keys = aws().auth_keys();
  ASSERT_TRUE(keys.ok()) << keys.message();
  std::string bucket = unique_name("auth");
  ASSERT_JSON(out, aws(), "BUCKET = " + py_literal(bucket) + R"PY(
good = dict(endpoint=AUTH_ENDPOINT, key=AUTH_KEYS['access_key_id'], secret=AUTH_KEYS['secret_access_key'])
bad = dict(good, secret='not-the-secret')
print(json.dumps({
  's3_bad': error_code(lambda: client('s3', **bad).list_buckets()),
  'ec2_bad': error_code(lambda: client('ec2', **bad).describe_images(Owners=['self'])),
  'unknown_key': error_code(lambda: client('s3', endpoint=AUTH_ENDPOINT).list_buckets()),
  's3_good': error_code(lambda: client('s3', **good).create_bucket(Bucket=BUCKET)),
  'ec2_good': error_code(lambda: client('ec2', **good).describe_images(Owners=['self'])),
}))
)PY");
  EXPECT_EQ(out, json::parse(R"({"s3_bad": "SignatureDoesNotMatch", "ec2_bad": "AuthFailure",
    "unknown_key": "InvalidAccessKeyId", "s3_good": "ok", "ec2_good": "ok"})"));
  // awscli too, hermetic: no user config.
  std::string cli = "AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_PAGER= "
                    "AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=" + shell_quote(keys->access_key_id) +
                    " AWS_SECRET_ACCESS_KEY=";
  std::string args = " aws --endpoint-url " + aws().auth_endpoint + " s3api head-bucket --bucket " + bucket + " 2>&1";
  auto ok = run_command(cli + shell_quote(keys->secret_access_key) + args);
  EXPECT_EQ(ok.exit_code, 0) << ok.output;
  auto bad = run_command(cli + "wrong" + args);
  EXPECT_NE(bad.exit_code, 0) << bad.output;
  EXPECT_NE(bad.output.find("403"), std::string::npos) << bad.output;
}

TEST(AwsTestEnvTest, UniqueNamesAreDistinctAndValidBucketNames) {
  std::set<std::string> seen;
  for (int i = 0; i < 50; ++i) {
    std::string n = unique_name(i % 2 ? "A_Very_Long_Prefix_That_Needs_Cutting_Down_Somewhere" : "x");
    EXPECT_TRUE(seen.insert(n).second) << n;
    EXPECT_GE(n.size(), 3u);
    EXPECT_LE(n.size(), 63u);
    EXPECT_EQ(n.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-"), std::string::npos) << n;
    EXPECT_NE(n.front(), '-');
    EXPECT_NE(n.back(), '-');
    EXPECT_EQ(n.find("--"), std::string::npos) << n;
  }
}

TEST(AwsTestEnvTest, LoadNamesTheMissingVariable) {
  const char* vars[] = {"CLOUD_HELPER_AWS_ENDPOINT", "CLOUD_HELPER_MOTO_URL", "CLOUD_HELPER_AWS_FAULT_ENDPOINT",
                        "CLOUD_HELPER_AWS_AUTH_ENDPOINT", "CLOUD_HELPER_AWS_AUTH_KEYS"};
  std::vector<std::pair<std::string, std::optional<std::string>>> saved;
  for (const char* v : vars) {
    const char* value = std::getenv(v);
    saved.emplace_back(v, value ? std::optional<std::string>(value) : std::nullopt);
    setenv(v, "http://127.0.0.1:1", 1);
  }
  unsetenv("CLOUD_HELPER_AWS_FAULT_ENDPOINT");
  auto env = AwsTestEnv::load();
  for (const auto& [name, value] : saved) {
    if (value) {
      setenv(name.c_str(), value->c_str(), 1);
    } else {
      unsetenv(name.c_str());
    }
  }
  ASSERT_FALSE(env.ok());
  EXPECT_EQ(env.message(),
            "AWS emulators not running: run ctest (fixture aws) or python3 tests/aws/emulators.py start --dir "
            "/tmp/x and export the variables in /tmp/x/env (CLOUD_HELPER_AWS_FAULT_ENDPOINT is not set)");
}

}  // namespace
}  // namespace ch::test

// EBS direct import against moto behind the gap proxy
// (CLOUD_HELPER_AWS_ENDPOINT, tests/test_aws_env.h), checked from outside
// with boto3: every block of the snapshot must equal the image's, and
// exactly the image's non-zero blocks must be there.
#include "clouds/aws/ebs.h"

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <mutex>

#include "clouds/aws/ec2.h"
#include "formats/image_reader.h"
#include "tests/test_aws_env.h"
#include "tests/test_util.h"

namespace ch {
namespace {

constexpr uint64_t kMiB = uint64_t{1} << 20;
constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint64_t kBlock = kEbsBlockSize;

// One 5 GiB + 300 KiB sparse image for the whole suite: data at scattered
// offsets (a run across the 4 GiB line, one past it, one at the very end
// so the last, partial block is zero-padded) and a 1 MiB run of written
// zeros, which the extent map calls data and the import must skip.
class EbsMotoTest : public test::AwsClientTest {
 protected:
  static void SetUpTestSuite() {
    dir_ = new test::TempDir();
    raw_ = dir_->file("disk.raw");
    size_ = 5 * kGiB + 300 * 1024;
    Status s = test::make_sparse_file(raw_, size_,
                                      {{0, 64 * 1024, false},
                                       {kMiB + 100, 700 * 1024, false},
                                       {3 * kMiB, kMiB, true},
                                       {4 * kGiB - 1000, 2000, false},
                                       {4 * kGiB + 17, kMiB, false},
                                       {size_ - 100 * 1024, 100 * 1024, false}},
                                      7);
    ASSERT_TRUE(s.ok()) << s.message();
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  // Blocks holding non-zero bytes, by construction of the runs above.
  static std::vector<uint64_t> data_blocks() {
    return {0,
            2,
            3,
            (4 * kGiB - 1000) / kBlock,
            4 * kGiB / kBlock,
            (4 * kGiB + 17 + kMiB) / kBlock,
            (4 * kGiB + 17) / kBlock + 1,
            (size_ - 1) / kBlock};
  }
  static uint64_t data_block_count() {
    auto v = data_blocks();
    std::sort(v.begin(), v.end());
    return static_cast<uint64_t>(std::unique(v.begin(), v.end()) - v.begin());
  }

  // Reads SNAPSHOT back with boto3 and compares it with the raw image RAW:
  // exactly RAW's non-zero blocks, each equal; BLOCKS of them.
  void expect_snapshot_holds(const std::string& snapshot, const std::string& raw, uint64_t blocks) {
    auto out = aws().boto3("print(json.dumps(compare_snapshot_with_file(" + test::py_literal(snapshot) + ", " +
                           test::py_literal(raw) + ")))");
    ASSERT_TRUE(out.ok()) << out.message();
    auto doc = nlohmann::json::parse(*out);
    EXPECT_TRUE(doc["match"].get<bool>()) << doc.dump();
    EXPECT_EQ(doc["blocks"].get<uint64_t>(), blocks) << doc.dump();
  }

  static std::string read_block(uint64_t index) {
    std::string block(kBlock, '\0');
    std::ifstream in(raw_, std::ios::binary);
    in.seekg(static_cast<std::streamoff>(index * kBlock));
    in.read(block.data(), static_cast<std::streamsize>(std::min<uint64_t>(kBlock, size_ - index * kBlock)));
    return block;
  }

  static test::TempDir* dir_;
  static std::string raw_;
  static uint64_t size_;
};

test::TempDir* EbsMotoTest::dir_ = nullptr;
std::string EbsMotoTest::raw_;
uint64_t EbsMotoTest::size_ = 0;

TEST(EbsTest, LinearChecksumIsTheDigestOfTheConcatenatedDigests) {
  // sha256(sha256("a") || sha256("b")), computed with Python's hashlib.
  EXPECT_EQ(hex_encode(ebs_linear_checksum({sha256("a"), sha256("b")})),
            "e5a01fee14e0ed5c48714f22180f25ad8365b53f9779f79dc4a3d7e93963f94a");
  EXPECT_EQ(hex_encode(ebs_linear_checksum({})),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(EbsTest, OptionsAreCheckedBeforeAnythingIsSent) {
  test::AwsTestClient nowhere("http://127.0.0.1:9");  // nobody listens
  AwsClient& client = *nowhere.client;
  test::TempDir dir;
  ASSERT_TRUE(test::make_sparse_file(dir / "disk.raw", kMiB, {{0, 1000, false}}).ok());
  auto image = open_image(dir / "disk.raw");
  ASSERT_TRUE(image.ok()) << image.message();
  EbsImportOptions o;
  o.parallel = 0;
  EXPECT_EQ(ebs_import_image(client, "us-east-1", **image, o).message(),
            "EBS import: parallel must be at least 1");
  o = {};
  o.timeout_minutes = 5;
  EXPECT_EQ(ebs_import_image(client, "us-east-1", **image, o).message(),
            "EBS import: timeout 5 minutes is outside 10..4320");
  o = {};
  o.client_token = std::string(65, 't');
  EXPECT_EQ(ebs_import_image(client, "us-east-1", **image, o).message(),
            "EBS import: client token longer than 64 characters");
  EXPECT_EQ(ebs_put_snapshot_block(client, "us-east-1", "snap-1", 0, "short", sha256("short")).message(),
            "EBS PutSnapshotBlock: block of 5 bytes, not 524288");
}

TEST_F(EbsMotoTest, ImportsASparseRawImageSendingOnlyNonZeroBlocks) {
  auto image = open_image(raw_);
  ASSERT_TRUE(image.ok()) << image.message();
  std::atomic<uint64_t> progress{0};
  std::atomic<uint64_t> progress_at_start{~uint64_t{0}};
  std::vector<std::string> started;
  EbsImportOptions o;
  o.description = "cloud_helper test";
  o.tags = {{"Name", "ebs-test"}};
  o.client_token = test::unique_name("ebs");
  o.parallel = 4;
  o.progress = [&](uint64_t n) { progress += n; };
  o.on_started = [&](const std::string& id) {
    started.push_back(id);
    progress_at_start = progress.load();
    return Status();
  };
  auto r = ebs_import_image(client(), "us-east-1", **image, o);
  ASSERT_TRUE(r.ok()) << r.message();
  ASSERT_EQ(started, std::vector<std::string>{r->snapshot_id});
  EXPECT_EQ(progress_at_start.load(), 0u);
  EXPECT_EQ(progress.load(), size_);
  EXPECT_EQ(r->volume_size_gib, 6u);
  EXPECT_EQ(r->blocks_total, (size_ + kBlock - 1) / kBlock);
  EXPECT_EQ(r->blocks_sent, data_block_count());
  EXPECT_EQ(r->blocks_present, 0u);
  EXPECT_EQ(r->blocks_skipped_zero, r->blocks_total - data_block_count());
  EXPECT_EQ(r->bytes_sent, data_block_count() * kBlock);
  EXPECT_FALSE(r->resumed);
  EXPECT_FALSE(r->already_completed);
  EXPECT_EQ(r->status, "completed");

  expect_snapshot_holds(r->snapshot_id, raw_, data_block_count());

  auto snap = ec2_find_snapshot(client(), "us-east-1", r->snapshot_id);
  ASSERT_TRUE(snap.ok() && snap->has_value()) << snap.message();
  EXPECT_EQ((*snap)->volume_size_gib, 6u);
  EXPECT_EQ((*snap)->description, "cloud_helper test");
  EXPECT_EQ((*snap)->tags, (AwsTags{{"Name", "ebs-test"}}));

  // Resuming a snapshot that is complete sends nothing and says so.
  o.resume_snapshot_id = r->snapshot_id;
  started.clear();
  progress = 0;
  auto again = ebs_import_image(client(), "us-east-1", **image, o);
  ASSERT_TRUE(again.ok()) << again.message();
  EXPECT_TRUE(again->resumed);
  EXPECT_TRUE(again->already_completed);
  EXPECT_EQ(again->snapshot_id, r->snapshot_id);
  EXPECT_EQ(again->blocks_sent, 0u);
  EXPECT_EQ(again->blocks_present, data_block_count());
  EXPECT_TRUE(started.empty());
  EXPECT_EQ(progress.load(), size_);
}

TEST_F(EbsMotoTest, ImportsAQcow2Image) {
  const std::string qcow2 = dir_->file("disk.qcow2");
  auto conv = test::run_command("qemu-img convert -f raw -O qcow2 " + test::shell_quote(raw_) + " " +
                                test::shell_quote(qcow2) + " 2>&1");
  ASSERT_EQ(conv.exit_code, 0) << conv.output;
  auto image = open_image(qcow2);
  ASSERT_TRUE(image.ok()) << image.message();
  ASSERT_EQ((*image)->format(), "qcow2");
  EbsImportOptions o;
  o.parallel = 32;
  auto r = ebs_import_image(client(), "us-east-1", **image, o);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->blocks_sent, data_block_count());
  expect_snapshot_holds(r->snapshot_id, raw_, data_block_count());
}

// Peak resident set size of this process in KiB since the last reset
// (/proc/self/clear_refs "5" resets it, Linux >= 4.0).
uint64_t peak_rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
  return 0;
}

TEST_F(EbsMotoTest, ManyBlocksInParallelStayWithinTheMemoryBudget) {
  // 6 GiB with 48 MiB of data: 97 blocks for 32 workers.
  const std::string raw = dir_->file("dense.raw");
  const uint64_t size = 6 * kGiB;
  ASSERT_TRUE(test::make_sparse_file(raw, size,
                                     {{100 * kMiB, 16 * kMiB, false},
                                      {4 * kGiB + 3, 16 * kMiB, false},
                                      {size - 16 * kMiB, 16 * kMiB, false}},
                                     11).ok());
  auto image = open_image(raw);
  ASSERT_TRUE(image.ok()) << image.message();
  std::ofstream("/proc/self/clear_refs") << "5";
  EbsImportOptions o;
  o.parallel = 32;
  auto r = ebs_import_image(client(), "us-east-1", **image, o);
  ASSERT_TRUE(r.ok()) << r.message();
  const uint64_t peak = peak_rss_kib();
  EXPECT_EQ(r->blocks_sent, 97u);
  EXPECT_EQ(r->volume_size_gib, 6u);
  RecordProperty("peak_rss_kib", std::to_string(peak));
  EXPECT_LT(peak, 256u * 1024) << "peak RSS " << peak << " KiB";
  expect_snapshot_holds(r->snapshot_id, raw, 97);
  ::unlink(raw.c_str());
}

TEST_F(EbsMotoTest, ResumeSendsOnlyTheMissingBlocks) {
  EbsStartSnapshotRequest start;
  start.volume_size_gib = 6;
  auto snap = ebs_start_snapshot(client(), "us-east-1", start);
  ASSERT_TRUE(snap.ok()) << snap.message();
  EXPECT_EQ(snap->status, "pending");
  // An earlier run got two blocks in before it died.
  for (uint64_t index : {uint64_t{0}, uint64_t{2}}) {
    std::string block = read_block(index);
    Sha256Digest d = sha256(block);
    ASSERT_TRUE(ebs_put_snapshot_block(client(), "us-east-1", snap->snapshot_id, index,
                                       std::move(block), d).ok());
  }
  auto listed = ebs_list_snapshot_blocks(client(), "us-east-1", snap->snapshot_id);
  ASSERT_TRUE(listed.ok()) << listed.message();
  EXPECT_EQ(listed->indices, (std::vector<uint64_t>{0, 2}));

  auto image = open_image(raw_);
  ASSERT_TRUE(image.ok()) << image.message();
  bool started = false;
  EbsImportOptions o;
  o.resume_snapshot_id = snap->snapshot_id;
  o.on_started = [&](const std::string&) {
    started = true;
    return Status();
  };
  auto r = ebs_import_image(client(), "us-east-1", **image, o);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_FALSE(started);
  EXPECT_TRUE(r->resumed);
  EXPECT_FALSE(r->already_completed);
  EXPECT_EQ(r->snapshot_id, snap->snapshot_id);
  EXPECT_EQ(r->blocks_present, 2u);
  EXPECT_EQ(r->blocks_sent, data_block_count() - 2);
  EXPECT_EQ(r->note, "");
  expect_snapshot_holds(r->snapshot_id, raw_, data_block_count());
}

TEST_F(EbsMotoTest, ResumeOfAnUnknownSnapshotStartsANewOne) {
  auto image = open_image(raw_);
  ASSERT_TRUE(image.ok()) << image.message();
  std::string started;
  EbsImportOptions o;
  o.resume_snapshot_id = "snap-0123456789abcdef0";
  o.client_token = test::unique_name("token");
  o.on_started = [&](const std::string& id) {
    started = id;
    return Status();
  };
  auto r = ebs_import_image(client(), "us-east-1", **image, o);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_FALSE(r->resumed);
  EXPECT_EQ(started, r->snapshot_id);
  EXPECT_NE(r->snapshot_id, "snap-0123456789abcdef0");
  EXPECT_EQ(r->note, "snapshot snap-0123456789abcdef0 no longer exists; started a new one");
  EXPECT_EQ(r->blocks_sent, data_block_count());
}

TEST_F(EbsMotoTest, ResumeRefusesASnapshotOfAnotherImage) {
  auto image = open_image(raw_);
  ASSERT_TRUE(image.ok()) << image.message();
  // Block 5 lies in a hole of the image.
  EbsStartSnapshotRequest start;
  start.volume_size_gib = 6;
  auto snap = ebs_start_snapshot(client(), "us-east-1", start);
  ASSERT_TRUE(snap.ok()) << snap.message();
  std::string block(kBlock, 'z');
  Sha256Digest d = sha256(block);
  ASSERT_TRUE(ebs_put_snapshot_block(client(), "us-east-1", snap->snapshot_id, 5, block, d).ok());
  EbsImportOptions o;
  o.resume_snapshot_id = snap->snapshot_id;
  auto r = ebs_import_image(client(), "us-east-1", **image, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "EBS import: snapshot " + snap->snapshot_id +
                             " holds block 5, which is zero in the image: the image changed since "
                             "the snapshot was started, or the snapshot belongs to another image");

  // A snapshot of another size is refused before anything is read.
  start.volume_size_gib = 1;
  auto small = ebs_start_snapshot(client(), "us-east-1", start);
  ASSERT_TRUE(small.ok()) << small.message();
  o.resume_snapshot_id = small->snapshot_id;
  r = ebs_import_image(client(), "us-east-1", **image, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "snapshot " + small->snapshot_id +
                             " to resume is 1 GiB but the image needs 6 GiB: it was not made from "
                             "this image");
}

TEST_F(EbsMotoTest, AnOnStartedErrorStopsBeforeAnyBlock) {
  auto image = open_image(raw_);
  ASSERT_TRUE(image.ok()) << image.message();
  std::string id;
  EbsImportOptions o;
  o.on_started = [&](const std::string& s) -> Status {
    id = s;
    return Error{"writing disk.yaml: disk full"};
  };
  auto r = ebs_import_image(client(), "us-east-1", **image, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "writing disk.yaml: disk full");
  ASSERT_FALSE(id.empty());
  auto listed = ebs_list_snapshot_blocks(client(), "us-east-1", id);
  ASSERT_TRUE(listed.ok()) << listed.message();
  EXPECT_TRUE(listed->indices.empty());
}

TEST_F(EbsMotoTest, ErrorsNameTheCallAndTheServiceCode) {
  EbsStartSnapshotRequest start;
  start.volume_size_gib = 0;
  EXPECT_EQ(ebs_start_snapshot(client(), "us-east-1", start).message(),
            "EBS StartSnapshot (us-east-1): volume size 0 GiB is outside 1..65536");
  start.volume_size_gib = 1;
  start.timeout_minutes = 5000;
  EXPECT_EQ(ebs_start_snapshot(client(), "us-east-1", start).message(),
            "EBS StartSnapshot (us-east-1): timeout 5000 minutes is outside 10..4320");
}

}  // namespace
}  // namespace ch

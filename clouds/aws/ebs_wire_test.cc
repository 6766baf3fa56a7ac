// EBS direct import against a scripted server that answers as AWS does
// where moto does not: checksums on the wire, pending snapshots that cannot
// be listed, snapshots that fail, a block service that lags StartSnapshot.
#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <set>

#include <nlohmann/json.hpp>

#include "clouds/aws/ebs.h"
#include "formats/image_reader.h"
#include "tests/test_aws_env.h"
#include "tests/test_util.h"
#include "tests/test_http_server.h"

namespace ch {
namespace {

using test::ReceivedRequest;
using test::ScriptedResponse;

constexpr uint64_t kMiB = uint64_t{1} << 20;

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

// "Action=DescribeSnapshots&Version=..." → "DescribeSnapshots".
std::string action_of(const ReceivedRequest& r) {
  if (!starts_with(r.body, "Action=")) return "";
  return r.body.substr(7, r.body.find('&') - 7);
}

ScriptedResponse xml(const std::string& body) {
  return ScriptedResponse{200, {{"Content-Type", "text/xml"}}, body};
}

ScriptedResponse snapshot_answer(const std::string& id, const std::string& state,
                                 const std::string& message = "") {
  return xml("<DescribeSnapshotsResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
             "<snapshotSet><item><snapshotId>" + id + "</snapshotId><status>" + state +
             "</status><statusMessage>" + message + "</statusMessage><volumeSize>1</volumeSize>"
             "</item></snapshotSet></DescribeSnapshotsResponse>");
}

// A fake of EBS + EC2 for one region, AWS-like: pending snapshots cannot be
// listed; EC2 reports a completed snapshot "pending" for the first
// DescribeSnapshots after CompleteSnapshot.
struct FakeAws {
  std::mutex mu;
  std::map<std::string, std::string> state;  // snapshot → EC2 state
  std::map<std::string, std::map<uint64_t, std::string>> blocks;
  std::set<std::string> described_once;
  std::string new_id = "snap-new";
  int lagging_block_answers = 0;  // 404 ResourceNotFoundException for the first N PUTs
  int throttled_answers = 0;      // 400 RequestThrottledException for the first N EBS calls

  ScriptedResponse handle(const ReceivedRequest& r) {
    std::lock_guard<std::mutex> lk(mu);
    const std::string& t = r.target;
    if (throttled_answers > 0 && starts_with(t, "/snapshots")) {
      --throttled_answers;
      return {400, {{"x-amzn-ErrorType", "RequestThrottledException"}},
              R"({"Message":"Rate exceeded","Reason":"ACCOUNT_THROTTLED"})"};
    }
    if (r.method == "POST" && t == "/snapshots") {
      state[new_id] = "pending";
      nlohmann::json body = nlohmann::json::parse(r.body);
      return {201, {}, nlohmann::json{{"SnapshotId", new_id}, {"BlockSize", 524288},
                                      {"Status", "pending"}, {"VolumeSize", body["VolumeSize"]}}.dump()};
    }
    if (r.method == "PUT" && starts_with(t, "/snapshots/")) {
      if (lagging_block_answers > 0) {
        --lagging_block_answers;
        return {404, {{"x-amzn-ErrorType", "ResourceNotFoundException"}},
                R"({"Message":"The snapshot does not exist","Reason":"SNAPSHOT_NOT_FOUND"})"};
      }
      std::string rest = t.substr(std::string("/snapshots/").size());
      std::string id = rest.substr(0, rest.find('/'));
      uint64_t index = std::stoull(rest.substr(rest.rfind('/') + 1));
      blocks[id][index] = r.body;
      return {201, {}, "{}"};
    }
    if (r.method == "POST" && starts_with(t, "/snapshots/completion/")) {
      std::string& st = state[t.substr(std::string("/snapshots/completion/").size())];
      if (st != "error") st = "completed";
      return {202, {}, R"({"Status":"pending"})"};
    }
    if (r.method == "GET" && starts_with(t, "/snapshots/")) {
      return {400, {{"x-amzn-ErrorType", "ValidationException"}},
              R"({"Message":"The snapshot is not completed","Reason":"INVALID_SNAPSHOT_STATE"})"};
    }
    const std::string action = action_of(r);
    if (action == "DescribeSnapshots") {
      std::string id = r.body.substr(r.body.find("SnapshotId.1=") + 13);
      id = id.substr(0, id.find('&'));
      auto it = state.find(id);
      if (it == state.end())
        return {400, {}, "<Response><Errors><Error><Code>InvalidSnapshot.NotFound</Code><Message>no "
                         "such snapshot</Message></Error></Errors><RequestID>r1</RequestID></Response>"};
      if (it->second == "completed" && described_once.insert(id).second) return snapshot_answer(id, "pending");
      return snapshot_answer(id, it->second, it->second == "error" ? "block checksum mismatch" : "");
    }
    if (action == "DeleteSnapshot") {
      std::string id = r.body.substr(r.body.find("SnapshotId=") + 11);
      state.erase(id.substr(0, id.find('&')));
      return xml("<DeleteSnapshotResponse><return>true</return></DeleteSnapshotResponse>");
    }
    return {500, {}, "unexpected " + r.method + " " + t + " " + r.body};
  }
};

class EbsWireTest : public ::testing::Test {
 protected:
  void SetUp() override {
    test::use_fast_waits();
    server_.set_handler([this](const ReceivedRequest& r) { return fake_.handle(r); });
    aws_ = std::make_unique<test::AwsTestClient>(server_.url(""));
    // 1 MiB + 1000 bytes: data in block 0 and in the partial block 2.
    raw_ = dir_.file("small.raw");
    ASSERT_TRUE(test::make_sparse_file(raw_, kMiB + 1000, {{0, 1000, false}, {kMiB + 10, 990, false}}, 3).ok());
    auto image = open_image(raw_);
    ASSERT_TRUE(image.ok()) << image.message();
    image_ = std::move(*image);
  }

  std::string block(uint64_t index) {
    std::string b(kEbsBlockSize, '\0');
    uint64_t off = index * kEbsBlockSize;
    uint64_t len = std::min<uint64_t>(kEbsBlockSize, image_->virtual_size() - off);
    EXPECT_TRUE(image_->read(off, reinterpret_cast<uint8_t*>(b.data()), len).ok());
    return b;
  }

  std::vector<ReceivedRequest> requests_matching(const std::string& method, const std::string& prefix) {
    std::vector<ReceivedRequest> out;
    for (auto& r : server_.requests())
      if (r.method == method && starts_with(r.target, prefix)) out.push_back(r);
    return out;
  }

  FakeAws fake_;  // before the server, which calls it until destroyed
  test::HttpTestServer server_;
  std::unique_ptr<test::AwsTestClient> aws_;
  test::TempDir dir_;
  std::string raw_;
  std::unique_ptr<ImageReader> image_;
};

TEST_F(EbsWireTest, SendsBlockAndAggregateChecksumsAsEbsDefinesThem) {
  EbsImportOptions o;
  o.description = "d";
  o.tags = {{"Name", "n"}};
  o.client_token = "tok";
  o.parallel = 2;
  auto r = ebs_import_image(*aws_->client, "us-east-1", *image_, o);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->blocks_total, 3u);
  EXPECT_EQ(r->blocks_sent, 2u);
  EXPECT_EQ(r->blocks_skipped_zero, 1u);
  EXPECT_EQ(r->status, "completed");  // after one "pending" answer

  auto start = requests_matching("POST", "/snapshots");
  ASSERT_GE(start.size(), 1u);
  EXPECT_EQ(nlohmann::json::parse(start[0].body),
            (nlohmann::json{{"VolumeSize", 1}, {"Timeout", 60}, {"ClientToken", "tok"},
                            {"Description", "d"}, {"Tags", {{{"Key", "Name"}, {"Value", "n"}}}}}));
  EXPECT_EQ(start[0].header("Content-Type"), "application/json");

  auto puts = requests_matching("PUT", "/snapshots/snap-new/blocks/");
  ASSERT_EQ(puts.size(), 2u);
  for (const auto& put : puts) {
    uint64_t index = std::stoull(put.target.substr(put.target.rfind('/') + 1));
    EXPECT_EQ(put.body, block(index)) << index;  // block 2 zero-padded to 512 KiB
    EXPECT_EQ(put.header("x-amz-Data-Length"), "524288");
    EXPECT_EQ(put.header("x-amz-Checksum"), base64_encode(sha256(block(index))));
    EXPECT_EQ(put.header("x-amz-Checksum-Algorithm"), "SHA256");
    EXPECT_NE(put.header("Authorization").find("/us-east-1/ebs/aws4_request"), std::string::npos);
  }
  auto complete = requests_matching("POST", "/snapshots/completion/snap-new");
  ASSERT_EQ(complete.size(), 1u);
  EXPECT_EQ(complete[0].header("x-amz-ChangedBlocksCount"), "2");
  EXPECT_EQ(complete[0].header("x-amz-Checksum"),
            base64_encode(ebs_linear_checksum({sha256(block(0)), sha256(block(2))})));
  EXPECT_EQ(complete[0].header("x-amz-Checksum-Algorithm"), "SHA256");
  EXPECT_EQ(complete[0].header("x-amz-Checksum-Aggregation-Method"), "LINEAR");
}

TEST_F(EbsWireTest, ResumingAPendingSnapshotThatCannotBeListedResendsEveryBlock) {
  fake_.state["snap-old"] = "pending";
  fake_.blocks["snap-old"][0] = "stale";
  EbsImportOptions o;
  o.resume_snapshot_id = "snap-old";
  bool started = false;
  o.on_started = [&](const std::string&) {
    started = true;
    return Status();
  };
  auto r = ebs_import_image(*aws_->client, "us-east-1", *image_, o);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_FALSE(started);
  EXPECT_TRUE(r->resumed);
  EXPECT_EQ(r->snapshot_id, "snap-old");
  EXPECT_EQ(r->blocks_sent, 2u);
  EXPECT_EQ(r->blocks_present, 0u);
  EXPECT_EQ(fake_.blocks["snap-old"][0], block(0));
  EXPECT_EQ(fake_.blocks["snap-old"][2], block(2));
  EXPECT_TRUE(requests_matching("POST", "/snapshots").size() == 1u);  // the completion only
}

TEST_F(EbsWireTest, AFailedSnapshotIsDeletedAndReplaced) {
  fake_.state["snap-old"] = "error";
  EbsImportOptions o;
  o.resume_snapshot_id = "snap-old";
  o.client_token = "tok";
  std::string started;
  o.on_started = [&](const std::string& id) {
    started = id;
    return Status();
  };
  auto r = ebs_import_image(*aws_->client, "us-east-1", *image_, o);
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(started, "snap-new");
  EXPECT_FALSE(r->resumed);
  EXPECT_EQ(r->note,
            "snapshot snap-old failed (block checksum mismatch) and was deleted; started a new one");
  EXPECT_EQ(fake_.state.count("snap-old"), 0u);
  auto start = requests_matching("POST", "/snapshots");
  ASSERT_GE(start.size(), 1u);
  std::string token = nlohmann::json::parse(start[0].body)["ClientToken"];
  EXPECT_EQ(token.size(), 48u);  // derived from "tok" and the old id, so EBS starts afresh
  EXPECT_NE(token, "tok");
}

TEST_F(EbsWireTest, ASnapshotThatFailsAfterCompletionIsAnError) {
  fake_.new_id = "snap-bad";
  EbsImportOptions o;
  o.on_started = [&](const std::string&) {
    std::lock_guard<std::mutex> lk(fake_.mu);
    fake_.state["snap-bad"] = "error";  // EC2 will report it failed
    return Status();
  };
  auto r = ebs_import_image(*aws_->client, "us-east-1", *image_, o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "snapshot snap-bad in us-east-1 failed: block checksum mismatch");
}

TEST_F(EbsWireTest, ABlockServiceLaggingStartSnapshotIsWaitedFor) {
  fake_.state["snap-new"] = "pending";
  fake_.lagging_block_answers = 2;
  std::string b = block(0);
  ASSERT_TRUE(ebs_put_snapshot_block(*aws_->client, "us-east-1", "snap-new", 0, b, sha256(b)).ok());
  EXPECT_EQ(requests_matching("PUT", "/snapshots/snap-new/blocks/0").size(), 3u);
  EXPECT_EQ(fake_.blocks["snap-new"][0], b);
}

TEST_F(EbsWireTest, ThrottlingAnswersAreRetried) {
  fake_.throttled_answers = 2;
  auto r = ebs_import_image(*aws_->client, "us-east-1", *image_, EbsImportOptions{});
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->blocks_sent, 2u);
  // StartSnapshot thrice, CompleteSnapshot once.
  EXPECT_EQ(requests_matching("POST", "/snapshots").size(), 4u);

  fake_.throttled_answers = 100;  // gives up after 8 attempts
  EbsStartSnapshotRequest start;
  start.volume_size_gib = 1;
  auto s = ebs_start_snapshot(*aws_->client, "us-east-1", start);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, "RequestThrottledException");
  EXPECT_EQ(fake_.throttled_answers, 92);
}

TEST_F(EbsWireTest, OtherBlockErrorsNameTheBlockAndTheCode) {
  server_.set_handler([](const ReceivedRequest&) {
    return ScriptedResponse{400, {{"x-amzn-ErrorType", "ValidationException"}, {"x-amzn-RequestId", "req-9"}},
                            R"({"Message":"Checksum does not match","Reason":"INVALID_CHECKSUM"})"};
  });
  std::string b = block(0);
  Status s = ebs_put_snapshot_block(*aws_->client, "us-east-1", "snap-1", 7, b, sha256(b));
  EXPECT_EQ(s.message(),
            "EBS PutSnapshotBlock 7 of snap-1 (us-east-1): HTTP 400 ValidationException: Checksum "
            "does not match (request id req-9)");
  EXPECT_EQ(s.error().code, "ValidationException");
}

}  // namespace
}  // namespace ch

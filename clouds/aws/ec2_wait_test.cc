// The EC2 waiters against a scripted server: the states moto never shows
// (pending AMIs, failed AMIs, import tasks that fail, finished tasks that
// cannot be cancelled).
#include <gtest/gtest.h>

#include "clouds/aws/ec2.h"
#include "tests/test_aws_env.h"
#include "tests/test_http_server.h"

namespace ch {
namespace {

using test::ReceivedRequest;
using test::ScriptedResponse;

ScriptedResponse xml(const std::string& body) {
  return ScriptedResponse{200, {{"Content-Type", "text/xml"}}, body};
}

ScriptedResponse image_answer(const std::string& state, const std::string& reason = "") {
  return xml("<DescribeImagesResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\"><imagesSet><item>"
             "<imageId>ami-1</imageId><imageState>" + state + "</imageState>" +
             (reason.empty() ? "" : "<stateReason><code>c</code><message>" + reason + "</message></stateReason>") +
             "</item></imagesSet></DescribeImagesResponse>");
}

ScriptedResponse task_answer(const std::string& status, const std::string& message,
                             const std::string& snapshot = "") {
  return xml("<DescribeImportSnapshotTasksResponse><importSnapshotTaskSet><item>"
             "<importTaskId>import-snap-1</importTaskId><snapshotTaskDetail><status>" + status +
             "</status><statusMessage>" + message + "</statusMessage><snapshotId>" + snapshot +
             "</snapshotId></snapshotTaskDetail></item></importSnapshotTaskSet>"
             "</DescribeImportSnapshotTasksResponse>");
}

ScriptedResponse ec2_error(const std::string& code, const std::string& message) {
  return {400, {}, "<Response><Errors><Error><Code>" + code + "</Code><Message>" + message +
                       "</Message></Error></Errors><RequestID>req-1</RequestID></Response>"};
}

class Ec2WaitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    test::use_fast_waits();
    aws_ = std::make_unique<test::AwsTestClient>(server_.url(""));
  }
  test::HttpTestServer server_;
  std::unique_ptr<test::AwsTestClient> aws_;
};

TEST_F(Ec2WaitTest, ImageMustBeAvailableThreeTimesInARow) {
  for (const char* s : {"pending", "available", "pending", "available", "available", "available"})
    server_.enqueue(image_answer(s));
  auto r = ec2_wait_image_available(*aws_->client, "us-east-1", "ami-1");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->state, "available");
  EXPECT_EQ(server_.requests().size(), 6u);
}

TEST_F(Ec2WaitTest, AFailedImageFailsAtOnceWithItsReason) {
  server_.enqueue(image_answer("pending"));
  server_.enqueue(image_answer("failed", "Snapshot snap-1 is not usable"));
  auto r = ec2_wait_image_available(*aws_->client, "eu-west-2", "ami-1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(), "AMI ami-1 in eu-west-2 is failed: Snapshot snap-1 is not usable");
  EXPECT_EQ(server_.requests().size(), 2u);
}

TEST_F(Ec2WaitTest, ANotYetVisibleImageIsWaitedFor) {
  server_.enqueue(ec2_error("InvalidAMIID.NotFound", "The image id '[ami-1]' does not exist"));
  for (int i = 0; i < 3; ++i) server_.enqueue(image_answer("available"));
  auto r = ec2_wait_image_available(*aws_->client, "us-east-1", "ami-1");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(server_.requests().size(), 4u);
}

TEST_F(Ec2WaitTest, ImportTaskCompletesWithItsSnapshot) {
  server_.enqueue(task_answer("active", "pending"));
  server_.enqueue(task_answer("active", "converting"));
  server_.enqueue(task_answer("completed", "", "snap-9"));
  auto r = ec2_wait_import_snapshot(*aws_->client, "us-east-1", "import-snap-1");
  ASSERT_TRUE(r.ok()) << r.message();
  EXPECT_EQ(r->snapshot_id, "snap-9");
  EXPECT_EQ(server_.requests().size(), 3u);
  EXPECT_NE(server_.requests()[0].body.find("ImportTaskId.1=import-snap-1"), std::string::npos);
}

TEST_F(Ec2WaitTest, AFailedImportTaskQuotesItsStatusMessage) {
  server_.enqueue(task_answer("active", "validating"));
  server_.enqueue(task_answer("deleted", "ClientError: Disk validation failed [Unsupported VMDK File Format]"));
  auto r = ec2_wait_import_snapshot(*aws_->client, "us-east-1", "import-snap-1");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.message(),
            "import task import-snap-1 in us-east-1 failed: ClientError: Disk validation failed "
            "[Unsupported VMDK File Format]");
}

TEST_F(Ec2WaitTest, CancellingAFinishedImportTaskSucceeds) {
  server_.enqueue(ec2_error("InvalidParameterValue", "task is not active"));
  server_.enqueue(task_answer("completed", "", "snap-9"));
  EXPECT_TRUE(ec2_cancel_import_task(*aws_->client, "us-east-1", "import-snap-1").ok());

  // Still active: the refusal stands.
  server_.enqueue(ec2_error("InvalidParameterValue", "cannot cancel now"));
  server_.enqueue(task_answer("active", "converting"));
  Status s = ec2_cancel_import_task(*aws_->client, "us-east-1", "import-snap-1");
  EXPECT_EQ(s.message(),
            "EC2 CancelImportTask (us-east-1): HTTP 400 InvalidParameterValue: cannot cancel now "
            "(request id req-1)");
}

TEST_F(Ec2WaitTest, DescribeImagesFollowsNextToken) {
  server_.enqueue(xml("<DescribeImagesResponse><imagesSet><item><imageId>ami-1</imageId></item>"
                      "</imagesSet><nextToken>t2</nextToken></DescribeImagesResponse>"));
  server_.enqueue(xml("<DescribeImagesResponse><imagesSet><item><imageId>ami-2</imageId></item>"
                      "</imagesSet></DescribeImagesResponse>"));
  Ec2ImageQuery q;
  q.owners = {"self"};
  auto r = ec2_describe_images(*aws_->client, "us-east-1", q);
  ASSERT_TRUE(r.ok()) << r.message();
  ASSERT_EQ(r->size(), 2u);
  EXPECT_EQ((*r)[1].image_id, "ami-2");
  ASSERT_EQ(server_.requests().size(), 2u);
  EXPECT_NE(server_.requests()[1].body.find("NextToken=t2"), std::string::npos);
}

}  // namespace
}  // namespace ch

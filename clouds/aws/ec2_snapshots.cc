// Snapshots, ImportSnapshot tasks, tags and regions.
#include <algorithm>
#include <chrono>
#include <cstdlib>

#include "clouds/aws/ec2.h"
#include "clouds/aws/ec2_xml.h"

namespace ch {

namespace {

using ec2xml::Params;

std::string call(const std::string& action, const std::string& region) {
  return "EC2 " + action + " (" + region + ")";
}

Status expect_return(const std::string& what, const std::string& body) {
  pugi::xml_document doc;
  CH_TRY(parse_aws_xml(body, doc, what));
  if (xml_child(xml_root(doc), "return") && !ec2xml::flag(xml_root(doc), "return"))
    return Error{what + ": EC2 answered return=false"};
  return {};
}

// ModifySnapshotAttribute in its OperationType form, which both AWS and moto
// read (moto ignores CreateVolumePermission.Add.N).
Status modify_cvp(AwsClient& client, const std::string& region, const std::string& snapshot_id,
                  const char* operation, const std::vector<Ec2Permission>& permissions) {
  const std::string what = call("ModifySnapshotAttribute", region);
  std::vector<std::string> groups, users;
  for (const Ec2Permission& p : permissions) {
    if (!p.organization_arn.empty() || !p.organizational_unit_arn.empty() ||
        p.group.empty() == p.user_id.empty())
      return Error{what + ": a createVolumePermission names one group or one user id"};
    if (!p.group.empty()) groups.push_back(p.group);
    if (!p.user_id.empty()) users.push_back(p.user_id);
  }
  if (permissions.empty()) return {};
  Params p{{"SnapshotId", snapshot_id},
           {"Attribute", "createVolumePermission"},
           {"OperationType", operation}};
  ec2xml::add_list(&p, "UserGroup", groups);
  ec2xml::add_list(&p, "UserId", users);
  CH_ASSIGN(body, client.ec2(region, "ModifySnapshotAttribute", p));
  return expect_return(what, body);
}

}  // namespace

Result<std::vector<Ec2Snapshot>> ec2_describe_snapshots(AwsClient& client, const std::string& region,
                                                        const Ec2SnapshotQuery& q) {
  const std::string what = call("DescribeSnapshots", region);
  Params base;
  ec2xml::add_list(&base, "SnapshotId", q.snapshot_ids);
  ec2xml::add_list(&base, "Owner", q.owners);
  int n = 1;
  for (const auto& [key, value] : q.tags) ec2xml::add_filter(&base, &n, "tag:" + key, {value});
  std::vector<Ec2Snapshot> out;
  CH_TRY(ec2xml::describe_pages(client, region, "DescribeSnapshots", base, "snapshotSet", what,
                                [&](pugi::xml_node item) { out.push_back(ec2xml::snapshot(item)); }));
  return out;
}

Result<std::optional<Ec2Snapshot>> ec2_find_snapshot(AwsClient& client, const std::string& region,
                                                     const std::string& snapshot_id) {
  Ec2SnapshotQuery q;
  q.snapshot_ids = {snapshot_id};
  auto snapshots = ec2_describe_snapshots(client, region, q);
  if (!snapshots.ok()) {
    if (snapshots.error().code == "InvalidSnapshot.NotFound") return std::optional<Ec2Snapshot>();
    return snapshots.error();
  }
  for (Ec2Snapshot& s : *snapshots)
    if (s.snapshot_id == snapshot_id) return std::optional<Ec2Snapshot>(std::move(s));
  return std::optional<Ec2Snapshot>();
}

Result<Ec2Snapshot> ec2_wait_snapshot_completed(AwsClient& client, const std::string& region,
                                                const std::string& snapshot_id,
                                                const PollOptions& options) {
  const auto grace_end = std::chrono::steady_clock::now() + poll_scaled(std::chrono::minutes(2));
  const std::string subject = "snapshot " + snapshot_id + " in " + region;
  Ec2Snapshot last;
  Status s = poll_until(subject + " to complete", options, [&](std::string* state) -> Result<bool> {
    CH_ASSIGN(snapshot, ec2_find_snapshot(client, region, snapshot_id));
    if (!snapshot) {
      *state = "not found";
      if (std::chrono::steady_clock::now() < grace_end) return false;
      return Error{subject + " does not exist (InvalidSnapshot.NotFound)"};
    }
    *state = snapshot->state + (snapshot->progress.empty() ? "" : " " + snapshot->progress);
    if (snapshot->state == "error")
      return Error{subject + " failed" +
                   (snapshot->state_message.empty() ? "" : ": " + snapshot->state_message)};
    bool done = snapshot->state == "completed";
    last = std::move(*snapshot);
    return done;
  });
  if (!s.ok()) return s.error();
  return last;
}

Status ec2_delete_snapshot(AwsClient& client, const std::string& region,
                           const std::string& snapshot_id) {
  auto body = client.ec2(region, "DeleteSnapshot", {{"SnapshotId", snapshot_id}});
  if (!body.ok()) {
    if (body.error().code == "InvalidSnapshot.NotFound") return {};
    return body.error();
  }
  return expect_return(call("DeleteSnapshot", region), *body);
}

Status ec2_modify_create_volume_permissions(AwsClient& client, const std::string& region,
                                            const std::string& snapshot_id,
                                            const std::vector<Ec2Permission>& add,
                                            const std::vector<Ec2Permission>& remove) {
  CH_TRY(modify_cvp(client, region, snapshot_id, "add", add));
  return modify_cvp(client, region, snapshot_id, "remove", remove);
}

Result<std::vector<Ec2Permission>> ec2_describe_create_volume_permissions(
    AwsClient& client, const std::string& region, const std::string& snapshot_id) {
  const std::string what = call("DescribeSnapshotAttribute", region);
  CH_ASSIGN(body, client.ec2(region, "DescribeSnapshotAttribute",
                             {{"SnapshotId", snapshot_id}, {"Attribute", "createVolumePermission"}}));
  pugi::xml_document doc;
  CH_TRY(parse_aws_xml(body, doc, what));
  std::vector<Ec2Permission> out;
  for (pugi::xml_node item : ec2xml::items(xml_root(doc), "createVolumePermission"))
    out.push_back(Ec2Permission{ec2xml::text(item, "group"), ec2xml::text(item, "userId"), "", ""});
  return out;
}

Result<std::string> ec2_import_snapshot(AwsClient& client, const std::string& region,
                                        const Ec2ImportSnapshotRequest& r) {
  const std::string what = call("ImportSnapshot", region);
  if (r.format != "RAW" && r.format != "VHD" && r.format != "VMDK")
    return Error{what + ": disk format '" + r.format + "' is not RAW, VHD or VMDK"};
  if (r.s3_bucket.empty() || r.s3_key.empty()) return Error{what + ": no S3 bucket and key"};
  if (r.client_token.size() > 64) return Error{what + ": client token longer than 64 characters"};
  Params p;
  if (!r.client_token.empty()) p.emplace_back("ClientToken", r.client_token);
  if (!r.description.empty()) p.emplace_back("Description", r.description);
  if (!r.description.empty()) p.emplace_back("DiskContainer.Description", r.description);
  p.emplace_back("DiskContainer.Format", r.format);
  p.emplace_back("DiskContainer.UserBucket.S3Bucket", r.s3_bucket);
  p.emplace_back("DiskContainer.UserBucket.S3Key", r.s3_key);
  if (!r.role_name.empty()) p.emplace_back("RoleName", r.role_name);
  int n = 1;
  ec2xml::add_tag_specification(&p, &n, "import-snapshot-task", r.tags);
  CH_ASSIGN(body, client.ec2(region, "ImportSnapshot", p));
  pugi::xml_document doc;
  CH_TRY(parse_aws_xml(body, doc, what));
  std::string id = ec2xml::text(xml_root(doc), "importTaskId");
  if (id.empty()) return Error{what + ": the answer has no importTaskId"};
  return id;
}

Result<std::vector<Ec2ImportSnapshotTask>> ec2_describe_import_snapshot_tasks(
    AwsClient& client, const std::string& region, const std::vector<std::string>& task_ids) {
  const std::string what = call("DescribeImportSnapshotTasks", region);
  Params base;
  ec2xml::add_list(&base, "ImportTaskId", task_ids);
  std::vector<Ec2ImportSnapshotTask> out;
  CH_TRY(ec2xml::describe_pages(client, region, "DescribeImportSnapshotTasks", base, "importSnapshotTaskSet", what,
                                [&](pugi::xml_node item) { out.push_back(ec2xml::import_task(item)); }));
  return out;
}

Result<Ec2ImportSnapshotTask> ec2_wait_import_snapshot(AwsClient& client, const std::string& region,
                                                       const std::string& task_id,
                                                       const PollOptions& options) {
  const std::string subject = "import task " + task_id + " in " + region;
  Ec2ImportSnapshotTask last;
  Status s = poll_until(subject + " to complete", options, [&](std::string* state) -> Result<bool> {
    CH_ASSIGN(tasks, ec2_describe_import_snapshot_tasks(client, region, {task_id}));
    auto it = std::find_if(tasks.begin(), tasks.end(),
                           [&](const Ec2ImportSnapshotTask& t) { return t.task_id == task_id; });
    if (it == tasks.end()) return Error{subject + " is not listed by DescribeImportSnapshotTasks"};
    *state = it->status;
    if (!it->status_message.empty()) *state += " (" + it->status_message + ")";
    if (!it->progress.empty()) *state += " " + it->progress + "%";
    if (it->status == "deleting" || it->status == "deleted")
      return Error{subject + " failed" +
                   (it->status_message.empty() ? "" : ": " + it->status_message)};
    if (it->status != "completed") return false;
    if (it->snapshot_id.empty()) return Error{subject + " completed without a snapshot id"};
    last = std::move(*it);
    return true;
  });
  if (!s.ok()) return s.error();
  return last;
}

Status ec2_cancel_import_task(AwsClient& client, const std::string& region,
                              const std::string& task_id) {
  auto body = client.ec2(region, "CancelImportTask",
                         {{"ImportTaskId", task_id}, {"CancelReason", "cloud_helper rollback"}});
  if (body.ok()) return {};
  // EC2 refuses to cancel a task that has finished; that is what we wanted.
  auto tasks = ec2_describe_import_snapshot_tasks(client, region, {task_id});
  if (tasks.ok()) {
    for (const Ec2ImportSnapshotTask& t : *tasks)
      if (t.task_id == task_id && t.status != "active") return {};
  }
  return body.error();
}

Status ec2_create_tags(AwsClient& client, const std::string& region,
                       const std::vector<std::string>& resources, const AwsTags& tags) {
  if (resources.empty() || tags.empty()) return {};
  Params p;
  ec2xml::add_list(&p, "ResourceId", resources);
  int n = 1;
  for (const auto& [key, value] : tags) {
    const std::string prefix = "Tag." + std::to_string(n++) + ".";
    p.emplace_back(prefix + "Key", key);
    p.emplace_back(prefix + "Value", value);
  }
  CH_ASSIGN(body, client.ec2(region, "CreateTags", p));
  return expect_return(call("CreateTags", region), body);
}

Result<std::vector<std::string>> ec2_describe_regions(AwsClient& client, const std::string& region) {
  const std::string what = call("DescribeRegions", region);
  Params p;
  int n = 1;
  ec2xml::add_filter(&p, &n, "opt-in-status", {"opt-in-not-required", "opted-in"});
  CH_ASSIGN(body, client.ec2(region, "DescribeRegions", p));
  pugi::xml_document doc;
  CH_TRY(parse_aws_xml(body, doc, what));
  std::vector<std::string> out;
  for (pugi::xml_node item : ec2xml::items(xml_root(doc), "regionInfo")) {
    // The filter already did this on AWS; emulators may ignore it.
    std::string status = ec2xml::text(item, "optInStatus");
    if (!status.empty() && status != "opt-in-not-required" && status != "opted-in") continue;
    std::string name = ec2xml::text(item, "regionName");
    if (!name.empty()) out.push_back(std::move(name));
  }
  std::sort(out.begin(), out.end());
  if (out.empty()) return Error{what + ": no regions in the answer"};
  return out;
}

}  // namespace ch

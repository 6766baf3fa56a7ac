// The EC2 calls behind `import`, `publish` and `rollback`: typed wrappers
// over AwsClient::ec2 (query protocol, API version 2016-11-15,
// https://docs.aws.amazon.com/AWSEC2/latest/APIReference/), with the XML
// answers read by element local name (the response namespace is
// http://ec2.amazonaws.com/doc/2016-11-15/, which emulators sometimes omit).
//
// Every call takes the REGION it runs in (CopyImage: the destination).
// Errors come from AwsClient and read
//   "EC2 DescribeImages (us-east-1): HTTP 400 InvalidAMIID.NotFound: The image
//    id '[ami-1]' does not exist (request id 5f..)"
// with the service's code in Error::code, so callers branch on
// "InvalidAMIID.NotFound", "InvalidAMIName.Duplicate", ...
//
// Eventual consistency: an id EC2 has just returned may be unknown to the
// next call for a few seconds. The waiters below treat NotFound as pending
// for a grace period; one-shot calls do not (their caller knows better).
//
// Implementation: ec2_images.cc (AMIs, permissions, copy, deprecation),
// ec2_snapshots.cc (snapshots, import tasks, regions, tags), ec2_xml.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/result.h"
#include "clouds/aws/aws_client.h"
#include "clouds/poll.h"

namespace ch {

// Tags as key → value (EC2: at most 50 per resource, keys ≤ 128 chars,
// values ≤ 256 chars; "aws:" keys are reserved). Sent in key order.
using AwsTags = std::map<std::string, std::string>;

// ---------------------------------------------------------------------------
// AMIs

struct Ec2RegisterImageRequest {
  std::string name;                     // 3..128 chars: a-z A-Z 0-9 ( ) [ ] space . / - ' @ _
  std::string description;              // "" : none; ≤ 255 chars
  std::string architecture;             // "x86_64" | "arm64" (not "aarch64": map it first)
  std::string root_device_name = "/dev/xvda";
  std::string snapshot_id;              // BlockDeviceMapping.1.Ebs.SnapshotId
  std::string volume_type = "gp3";      // BlockDeviceMapping.1.Ebs.VolumeType
  uint32_t volume_size_gib = 0;         // 0: the snapshot's size (parameter not sent)
  bool delete_on_termination = true;
  bool ena_support = true;              // EnaSupport=true
  std::string sriov_net_support = "simple";  // "" : not sent
  std::string boot_mode;                // "uefi" | "legacy-bios" | "uefi-preferred" | "" (EC2 default)
  std::string imds_support = "v2.0";    // "" : not sent (instances then allow IMDSv1)
  std::string tpm_support;              // "" | "v2.0" (needs boot_mode uefi)
  std::string uefi_data;                // "" | base64 UEFI variable store (secure boot keys)
  // TagSpecification.1 (ResourceType image) and .2 (snapshot: EC2 tags the
  // AMI's snapshots with them); empty maps are not sent.
  AwsTags image_tags;
  AwsTags snapshot_tags;
};
// RegisterImage (VirtualizationType hvm, one EBS root device) → the new AMI
// id. A name already taken in the region is an Error with code
// "InvalidAMIName.Duplicate" (look it up with ec2_describe_images by name to
// adopt it on a re-run).
Result<std::string> ec2_register_image(AwsClient& client, const std::string& region,
                                       const Ec2RegisterImageRequest& request);

struct Ec2BlockDevice {
  std::string device_name;   // "/dev/xvda"
  std::string snapshot_id;   // "" for ephemeral / no-device entries
  uint32_t volume_size_gib = 0;
  std::string volume_type;   // "gp3"
  bool delete_on_termination = false;
};

struct Ec2Image {
  std::string image_id;
  std::string name;
  std::string description;
  std::string state;          // "pending" | "available" | "invalid" | "deregistered" | "transient" | "failed" | "error" | "disabled"
  std::string state_reason;   // stateReason/message (why it failed), "" if none
  std::string owner_id;
  std::string architecture;   // "x86_64" | "arm64" | ...
  std::string creation_date;  // ISO-8601 as EC2 gives it
  std::string deprecation_time;  // ISO-8601, "" when not deprecated
  std::string boot_mode;      // "" when EC2 reports none
  std::string imds_support;   // "v2.0" or ""
  std::string tpm_support;    // "v2.0" or ""
  std::string virtualization_type;
  std::string root_device_name;
  std::string sriov_net_support;
  bool ena_support = false;
  bool is_public = false;
  AwsTags tags;
  std::vector<Ec2BlockDevice> block_devices;
  // The snapshot ids of block_devices, in mapping order, without "".
  std::vector<std::string> snapshot_ids() const;
};

// What ec2_describe_images selects. Every non-empty field narrows the result
// (EC2 ANDs them). With image_ids, an unknown or deregistered id is an Error
// "InvalidAMIID.NotFound" (malformed: "InvalidAMIID.Malformed"); with
// filters only, no match is an empty list.
struct Ec2ImageQuery {
  std::vector<std::string> image_ids;  // ImageId.N
  std::vector<std::string> owners;     // Owner.N: "self", "amazon", account ids
  std::string name;                    // Filter name=… (wildcards * ? allowed)
  AwsTags tags;                        // Filter tag:KEY=VALUE, one filter per tag
  bool include_deprecated = true;      // IncludeDeprecated
};
// DescribeImages, every page (NextToken), in EC2's order.
Result<std::vector<Ec2Image>> ec2_describe_images(AwsClient& client, const std::string& region,
                                                  const Ec2ImageQuery& query);

// One AMI by id: nullopt when EC2 says InvalidAMIID.NotFound (or
// .Unavailable, or it is listed as "deregistered"); malformed ids and other
// failures are errors.
Result<std::optional<Ec2Image>> ec2_find_image(AwsClient& client, const std::string& region,
                                               const std::string& image_id);

// The unique AMI owned by this account (Owner self) named NAME, for
// idempotent re-runs: nullopt when none, an Error when several ("2 AMIs
// named x in us-east-1: ami-1, ami-2").
Result<std::optional<Ec2Image>> ec2_find_own_image_by_name(AwsClient& client,
                                                           const std::string& region,
                                                           const std::string& name);

// A launch permission (or snapshot createVolumePermission) grantee: exactly
// one field set. group "all" means public.
struct Ec2Permission {
  std::string group;             // "all"
  std::string user_id;           // 12-digit account id
  std::string organization_arn;  // launch permissions only
  std::string organizational_unit_arn;  // launch permissions only
  bool operator==(const Ec2Permission&) const = default;
};
inline Ec2Permission ec2_public_permission() { return Ec2Permission{"all", "", "", ""}; }

// DescribeImageAttribute launchPermission.
Result<std::vector<Ec2Permission>> ec2_describe_launch_permissions(AwsClient& client,
                                                                   const std::string& region,
                                                                   const std::string& image_id);
// ModifyImageAttribute LaunchPermission.Add.N / .Remove.N. Adding a grant
// that exists, or removing one that does not, succeeds (EC2 ignores it).
// Making an AMI public fails with code "OperationNotPermitted" while the
// account's image block public access is on (see
// ec2_get_image_block_public_access_state).
Status ec2_modify_launch_permissions(AwsClient& client, const std::string& region,
                                     const std::string& image_id,
                                     const std::vector<Ec2Permission>& add,
                                     const std::vector<Ec2Permission>& remove);
// ResetImageAttribute launchPermission: back to private (owner only).
Status ec2_reset_launch_permissions(AwsClient& client, const std::string& region,
                                    const std::string& image_id);

struct Ec2CopyImageRequest {
  std::string source_image_id;
  std::string source_region;
  std::string name;
  std::string description;       // "" : none
  std::string client_token;      // idempotency (≤ 64 ASCII chars); "" : none
  bool copy_image_tags = true;   // CopyImageTags: the source AMI's tags come along
  AwsTags tags;                  // TagSpecification.1 ResourceType image; empty: not sent
};
// CopyImage, sent to REGION (the destination) → the new AMI id there. The
// copy starts "pending"; wait with ec2_wait_image_available. The same
// client_token returns the same copy, so a re-run after a kill adopts it.
Result<std::string> ec2_copy_image(AwsClient& client, const std::string& region,
                                   const Ec2CopyImageRequest& request);

// DeregisterImage. An AMI that no longer exists (InvalidAMIID.NotFound /
// .Unavailable) counts as deregistered, so rollback can be re-run. Its
// snapshots stay: delete them with ec2_delete_snapshot.
Status ec2_deregister_image(AwsClient& client, const std::string& region,
                            const std::string& image_id);

// EnableImageDeprecation with DeprecateAt = DEPRECATE_AT, an ISO-8601 UTC
// time ("2027-05-01T00:00:00Z"; EC2 rounds to the minute and refuses times
// more than 10 years ahead). DisableImageDeprecation removes it.
Status ec2_enable_image_deprecation(AwsClient& client, const std::string& region,
                                    const std::string& image_id, const std::string& deprecate_at);
Status ec2_disable_image_deprecation(AwsClient& client, const std::string& region,
                                     const std::string& image_id);

// GetImageBlockPublicAccessState: "unblocked" or "block-new-sharing" (public
// launch permissions are then refused).
Result<std::string> ec2_get_image_block_public_access_state(AwsClient& client,
                                                            const std::string& region);

// Polls DescribeImages until IMAGE_ID is "available" in 3 consecutive
// answers (pubsys: one answer can come from a replica that is ahead), and
// returns the last description. Fails at once on "failed", "invalid",
// "error", "deregistered" or "disabled", quoting the state reason:
// "AMI ami-1 in eu-west-2 is failed: <reason>". NotFound is treated as
// pending for the first 2 minutes (the id may not have propagated). Default
// intervals: 5 s growing to 30 s; options.timeout bounds the whole wait.
Result<Ec2Image> ec2_wait_image_available(AwsClient& client, const std::string& region,
                                          const std::string& image_id,
                                          const PollOptions& options = {});

// ---------------------------------------------------------------------------
// Snapshots

struct Ec2Snapshot {
  std::string snapshot_id;
  std::string state;          // "pending" | "completed" | "error" | "recoverable" | "recovering"
  std::string state_message;  // why it failed, "" if none
  std::string progress;       // "100%" as EC2 gives it, "" if absent
  uint32_t volume_size_gib = 0;
  std::string description;
  std::string owner_id;
  std::string start_time;     // ISO-8601
  bool encrypted = false;
  AwsTags tags;
};

struct Ec2SnapshotQuery {
  std::vector<std::string> snapshot_ids;  // SnapshotId.N
  std::vector<std::string> owners;        // Owner.N ("self")
  AwsTags tags;                           // Filter tag:KEY=VALUE
};
// DescribeSnapshots, every page. With snapshot_ids, an unknown id is an
// Error with code "InvalidSnapshot.NotFound".
Result<std::vector<Ec2Snapshot>> ec2_describe_snapshots(AwsClient& client, const std::string& region,
                                                        const Ec2SnapshotQuery& query);

// One snapshot by id; nullopt when EC2 says InvalidSnapshot.NotFound.
Result<std::optional<Ec2Snapshot>> ec2_find_snapshot(AwsClient& client, const std::string& region,
                                                     const std::string& snapshot_id);

// Polls until SNAPSHOT_ID is "completed" and returns it; fails at once on
// "error" with the state message. NotFound counts as pending for the first
// 2 minutes. Default intervals 5 s → 30 s (CLOUD_HELPER_POLL_SCALE applies).
Result<Ec2Snapshot> ec2_wait_snapshot_completed(AwsClient& client, const std::string& region,
                                                const std::string& snapshot_id,
                                                const PollOptions& options = {});

// DeleteSnapshot. A snapshot that no longer exists counts as deleted. A
// snapshot still used by a registered AMI fails with code
// "InvalidSnapshot.InUse": deregister the AMI first.
Status ec2_delete_snapshot(AwsClient& client, const std::string& region,
                           const std::string& snapshot_id);

// ModifySnapshotAttribute createVolumePermission Add / Remove (group "all"
// or user ids; organisation grantees are not valid here). Public snapshots
// are refused with "OperationNotPermitted" while the account blocks public
// snapshot access.
Status ec2_modify_create_volume_permissions(AwsClient& client, const std::string& region,
                                            const std::string& snapshot_id,
                                            const std::vector<Ec2Permission>& add,
                                            const std::vector<Ec2Permission>& remove);
// DescribeSnapshotAttribute createVolumePermission.
Result<std::vector<Ec2Permission>> ec2_describe_create_volume_permissions(
    AwsClient& client, const std::string& region, const std::string& snapshot_id);

// ---------------------------------------------------------------------------
// ImportSnapshot (the S3 path, for when EBS direct APIs are unavailable)

struct Ec2ImportSnapshotRequest {
  std::string format;        // DiskContainer.Format: "RAW" | "VHD" | "VMDK"
  std::string s3_bucket;     // DiskContainer.UserBucket.S3Bucket
  std::string s3_key;        // DiskContainer.UserBucket.S3Key
  std::string description;   // Description and DiskContainer.Description
  std::string client_token;  // "" : none; the same token returns the same task
  std::string role_name;     // RoleName; "" : the default "vmimport" role
  AwsTags tags;              // TagSpecification.1 ResourceType import-snapshot-task
};
// ImportSnapshot → the import task id ("import-snap-...").
Result<std::string> ec2_import_snapshot(AwsClient& client, const std::string& region,
                                        const Ec2ImportSnapshotRequest& request);

struct Ec2ImportSnapshotTask {
  std::string task_id;
  std::string status;          // "active" | "completed" | "deleting" | "deleted"
  std::string status_message;  // "pending", "validating", "converting", or the failure
  std::string progress;        // "42" (percent) while active, "" otherwise
  std::string snapshot_id;     // set once completed
  uint64_t disk_image_size = 0;  // bytes, as EC2 reports it
  std::string description;
  std::string format;
};
// DescribeImportSnapshotTasks for TASK_IDS (empty: all recent tasks).
Result<std::vector<Ec2ImportSnapshotTask>> ec2_describe_import_snapshot_tasks(
    AwsClient& client, const std::string& region, const std::vector<std::string>& task_ids);

// Polls the task until "completed" and returns it (snapshot_id set). Fails
// on "deleting"/"deleted" with the status message ("import task
// import-snap-1 in us-east-1 failed: ClientError: Disk validation failed
// [...]"). Default intervals 5 s → 30 s (CLOUD_HELPER_POLL_SCALE applies).
Result<Ec2ImportSnapshotTask> ec2_wait_import_snapshot(AwsClient& client, const std::string& region,
                                                       const std::string& task_id,
                                                       const PollOptions& options = {});

// CancelImportTask (rollback of an import still running). A task that has
// already finished (DescribeImportSnapshotTasks shows it not "active")
// counts as cancelled; an unknown id is an error.
Status ec2_cancel_import_task(AwsClient& client, const std::string& region,
                              const std::string& task_id);

// ---------------------------------------------------------------------------
// Tags and regions

// CreateTags: TAGS on every resource in RESOURCES (ami-, snap-, ...).
// Existing keys are overwritten. Nothing is sent when either is empty.
Status ec2_create_tags(AwsClient& client, const std::string& region,
                       const std::vector<std::string>& resources, const AwsTags& tags);

// DescribeRegions for the regions this account can use (opt-in-status
// opt-in-not-required or opted-in), sorted by name. REGION is where the
// question is sent (any enabled region answers for all).
Result<std::vector<std::string>> ec2_describe_regions(AwsClient& client, const std::string& region);

}  // namespace ch

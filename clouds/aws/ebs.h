// EBS direct APIs: writing a disk image straight into a new EBS snapshot,
// block by block, with no S3 object and no import task (coldsnap's
// approach; API reference https://docs.aws.amazon.com/ebs/latest/APIReference/).
//
//   StartSnapshot        POST /snapshots {VolumeSize GiB, ClientToken,
//                        Description, Tags, Timeout} → SnapshotId, BlockSize
//   PutSnapshotBlock     PUT /snapshots/ID/blocks/INDEX, body one block,
//                        x-amz-Data-Length, x-amz-Checksum (base64 SHA-256
//                        of the block), x-amz-Checksum-Algorithm SHA256
//   CompleteSnapshot     POST /snapshots/completion/ID, x-amz-ChangedBlocksCount,
//                        x-amz-Checksum = base64 SHA-256 of the concatenated raw
//                        per-block SHA-256 digests in ascending block index order,
//                        x-amz-Checksum-Aggregation-Method LINEAR
//   ListSnapshotBlocks   GET /snapshots/ID/blocks (paginated)
//
// Blocks are 512 KiB (BlockSize: "Valid value: 524288"); a snapshot holds
// only the blocks written, the rest read as zeros. So only blocks with
// non-zero bytes are sent: the reader's extent map rules out holes, and each
// data block is checked for all-zero content too (copied images lose their
// sparseness). The last block of an image whose size is not a multiple of
// 512 KiB is zero-padded. EBS verifies every block's checksum and, at
// completion, the aggregate: a block corrupted in transit or a missing block
// makes the snapshot fail ("error"), never a silently bad image.
//
// Once CompleteSnapshot is accepted the snapshot is "pending" in EC2 until
// EBS has stored it; ebs_import_image waits for "completed" through EC2
// DescribeSnapshots (clouds/aws/ec2.h).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/result.h"
#include "clouds/aws/aws_client.h"
#include "clouds/aws/ec2.h"
#include "clouds/poll.h"
#include "clouds/signing/digest.h"
#include "formats/image_reader.h"

namespace ch {

// The EBS snapshot block size. Emulators may report another BlockSize (moto
// says 512 but stores whatever it is sent); cloud_helper always writes
// 512 KiB blocks, so an AWS that changed it would refuse the first block
// with an error instead of storing a wrong image.
inline constexpr uint32_t kEbsBlockSize = 512 * 1024;

// ---------------------------------------------------------------------------
// The four calls

struct EbsStartSnapshotRequest {
  uint64_t volume_size_gib = 0;  // ≥ 1: the image's virtual size rounded up to GiB
  std::string client_token;      // "" : none. Same token + same parameters → same snapshot
  std::string description;       // "" : none
  AwsTags tags;
  // Minutes EBS keeps the snapshot "pending" before failing it if it is not
  // completed (EBS: 10..4320; its default is 60).
  uint32_t timeout_minutes = 60;
};

struct EbsSnapshot {
  std::string snapshot_id;
  uint32_t block_size = 0;  // as reported (see kEbsBlockSize)
  std::string status;       // "pending" | "completed" | "error"
  uint64_t volume_size_gib = 0;
};

Result<EbsSnapshot> ebs_start_snapshot(AwsClient& client, const std::string& region,
                                       const EbsStartSnapshotRequest& request);

// Writes block INDEX (byte offset INDEX * kEbsBlockSize). BLOCK is exactly
// kEbsBlockSize bytes; SHA256 is its digest (also used as the signed payload
// hash, so the block is hashed once). The block is moved into the request.
// Right after StartSnapshot EBS may answer 404 ResourceNotFoundException for
// a snapshot it has just created (coldsnap issue #43); that answer is
// retried for up to 2 minutes (scaled by CLOUD_HELPER_POLL_SCALE).
// All four calls retry EBS's throttling answers (RequestThrottledException,
// ConcurrentLimitExceededException, ThrottlingException: 400s whose type
// is only in the x-amzn-ErrorType header) by AwsClient's retry policy
// (clouds/http/retry.h: 8 attempts by default).
Status ebs_put_snapshot_block(AwsClient& client, const std::string& region,
                              const std::string& snapshot_id, uint64_t index,
                              std::string block, const Sha256Digest& sha256);

// CompleteSnapshot with CHANGED_BLOCKS (blocks written in total, over all
// runs) and AGGREGATE (ebs_linear_checksum of their digests). Returns the
// status EBS answers ("pending" on AWS: completion continues in the
// background; "completed" on moto).
Result<std::string> ebs_complete_snapshot(AwsClient& client, const std::string& region,
                                          const std::string& snapshot_id, uint64_t changed_blocks,
                                          const Sha256Digest& aggregate);

struct EbsBlockList {
  uint32_t block_size = 0;
  uint64_t volume_size_gib = 0;
  std::vector<uint64_t> indices;  // ascending
};
// ListSnapshotBlocks, every page (NextToken). AWS lists only completed
// snapshots; a pending one is refused (ValidationException), which
// ebs_import_image handles by re-sending every block.
Result<EbsBlockList> ebs_list_snapshot_blocks(AwsClient& client, const std::string& region,
                                              const std::string& snapshot_id);

// SHA-256 over the concatenated DIGESTS (already in ascending block order):
// CompleteSnapshot's LINEAR aggregate.
Sha256Digest ebs_linear_checksum(const std::vector<Sha256Digest>& digests);

// ---------------------------------------------------------------------------
// A whole image

struct EbsImportOptions {
  std::string description;  // StartSnapshot Description ("" : none)
  AwsTags tags;             // StartSnapshot Tags
  // StartSnapshot ClientToken (≤ 64 chars), "" : none. Derive it from the
  // image (name + sha256) so a run killed between StartSnapshot and
  // on_started gets the same snapshot back on the re-run instead of leaking
  // a second one.
  std::string client_token;
  uint32_t timeout_minutes = 60;  // StartSnapshot Timeout (see above)
  // Blocks in flight at once (≥ 1), each holding one 512 KiB buffer (plus
  // the HTTP layer's copy while it is sent), so memory stays near
  // parallel × 1.5 MiB whatever the image size. The HttpClient's
  // max_in_flight caps concurrent requests as well.
  int parallel = 32;
  // Guest bytes done, as deltas, from worker threads (must be thread-safe;
  // Progress::advance is): blocks sent, found present, or skipped as zero
  // all count, so the sum reaches the image's virtual size on success.
  std::function<void(uint64_t bytes)> progress;
  // Called once right after StartSnapshot, before any block is sent, with
  // the new id, so the caller records it (YAML `operations`, checkpoint)
  // for a resume or a cleanup after a kill. An error from it stops the
  // import (the snapshot is left pending; EBS fails it after the timeout)
  // and is returned. Not called when resume_snapshot_id is used.
  std::function<Status(const std::string& snapshot_id)> on_started;
  // A snapshot started by an earlier run (from on_started). Its EC2 state
  // (DescribeSnapshots) and ListSnapshotBlocks decide:
  //  - unknown to EC2, or "error": a new snapshot is started (on_started is
  //    called for it; the client token gets a derived suffix so EBS does not
  //    hand back the failed one) and a failed one is deleted;
  //    EbsImportResult::note says which.
  //  - its volume size differs from the image's: an error, nothing sent.
  //  - its blocks can be listed: only the blocks missing from it are sent.
  //    When none is missing and EC2 says "completed", the earlier run
  //    completed it (the aggregate checksum proved every block) and nothing
  //    is sent (EbsImportResult::already_completed). AWS lists completed
  //    snapshots only; moto lists pending ones too.
  //  - "pending" and not listable (AWS): every non-zero block is sent again,
  //    overwriting in place, then CompleteSnapshot.
  //  - "completed" and not listable: the listing error, wrapped
  //    ("resuming snapshot X: EBS ListSnapshotBlocks ...").
  // Every block is read and hashed in all cases: the aggregate checksum
  // needs them all. A listed block that is zero in the image means the
  // image changed or the snapshot is another's: an error ("snapshot X holds
  // block N, which is zero in the image: ..."), before any block is sent
  // when N lies in a hole.
  std::string resume_snapshot_id;
  // Wait for "completed" in EC2 after CompleteSnapshot (default 5 s → 30 s,
  // one hour). false: return right after CompleteSnapshot.
  bool wait_completed = true;
  PollOptions wait;
};

struct EbsImportResult {
  std::string snapshot_id;
  uint64_t volume_size_gib = 0;
  uint64_t blocks_total = 0;         // ceil(virtual size / 512 KiB)
  uint64_t blocks_sent = 0;          // PutSnapshotBlock calls that succeeded in this run
  uint64_t blocks_present = 0;       // already in the snapshot (resume), not sent again
  uint64_t blocks_skipped_zero = 0;  // in holes, or read as all zeros
  uint64_t bytes_sent = 0;           // blocks_sent × 512 KiB
  bool resumed = false;              // resume_snapshot_id was continued
  bool already_completed = false;    // resume_snapshot_id was completed: nothing sent
  std::string status;                // the final snapshot state ("completed", or
                                     // CompleteSnapshot's answer when not waiting)
  std::string note;                  // one line on what happened to a resume id not used
};

// Imports IMAGE (any reader: raw, qcow2, vhd, vmdk) into a new EBS snapshot
// in REGION, as described at the top. Validates the options before sending
// anything. On failure after StartSnapshot the snapshot is left pending (a
// re-run resumes it through resume_snapshot_id; rollback deletes it with
// ec2_delete_snapshot). Errors name the step: "EBS PutSnapshotBlock 1234 of
// snap-1 (us-east-1): HTTP 400 ValidationException: ... (request id ..)".
Result<EbsImportResult> ebs_import_image(AwsClient& client, const std::string& region,
                                         const ImageReader& image,
                                         const EbsImportOptions& options);

}  // namespace ch

// ebs_import_image: plan the blocks from the extent map, then read, hash and
// send them with a fixed pool of workers, each owning one block buffer.
//
// Resume, decided by what EC2 and EBS say about the recorded snapshot:
//   EC2: unknown id / "error" → start a new snapshot (and delete a failed one)
//   ListSnapshotBlocks works  → send only the blocks it lacks (AWS lists only
//                               completed snapshots, emulators pending ones
//                               too; when nothing is missing and EC2 says
//                               "completed" the earlier run finished it)
//   it fails, EC2 "pending"   → AWS's pending snapshot: send every block again
//   it fails, EC2 "completed" → the listing error is returned
#include <algorithm>
#include <iterator>
#include <atomic>
#include <cstring>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_set>

#include "clouds/aws/ebs.h"
#include "clouds/signing/sigv4.h"
#include "helper/output.h"

namespace ch {

namespace {

constexpr uint64_t kGiB = uint64_t{1} << 30;

bool all_zero(const std::string& block) {
  const char* p = block.data();
  size_t n = block.size();
  uint64_t acc = 0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    std::memcpy(&w, p + i, 8);
    acc |= w;
    if ((i & 4095) == 4088 && acc != 0) return false;  // early out once per 4 KiB
  }
  for (; i < n; ++i) acc |= static_cast<unsigned char>(p[i]);
  return acc == 0;
}

// Ascending, disjoint [first, last) ranges of block indices that touch a
// data extent. Everything else reads as zeros.
std::vector<std::pair<uint64_t, uint64_t>> data_block_ranges(const ImageReader& image) {
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const Extent& e : image.extents()) {
    if (!e.data || e.length == 0) continue;
    uint64_t first = e.offset / kEbsBlockSize;
    uint64_t last = (e.offset + e.length + kEbsBlockSize - 1) / kEbsBlockSize;
    if (!ranges.empty() && first <= ranges.back().second) {
      ranges.back().second = std::max(ranges.back().second, last);
    } else {
      ranges.emplace_back(first, last);
    }
  }
  return ranges;
}

// What the recorded snapshot turned out to be.
struct ResumeTarget {
  std::string snapshot_id;            // "" : start a new one
  bool completed_in_ec2 = false;
  std::optional<std::unordered_set<uint64_t>> present;  // nullopt: unknown, send all
  std::string note;
};

Result<ResumeTarget> inspect_resume(AwsClient& client, const std::string& region,
                                    const std::string& id, uint64_t volume_size_gib) {
  ResumeTarget t;
  CH_ASSIGN(snapshot, ec2_find_snapshot(client, region, id));
  if (!snapshot) {
    t.note = "snapshot " + id + " no longer exists; started a new one";
    return t;
  }
  if (snapshot->state == "error") {
    Status deleted = ec2_delete_snapshot(client, region, id);
    t.note = "snapshot " + id + " failed" +
             (snapshot->state_message.empty() ? "" : " (" + snapshot->state_message + ")") +
             (deleted.ok() ? " and was deleted" : " and could not be deleted: " + deleted.message()) +
             "; started a new one";
    return t;
  }
  if (snapshot->volume_size_gib != 0 && snapshot->volume_size_gib != volume_size_gib)
    return Error{"snapshot " + id + " to resume is " + std::to_string(snapshot->volume_size_gib) +
                 " GiB but the image needs " + std::to_string(volume_size_gib) +
                 " GiB: it was not made from this image"};
  t.snapshot_id = id;
  t.completed_in_ec2 = snapshot->state == "completed";
  auto listed = ebs_list_snapshot_blocks(client, region, id);
  if (listed.ok()) {
    t.present.emplace(listed->indices.begin(), listed->indices.end());
  } else if (t.completed_in_ec2) {
    return listed.error().wrap("resuming snapshot " + id);
  } else {
    log_info("EBS snapshot " + id + " is " + snapshot->state +
             " and its blocks cannot be listed; sending every block again");
  }
  return t;
}

std::string retry_token(const std::string& token, const std::string& old_id) {
  if (token.empty()) return "";
  // Deterministic, so a re-run that dies again before on_started still gets
  // the same new snapshot back; ≤ 64 characters.
  return sha256_hex(token + "/" + old_id).substr(0, 48);
}

}  // namespace

Result<EbsImportResult> ebs_import_image(AwsClient& client, const std::string& region,
                                         const ImageReader& image,
                                         const EbsImportOptions& options) {
  const uint64_t size = image.virtual_size();
  if (size == 0) return Error{"EBS import: the image is empty"};
  if (options.parallel < 1) return Error{"EBS import: parallel must be at least 1"};
  if (options.client_token.size() > 64)
    return Error{"EBS import: client token longer than 64 characters"};
  if (options.timeout_minutes < 10 || options.timeout_minutes > 4320)
    return Error{"EBS import: timeout " + std::to_string(options.timeout_minutes) +
                 " minutes is outside 10..4320"};

  EbsImportResult result;
  result.volume_size_gib = (size + kGiB - 1) / kGiB;
  result.blocks_total = (size + kEbsBlockSize - 1) / kEbsBlockSize;
  const auto report = [&](uint64_t bytes) {
    if (options.progress && bytes > 0) options.progress(bytes);
  };

  ResumeTarget target;
  if (!options.resume_snapshot_id.empty()) {
    CH_ASSIGN(t, inspect_resume(client, region, options.resume_snapshot_id, result.volume_size_gib));
    target = std::move(t);
    result.note = target.note;
    if (!target.note.empty()) log_info("EBS import: " + target.note);
  }
  if (target.snapshot_id.empty()) {
    EbsStartSnapshotRequest start;
    start.volume_size_gib = result.volume_size_gib;
    start.client_token = options.resume_snapshot_id.empty()
                             ? options.client_token
                             : retry_token(options.client_token, options.resume_snapshot_id);
    start.description = options.description;
    start.tags = options.tags;
    start.timeout_minutes = options.timeout_minutes;
    CH_ASSIGN(started, ebs_start_snapshot(client, region, start));
    if (started.block_size != 0 && started.block_size != kEbsBlockSize)
      log_debug("EBS StartSnapshot reported BlockSize " + std::to_string(started.block_size) +
                "; writing " + std::to_string(kEbsBlockSize) + "-byte blocks as documented");
    log_info("EBS snapshot " + started.snapshot_id + " started in " + region + " (" +
             std::to_string(result.volume_size_gib) + " GiB)");
    if (options.on_started) CH_TRY(options.on_started(started.snapshot_id));
    target.snapshot_id = started.snapshot_id;
  } else {
    result.resumed = true;
  }
  result.snapshot_id = target.snapshot_id;
  const std::string& id = result.snapshot_id;

  const auto ranges = data_block_ranges(image);
  const auto foreign = [&](uint64_t listed) {
    return Error{"EBS import: snapshot " + id + " holds block " + std::to_string(listed) +
                 ", which is zero in the image: the image changed since the snapshot was "
                 "started, or the snapshot belongs to another image"};
  };
  if (target.present) {
    // Blocks in holes are known now; all-zero data blocks only after reading.
    for (uint64_t listed : *target.present) {
      auto it = std::upper_bound(ranges.begin(), ranges.end(), listed,
                                 [](uint64_t v, const auto& r) { return v < r.first; });
      if (it == ranges.begin() || listed >= std::prev(it)->second) return foreign(listed);
    }
  }

  // Workers claim candidate blocks in ascending order; the hole blocks
  // passed on the way are reported as progress when claimed.
  std::mutex mu;
  size_t range_pos = 0;
  uint64_t next_block = ranges.empty() ? 0 : ranges[0].first;
  uint64_t reported_until = 0;  // blocks below this have been reported as progress
  std::vector<std::pair<uint64_t, Sha256Digest>> digests;
  std::optional<Error> failure;
  std::atomic<uint64_t> sent{0}, present{0}, zero{0};

  auto block_bytes = [&](uint64_t first, uint64_t last) -> uint64_t {
    uint64_t end = std::min(size, last * kEbsBlockSize);
    uint64_t begin = std::min(size, first * kEbsBlockSize);
    return end - begin;
  };

  auto claim = [&](uint64_t* index, uint64_t* hole_bytes) -> bool {
    std::lock_guard<std::mutex> lk(mu);
    if (failure || range_pos >= ranges.size()) return false;
    *index = next_block;
    *hole_bytes = block_bytes(reported_until, *index);
    reported_until = *index + 1;
    if (++next_block >= ranges[range_pos].second && ++range_pos < ranges.size())
      next_block = ranges[range_pos].first;
    return true;
  };

  auto worker = [&] {
    std::string block;
    uint64_t index = 0, holes = 0;
    while (claim(&index, &holes)) {
      report(holes);
      block.assign(kEbsBlockSize, '\0');
      const uint64_t offset = index * kEbsBlockSize;
      const uint64_t len = std::min<uint64_t>(kEbsBlockSize, size - offset);  // last block: zero-padded
      Status read = image.read(offset, reinterpret_cast<uint8_t*>(block.data()), len);
      if (!read.ok()) {
        std::lock_guard<std::mutex> lk(mu);
        if (!failure) failure = read.error().wrap("EBS import: reading block " + std::to_string(index));
        return;
      }
      if (all_zero(block)) {
        zero.fetch_add(1);
        report(len);
        continue;
      }
      const Sha256Digest digest = sha256(block);
      {
        std::lock_guard<std::mutex> lk(mu);
        digests.emplace_back(index, digest);
      }
      if (target.present && target.present->count(index)) {
        present.fetch_add(1);
        report(len);
        continue;
      }
      Status put = ebs_put_snapshot_block(client, region, id, index, std::move(block), digest);
      if (!put.ok()) {
        std::lock_guard<std::mutex> lk(mu);
        if (!failure) failure = put.error();
        return;
      }
      sent.fetch_add(1);
      report(len);
    }
  };

  uint64_t candidates = 0;
  for (const auto& [first, last] : ranges) candidates += last - first;
  const size_t threads =
      static_cast<size_t>(std::min<uint64_t>(static_cast<uint64_t>(options.parallel), candidates));
  std::vector<std::thread> pool;
  pool.reserve(threads);
  for (size_t i = 0; i < threads; ++i) pool.emplace_back(worker);
  for (std::thread& t : pool) t.join();
  if (failure) return *failure;
  report(block_bytes(reported_until, result.blocks_total));

  result.blocks_sent = sent.load();
  result.blocks_present = present.load();
  result.blocks_skipped_zero = result.blocks_total - candidates + zero.load();
  result.bytes_sent = result.blocks_sent * kEbsBlockSize;

  std::sort(digests.begin(), digests.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  if (target.present) {
    // A listed block the image does not have: another image's snapshot, or
    // the image changed since the earlier run. EBS would count it and
    // refuse the aggregate; say why instead.
    std::unordered_set<uint64_t> ours;
    for (const auto& d : digests) ours.insert(d.first);
    for (uint64_t listed : *target.present)
      if (!ours.count(listed)) return foreign(listed);
  }
  log_debug("EBS snapshot " + id + ": " + std::to_string(result.blocks_sent) + " blocks sent, " +
            std::to_string(result.blocks_present) + " already present, " +
            std::to_string(result.blocks_skipped_zero) + " zero of " +
            std::to_string(result.blocks_total));

  if (target.present && target.completed_in_ec2 && result.blocks_sent == 0) {
    result.already_completed = true;
    result.status = "completed";
    return result;
  }
  std::vector<Sha256Digest> ordered;
  ordered.reserve(digests.size());
  for (const auto& d : digests) ordered.push_back(d.second);
  CH_ASSIGN(status, ebs_complete_snapshot(client, region, id, ordered.size(),
                                          ebs_linear_checksum(ordered)));
  result.status = status;
  if (options.wait_completed) {
    CH_ASSIGN(done, ec2_wait_snapshot_completed(client, region, id, options.wait));
    result.status = done.state;
  }
  return result;
}

}  // namespace ch

// cloud: aws, publish — the imported AMI in every region of the YAML.
//
// Regions run in parallel (each mostly waits for its copy). Per region:
// reuse the AMI recorded in artifacts or operations.publish, else CopyImage
// with a client token derived from the source AMI and region (a run killed
// after the call gets the same copy back); wait until available (3 answers
// in a row); then converge what makes it published — tags on the AMI and its
// snapshots, the launch permission (group all when public: true, removed
// when not), public snapshots when asked, deprecation at end_of_life. Every
// run checks these against the AMI as the wait last saw it and sets what is
// missing (tags are always re-applied: snapshot tags are not in that view),
// so a re-run fixes drift and new regions. A region that fails does not
// stop the others; its AMI id is kept.
#include <algorithm>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "base/parallel.h"
#include "base/time.h"
#include "clouds/aws/aws_session.h"
#include "clouds/aws/aws_steps.h"
#include "clouds/aws/ec2.h"
#include "clouds/operations.h"
#include "helper/output.h"

namespace ch {

namespace {

struct PublishPlan {
  std::string source_id, source_region, name, description;
  std::vector<std::string> regions;  // empty with all_regions
  bool all_regions = false;
  bool make_public = false, public_snapshots = false;
  std::string deprecate_at;  // "" : none
  AwsTags tags;
};

Result<PublishPlan> plan_publish(const ImageMetadata& meta) {
  PublishPlan p;
  auto id = meta.get_string("import_id");
  auto region = meta.get_string("import_region");
  if (!meta.get_string("imported") || !id || !region)
    return Error{"no imported image (import_id, import_region): run import first"};
  p.source_id = *id;
  p.source_region = *region;
  p.name = aws_ami_name(meta);
  p.description = meta.get_string("description").value_or("");
  std::vector<std::string> regions = meta.get_list("regions");
  if (regions.size() == 1 && regions[0] == "all") {
    p.all_regions = true;
  } else if (regions.empty()) {
    p.regions = {p.source_region};
  } else {
    for (const std::string& r : regions) {
      if (r == "all") return Error{"regions: 'all' cannot be combined with named regions"};
      if (r.empty() || r.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789-") != std::string::npos)
        return Error{"regions: '" + r + "' is not an AWS region name"};
      if (std::find(p.regions.begin(), p.regions.end(), r) == p.regions.end()) p.regions.push_back(r);
    }
  }
  CH_ASSIGN(pub, meta.get_bool("public"));
  p.make_public = pub.value_or(false);
  CH_ASSIGN(pub_snap, meta.get_bool("public_snapshots"));
  p.public_snapshots = pub_snap.value_or(false);
  CH_ASSIGN(eol, end_of_life_utc(meta.get_string("end_of_life").value_or("")));
  p.deprecate_at = eol;
  if (p.make_public && !p.deprecate_at.empty()) {
    // EC2: "The deprecation time of a public AMI can be at most 2 years
    // after its creation date." Caught here, before any copy is made.
    std::string today = utc_now_iso8601().substr(0, 10);
    std::string limit = std::to_string(std::stoi(today.substr(0, 4)) + 2) + today.substr(4);
    if (p.deprecate_at.substr(0, 10) > limit)
      return Error{"end_of_life " + p.deprecate_at.substr(0, 10) +
                   " is more than 2 years away: EC2 refuses to deprecate a public AMI later "
                   "than 2 years after it is made (latest now: " + limit + ")"};
  }
  p.tags = aws_image_tags(meta);
  return p;
}

class Publisher {
 public:
  // RERUN: an earlier publish run of this image started (and may have made
  // copies it could not record).
  Publisher(ImageMetadata& meta, const PublishPlan& plan, AwsClient& client,
            const CloudStepOptions& opts, bool rerun)
      : meta_(meta), p_(plan), client_(client), opts_(opts), rerun_(rerun) {}

  // The AMI published in REGION, or why not.
  Result<std::string> region(const std::string& region, std::string* detail) {
    CH_ASSIGN(ami, find_or_copy(region));
    CH_ASSIGN(image, ec2_wait_image_available(client_, region, ami));
    std::vector<std::string> resources = {ami};
    for (const std::string& s : image.snapshot_ids()) resources.push_back(s);
    CH_TRY(ec2_create_tags(client_, region, resources, p_.tags));
    // What the last DescribeImages of the wait shows in place is not set
    // again: a re-run that finds nothing missing sends no changes.
    if (p_.make_public && !image.is_public) {
      Status made = ec2_modify_launch_permissions(client_, region, ami, {ec2_public_permission()}, {});
      // The block public access state is asked only when sharing failed:
      // it is what explains the refusal.
      if (!made.ok()) {
        auto bpa = ec2_get_image_block_public_access_state(client_, region);
        if (bpa.ok() && *bpa != "unblocked")
          return Error{"image block public access is '" + *bpa + "' in " + region + ": AMI " + ami +
                       " cannot be made public there (aws ec2 disable-image-block-public-access "
                       "--region " + region + "), or set public: false"};
        return made.error();
      }
    } else if (!p_.make_public && image.is_public) {
      CH_TRY(ec2_modify_launch_permissions(client_, region, ami, {}, {ec2_public_permission()}));
    }
    if (p_.public_snapshots) {
      for (const std::string& s : image.snapshot_ids())
        CH_TRY(ec2_modify_create_volume_permissions(client_, region, s, {ec2_public_permission()}, {}));
    }
    // EC2 keeps the time to the minute ("2027-06-01T23:59:00.000Z").
    if (!p_.deprecate_at.empty() &&
        image.deprecation_time.substr(0, 16) != p_.deprecate_at.substr(0, 16))
      CH_TRY(ec2_enable_image_deprecation(client_, region, ami, p_.deprecate_at));
    {
      std::lock_guard<std::mutex> lock(mu_);
      map_set(meta_, "artifacts", region, ami);
      CH_TRY(opts_.checkpoint());
    }
    *detail = std::string(p_.make_public ? "public" : "private") +
              (p_.deprecate_at.empty() ? "" : ", deprecated at " + p_.deprecate_at);
    return ami;
  }

 private:
  Result<std::string> find_or_copy(const std::string& region) {
    if (region == p_.source_region) return p_.source_id;
    std::string known;
    {
      std::lock_guard<std::mutex> lock(mu_);
      known = map_get(meta_, "artifacts", region).value_or(op_get(meta_, "publish", region).value_or(""));
    }
    if (!known.empty()) {
      CH_ASSIGN(found, ec2_find_image(client_, region, known));
      if (found) return known;
      log_info(meta_.path() + ": publish: " + known + " in " + region + " is gone; copying again");
    }
    // A copy made by a run killed before it could record the id: copies
    // carry our AMI name, which is unique per region and account. Only a
    // re-run can have left one, so a first run saves the lookups.
    if (rerun_) {
      CH_ASSIGN(same_name, ec2_find_own_image_by_name(client_, region, p_.name));
      if (same_name) return record_copy(region, same_name->image_id);
    }
    Ec2CopyImageRequest rq;
    rq.source_image_id = p_.source_id;
    rq.source_region = p_.source_region;
    rq.name = p_.name;
    rq.description = p_.description;
    // A new source AMI (after a rollback and re-import) gets new copies.
    rq.client_token = aws_client_token({"copy-image", p_.source_id, region});
    rq.copy_image_tags = true;
    auto ami = ec2_copy_image(client_, region, rq);
    if (!ami.ok() && ami.error().code == "InvalidAMIName.Duplicate") {
      CH_ASSIGN(same_name, ec2_find_own_image_by_name(client_, region, p_.name));
      if (same_name) return record_copy(region, same_name->image_id);
    }
    if (!ami.ok()) return ami.error();
    return record_copy(region, *ami);
  }

  Result<std::string> record_copy(const std::string& region, const std::string& ami) {
    std::lock_guard<std::mutex> lock(mu_);
    op_set(meta_, "publish", region, ami);
    CH_TRY(opts_.checkpoint());
    return ami;
  }

  ImageMetadata& meta_;
  const PublishPlan& p_;
  AwsClient& client_;
  const CloudStepOptions& opts_;
  const bool rerun_;
  std::mutex mu_;
};

}  // namespace

CloudStepResult aws_publish(ImageMetadata& meta, const CloudStepOptions& opts) {
  auto plan = plan_publish(meta);
  if (!plan.ok()) return CloudStepResult::invalid(plan.error());
  PublishPlan& p = *plan;
  if (opts.validate_only) return {};
  if (opts.dry_run) {
    CloudStepResult r;
    std::string regions = p.all_regions ? std::string("every enabled region (DescribeRegions)") : "";
    for (const std::string& rg : p.regions) regions += (regions.empty() ? "" : ", ") + rg;
    r.lines.push_back("would CopyImage " + p.source_id + " from " + p.source_region + " to " + regions +
                      ", wait until available, CreateTags on each AMI and snapshot" +
                      (p.make_public ? ", ModifyImageAttribute launchPermission add group all" : "") +
                      (p.deprecate_at.empty() ? "" : ", EnableImageDeprecation at " + p.deprecate_at));
    return r;
  }
  CH_STEP_ASSIGN(session, open_aws_session(p.source_region));
  AwsClient& client = *session->client;
  if (p.all_regions) {
    CH_STEP_ASSIGN(all, ec2_describe_regions(client, p.source_region));
    p.regions = all;
  }

  // Marks that copies may exist from here on (see Publisher::find_or_copy).
  bool rerun = op_get(meta, "publish_run", "started").has_value() ||
               !op_entries(meta, "publish").empty() || meta.get_string("published").has_value();
  if (!rerun) {
    op_set(meta, "publish_run", "started", utc_now_iso8601());
    CH_STEP_TRY(opts.checkpoint());
  }
  Publisher publisher(meta, p, client, opts, rerun);
  struct Outcome {
    std::string ami, detail;
    std::optional<Error> error;
  };
  std::vector<Outcome> outcomes(p.regions.size());
  if (opts.progress) opts.progress->start("publish " + p.name, p.regions.size());
  run_parallel(p.regions.size(), 16, [&](size_t i) {
    auto ami = publisher.region(p.regions[i], &outcomes[i].detail);
    if (ami.ok()) {
      outcomes[i].ami = *ami;
    } else {
      outcomes[i].error = ami.error();
    }
    advance(opts.progress, 1);
  });

  CloudStepResult r;
  size_t failed = 0;
  nlohmann::ordered_json regions_json = nlohmann::ordered_json::object();
  for (size_t i = 0; i < p.regions.size(); ++i) {
    const Outcome& o = outcomes[i];
    std::string line = p.regions[i] + "  ";
    if (o.error) {
      ++failed;
      line += "FAILED: " + o.error->message;
      regions_json[p.regions[i]] = {{"error", o.error->message}};
    } else {
      line += o.ami + "  " + o.detail;
      regions_json[p.regions[i]] = {{"image_id", o.ami}};
    }
    r.lines.push_back(line);
  }
  r.extra["regions"] = regions_json;
  if (failed == p.regions.size()) {
    r.status = Error{"failed in every region (" + std::to_string(failed) + "): " +
                     outcomes[0].error->message};
    return r;
  }
  if (failed) {
    r.partial = true;
    r.notice = std::to_string(failed) + " of " + std::to_string(p.regions.size()) +
               " regions failed; re-run publish to finish them";
    return r;
  }
  if (!meta.get_string("published")) meta.set_timestamp("published", utc_now_iso8601());
  op_remove_section(meta, "publish_run");
  return r;
}

}  // namespace ch

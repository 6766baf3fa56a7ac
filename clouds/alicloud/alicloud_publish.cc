// cloud: alicloud, publish — the imported image in every region of
// `regions`, shared publicly when `public: true`, tagged.
//
// Per region, in parallel: the home region has the imported image; every
// other gets a CopyImage (ClientToken derived from the source and region;
// the copy's id is recorded in operations.publish.REGION and saved before
// waiting, and a copy of the same name already there is adopted), waited
// for until Available. Then ModifyImageSharePermission IsPublic (true or
// false, as the YAML says: a re-run converges) and TagResources, and
// artifacts.REGION is set and saved. A region that fails does not stop the
// others (exit 3 with a per-region summary); a re-run redoes only what is
// missing.
#include <mutex>

#include "base/parallel.h"
#include "clouds/alicloud/alicloud_config.h"
#include "clouds/alicloud/alicloud_steps.h"
#include "clouds/operations.h"
#include "helper/output.h"

namespace ch {

namespace {

std::vector<std::pair<std::string, std::string>> tag_params(const AliConfig& c, const std::string& prefix = "Tag.") {
  std::vector<std::pair<std::string, std::string>> p;
  for (size_t i = 0; i < c.tags.size(); ++i) {
    p.emplace_back(prefix + std::to_string(i + 1) + ".Key", c.tags[i].first);
    p.emplace_back(prefix + std::to_string(i + 1) + ".Value", c.tags[i].second);
  }
  return p;
}

struct Outcome {
  bool ok = false;
  std::string line;
};

}  // namespace

CloudStepResult alicloud_publish(ImageMetadata& meta, const CloudStepOptions& opts) {
  auto cfg = read_alicloud_config(meta);
  if (!cfg.ok()) return CloudStepResult::invalid(cfg.error());
  auto source = meta.get_string("import_id");
  if (!meta.get_string("imported") || !source)
    return CloudStepResult::invalid(Error{"no imported image (import_id): run import first"});
  if (opts.validate_only) return {};
  const AliConfig& c = *cfg;
  const std::string home = meta.get_string("import_region").value_or(c.home_region);
  if (opts.dry_run) {
    CloudStepResult r;
    for (const std::string& region : c.regions) {
      std::string line = region == home ? "would use " + *source + " in " + region
                                        : "would CopyImage " + *source + " from " + home + " to " + region +
                                              " and wait until it is Available";
      line += std::string(", ModifyImageSharePermission IsPublic=") + (c.is_public ? "true" : "false");
      if (!c.tags.empty()) line += ", TagResources (" + std::to_string(c.tags.size()) + " tags)";
      r.lines.push_back(line);
    }
    return r;
  }

  CH_STEP_ASSIGN(session, open_alicloud_session(c));
  AliClient& client = *session->client;
  std::mutex mu;
  auto record = [&](const std::string& section, const std::string& key, const std::string& value) -> Status {
    std::lock_guard<std::mutex> lock(mu);
    if (section == "artifacts") map_set(meta, "artifacts", key, value);
    else op_set(meta, section, key, value);
    return opts.checkpoint();
  };
  std::vector<Outcome> outcomes(c.regions.size());
  std::vector<std::string> recorded(c.regions.size());
  for (size_t i = 0; i < c.regions.size(); ++i) recorded[i] = op_get(meta, "publish", c.regions[i]).value_or("");

  auto publish_region = [&](size_t i) -> Result<std::string> {
    const std::string& region = c.regions[i];
    std::string id = region == home ? *source : recorded[i];
    if (region != home) {
      if (!id.empty()) {
        CH_ASSIGN(img, describe_image(client, region, id));
        if (!img || img->status == "CreateFailed" || img->status == "UnAvailable") {
          log_info(meta.path() + ": publish: copy " + id + " in " + region + " is " + (img ? img->status : "gone") +
                   "; copying again");
          // A failed copy keeps its name, which ECS will not give a new copy.
          if (img) {
            auto deleted = client.ecs(region, "DeleteImage", {{"ImageId", id}});
            if (!deleted.ok()) return deleted.error();
          }
          id.clear();
        }
      }
      if (id.empty()) {
        CH_ASSIGN(named, describe_image(client, region, "", c.name));
        if (named && (named->status == "CreateFailed" || named->status == "UnAvailable")) {
          auto deleted = client.ecs(region, "DeleteImage", {{"ImageId", named->id}});
          if (!deleted.ok()) return deleted.error();
        } else if (named) {
          id = named->id;
        }
      }
      if (id.empty()) {
        std::vector<std::pair<std::string, std::string>> p = {
            {"RegionId", home}, {"ImageId", *source}, {"DestinationRegionId", region},
            {"DestinationImageName", c.name}, {"ClientToken", ali_client_token({"copy", *source, region, c.name})}};
        if (!c.description.empty()) p.emplace_back("DestinationDescription", c.description);
        for (auto& t : tag_params(c)) p.push_back(t);
        CH_ASSIGN(resp, client.ecs(home, "CopyImage", p));
        id = resp.value("ImageId", "");
        if (id.empty()) return Error{"ECS CopyImage (" + home + " to " + region + "): no ImageId in the answer"};
      }
      if (id != recorded[i]) CH_TRY(record("publish", region, id));
      CH_TRY(wait_image_available(client, region, id));
    }
    CH_ASSIGN(shared, client.ecs(region, "ModifyImageSharePermission",
                                 {{"ImageId", id}, {"IsPublic", c.is_public ? "true" : "false"}}));
    (void)shared;
    if (!c.tags.empty()) {
      std::vector<std::pair<std::string, std::string>> p = {{"ResourceType", "image"}, {"ResourceId.1", id}};
      for (auto& t : tag_params(c)) p.push_back(t);
      CH_ASSIGN(tagged, client.ecs(region, "TagResources", p));
      (void)tagged;
    }
    CH_TRY(record("artifacts", region, id));
    return id;
  };

  // A thread per region: CopyImage is minutes of waiting on ECS.
  run_parallel(c.regions.size(), c.regions.size(), [&](size_t i) {
    auto id = publish_region(i);
    outcomes[i] = id.ok() ? Outcome{true, c.regions[i] + ": " + *id + (c.is_public ? " (public)" : "")}
                          : Outcome{false, c.regions[i] + ": failed: " + id.message()};
  });

  CloudStepResult r;
  size_t ok = 0;
  std::string failed;
  for (const Outcome& o : outcomes) {
    ok += o.ok;
    r.lines.push_back(o.line);
    if (!o.ok) failed += (failed.empty() ? "" : "; ") + o.line;
  }
  r.extra["regions"] = c.regions;
  if (ok == outcomes.size()) {
    meta.set_timestamp("published", utc_now_iso8601());
    return r;
  }
  if (ok == 0) {
    r.status = Error{failed};
    return r;
  }
  // Partial (exit 3): the CLI reports the notice; the status stays ok.
  r.partial = true;
  r.notice = std::to_string(outcomes.size() - ok) + " of " + std::to_string(outcomes.size()) +
             " regions failed: " + failed;
  return r;
}

}  // namespace ch

// cloud: openstack, publish — every region of the image brought to the
// wanted visibility, converging on every run, the regions in parallel: a
// region of `regions` with no image yet gets one first (as import makes
// it), visibility is PATCHed only when it differs, the tags are made
// openstack.tags, and a shared image's members are made openstack.members
// (missing projects added, projects no longer listed removed — the YAML is
// the list; a removed project loses the image for new servers, its
// running servers keep their disks). artifacts gets REGION → image id as
// each region is done. A region that fails does not stop the others:
// exit 3 with a line per region.
#include "clouds/openstack/openstack_session.h"
#include "clouds/openstack/openstack_steps.h"
#include "clouds/operations.h"
#include "helper/output.h"

namespace ch {

namespace {

using json = nlohmann::json;

// The region's image id, or the error; CHANGES says what was done.
Result<std::string> publish_region(OpenStackSession& s, const OpenStackImageConfig& c, const LocalDigests& digests,
                                   const std::string& region, MetaRecorder& rec, const CloudStepOptions& opts,
                                   std::string* changes) {
  CH_ASSIGN(id, ensure_region_image(s, c, digests, region, rec, opts, nullptr));
  CH_ASSIGN(g, s.glance_in(region));
  CH_ASSIGN(img, g->get_image(id));
  if (!img) return Error{"image " + id + " is gone"};
  std::vector<std::string> done;
  std::string now = img->value("visibility", "");
  if (now != c.visibility) {
    log_info("openstack: " + region + ": image " + id + " visibility " + now + " → " + c.visibility);
    CH_ASSIGN(patched, g->patch(id, json::array({{{"op", "replace"}, {"path", "/visibility"}, {"value", c.visibility}}})));
    (void)patched;
    done.push_back("visibility " + now + " → " + c.visibility);
  }
  CH_ASSIGN(tags, converge_tags(*g, *img, c.tags));
  if (!tags.empty()) done.push_back(tags);
  if (c.visibility == "shared") {
    CH_ASSIGN(have, g->members(id));
    size_t added = 0, removed = 0;
    for (const std::string& m : c.members)
      if (std::find(have.begin(), have.end(), m) == have.end()) {
        log_info("openstack: " + region + ": sharing image " + id + " with project " + m);
        CH_TRY(g->add_member(id, m));
        ++added;
      }
    for (const std::string& m : have)
      if (std::find(c.members.begin(), c.members.end(), m) == c.members.end()) {
        log_info("openstack: " + region + ": image " + id + ": removing project " + m +
                 " (no longer in openstack.members)");
        CH_TRY(g->delete_member(id, m));
        ++removed;
      }
    if (added) done.push_back("+" + std::to_string(added) + (added == 1 ? " member" : " members"));
    if (removed) done.push_back("-" + std::to_string(removed) + (removed == 1 ? " member" : " members"));
  }
  for (const std::string& d : done) *changes += (changes->empty() ? "" : ", ") + d;
  CH_TRY(rec.set_artifact(region, id));
  return id;
}

}  // namespace

CloudStepResult openstack_publish(ImageMetadata& meta, const CloudStepOptions& opts) {
  auto cfg = read_openstack_config(meta);
  if (!cfg.ok()) return CloudStepResult::invalid(cfg.error());
  auto auth = openstack_auth_from_process();
  if (!auth.ok()) return CloudStepResult::invalid(auth.error());
  auto planned = openstack_regions(*cfg, *auth, nullptr);
  if (!planned.ok()) return CloudStepResult::invalid(planned.error());
  if (!meta.get_string("imported"))
    return CloudStepResult::invalid(Error{"not imported yet: run import first"});
  if (opts.validate_only) return {};
  const OpenStackImageConfig& c = *cfg;
  if (opts.dry_run) {
    CloudStepResult r;
    std::vector<std::string> regions = *planned;
    for (const auto& [region, id] : op_entries(meta, "import"))
      if (std::find(regions.begin(), regions.end(), region) == regions.end()) regions.push_back(region);
    for (const std::string& region : regions) {
      auto id = op_get(meta, "import", region);
      r.lines.push_back("would make image " + (id ? *id : c.name + " (importing it first)") + " in " + region + " " +
                        c.visibility +
                        (c.visibility == "shared" ? " with exactly " + std::to_string(c.members.size()) +
                                                        " member project(s) (others removed)" : "") +
                        (c.tags.empty() ? "" : ", tags exactly " + std::to_string(c.tags.size())));
    }
    return r;
  }

  CH_STEP_ASSIGN(digests, local_digests(meta, c));
  CH_STEP_ASSIGN(session, open_openstack_session());
  CH_STEP_ASSIGN(regions, openstack_regions(c, session->auth, &session->token.catalog));
  // Regions imported earlier but since dropped from `regions` stay published too.
  for (const auto& [region, id] : op_entries(meta, "import"))
    if (std::find(regions.begin(), regions.end(), region) == regions.end()) regions.push_back(region);

  MetaRecorder rec(meta, opts);
  std::vector<Result<std::string>> ids(regions.size(), Error{"not run"});
  std::vector<std::string> changes(regions.size());
  run_parallel(regions.size(), kOpenStackRegionWorkers, [&](size_t i) {
    ids[i] = publish_region(*session, c, digests, regions[i], rec, opts, &changes[i]);
  });
  CloudStepResult r;
  std::vector<std::string> failed;
  for (size_t i = 0; i < regions.size(); ++i) {
    const std::string& region = regions[i];
    if (ids[i].ok()) {
      r.lines.push_back(region + ": " + *ids[i] + " " + c.visibility +
                        (changes[i].empty() ? " (unchanged)" : " (" + changes[i] + ")"));
      r.extra["artifacts"][region] = *ids[i];
      if (!changes[i].empty()) r.extra["changes"][region] = changes[i];
    } else {
      failed.push_back(region);
      r.lines.push_back(region + ": FAILED: " + ids[i].message());
      log_error(meta.path() + ": publish: " + region + ": " + ids[i].message());
    }
  }
  if (failed.size() == regions.size())
    return CloudStepResult::failure(Error{"every region failed (" + r.lines[0] + (regions.size() > 1 ? ", ..." : "") + ")"});
  if (!failed.empty()) {
    std::string names;
    for (const std::string& f : failed) names += (names.empty() ? "" : ", ") + f;
    r.partial = true;
    r.notice = std::to_string(failed.size()) + " of " + std::to_string(regions.size()) + " regions failed: " + names;
    return r;
  }
  meta.set_timestamp("published", utc_now_iso8601());
  return r;
}

}  // namespace ch

// cloud: openstack, publish — every region of the image brought to the
// wanted visibility, converging on every run: a region of `regions` with no
// image yet gets one first (as import makes it), visibility is PATCHed only
// when it differs, members of a shared image are added when missing (and
// never removed: someone may be using it). artifacts gets REGION → image id
// as each region is done. A region that fails does not stop the others:
// exit 3 with a line per region.
#include "clouds/openstack/openstack_session.h"
#include "clouds/openstack/openstack_steps.h"
#include "clouds/operations.h"
#include "helper/output.h"

namespace ch {

namespace {

using json = nlohmann::json;

Status publish_region(OpenStackSession& s, const OpenStackImageConfig& c, const LocalDigests& digests,
                      const std::string& region, ImageMetadata& meta, const CloudStepOptions& opts) {
  CH_ASSIGN(id, ensure_region_image(s, c, digests, region, meta, opts));
  CH_ASSIGN(g, s.glance_in(region));
  CH_ASSIGN(img, g->get_image(id));
  if (!img) return Error{"image " + id + " is gone"};
  std::string now = img->value("visibility", "");
  if (now != c.visibility) {
    log_info("openstack: " + region + ": image " + id + " visibility " + now + " → " + c.visibility);
    CH_ASSIGN(patched, g->patch(id, json::array({{{"op", "replace"}, {"path", "/visibility"}, {"value", c.visibility}}})));
    (void)patched;
  }
  if (c.visibility == "shared" && !c.members.empty()) {
    CH_ASSIGN(have, g->members(id));
    for (const std::string& m : c.members)
      if (std::find(have.begin(), have.end(), m) == have.end()) {
        log_info("openstack: " + region + ": sharing image " + id + " with project " + m);
        CH_TRY(g->add_member(id, m));
      }
  }
  map_set(meta, "artifacts", region, id);
  return opts.checkpoint();
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
                        (c.members.empty() ? "" : " with " + std::to_string(c.members.size()) + " member project(s)"));
    }
    return r;
  }

  CH_STEP_ASSIGN(digests, local_digests(meta, c));
  CH_STEP_ASSIGN(session, open_openstack_session());
  CH_STEP_ASSIGN(regions, openstack_regions(c, session->auth, &session->token.catalog));
  // Regions imported earlier but since dropped from `regions` stay published too.
  for (const auto& [region, id] : op_entries(meta, "import"))
    if (std::find(regions.begin(), regions.end(), region) == regions.end()) regions.push_back(region);

  CloudStepResult r;
  std::vector<std::string> failed;
  for (const std::string& region : regions) {
    Status st = publish_region(*session, c, digests, region, meta, opts);
    if (st.ok()) {
      r.lines.push_back(region + ": " + map_get(meta, "artifacts", region).value_or("") + " " + c.visibility);
      r.extra["artifacts"][region] = map_get(meta, "artifacts", region).value_or("");
    } else {
      failed.push_back(region);
      r.lines.push_back(region + ": FAILED: " + st.message());
      log_error(meta.path() + ": publish: " + region + ": " + st.message());
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

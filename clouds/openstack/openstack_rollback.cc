// cloud: openstack, rollback — deletes the Glance image this image made in
// every region (operations.import.REGION), unprotecting it first when
// openstack.protected set it; each deletion is recorded as it happens, so a
// rollback that fails half-way can be re-run. The CLI refuses it once the
// image was published or released.
#include "clouds/openstack/openstack_session.h"
#include "clouds/openstack/openstack_steps.h"
#include "clouds/operations.h"
#include "helper/output.h"

namespace ch {

CloudStepResult openstack_rollback(ImageMetadata& meta, const CloudStepOptions& opts) {
  auto images = op_entries(meta, "import");
  if (!images.empty()) {
    auto auth = openstack_auth_from_process();
    if (!auth.ok()) return CloudStepResult::invalid(auth.error());
  }
  if (opts.validate_only) return {};
  if (opts.dry_run) {
    CloudStepResult r;
    for (const auto& [region, id] : images) r.lines.push_back("would DELETE Glance image " + id + " in " + region);
    if (r.lines.empty()) r.lines.push_back("nothing to delete");
    return r;
  }
  CloudStepResult r;
  if (!images.empty()) {
    CH_STEP_ASSIGN(session, open_openstack_session());
    for (const auto& [region, id] : images) {
      CH_STEP_ASSIGN(g, session->glance_in(region));
      CH_STEP_ASSIGN(img, g->get_image(id));
      if (img && img->value("protected", false)) {
        auto unprotect = g->patch(id, nlohmann::json::array({{{"op", "replace"}, {"path", "/protected"}, {"value", false}}}));
        if (!unprotect.ok()) return CloudStepResult::failure(unprotect.error());
      }
      if (img) {
        CH_STEP_TRY(g->delete_image(id));
        r.lines.push_back("deleted Glance image " + id + " in " + region);
      } else {
        r.lines.push_back("Glance image " + id + " in " + region + " was already gone");
      }
      op_remove(meta, "import", region);
      CH_STEP_TRY(opts.checkpoint());
    }
  }
  meta.remove("imported");
  meta.remove("import_id");
  meta.remove("import_region");
  meta.remove("artifacts");
  op_remove_section(meta, "import");
  CH_STEP_TRY(opts.checkpoint());
  if (r.lines.empty()) r.lines.push_back("nothing to roll back");
  return r;
}

}  // namespace ch

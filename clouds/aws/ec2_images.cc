// AMIs: registration, lookup, launch permissions, copies, deprecation.
#include <algorithm>
#include <chrono>

#include "clouds/aws/ec2.h"
#include "clouds/aws/ec2_xml.h"

namespace ch {

namespace {

using ec2xml::Params;

std::string call(const std::string& action, const std::string& region) {
  return "EC2 " + action + " (" + region + ")";
}

bool one_of(const std::string& v, std::initializer_list<const char*> allowed) {
  for (const char* a : allowed)
    if (v == a) return true;
  return false;
}

// EC2: "3-128 alphanumeric characters, parentheses (()), square brackets
// ([]), spaces ( ), periods (.), slashes (/), dashes (-), single quotes ('),
// at-signs (@), or underscores(_)".
Status check_ami_name(const std::string& name) {
  if (name.size() < 3 || name.size() > 128)
    return Error{"AMI name '" + name + "' must be 3 to 128 characters long"};
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              std::string_view("()[] ./-'@_").find(c) != std::string_view::npos;
    if (!ok)
      return Error{"AMI name '" + name + "' contains '" + std::string(1, c) +
                   "'; allowed are letters, digits and ( ) [ ] space . / - ' @ _"};
  }
  return {};
}

void add_permissions(Params* params, const std::string& prefix,
                     const std::vector<Ec2Permission>& permissions) {
  int n = 1;
  for (const Ec2Permission& p : permissions) {
    const std::string item = prefix + "." + std::to_string(n++) + ".";
    if (!p.group.empty()) params->emplace_back(item + "Group", p.group);
    if (!p.user_id.empty()) params->emplace_back(item + "UserId", p.user_id);
    if (!p.organization_arn.empty()) params->emplace_back(item + "OrganizationArn", p.organization_arn);
    if (!p.organizational_unit_arn.empty())
      params->emplace_back(item + "OrganizationalUnitArn", p.organizational_unit_arn);
  }
}

Status check_permissions(const std::string& what, const std::vector<Ec2Permission>& permissions) {
  for (const Ec2Permission& p : permissions) {
    int set = !p.group.empty() + !p.user_id.empty() + !p.organization_arn.empty() +
              !p.organizational_unit_arn.empty();
    if (set != 1) return Error{what + ": a permission must name exactly one grantee"};
  }
  return {};
}

// Simple calls answered by <return>true</return>.
Status expect_return(const std::string& what, const std::string& body) {
  pugi::xml_document doc;
  CH_TRY(parse_aws_xml(body, doc, what));
  pugi::xml_node ret = xml_child(xml_root(doc), "return");
  if (ret && !ec2xml::flag(xml_root(doc), "return"))
    return Error{what + ": EC2 answered return=false"};
  return {};
}

Result<std::string> image_id_answer(const std::string& what, const std::string& body) {
  pugi::xml_document doc;
  CH_TRY(parse_aws_xml(body, doc, what));
  std::string id = ec2xml::text(xml_root(doc), "imageId");
  if (id.empty()) return Error{what + ": the answer has no imageId"};
  return id;
}

}  // namespace

std::vector<std::string> Ec2Image::snapshot_ids() const {
  std::vector<std::string> out;
  for (const Ec2BlockDevice& d : block_devices)
    if (!d.snapshot_id.empty()) out.push_back(d.snapshot_id);
  return out;
}

Result<std::string> ec2_register_image(AwsClient& client, const std::string& region,
                                       const Ec2RegisterImageRequest& r) {
  const std::string what = call("RegisterImage", region);
  if (Status s = check_ami_name(r.name); !s.ok()) return s.error().wrap(what);
  if (r.snapshot_id.empty()) return Error{what + ": no snapshot id for the root device"};
  if (!one_of(r.architecture, {"x86_64", "arm64"}))
    return Error{what + ": architecture '" + r.architecture + "' is not x86_64 or arm64"};
  if (!r.boot_mode.empty() && !one_of(r.boot_mode, {"uefi", "legacy-bios", "uefi-preferred"}))
    return Error{what + ": boot mode '" + r.boot_mode +
                 "' is not uefi, legacy-bios or uefi-preferred"};
  if (!r.tpm_support.empty() && r.tpm_support != "v2.0")
    return Error{what + ": TPM support '" + r.tpm_support + "' is not v2.0"};
  if (!r.imds_support.empty() && r.imds_support != "v2.0")
    return Error{what + ": IMDS support '" + r.imds_support + "' is not v2.0"};
  if (r.description.size() > 255) return Error{what + ": description longer than 255 characters"};

  Params p = ec2xml::register_image_params(r);
  CH_ASSIGN(body, client.ec2(region, "RegisterImage", p));
  return image_id_answer(what, body);
}

Result<std::vector<Ec2Image>> ec2_describe_images(AwsClient& client, const std::string& region,
                                                  const Ec2ImageQuery& q) {
  const std::string what = call("DescribeImages", region);
  Params base;
  ec2xml::add_list(&base, "ImageId", q.image_ids);
  ec2xml::add_list(&base, "Owner", q.owners);
  int n = 1;
  if (!q.name.empty()) ec2xml::add_filter(&base, &n, "name", {q.name});
  for (const auto& [key, value] : q.tags) ec2xml::add_filter(&base, &n, "tag:" + key, {value});
  if (q.include_deprecated) base.emplace_back("IncludeDeprecated", "true");

  std::vector<Ec2Image> out;
  CH_TRY(ec2xml::describe_pages(client, region, "DescribeImages", base, "imagesSet", what,
                                [&](pugi::xml_node item) { out.push_back(ec2xml::image(item)); }));
  return out;
}

Result<std::optional<Ec2Image>> ec2_find_image(AwsClient& client, const std::string& region,
                                               const std::string& image_id) {
  Ec2ImageQuery q;
  q.image_ids = {image_id};
  auto images = ec2_describe_images(client, region, q);
  if (!images.ok()) {
    const std::string& code = images.error().code;
    if (code == "InvalidAMIID.NotFound" || code == "InvalidAMIID.Unavailable")
      return std::optional<Ec2Image>();
    return images.error();
  }
  for (Ec2Image& image : *images) {
    if (image.image_id == image_id && image.state != "deregistered")
      return std::optional<Ec2Image>(std::move(image));
  }
  return std::optional<Ec2Image>();
}

Result<std::optional<Ec2Image>> ec2_find_own_image_by_name(AwsClient& client,
                                                           const std::string& region,
                                                           const std::string& name) {
  Ec2ImageQuery q;
  q.owners = {"self"};
  q.name = name;
  CH_ASSIGN(images, ec2_describe_images(client, region, q));
  // The name filter takes wildcards; keep exact matches only.
  std::vector<Ec2Image> matches;
  for (Ec2Image& image : images)
    if (image.name == name && image.state != "deregistered") matches.push_back(std::move(image));
  if (matches.empty()) return std::optional<Ec2Image>();
  if (matches.size() > 1) {
    std::string ids;
    for (const Ec2Image& image : matches) ids += (ids.empty() ? "" : ", ") + image.image_id;
    return Error{std::to_string(matches.size()) + " AMIs named " + name + " in " + region + ": " +
                 ids};
  }
  return std::optional<Ec2Image>(std::move(matches.front()));
}

Result<std::vector<Ec2Permission>> ec2_describe_launch_permissions(AwsClient& client,
                                                                   const std::string& region,
                                                                   const std::string& image_id) {
  const std::string what = call("DescribeImageAttribute", region);
  CH_ASSIGN(body, client.ec2(region, "DescribeImageAttribute",
                             {{"ImageId", image_id}, {"Attribute", "launchPermission"}}));
  pugi::xml_document doc;
  CH_TRY(parse_aws_xml(body, doc, what));
  std::vector<Ec2Permission> out;
  for (pugi::xml_node item : ec2xml::items(xml_root(doc), "launchPermission")) {
    out.push_back(Ec2Permission{ec2xml::text(item, "group"), ec2xml::text(item, "userId"),
                                ec2xml::text(item, "organizationArn"),
                                ec2xml::text(item, "organizationalUnitArn")});
  }
  return out;
}

Status ec2_modify_launch_permissions(AwsClient& client, const std::string& region,
                                     const std::string& image_id,
                                     const std::vector<Ec2Permission>& add,
                                     const std::vector<Ec2Permission>& remove) {
  const std::string what = call("ModifyImageAttribute", region);
  CH_TRY(check_permissions(what, add));
  CH_TRY(check_permissions(what, remove));
  if (add.empty() && remove.empty()) return {};
  Params p{{"ImageId", image_id}};
  add_permissions(&p, "LaunchPermission.Add", add);
  add_permissions(&p, "LaunchPermission.Remove", remove);
  CH_ASSIGN(body, client.ec2(region, "ModifyImageAttribute", p));
  return expect_return(what, body);
}

Status ec2_reset_launch_permissions(AwsClient& client, const std::string& region,
                                    const std::string& image_id) {
  CH_ASSIGN(body, client.ec2(region, "ResetImageAttribute",
                             {{"ImageId", image_id}, {"Attribute", "launchPermission"}}));
  return expect_return(call("ResetImageAttribute", region), body);
}

Result<std::string> ec2_copy_image(AwsClient& client, const std::string& region,
                                   const Ec2CopyImageRequest& r) {
  const std::string what = call("CopyImage", region);
  if (r.source_image_id.empty() || r.source_region.empty())
    return Error{what + ": source image id and source region are required"};
  if (Status s = check_ami_name(r.name); !s.ok()) return s.error().wrap(what);
  if (r.client_token.size() > 64) return Error{what + ": client token longer than 64 characters"};
  Params p{{"SourceImageId", r.source_image_id}, {"SourceRegion", r.source_region}, {"Name", r.name}};
  if (!r.description.empty()) p.emplace_back("Description", r.description);
  if (!r.client_token.empty()) p.emplace_back("ClientToken", r.client_token);
  if (r.copy_image_tags) p.emplace_back("CopyImageTags", "true");
  int n = 1;
  ec2xml::add_tag_specification(&p, &n, "image", r.tags);
  CH_ASSIGN(body, client.ec2(region, "CopyImage", p));
  return image_id_answer(what, body);
}

Status ec2_deregister_image(AwsClient& client, const std::string& region,
                            const std::string& image_id) {
  auto body = client.ec2(region, "DeregisterImage", {{"ImageId", image_id}});
  if (!body.ok()) {
    const std::string& code = body.error().code;
    if (code == "InvalidAMIID.NotFound" || code == "InvalidAMIID.Unavailable") return {};
    return body.error();
  }
  return expect_return(call("DeregisterImage", region), *body);
}

Status ec2_enable_image_deprecation(AwsClient& client, const std::string& region,
                                    const std::string& image_id, const std::string& deprecate_at) {
  const std::string what = call("EnableImageDeprecation", region);
  if (deprecate_at.empty()) return Error{what + ": no deprecation time"};
  CH_ASSIGN(body, client.ec2(region, "EnableImageDeprecation",
                             {{"ImageId", image_id}, {"DeprecateAt", deprecate_at}}));
  return expect_return(what, body);
}

Status ec2_disable_image_deprecation(AwsClient& client, const std::string& region,
                                     const std::string& image_id) {
  CH_ASSIGN(body, client.ec2(region, "DisableImageDeprecation", {{"ImageId", image_id}}));
  return expect_return(call("DisableImageDeprecation", region), body);
}

Result<std::string> ec2_get_image_block_public_access_state(AwsClient& client,
                                                            const std::string& region) {
  const std::string what = call("GetImageBlockPublicAccessState", region);
  CH_ASSIGN(body, client.ec2(region, "GetImageBlockPublicAccessState", {}));
  pugi::xml_document doc;
  CH_TRY(parse_aws_xml(body, doc, what));
  std::string state = ec2xml::text(xml_root(doc), "imageBlockPublicAccessState");
  if (state.empty()) return Error{what + ": the answer has no imageBlockPublicAccessState"};
  return state;
}

Result<Ec2Image> ec2_wait_image_available(AwsClient& client, const std::string& region,
                                          const std::string& image_id,
                                          const PollOptions& options) {
  // pubsys: one "available" may come from a replica ahead of the others.
  constexpr int kConsecutive = 3;
  const auto grace_end = std::chrono::steady_clock::now() + poll_scaled(std::chrono::minutes(2));
  const std::string subject = "AMI " + image_id + " in " + region;
  int available = 0;
  Ec2Image last;
  Status s = poll_until(subject + " to become available", options,
                        [&](std::string* state) -> Result<bool> {
    CH_ASSIGN(image, ec2_find_image(client, region, image_id));
    if (!image) {
      available = 0;
      *state = "not found";
      if (std::chrono::steady_clock::now() < grace_end) return false;
      return Error{subject + " does not exist (InvalidAMIID.NotFound)"};
    }
    *state = image->state;
    if (one_of(image->state, {"failed", "invalid", "error", "deregistered", "disabled"}))
      return Error{subject + " is " + image->state +
                   (image->state_reason.empty() ? "" : ": " + image->state_reason)};
    if (image->state != "available") {
      available = 0;
      return false;
    }
    last = std::move(*image);
    return ++available >= kConsecutive;
  });
  if (!s.ok()) return s.error();
  return last;
}

}  // namespace ch

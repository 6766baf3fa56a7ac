// Reading EC2 query-API answers and spelling its parameters; shared by
// ec2_images.cc and ec2_snapshots.cc (and their tests) only.
//
// Documents are parsed and elements matched by local name with
// clouds/aws/aws_xml.h. Lists are <xxxSet> (or <blockDeviceMapping>,
// <launchPermission>) elements holding <item>s.
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <pugixml.hpp>

#include "clouds/aws/aws_xml.h"
#include "clouds/aws/ec2.h"

namespace ch::ec2xml {

using Params = std::vector<std::pair<std::string, std::string>>;

// The text of NODE's child NAME (aws_xml.h xml_child), trimmed; "" when absent.
std::string text(pugi::xml_node node, std::string_view name);
// "true" (case-insensitive) → true; anything else false.
bool flag(pugi::xml_node node, std::string_view name);
// The <item> children of NODE's child NAME, in document order.
std::vector<pugi::xml_node> items(pugi::xml_node node, std::string_view name);
// <tagSet><item><key/><value/></item>...</tagSet> under NODE.
AwsTags tags(pugi::xml_node node);

// One <item> of DescribeImages' imagesSet, DescribeSnapshots' snapshotSet,
// DescribeImportSnapshotTasks' importSnapshotTaskSet.
Ec2Image image(pugi::xml_node item);
Ec2Snapshot snapshot(pugi::xml_node item);
Ec2ImportSnapshotTask import_task(pugi::xml_node item);

// RegisterImage's parameters for a validated request, in the order sent.
Params register_image_params(const Ec2RegisterImageRequest& r);

// TagSpecification.N.ResourceType=TYPE, TagSpecification.N.Tag.M.Key/Value.
// Nothing when TAGS is empty (and N is not consumed).
void add_tag_specification(Params* params, int* n, const std::string& type, const AwsTags& tags);
// Filter.N.Name=NAME, Filter.N.Value.M=VALUES[M-1].
void add_filter(Params* params, int* n, const std::string& name,
                const std::vector<std::string>& values);
// PREFIX.1=VALUES[0], PREFIX.2=... ("ImageId.1").
void add_list(Params* params, const std::string& prefix, const std::vector<std::string>& values);

// Sends the Describe* ACTION with PARAMS in REGION, every page (NextToken),
// and hands each <item> of the answers' <SET_NAME> to EACH in order. WHAT
// names the call in errors about an unreadable answer.
Status describe_pages(AwsClient& client, const std::string& region, const std::string& action,
                      const Params& params, std::string_view set_name, const std::string& what,
                      const std::function<void(pugi::xml_node item)>& each);

}  // namespace ch::ec2xml

// Reading AWS's XML answers (S3 REST, EC2 query API) with pugixml. S3 puts
// its documents in the namespace http://s3.amazonaws.com/doc/2006-03-01/
// and EC2 in http://ec2.amazonaws.com/doc/2016-11-15/, normally as the
// default namespace (no prefix), but S3-compatible servers, proxies and
// emulators may add a prefix or drop the namespace; so elements are matched
// by local name (the part after any "prefix:").
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <pugixml.hpp>

#include "base/result.h"

namespace ch {

// Parses BODY into DOC. Errors: "WHAT: malformed XML in the response:
// <reason> at offset N", "WHAT: empty XML document in the response".
Status parse_aws_xml(const std::string& body, pugi::xml_document& doc, const std::string& what);

// The document's root element (whatever its name), or a null node.
pugi::xml_node xml_root(const pugi::xml_document& doc);

// The first child element of NODE with local name NAME (null node if none).
pugi::xml_node xml_child(pugi::xml_node node, std::string_view name);

// Every child element of NODE with local name NAME, in document order.
std::vector<pugi::xml_node> xml_children(pugi::xml_node node, std::string_view name);

// The text of child NAME of NODE, as is ("" when absent): S3 keys may
// begin or end with spaces.
std::string xml_child_text(pugi::xml_node node, std::string_view name);

// Whether NODE is an element with local name NAME.
bool xml_is(pugi::xml_node node, std::string_view name);

// Escapes & < > " ' for element text and attribute values.
std::string xml_escape(std::string_view text);

}  // namespace ch

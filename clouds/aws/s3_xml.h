// Reading S3's XML answers with pugixml. S3 puts its documents in the
// namespace http://s3.amazonaws.com/doc/2006-03-01/, normally as the default
// namespace (no prefix), but S3-compatible servers may use a prefix; so
// elements are matched by local name (the part after any "prefix:").
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <pugixml.hpp>

#include "base/result.h"

namespace ch {

// Parses BODY into DOC. Error: "WHAT: malformed XML in the response: <reason>
// at offset N".
Status parse_s3_xml(const std::string& body, pugi::xml_document& doc, const std::string& what);

// The document's root element (whatever its name), or a null node.
pugi::xml_node xml_root(const pugi::xml_document& doc);

// The first child element of NODE with local name NAME (null node if none).
pugi::xml_node xml_child(pugi::xml_node node, std::string_view name);

// Every child element of NODE with local name NAME, in document order.
std::vector<pugi::xml_node> xml_children(pugi::xml_node node, std::string_view name);

// The text of child NAME of NODE ("" when absent).
std::string xml_child_text(pugi::xml_node node, std::string_view name);

// Whether NODE's local name is NAME.
bool xml_is(pugi::xml_node node, std::string_view name);

// Escapes & < > " ' for element text and attribute values.
std::string xml_escape(std::string_view text);

}  // namespace ch

#include "clouds/aws/aws_xml.h"

namespace ch {

namespace {

std::string_view local_name(pugi::xml_node node) {
  std::string_view name = node.name();
  size_t colon = name.find(':');
  return colon == std::string_view::npos ? name : name.substr(colon + 1);
}

}  // namespace

Status parse_aws_xml(const std::string& body, pugi::xml_document& doc, const std::string& what) {
  pugi::xml_parse_result r = doc.load_buffer(body.data(), body.size());
  if (!r) {
    return Error{what + ": malformed XML in the response: " + r.description() + " at offset " +
                 std::to_string(r.offset)};
  }
  if (!xml_root(doc)) return Error{what + ": empty XML document in the response"};
  return ok_status();
}

pugi::xml_node xml_root(const pugi::xml_document& doc) { return doc.document_element(); }

bool xml_is(pugi::xml_node node, std::string_view name) {
  return node.type() == pugi::node_element && local_name(node) == name;
}

pugi::xml_node xml_child(pugi::xml_node node, std::string_view name) {
  for (pugi::xml_node c = node.first_child(); c; c = c.next_sibling()) {
    if (xml_is(c, name)) return c;
  }
  return {};
}

std::vector<pugi::xml_node> xml_children(pugi::xml_node node, std::string_view name) {
  std::vector<pugi::xml_node> out;
  for (pugi::xml_node c = node.first_child(); c; c = c.next_sibling()) {
    if (xml_is(c, name)) out.push_back(c);
  }
  return out;
}

std::string xml_child_text(pugi::xml_node node, std::string_view name) {
  return xml_child(node, name).text().as_string();
}

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace ch

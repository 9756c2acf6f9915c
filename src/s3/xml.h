// A small XML reader for S3 responses: elements, text, the five named entities and numeric
// character references. Bounded and safe on hostile input: the document size, nesting depth
// and element count are capped, DOCTYPE (and so entity expansion) is refused, and every error
// is a Status, never a crash or an exception. Namespaces are ignored (prefixes kept in names),
// attributes are skipped (S3's responses carry nothing we need in them).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/status.h"

namespace ferry::s3 {

struct XmlNode {
  std::string name;
  std::string text;  // concatenated character data directly inside this element
  std::vector<XmlNode> children;

  // First child named `name`, or nullptr.
  const XmlNode* child(std::string_view name) const;
  // Text of the first child named `name`, or "" when there is none.
  std::string child_text(std::string_view name) const;
};

struct XmlLimits {
  size_t max_bytes = 32u << 20;  // a ListParts page of 1,000 parts is ~200 KiB
  size_t max_depth = 32;
  size_t max_elements = 200'000;
};

// Parses one document; the root element is returned. kProtocol error naming `what` (e.g.
// "ListParts response from 127.0.0.1:9000") and the byte offset on malformed input.
Result<XmlNode> parse_xml(std::string_view doc, std::string_view what, const XmlLimits& limits = {});

// Escapes text for an XML element body (& < > " ').
std::string xml_escape(std::string_view s);

}  // namespace ferry::s3

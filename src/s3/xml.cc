#include "s3/xml.h"

#include <cstdint>

namespace ferry::s3 {

const XmlNode* XmlNode::child(std::string_view n) const {
  for (const auto& c : children)
    if (c.name == n) return &c;
  return nullptr;
}

std::string XmlNode::child_text(std::string_view n) const {
  const XmlNode* c = child(n);
  return c ? c->text : std::string();
}

std::string xml_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default: out.push_back(c);
    }
  }
  return out;
}

namespace {

class Parser {
 public:
  Parser(std::string_view doc, std::string_view what, const XmlLimits& limits)
      : s_(doc), what_(what), limits_(limits) {}

  Result<XmlNode> parse() {
    if (s_.size() > limits_.max_bytes) return fail("document larger than " + std::to_string(limits_.max_bytes) + " bytes");
    if (Status st = skip_misc(); !st) return st;
    if (pos_ >= s_.size() || s_[pos_] != '<') return fail("no root element");
    XmlNode root;
    if (Status st = element(&root, 1); !st) return st;
    if (Status st = skip_misc(); !st) return st;
    if (pos_ != s_.size()) return fail("content after the root element");
    return root;
  }

 private:
  Status fail(const std::string& why) const {
    return Status(Error::kProtocol, "malformed XML in " + std::string(what_) + " at byte " + std::to_string(pos_) + ": " + why);
  }
  bool starts(std::string_view p) const { return s_.substr(pos_, p.size()) == p; }
  static bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
  void skip_space() {
    while (pos_ < s_.size() && is_space(s_[pos_])) ++pos_;
  }

  Status skip_until(std::string_view end, const char* what) {
    size_t e = s_.find(end, pos_);
    if (e == std::string_view::npos) return fail(std::string("unterminated ") + what);
    pos_ = e + end.size();
    return Status::ok();
  }

  // Whitespace, the XML declaration, processing instructions and comments around the root.
  Status skip_misc() {
    for (;;) {
      skip_space();
      if (starts("<?")) {
        if (Status st = skip_until("?>", "processing instruction"); !st) return st;
      } else if (starts("<!--")) {
        if (Status st = skip_until("-->", "comment"); !st) return st;
      } else if (starts("<!")) {
        return fail("DOCTYPE and markup declarations are not accepted");
      } else {
        return Status::ok();
      }
    }
  }

  Status name(std::string* out) {
    size_t start = pos_;
    while (pos_ < s_.size()) {
      char c = s_[pos_];
      if (is_space(c) || c == '>' || c == '/' || c == '=' || c == '<') break;
      ++pos_;
    }
    if (pos_ == start) return fail("expected a name");
    *out = std::string(s_.substr(start, pos_ - start));
    return Status::ok();
  }

  // Decodes &...; at pos_ (which is at '&') into out.
  Status entity(std::string* out) {
    size_t semi = s_.find(';', pos_);
    if (semi == std::string_view::npos || semi - pos_ > 12) return fail("bad entity reference");
    std::string_view e = s_.substr(pos_ + 1, semi - pos_ - 1);
    pos_ = semi + 1;
    if (e == "amp") *out += '&';
    else if (e == "lt") *out += '<';
    else if (e == "gt") *out += '>';
    else if (e == "quot") *out += '"';
    else if (e == "apos") *out += '\'';
    else if (!e.empty() && e[0] == '#') {
      uint32_t cp = 0;
      bool hexa = e.size() > 1 && (e[1] == 'x' || e[1] == 'X');
      std::string_view digits = e.substr(hexa ? 2 : 1);
      if (digits.empty()) return fail("bad character reference");
      for (char c : digits) {
        int v = (c >= '0' && c <= '9') ? c - '0' : hexa && (c | 32) >= 'a' && (c | 32) <= 'f' ? (c | 32) - 'a' + 10 : -1;
        if (v < 0) return fail("bad character reference");
        cp = cp * (hexa ? 16 : 10) + static_cast<uint32_t>(v);
        if (cp > 0x10FFFF) return fail("character reference out of range");
      }
      if (cp == 0 || (cp >= 0xD800 && cp <= 0xDFFF)) return fail("invalid character reference");
      // UTF-8 encode.
      if (cp < 0x80) {
        *out += static_cast<char>(cp);
      } else if (cp < 0x800) {
        *out += static_cast<char>(0xC0 | (cp >> 6));
        *out += static_cast<char>(0x80 | (cp & 0x3F));
      } else if (cp < 0x10000) {
        *out += static_cast<char>(0xE0 | (cp >> 12));
        *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        *out += static_cast<char>(0x80 | (cp & 0x3F));
      } else {
        *out += static_cast<char>(0xF0 | (cp >> 18));
        *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        *out += static_cast<char>(0x80 | (cp & 0x3F));
      }
    } else {
      return fail("unknown entity '&" + std::string(e) + ";'");
    }
    return Status::ok();
  }

  // Attributes are skipped, but their quoting is honoured so a '>' inside one is not an end.
  Status skip_attributes(bool* self_closing) {
    for (;;) {
      skip_space();
      if (pos_ >= s_.size()) return fail("unterminated start tag");
      if (s_[pos_] == '>') {
        ++pos_;
        *self_closing = false;
        return Status::ok();
      }
      if (starts("/>")) {
        pos_ += 2;
        *self_closing = true;
        return Status::ok();
      }
      std::string attr;
      if (Status st = name(&attr); !st) return st;
      skip_space();
      if (pos_ >= s_.size() || s_[pos_] != '=') return fail("attribute without a value");
      ++pos_;
      skip_space();
      if (pos_ >= s_.size() || (s_[pos_] != '"' && s_[pos_] != '\'')) return fail("unquoted attribute value");
      char q = s_[pos_++];
      size_t e = s_.find(q, pos_);
      if (e == std::string_view::npos) return fail("unterminated attribute value");
      pos_ = e + 1;
    }
  }

  // Invariant: pos_ is at the '<' of a start tag; on success it is just past the end tag.
  Status element(XmlNode* node, size_t depth) {
    if (depth > limits_.max_depth) return fail("nesting deeper than " + std::to_string(limits_.max_depth));
    if (++elements_ > limits_.max_elements) return fail("more than " + std::to_string(limits_.max_elements) + " elements");
    ++pos_;
    if (Status st = name(&node->name); !st) return st;
    bool self_closing = false;
    if (Status st = skip_attributes(&self_closing); !st) return st;
    if (self_closing) return Status::ok();
    for (;;) {
      if (pos_ >= s_.size()) return fail("missing end tag for <" + node->name + ">");
      char c = s_[pos_];
      if (c == '&') {
        if (Status st = entity(&node->text); !st) return st;
      } else if (c != '<') {
        node->text += c;
        ++pos_;
      } else if (starts("</")) {
        pos_ += 2;
        std::string end;
        if (Status st = name(&end); !st) return st;
        skip_space();
        if (pos_ >= s_.size() || s_[pos_] != '>') return fail("malformed end tag");
        ++pos_;
        if (end != node->name) return fail("end tag </" + end + "> does not match <" + node->name + ">");
        return Status::ok();
      } else if (starts("<!--")) {
        if (Status st = skip_until("-->", "comment"); !st) return st;
      } else if (starts("<![CDATA[")) {
        pos_ += 9;
        size_t e = s_.find("]]>", pos_);
        if (e == std::string_view::npos) return fail("unterminated CDATA section");
        node->text.append(s_.substr(pos_, e - pos_));
        pos_ = e + 3;
      } else if (starts("<?")) {
        if (Status st = skip_until("?>", "processing instruction"); !st) return st;
      } else if (starts("<!")) {
        return fail("markup declarations are not accepted");
      } else {
        node->children.emplace_back();
        if (Status st = element(&node->children.back(), depth + 1); !st) return st;
      }
    }
  }

  std::string_view s_;
  std::string_view what_;
  const XmlLimits& limits_;
  size_t pos_ = 0;
  size_t elements_ = 0;
};

}  // namespace

Result<XmlNode> parse_xml(std::string_view doc, std::string_view what, const XmlLimits& limits) {
  return Parser(doc, what, limits).parse();
}

}  // namespace ferry::s3

#include "daemon/toml_subset.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

namespace ferry::daemon {
namespace {

// Config files are small; a bigger one is a mistake (or /dev/zero).
constexpr size_t kMaxFileBytes = 4u << 20;

bool is_bare_key_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// A cursor over the whole text. Invariant: line_ is the 1-based line of text_[pos_].
class Reader {
 public:
  Reader(std::string_view text, TomlDocument* doc) : text_(text), doc_(doc) {}

  Status parse() {
    doc_->tables.push_back(TomlTable{"", false, 1, {}});
    for (;;) {
      skip_blanks();
      if (at_end()) return Status::ok();
      char c = peek();
      Status st;
      if (c == '\n') {
        advance();
        continue;
      }
      if (c == '#') {
        skip_comment();
        continue;
      }
      if (c == '[') st = parse_header();
      else st = parse_key_value();
      if (!st) return st;
      if (Status end = expect_line_end(); !end) return end;
    }
  }

 private:
  bool at_end() const { return pos_ >= text_.size(); }
  char peek(size_t ahead = 0) const { return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0'; }
  void advance() {
    if (text_[pos_] == '\n') ++line_;
    ++pos_;
  }
  Status error(const std::string& message) const { return doc_->error_at(line_, message); }
  Status error_at(int line, const std::string& message) const { return doc_->error_at(line, message); }

  void skip_blanks() {
    while (!at_end() && (peek() == ' ' || peek() == '\t' || (peek() == '\r' && peek(1) == '\n'))) advance();
  }
  void skip_comment() {
    while (!at_end() && peek() != '\n') advance();
  }
  // Whitespace, comments and newlines, as allowed inside a multi-line array.
  void skip_blanks_and_newlines() {
    for (;;) {
      skip_blanks();
      if (peek() == '#') skip_comment();
      if (!at_end() && peek() == '\n') {
        advance();
        continue;
      }
      return;
    }
  }

  Status expect_line_end() {
    skip_blanks();
    if (peek() == '#') skip_comment();
    if (at_end()) return Status::ok();
    if (peek() == '\n') {
      advance();
      return Status::ok();
    }
    return error(std::string("unexpected '") + peek() + "' after the value (one key = value per line)");
  }

  Result<std::string> bare_name(const char* what) {
    size_t start = pos_;
    while (!at_end() && is_bare_key_char(peek())) advance();
    if (pos_ == start) {
      if (peek() == '"' || peek() == '\'') return error(std::string("quoted ") + what + "s are not supported");
      return error(std::string("expected a ") + what + (at_end() || peek() == '\n' ? "" : std::string(" at '") + peek() + "'"));
    }
    if (peek() == '.') return error(std::string("dotted ") + what + "s are not supported");
    return std::string(text_.substr(start, pos_ - start));
  }

  Status parse_header() {
    int line = line_;
    advance();  // '['
    bool array = peek() == '[';
    if (array) advance();
    skip_blanks();
    auto name = bare_name("table name");
    if (!name) return name.status();
    skip_blanks();
    if (peek() != ']' || (array && peek(1) != ']'))
      return error(std::string("unterminated table header: expected '") + (array ? "]]" : "]") + "'");
    advance();
    if (array) advance();
    for (const auto& t : doc_->tables) {
      if (t.name != *name) continue;
      if (!array || !t.array_element)
        return error_at(line, (array ? "[[" + *name + "]] conflicts with [" + *name + "]"
                                     : (t.array_element ? "[" + *name + "] conflicts with [[" + *name + "]]"
                                                        : "duplicate table [" + *name + "]")) +
                                  " at line " + std::to_string(t.line));
    }
    doc_->tables.push_back(TomlTable{std::move(*name), array, line, {}});
    return Status::ok();
  }

  Status parse_key_value() {
    int line = line_;
    auto key = bare_name("key");
    if (!key) return key.status();
    skip_blanks();
    if (peek() != '=') return error("expected '=' after key '" + *key + "'");
    advance();
    skip_blanks();
    TomlTable& table = doc_->tables.back();
    if (const TomlEntry* prev = table.find(*key))
      return error_at(line, "duplicate key '" + *key + "' in " + table.label() + " (first set at line " +
                                std::to_string(prev->value.line) + ")");
    auto value = parse_value();
    if (!value) return value.status();
    value->line = line;
    table.entries.push_back(TomlEntry{std::move(*key), std::move(*value)});
    return Status::ok();
  }

  Result<TomlValue> parse_value() {
    TomlValue v;
    char c = peek();
    if (c == '"' || c == '\'') {
      auto s = parse_string();
      if (!s) return s.status();
      v.kind = TomlValue::Kind::kString;
      v.text = std::move(*s);
      return v;
    }
    if (c == '[') return parse_array();
    if (c == '{') return error("inline tables are not supported");
    size_t start = pos_;
    while (!at_end() && peek() != '\n' && peek() != '#' && peek() != ',' && peek() != ']' && peek() != ' ' &&
           peek() != '\t' && peek() != '\r')
      advance();
    std::string word(text_.substr(start, pos_ - start));
    if (word.empty()) return error("missing value");
    if (word == "true" || word == "false") {
      v.kind = TomlValue::Kind::kBool;
      v.boolean = word == "true";
      return v;
    }
    return parse_integer(word);
  }

  Result<TomlValue> parse_integer(const std::string& word) {
    std::string digits;
    size_t i = 0;
    bool negative = false;
    if (word[0] == '+' || word[0] == '-') {
      negative = word[0] == '-';
      i = 1;
    }
    bool last_digit = false;
    for (; i < word.size(); ++i) {
      char c = word[i];
      if (c >= '0' && c <= '9') {
        digits += c;
        last_digit = true;
      } else if (c == '_' && last_digit && i + 1 < word.size()) {
        last_digit = false;
      } else {
        return error("invalid value '" + word + "' (expected a quoted string, an integer, true/false or [\"...\"])");
      }
    }
    if (digits.empty() || !last_digit) return error("invalid integer '" + word + "'");
    if (digits.size() > 1 && digits[0] == '0') return error("leading zeros are not allowed in '" + word + "'");
    errno = 0;
    char* end = nullptr;
    long long n = std::strtoll((negative ? "-" + digits : digits).c_str(), &end, 10);
    if (errno == ERANGE) return error("integer '" + word + "' is out of range");
    TomlValue v;
    v.kind = TomlValue::Kind::kInteger;
    v.integer = n;
    return v;
  }

  Result<std::string> parse_string() {
    char quote = peek();
    if (peek(1) == quote && peek(2) == quote) return error("multi-line strings are not supported");
    advance();
    std::string out;
    for (;;) {
      if (at_end() || peek() == '\n') return error("unterminated string");
      char c = peek();
      advance();
      if (c == quote) return out;
      if (static_cast<unsigned char>(c) < 0x20 && c != '\t') return error("control character in a string");
      if (c != '\\' || quote == '\'') {
        out += c;
        continue;
      }
      if (at_end()) return error("unterminated string");
      char e = peek();
      advance();
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case 'b': out += '\b'; break;
        case 't': out += '\t'; break;
        case 'n': out += '\n'; break;
        case 'f': out += '\f'; break;
        case 'r': out += '\r'; break;
        case 'u':
        case 'U': {
          int n = e == 'u' ? 4 : 8;
          uint32_t cp = 0;
          for (int i = 0; i < n; ++i) {
            char h = peek();
            int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10 : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
            if (d < 0) return error(std::string("invalid \\") + e + " escape: expected " + std::to_string(n) + " hex digits");
            cp = cp * 16 + static_cast<uint32_t>(d);
            advance();
          }
          if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) || cp == 0)
            return error("invalid unicode escape (not a scalar value, or NUL)");
          append_utf8(out, cp);
          break;
        }
        default: return error(std::string("invalid escape '\\") + e + "' in a string");
      }
    }
  }

  Result<TomlValue> parse_array() {
    int line = line_;
    advance();  // '['
    TomlValue v;
    v.kind = TomlValue::Kind::kStringArray;
    for (;;) {
      skip_blanks_and_newlines();
      if (at_end()) return error_at(line, "unterminated array");
      if (peek() == ']') {
        advance();
        return v;
      }
      if (peek() != '"' && peek() != '\'') return error("only arrays of strings are supported");
      auto s = parse_string();
      if (!s) return s.status();
      v.strings.push_back(std::move(*s));
      skip_blanks_and_newlines();
      if (peek() == ',') {
        advance();
        continue;
      }
      if (peek() != ']') return error(at_end() ? "unterminated array" : "expected ',' or ']' in an array");
    }
  }

  std::string_view text_;
  TomlDocument* doc_;
  size_t pos_ = 0;
  int line_ = 1;
};

}  // namespace

const char* to_string(TomlValue::Kind kind) {
  switch (kind) {
    case TomlValue::Kind::kString: return "a string";
    case TomlValue::Kind::kInteger: return "an integer";
    case TomlValue::Kind::kBool: return "a boolean";
    case TomlValue::Kind::kStringArray: return "an array of strings";
  }
  return "?";
}

const TomlEntry* TomlTable::find(std::string_view key) const {
  for (const auto& e : entries)
    if (e.key == key) return &e;
  return nullptr;
}

std::string TomlTable::label() const {
  if (name.empty()) return "the top level";
  return array_element ? "[[" + name + "]]" : "[" + name + "]";
}

Status TomlDocument::error_at(int line, const std::string& message) const {
  return Status(Error::kUsage, file + ":" + std::to_string(line) + ": " + message);
}

Result<TomlDocument> parse_toml(std::string_view text, const std::string& file_label) {
  TomlDocument doc;
  doc.file = file_label;
  if (text.size() > kMaxFileBytes) return doc.error_at(1, "file is larger than 4 MiB");
  if (text.find('\0') != std::string_view::npos) return doc.error_at(1, "file contains a NUL byte (not a text file)");
  Reader reader(text, &doc);
  if (Status st = reader.parse(); !st) return st;
  return doc;
}

Result<TomlDocument> read_toml_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(Error::kUsage, path + ": cannot read: " + std::strerror(errno));
  std::string text;
  char buf[65536];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxFileBytes) break;
  }
  if (in.bad()) return Status(Error::kUsage, path + ": read error");
  return parse_toml(text, path);
}

}  // namespace ferry::daemon

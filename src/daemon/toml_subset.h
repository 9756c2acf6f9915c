// A small, strict reader for the subset of TOML that ferryd's files use.
//
// Supported: comments, [table] and [[array.of.tables]] headers with bare names, bare keys,
// basic strings "..." (escapes \" \\ \b \t \n \f \r \uXXXX \UXXXXXXXX), literal strings
// '...', decimal integers (sign and '_' separators allowed), true/false, and arrays of
// strings (which may span lines, with an optional trailing comma).
// Anything else (floats, dates, inline tables, dotted or quoted keys, multi-line strings)
// is an error naming the line, never silently misread: a config is security-relevant.
//
// Errors are one Status (kUsage) whose message is "FILE:LINE: cause".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "ferry/status.h"

namespace ferry::daemon {

struct TomlValue {
  enum class Kind { kString, kInteger, kBool, kStringArray };
  Kind kind = Kind::kString;
  std::string text;                  // kString
  int64_t integer = 0;               // kInteger
  bool boolean = false;              // kBool
  std::vector<std::string> strings;  // kStringArray
  int line = 0;                      // where the key is
};

const char* to_string(TomlValue::Kind kind);

struct TomlEntry {
  std::string key;
  TomlValue value;
};

// One table: the root (name ""), a [name] table or one element of [[name]].
// Invariant: keys are unique within a table (the reader rejects duplicates).
struct TomlTable {
  std::string name;
  bool array_element = false;
  int line = 0;  // of the header; 1 for the root
  std::vector<TomlEntry> entries;

  const TomlEntry* find(std::string_view key) const;
  // "[server]", "[[export]]" or "the top level", for messages.
  std::string label() const;
};

struct TomlDocument {
  std::string file;               // as named in messages
  std::vector<TomlTable> tables;  // in file order; tables[0] is the root

  // "FILE:LINE: message" as a kUsage Status.
  Status error_at(int line, const std::string& message) const;
};

Result<TomlDocument> parse_toml(std::string_view text, const std::string& file_label);
// Reads the file (kUsage naming it when it cannot be read) and parses it.
Result<TomlDocument> read_toml_file(const std::string& path);

}  // namespace ferry::daemon

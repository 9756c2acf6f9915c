// Leveled logging to stderr, one line per event: "ferry: warning: skipping fifo 'a/b'".
// Thread-safe (one write(2) per line).
//
// The daemon switches to the key=value format (set_format(Format::kKeyValue)), which journald
// and grep handle well: every line is `level=warning prog=ferryd msg="..." key=value ...`,
// where a value that is empty or holds spaces, quotes, '=' or control characters is quoted
// with \" \\ \n escapes, so one event is always one line.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace ferry::log {

enum class Level { kQuiet = 0, kError = 1, kWarning = 2, kInfo = 3, kDebug = 4 };
enum class Format { kPlain = 0, kKeyValue = 1 };

void set_level(Level level);
Level level();
void set_program(const std::string& name);  // prefix of every line, default "ferry"
void set_format(Format format);

void error(const std::string& message);
void warning(const std::string& message);
void info(const std::string& message);
void debug(const std::string& message);

// An event with fields: in the plain format they follow the message as "key=value".
using Field = std::pair<std::string_view, std::string_view>;
void event(Level at, const std::string& message, std::initializer_list<Field> fields);

}  // namespace ferry::log

// Leveled logging to stderr, one line per event: "ferry: warning: skipping fifo 'a/b'".
// Thread-safe (one write(2) per line). The daemon will add key=value fields on top of this.
#pragma once

#include <string>

namespace ferry::log {

enum class Level { kQuiet = 0, kError = 1, kWarning = 2, kInfo = 3, kDebug = 4 };

void set_level(Level level);
Level level();
void set_program(const std::string& name);  // prefix of every line, default "ferry"

void error(const std::string& message);
void warning(const std::string& message);
void info(const std::string& message);
void debug(const std::string& message);

}  // namespace ferry::log

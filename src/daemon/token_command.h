// `ferryd token new|list|revoke`: manage the token store named by the config's [tokens].
// Each returns the process exit code (0; 2 for a config or usage error; 5 for an I/O error)
// and prints errors as one line on stderr.
#pragma once

#include <string>
#include <vector>

namespace ferry::daemon {

// Prints the new token alone on stdout (shown this once); details go to stderr.
int token_new(const std::string& config_path, const std::string& name, const std::vector<std::string>& grants,
              const std::string& expires);
// One line per token: ID NAME GRANTS CREATED EXPIRES STATE.
int token_list(const std::string& config_path);
int token_revoke(const std::string& config_path, const std::string& id_or_name);

}  // namespace ferry::daemon

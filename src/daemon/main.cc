// ferryd: the receive daemon. The only code of the daemon that reads argv; the rest is in
// libferry (src/daemon/). See man/ferryd.8.
#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "daemon/config.h"
#include "daemon/service.h"
#include "daemon/token_command.h"
#include "ferry/status.h"
#include "protocol/frames.h"

#ifndef FERRY_VERSION
#define FERRY_VERSION "0.0.0"
#endif

int main(int argc, char** argv) {
  using namespace ferry;
  CLI::App app{"ferryd: the ferry receive daemon"};
  app.set_version_flag("--version", std::string("ferryd ") + FERRY_VERSION + " (protocol " +
                                        std::to_string(protocol::kMaxVersion) + ")");
  std::string config = daemon::kDefaultConfigPath;
  bool check = false;
  app.add_option("--config", config, "configuration file (default /etc/ferry/ferryd.toml)");
  app.add_flag("--check-config", check, "validate the configuration and the token store, then exit (0 ok, 2 error)");

  auto* token = app.add_subcommand("token", "manage bearer tokens (stored hashed)");
  token->require_subcommand(1);
  // --config is accepted after the subcommand too: `ferryd token new --config F ...`.
  std::string token_config;
  auto* tnew = token->add_subcommand("new", "create a token and print it once");
  std::string name, expires;
  std::vector<std::string> grants;
  tnew->add_option("--config", token_config, "configuration file");
  tnew->add_option("--name", name, "a name for the token (who or what uses it)")->required();
  tnew->add_option("--grant", grants, "EXPORT:r, EXPORT:w or EXPORT:rw (repeatable)")->required()->allow_extra_args(false);
  tnew->add_option("--expires", expires, "lifetime, e.g. 12h, 30d, 2w (default: no expiry)");
  auto* tlist = token->add_subcommand("list", "list tokens (never the tokens themselves)");
  tlist->add_option("--config", token_config, "configuration file");
  auto* trevoke = token->add_subcommand("revoke", "revoke a token by id or name");
  std::string which;
  trevoke->add_option("--config", token_config, "configuration file");
  trevoke->add_option("ID|NAME", which, "token id or name")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : exit_code(Error::kUsage);
  }
  if (!token_config.empty()) config = token_config;

  if (tnew->parsed()) return daemon::token_new(config, name, grants, expires);
  if (tlist->parsed()) return daemon::token_list(config);
  if (trevoke->parsed()) return daemon::token_revoke(config, which);
  if (check) return daemon::check_config(config);
  return daemon::run_service(config, daemon::BuildInfo{FERRY_VERSION, protocol::kMaxVersion});
}

#include "daemon/token_command.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <cstdio>
#include <ctime>

#include "core/log.h"
#include "daemon/config.h"
#include "daemon/duration.h"
#include "daemon/token_store.h"

namespace ferry::daemon {
namespace {

int fail(const Status& st) {
  log::error(st.message());
  return exit_code(st.code());
}

std::string date(int64_t t) { return t == 0 ? "never" : format_time(t); }

// mkdir -p of the store's directory (mode 0750), for a first token before ferryd ever ran.
Status make_parent_dirs(const std::string& file) {
  size_t end = file.find_last_of('/');
  for (size_t i = 1; i <= end && end != std::string::npos; ++i) {
    if (i != end && file[i] != '/') continue;
    std::string prefix = file.substr(0, i);
    if (::mkdir(prefix.c_str(), 0750) != 0 && errno != EEXIST)
      return errno_status(Error::kLocalIo, "create directory '" + prefix + "'", errno);
  }
  return Status::ok();
}

// Runs `change` on the store under its lock, then saves it.
template <typename Change>
int modify_store(const DaemonConfig& config, Change change) {
  if (Status st = make_parent_dirs(config.tokens_file); !st) return fail(st);
  auto lock = lock_token_store(config.tokens_file);
  if (!lock) return fail(lock.status());
  int rc = [&] {
    auto store = TokenStore::load(config.tokens_file);
    if (!store) return fail(store.status());
    if (int rc = change(*store); rc != 0) return rc;
    if (Status st = store->save(); !st) return fail(st);
    return 0;
  }();
  ::close(*lock);
  return rc;
}

}  // namespace

int token_new(const std::string& config_path, const std::string& name, const std::vector<std::string>& grant_texts,
              const std::string& expires) {
  log::set_program("ferryd");
  auto config = load_config(config_path);
  if (!config) return fail(config.status());
  std::vector<TokenGrant> grants;
  for (const auto& text : grant_texts) {
    auto g = parse_grant(text);
    if (!g) return fail(Status(Error::kUsage, "--grant: " + g.status().message()));
    bool known = false;
    std::string names;
    for (const auto& e : config->exports) {
      known = known || e.name == g->export_name;
      names += (names.empty() ? "" : ", ") + e.name;
    }
    if (!known)
      return fail(Status(Error::kUsage, "--grant: no export '" + g->export_name + "' in " + config_path +
                                            " (exports: " + names + ")"));
    grants.push_back(*g);
  }
  int64_t ttl = 0;
  if (!expires.empty()) {
    auto d = parse_duration(expires);
    if (!d) return fail(Status(Error::kUsage, "--expires: " + d.status().message()));
    ttl = d->count() / 1000;
    if (ttl < 1) return fail(Status(Error::kUsage, "--expires: must be at least 1s"));
  }
  std::string token;
  TokenRecord made;
  int rc = modify_store(*config, [&](TokenStore& store) {
    auto t = store.add(name, grants, ttl, static_cast<int64_t>(::time(nullptr)));
    if (!t) return fail(t.status());
    token = std::move(*t);
    made = store.tokens().back();
    return 0;
  });
  if (rc != 0) return rc;
  std::string grant_list;
  for (const auto& g : made.grants) grant_list += (grant_list.empty() ? "" : ",") + to_string(g);
  std::fprintf(stderr,
               "ferryd: created token '%s' (id %s) for %s, expires %s.\n"
               "ferryd: it is shown only this once; ferryd picks it up on the next connection.\n",
               made.name.c_str(), made.id.c_str(), grant_list.c_str(), date(made.expires).c_str());
  std::printf("%s\n", token.c_str());
  std::fflush(stdout);
  return 0;
}

int token_list(const std::string& config_path) {
  log::set_program("ferryd");
  auto config = load_config(config_path);
  if (!config) return fail(config.status());
  auto store = TokenStore::load(config->tokens_file);
  if (!store) return fail(store.status());
  int64_t now = static_cast<int64_t>(::time(nullptr));
  std::printf("%-8s  %-20s  %-24s  %-20s  %-20s  %s\n", "ID", "NAME", "GRANTS", "CREATED", "EXPIRES", "STATE");
  for (const auto& t : store->tokens()) {
    std::string grants;
    for (const auto& g : t.grants) grants += (grants.empty() ? "" : ",") + to_string(g);
    const char* state = t.revoked ? "revoked" : (t.expires != 0 && now >= t.expires) ? "expired" : "active";
    std::printf("%-8s  %-20s  %-24s  %-20s  %-20s  %s\n", t.id.c_str(), t.name.c_str(), grants.c_str(),
                date(t.created).c_str(), date(t.expires).c_str(), state);
  }
  return 0;
}

int token_revoke(const std::string& config_path, const std::string& id_or_name) {
  log::set_program("ferryd");
  auto config = load_config(config_path);
  if (!config) return fail(config.status());
  TokenRecord revoked;
  int rc = modify_store(*config, [&](TokenStore& store) {
    auto r = store.revoke(id_or_name);
    if (!r) return fail(r.status());
    revoked = *r;
    return 0;
  });
  if (rc != 0) return rc;
  std::printf("revoked token '%s' (id %s)\n", revoked.name.c_str(), revoked.id.c_str());
  return 0;
}

}  // namespace ferry::daemon

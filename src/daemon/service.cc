#include "daemon/service.h"

#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <algorithm>
#include <memory>
#include <thread>
#include <vector>

#include "core/log.h"
#include "core/units.h"
#include "daemon/config.h"
#include "daemon/metrics.h"
#include "ferry/receiver.h"
#include "daemon/systemd_notify.h"
#include "daemon/token_store.h"
#include "s3/s3_export_sink.h"

namespace ferry::daemon {
namespace {

using std::chrono::milliseconds;

int fail(const Status& st) {
  log::error(st.message());
  return exit_code(st.code());
}

Status make_state_dir(const std::string& dir) {
  // mkdir -p, 0750: journals and the token store live here.
  for (size_t i = 1; i <= dir.size(); ++i) {
    if (i != dir.size() && dir[i] != '/') continue;
    std::string prefix = dir.substr(0, i);
    if (::mkdir(prefix.c_str(), 0750) != 0 && errno != EEXIST)
      return errno_status(Error::kLocalIo, "create state_dir '" + prefix + "'", errno);
  }
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
    return Status(Error::kLocalIo, "state_dir '" + dir + "' is not a directory");
  return Status::ok();
}

// What a SIGHUP cannot change; a difference is reported, not applied.
std::vector<std::string> restart_only_changes(const DaemonConfig& running, const DaemonConfig& fresh) {
  std::vector<std::string> out;
  const ServerConfig &a = running.server, &b = fresh.server;
  if (a.listen != b.listen) out.push_back("server.listen");
  if (a.udp_ports != b.udp_ports) out.push_back("server.udp_ports");
  if (a.state_dir != b.state_dir) out.push_back("server.state_dir");
  if (a.memory != b.memory) out.push_back("server.memory");
  if (a.max_sessions != b.max_sessions) out.push_back("server.max_sessions");
  if (a.session_rate_cap != b.session_rate_cap) out.push_back("server.session_rate_cap");
  if (a.total_rate_cap != b.total_rate_cap) out.push_back("server.total_rate_cap");
  if (!(running.tls == fresh.tls)) out.push_back("tls");
  if (running.metrics_listen != fresh.metrics_listen) out.push_back("metrics.listen");
  return out;
}

// Where an S3 export's sessions keep their resume journal (the export has no directory).
std::string s3_export_root(const DaemonConfig& c, const std::string& name) {
  return c.server.state_dir + "/s3-exports/" + name;
}

s3::S3ExportSettings s3_settings(const ExportConfig& e) {
  s3::S3ExportSettings s;
  s.name = e.name;
  s.target = s3::S3Target{e.bucket, e.prefix};
  s.s3.endpoint = e.endpoint;
  s.s3.path_style = e.path_style;
  s.s3.region = e.region;
  s.part_size = e.part_size;
  return s;
}

class Service {
 public:
  // The receivers' view of the exports. S3 exports get their sink factory, kept across
  // reloads while the export's settings stay the same (running sessions keep theirs anyway).
  Result<std::vector<ExportSpec>> export_specs(const DaemonConfig& c) {
    std::vector<ExportSpec> out;
    std::map<std::string, std::shared_ptr<s3::S3ExportSinks>> sinks;
    for (const auto& e : c.exports) {
      if (!e.is_s3()) {
        out.push_back(ExportSpec{e.name, e.path, nullptr});
        continue;
      }
      std::string root = s3_export_root(c, e.name);
      if (Status st = make_state_dir(root); !st) return st;
      auto old = sinks_.find(e.name);
      auto it = std::find_if(config_.exports.begin(), config_.exports.end(),
                             [&](const ExportConfig& x) { return x.name == e.name; });
      std::shared_ptr<s3::S3ExportSinks> sink;
      if (old != sinks_.end() && it != config_.exports.end() && *it == e) {
        sink = old->second;
      } else {
        sink = std::make_shared<s3::S3ExportSinks>(s3_settings(e));
        all_sinks_.push_back(sink);
      }
      sinks[e.name] = sink;
      out.push_back(ExportSpec{e.name, root, sink});
    }
    sinks_ = std::move(sinks);
    return out;
  }

  Service(DaemonConfig config, BuildInfo build) : config_(std::move(config)), build_(std::move(build)) {}

  // Binds everything; nothing runs yet.
  Status start() {
    if (Status st = make_state_dir(config_.server.state_dir); !st) return st;
    auto tokens = TokenStore::load(config_.tokens_file);
    if (!tokens) return tokens.status();
    if (tokens->tokens().empty())
      log::event(log::Level::kWarning, "no tokens yet: every client will be refused; create one with `ferryd token new`",
                 {{"tokens", config_.tokens_file}});
    auto specs = export_specs(config_);
    if (!specs) return specs.status();
    size_t n = config_.server.listen.size();
    for (const auto& listen : config_.server.listen) {
      ReceiveOptions o;
      o.listen = listen;
      // One budget and one session limit per process, split among the listen addresses
      // until a receiver can take several listeners.
      o.memory = config_.server.memory / n;
      o.max_sessions = static_cast<uint32_t>((config_.server.max_sessions + n - 1) / n);
      o.max_session_rate = config_.server.session_rate_cap;
      o.max_total_rate = config_.server.total_rate_cap / n;
      o.udp_port_first = config_.server.udp_first;
      o.udp_port_last = config_.server.udp_last;
      o.tls = TlsServerSettings{config_.tls.cert, config_.tls.key, config_.tls.client_ca, config_.tls.plaintext};
      o.exports = *specs;
      o.verify_token = make_token_verifier(config_.tokens_file);
      auto r = Receiver::create(o);
      if (!r) return Status(r.status().code(), "listen " + listen + ": " + r.status().message());
      log::event(log::Level::kInfo, "listening", {{"addr", listen}, {"port", std::to_string((*r)->port())},
                                                  {"url", (*r)->url()}});
      receivers_.push_back(std::move(*r));
    }
    if (config_.tls.plaintext)
      log::event(log::Level::kWarning, "TLS is OFF (plaintext = true): tokens and data cross the network in the clear",
                 {{"config", config_.file}});
    if (!config_.metrics_listen.empty()) {
      auto m = MetricsServer::start(config_.metrics_listen, [this] { return snapshot(); }, build_.version, build_.protocol);
      if (!m) return m.status();
      metrics_ = std::move(*m);
      log::event(log::Level::kInfo, "metrics endpoint", {{"addr", metrics_->address()}, {"path", "/metrics"}});
    }
    start_time_ = static_cast<int64_t>(::time(nullptr));
    return Status::ok();
  }

  int run(const sigset_t& signals) {
    for (auto& r : receivers_) {
      threads_.emplace_back([this, rec = r.get()] {
        Status st = rec->run();
        if (!st) log::event(log::Level::kError, "receiver stopped", {{"cause", st.message()}});
        ++receivers_done_;
      });
    }
    SystemdNotifier notifier = SystemdNotifier::from_environment();
    std::string status = "serving " + std::to_string(config_.exports.size()) + " export(s) on " +
                         std::to_string(receivers_.size()) + " address(es)";
    notify(notifier, "READY=1\nSTATUS=" + status);
    log::event(log::Level::kInfo, "ready", {{"version", build_.version}, {"config", config_.file}});

    milliseconds tick(1000);
    if (auto w = notifier.watchdog_interval())
      tick = std::min(tick, std::max(milliseconds(1), std::chrono::duration_cast<milliseconds>(*w)));
    for (;;) {
      timespec ts{static_cast<time_t>(tick.count() / 1000), static_cast<long>(tick.count() % 1000) * 1'000'000};
      int sig = ::sigtimedwait(&signals, nullptr, &ts);
      if (sig == SIGHUP) {
        notify(notifier, "RELOADING=1");
        reload();
        notify(notifier, "READY=1\nSTATUS=" + status);
      } else if (sig == SIGTERM || sig == SIGINT) {
        log::event(log::Level::kInfo, "stopping", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"},
                                                   {"grace_ms", std::to_string(config_.server.shutdown_grace.count())}});
        notify(notifier, "STOPPING=1\nSTATUS=stopping");
        return stop();
      }
      if (notifier.watchdog_interval()) notify(notifier, "WATCHDOG=1");
      if (receivers_done_ > 0) {
        // A receiver that stops on its own is a fault: exit so systemd restarts us.
        log::event(log::Level::kError, "a receiver stopped unexpectedly; exiting", {});
        for (auto& r : receivers_) r->stop();
        for (auto& t : threads_) t.join();
        stop_sinks();
        metrics_.reset();
        return exit_code(Error::kInternal);
      }
    }
  }

 private:
  void notify(const SystemdNotifier& n, const std::string& state) {
    if (Status st = n.notify(state); !st && !notify_failed_) {
      notify_failed_ = true;  // say it once, not every watchdog tick
      log::event(log::Level::kWarning, "cannot notify systemd", {{"cause", st.message()}});
    }
  }

  void reload() {
    auto fresh = load_config(config_.file);
    if (fresh) {
      // A token store that does not parse would refuse everyone: refuse the reload instead.
      if (auto tokens = TokenStore::load(fresh->tokens_file); !tokens) fresh = tokens.status();
    }
    if (!fresh) {
      ++reload_failures_;
      log::event(log::Level::kError, "reload refused; still serving the previous config",
                 {{"cause", fresh.status().message()}});
      return;
    }
    for (const auto& key : restart_only_changes(config_, *fresh))
      log::event(log::Level::kWarning, "setting changed; restart ferryd to apply it", {{"key", key}});
    auto specs = export_specs(*fresh);
    if (!specs) {
      ++reload_failures_;
      log::event(log::Level::kError, "reload failed", {{"cause", specs.status().message()}});
      return;
    }
    for (auto& r : receivers_) {
      if (Status st = r->reload(*specs, make_token_verifier(fresh->tokens_file)); !st) {
        ++reload_failures_;
        log::event(log::Level::kError, "reload failed", {{"cause", st.message()}});
        return;
      }
    }
    config_.exports = fresh->exports;
    config_.tokens_file = fresh->tokens_file;
    config_.server.log_level = fresh->server.log_level;
    config_.server.shutdown_grace = fresh->server.shutdown_grace;
    log::set_level(config_.server.log_level);
    ++reloads_;
    log::event(log::Level::kInfo, "reloaded", {{"config", config_.file},
                                               {"exports", std::to_string(config_.exports.size())}});
  }

  int stop() {
    for (auto& r : receivers_) r->stop_accepting();
    // All receivers drain at once, within one grace period.
    std::vector<Status> results(receivers_.size());
    std::vector<std::thread> stoppers;
    for (size_t i = 0; i < receivers_.size(); ++i)
      stoppers.emplace_back([&, i] { results[i] = receivers_[i]->shutdown(config_.server.shutdown_grace); });
    for (auto& t : stoppers) t.join();
    for (const auto& st : results) {
      if (st) continue;
      log::event(log::Level::kError, "shutdown grace period exceeded; exiting anyway", {{"cause", st.message()}});
      // The receivers' threads may still be busy: do not wait for them.
      std::_Exit(exit_code(Error::kInterrupted));
    }
    for (auto& t : threads_) t.join();
    stop_sinks();
    metrics_.reset();
    log::event(log::Level::kInfo, "stopped", {});
    return 0;
  }

  // Uploads still queued finish (or fail) before the receivers, whose memory budgets the
  // sinks' part buffers are counted in, are destroyed.
  void stop_sinks() {
    for (auto& s : all_sinks_) s->stop();
  }

  MetricsSnapshot snapshot() const {
    MetricsSnapshot s;
    for (const auto& r : receivers_) {
      ReceiverMetrics m = r->metrics();
      s.receiver.sessions_active += m.sessions_active;
      s.receiver.sessions_total += m.sessions_total;
      s.receiver.auth_failures += m.auth_failures;
      s.receiver.bytes_received += m.bytes_received;
      s.receiver.files_committed += m.files_committed;
      s.receiver.files_failed += m.files_failed;
      s.receiver.errors += m.errors;
      s.receiver.bytes_sent += m.bytes_sent;
      s.receiver.get_sessions_active += m.get_sessions_active;
      s.receiver.get_sessions_total += m.get_sessions_total;
    }
    s.config_reloads = reloads_;
    s.config_reload_failures = reload_failures_;
    s.start_time = start_time_;
    return s;
  }

  DaemonConfig config_;  // the running config; touched by the main thread only
  BuildInfo build_;
  // Declared before receivers_ so they outlive them; stop_sinks() joins their workers first.
  std::map<std::string, std::shared_ptr<s3::S3ExportSinks>> sinks_;  // current, by export name
  std::vector<std::shared_ptr<s3::S3ExportSinks>> all_sinks_;        // every one made, for stop
  std::vector<std::unique_ptr<Receiver>> receivers_;  // fixed after start()
  std::vector<std::thread> threads_;
  std::unique_ptr<MetricsServer> metrics_;
  std::atomic<int> receivers_done_{0};
  std::atomic<uint64_t> reloads_{0}, reload_failures_{0};
  int64_t start_time_ = 0;
  bool notify_failed_ = false;
};

}  // namespace

int run_service(const std::string& config_path, const BuildInfo& build) {
  log::set_program("ferryd");
  log::set_format(log::Format::kKeyValue);
  log::set_level(log::Level::kInfo);
  // Signals are handled by the main thread alone (sigtimedwait): block them before any
  // thread starts, so every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  for (int s : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&signals, s);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  auto config = load_config(config_path);
  if (!config) return fail(config.status());
  log::set_level(config->server.log_level);
  configure_file_io(config->server.io);
  Service service(std::move(*config), build);
  if (Status st = service.start(); !st) return fail(st);
  return service.run(signals);
}

int check_config(const std::string& config_path) {
  log::set_program("ferryd");
  auto config = load_config(config_path);
  if (!config) return fail(config.status());
  auto tokens = TokenStore::load(config->tokens_file);
  if (!tokens) return fail(tokens.status());
  size_t active = 0;
  for (const auto& t : tokens->tokens()) active += t.revoked ? 0 : 1;
  std::printf("%s: ok (%zu export(s), %zu listen address(es), %zu token(s) not revoked, TLS %s)\n", config_path.c_str(),
              config->exports.size(), config->server.listen.size(), active, config->tls.plaintext ? "OFF" : "on");
  return 0;
}

}  // namespace ferry::daemon

// linkemu: a userspace link emulator between two network namespaces, for kernels
// without netem. It opens a TUN device inside each namespace and forwards IP packets
// between them; each direction has Bernoulli loss (decided at enqueue, like netem), a
// drop-tail queue in front of a fixed-rate bottleneck, and a fixed one-way delay.
// See link_model.h for the model and bench/README.md for how the bench scripts use it.
//
//   linkemu --ns-a ferry-a --ns-b ferry-b --delay-ms 50 --rate 200M --queue-ms 100
//           --loss 0.01 --seed 1 --stats-interval 5 --stats-json stats.json   (one line)
//
// Exit status: 0 after SIGINT/SIGTERM, 2 on a usage error, 77 when namespaces or TUN
// are not available here (not root, no /dev/net/tun, no such namespace), 1 otherwise.
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "link_model.h"
#include "packet_fifo.h"

namespace linkemu {
namespace {

constexpr int kExitUsage = 2;
constexpr int kExitUnavailable = 77;
constexpr size_t kMaxPacket = 65536;  // a TUN read never returns more than this
constexpr int kReadBatch = 64;        // packets read per wakeup before sending what is due

int64_t now_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

struct Options {
  std::string ns[2], dev[2] = {"ftun0", "ftun1"};
  // Per direction (0 = A->B, 1 = B->A); unset per-direction values take the shared one.
  std::optional<double> delay_ms[2], rate_bps[2], loss[2], queue_bytes[2], queue_ms[2];
  std::optional<double> delay_ms_both, rate_bps_both, loss_both, queue_bytes_both, queue_ms_both;
  uint64_t seed = 1;
  double stats_interval_s = 0;
  std::string stats_json;
  int rt_priority = 0;  // SCHED_FIFO priority of the forwarders; 0 = normal scheduling
};

// Counters of one direction: written by its forwarding thread only (load + store),
// read by the main thread for the periodic and final stats.
struct Counters {
  std::atomic<uint64_t> pkts_in{0}, bytes_in{0}, pkts_fwd{0}, bytes_fwd{0}, pkts_lost{0}, bytes_lost{0},
      pkts_dropped{0}, bytes_dropped{0}, write_errors{0}, fifo_full{0};
  LatencyHistogram queue_delay;
};

void bump(std::atomic<uint64_t>& c, uint64_t by = 1) {
  c.store(c.load(std::memory_order_relaxed) + by, std::memory_order_relaxed);
}

[[noreturn]] void usage_error(const std::string& msg) {
  std::fprintf(stderr, "linkemu: %s (see --help)\n", msg.c_str());
  std::exit(kExitUsage);
}

void print_help() {
  std::puts(
      "usage: linkemu --ns-a NS --ns-b NS [options]\n"
      "  --ns-a NAME, --ns-b NAME    network namespaces (ip netns) holding the two ends\n"
      "  --dev-a NAME, --dev-b NAME  TUN device names (default ftun0, ftun1)\n"
      "  --delay-ms MS               one-way delay, each direction (default 0)\n"
      "  --rate R                    bottleneck rate in bits/s, suffix K/M/G = 10^3/6/9 (0 = none)\n"
      "  --queue-bytes N             drop-tail limit of the bottleneck queue (K/M/G suffix = 2^10/20/30)\n"
      "  --queue-ms MS               the same limit given as time at the rate (default: 1 BDP =\n"
      "                              rate x (delay A->B + delay B->A), at least 64 KiB)\n"
      "  --loss P                    Bernoulli loss probability at enqueue (0..1)\n"
      "  Each of the five takes an -ab / -ba suffix for one direction only (A->B is a's\n"
      "  device to b's); the other direction keeps the shared value.\n"
      "  --seed N                    loss seed (default 1)\n"
      "  --stats-interval S          print counters every S seconds (0 = only at exit)\n"
      "  --stats-json FILE           write the final counters as JSON to FILE\n"
      "  --rt-priority N             run the forwarders SCHED_FIFO at priority N (1-99), so a\n"
      "                              busy machine does not add scheduling delay to the link\n"
      "Stops on SIGINT / SIGTERM; exit 77 when namespaces or TUN are not available.");
}

double parse_number(const std::string& opt, const std::string& text, bool binary_suffix) {
  char* end = nullptr;
  errno = 0;
  double v = std::strtod(text.c_str(), &end);
  if (end == text.c_str() || errno != 0 || !std::isfinite(v) || v < 0) {
    usage_error(opt + ": not a non-negative number: '" + text + "'");
  }
  std::string suffix(end);
  const double k = binary_suffix ? 1024.0 : 1000.0;
  if (suffix == "K" || suffix == "k") v *= k;
  else if (suffix == "M" || suffix == "m") v *= k * k;
  else if (suffix == "G" || suffix == "g") v *= k * k * k;
  else if (!suffix.empty()) usage_error(opt + ": unknown suffix '" + suffix + "' in '" + text + "'");
  return v;
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "-h" || a == "--help") {
      print_help();
      std::exit(0);
    }
    if (i + 1 >= argc) usage_error("option " + a + " needs a value, or is unknown");
    std::string v = argv[++i];
    // name[-ab|-ba] -> which slot
    auto per_dir = [&](const std::string& base, std::optional<double>& both, std::optional<double>* dir,
                       bool binary, double scale) {
      const double x = parse_number(a, v, binary) * scale;
      if (a == base) both = x;
      else if (a == base + "-ab") dir[0] = x;
      else if (a == base + "-ba") dir[1] = x;
      else return false;
      return true;
    };
    if (a == "--ns-a") o.ns[0] = v;
    else if (a == "--ns-b") o.ns[1] = v;
    else if (a == "--dev-a") o.dev[0] = v;
    else if (a == "--dev-b") o.dev[1] = v;
    else if (a == "--seed") o.seed = static_cast<uint64_t>(parse_number(a, v, false));
    else if (a == "--stats-interval") o.stats_interval_s = parse_number(a, v, false);
    else if (a == "--stats-json") o.stats_json = v;
    else if (a == "--rt-priority") o.rt_priority = static_cast<int>(parse_number(a, v, false));
    else if (per_dir("--delay-ms", o.delay_ms_both, o.delay_ms, false, 1)) {
    } else if (per_dir("--rate", o.rate_bps_both, o.rate_bps, false, 1)) {
    } else if (per_dir("--loss", o.loss_both, o.loss, false, 1)) {
    } else if (per_dir("--queue-bytes", o.queue_bytes_both, o.queue_bytes, true, 1)) {
    } else if (per_dir("--queue-ms", o.queue_ms_both, o.queue_ms, false, 1)) {
    } else {
      usage_error("unknown option " + a);
    }
  }
  if (o.ns[0].empty() || o.ns[1].empty()) usage_error("--ns-a and --ns-b are required");
  for (const auto& d : o.dev) {
    if (d.empty() || d.size() >= IFNAMSIZ) usage_error("device name '" + d + "' must be 1-15 characters");
  }
  return o;
}

// Resolves shared and per-direction options into the two directions' configs.
void resolve(const Options& o, DirectionConfig cfg[2]) {
  auto pick = [](const std::optional<double>& dir, const std::optional<double>& both, double dflt) {
    return dir ? *dir : both ? *both : dflt;
  };
  for (int d = 0; d < 2; ++d) {
    cfg[d].delay_s = pick(o.delay_ms[d], o.delay_ms_both, 0) / 1000.0;
    cfg[d].rate_bps = pick(o.rate_bps[d], o.rate_bps_both, 0);
    cfg[d].loss = pick(o.loss[d], o.loss_both, 0);
    if (cfg[d].loss > 1) usage_error("loss must be a probability in 0..1");
  }
  const double rtt_s = cfg[0].delay_s + cfg[1].delay_s;
  for (int d = 0; d < 2; ++d) {
    if (o.queue_bytes[d] && o.queue_ms[d]) usage_error("give --queue-bytes-XX or --queue-ms-XX, not both");
    if (o.queue_bytes_both && o.queue_ms_both) usage_error("give --queue-bytes or --queue-ms, not both");
    const double bytes_per_ms = cfg[d].rate_bps / 8 / 1000;
    double bytes;
    // A per-direction value beats a shared one, of either kind.
    if (o.queue_bytes[d]) bytes = *o.queue_bytes[d];
    else if (o.queue_ms[d]) bytes = *o.queue_ms[d] * bytes_per_ms;
    else if (o.queue_bytes_both) bytes = *o.queue_bytes_both;
    else if (o.queue_ms_both) bytes = *o.queue_ms_both * bytes_per_ms;
    else bytes = std::max(64.0 * 1024, rtt_s * cfg[d].rate_bps / 8);
    // Below one full-size packet nothing would ever pass.
    cfg[d].queue_bytes = static_cast<uint64_t>(std::max(bytes, 1500.0));
  }
}

// Where a namespace name is mounted, and the identity of the namespace behind it.
std::string namespace_path(const std::string& ns) {
  return ns.find('/') != std::string::npos ? ns : "/run/netns/" + ns;
}
struct NamespaceId {
  dev_t dev = 0;
  ino_t ino = 0;
};

// Opens /dev/net/tun inside namespace `ns` and binds it to device `dev` (created if it
// does not exist). The fd stays tied to that namespace's device after we switch back.
// `id` receives the namespace's identity, to notice later that it was deleted.
int open_tun_in_namespace(const std::string& ns, const std::string& dev, NamespaceId& id) {
  auto fail = [&](const std::string& what, int err) -> int {
    std::fprintf(stderr, "linkemu: %s in namespace %s: %s\n", what.c_str(), ns.c_str(), std::strerror(err));
    const bool unavailable = err == EPERM || err == EACCES || err == ENOENT || err == ENODEV ||
                             err == ENXIO || err == EINVAL || err == ENOSYS;
    std::exit(unavailable ? kExitUnavailable : 1);
  };
  const int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0) fail("open /proc/self/ns/net", errno);
  const std::string path = namespace_path(ns);
  const int target = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (target < 0) {
    const int err = errno;
    std::fprintf(stderr, "linkemu: namespace %s: open %s: %s (create it with 'ip netns add %s')\n", ns.c_str(),
                 path.c_str(), std::strerror(err), ns.c_str());
    std::exit(err == ENOENT || err == EACCES || err == EPERM ? kExitUnavailable : 1);
  }
  struct stat st{};
  if (fstat(target, &st) == 0) id = {st.st_dev, st.st_ino};
  if (setns(target, CLONE_NEWNET) != 0) fail("setns", errno);
  const int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  const int open_err = errno;
  ifreq ifr{};
  int ioctl_err = 0;
  if (fd >= 0) {
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    std::snprintf(ifr.ifr_name, IFNAMSIZ, "%s", dev.c_str());
    if (ioctl(fd, TUNSETIFF, &ifr) != 0) ioctl_err = errno;
  }
  // Back to our own namespace before reporting anything, so later code is unaffected.
  if (setns(self, CLONE_NEWNET) != 0) fail("setns back to the original namespace", errno);
  close(self);
  close(target);
  if (fd < 0) fail("open /dev/net/tun", open_err);
  if (ioctl_err != 0) fail("TUNSETIFF " + dev + " (IFF_TUN|IFF_NO_PI)", ioctl_err);
  return fd;
}

// One direction: reads packets from `in_fd`, runs them through the LinkModel and writes
// each to `out_fd` at its departure time. Stops when `stop_fd` becomes readable.
class Forwarder {
 public:
  Forwarder(int direction, const DirectionConfig& cfg, uint64_t seed, int in_fd, int out_fd, int stop_fd,
            Counters& counters)
      : model_(cfg, seed_for(seed, direction)),
        // What can be in flight: the delay line at the bottleneck rate (or 1 Gbit/s when
        // there is none) plus the queue, twice over for per-packet headers, + slack.
        fifo_(static_cast<size_t>(2 * (cfg.delay_s * (cfg.rate_bps > 0 ? cfg.rate_bps : 1e9) / 8 +
                                       static_cast<double>(cfg.queue_bytes))) +
              (4u << 20)),
        in_fd_(in_fd), out_fd_(out_fd), stop_fd_(stop_fd), c_(counters), buf_(kMaxPacket) {}

  // Returns an error message, or "" after a stop request.
  std::string run() {
    // ppoll timeouts are otherwise rounded up by the default 50 us timer slack.
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);
    pollfd fds[2] = {{in_fd_, POLLIN, 0}, {stop_fd_, POLLIN, 0}};
    for (;;) {
      int64_t now = now_ns();
      send_due(now);
      timespec timeout{}, *tp = nullptr;
      if (!fifo_.empty()) {
        const int64_t wait = std::max<int64_t>(0, fifo_.front().depart_ns - now);
        timeout.tv_sec = wait / 1'000'000'000;
        timeout.tv_nsec = wait % 1'000'000'000;
        tp = &timeout;
      }
      const int n = ppoll(fds, 2, tp, nullptr);
      if (n < 0) {
        if (errno == EINTR) continue;
        return std::string("ppoll: ") + std::strerror(errno);
      }
      if (fds[1].revents != 0) return "";
      if (fds[0].revents & (POLLERR | POLLHUP | POLLNVAL)) return "TUN device went away (POLLERR/POLLHUP)";
      if (fds[0].revents & POLLIN) {
        if (auto err = read_batch(); !err.empty()) return err;
      }
    }
  }

 private:
  std::string read_batch() {
    for (int i = 0; i < kReadBatch; ++i) {
      const ssize_t n = read(in_fd_, buf_.data(), buf_.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return "";
        return std::string("read from TUN: ") + std::strerror(errno);
      }
      if (n == 0) return "";
      const int64_t t = now_ns();
      const auto len = static_cast<uint32_t>(n);
      bump(c_.pkts_in);
      bump(c_.bytes_in, len);
      const Decision d = model_.offer(t, len);
      switch (d.verdict) {
        case Verdict::kLost:
          bump(c_.pkts_lost);
          bump(c_.bytes_lost, len);
          break;
        case Verdict::kQueueFull:
          bump(c_.pkts_dropped);
          bump(c_.bytes_dropped, len);
          break;
        case Verdict::kForward:
          if (!fifo_.push(d.depart_ns, buf_.data(), len)) {
            bump(c_.fifo_full);  // cannot happen with the sizing above; counted, not hidden
            break;
          }
          c_.queue_delay.record_us(static_cast<uint64_t>(d.queue_wait_ns / 1000));
          break;
      }
      // Do not let a burst of arrivals delay departures that are already due.
      if ((i & 7) == 7) send_due(now_ns());
    }
    return "";
  }

  void send_due(int64_t now) {
    while (!fifo_.empty()) {
      const auto p = fifo_.front();
      if (p.depart_ns > now) break;
      ssize_t n;
      do n = write(out_fd_, p.data, p.len);
      while (n < 0 && errno == EINTR);
      if (n == static_cast<ssize_t>(p.len)) {
        bump(c_.pkts_fwd);
        bump(c_.bytes_fwd, p.len);
      } else {
        bump(c_.write_errors);  // e.g. the far device is down; the packet is gone
      }
      fifo_.pop();
    }
  }

  LinkModel model_;
  PacketFifo fifo_;
  int in_fd_, out_fd_, stop_fd_;
  Counters& c_;
  std::vector<uint8_t> buf_;
};

const char* kDirName[2] = {"a->b", "b->a"};
const char* kDirKey[2] = {"a_to_b", "b_to_a"};

void print_stats(const Counters c[2], double elapsed_s) {
  for (int d = 0; d < 2; ++d) {
    const auto& x = c[d];
    auto ld = [](const std::atomic<uint64_t>& v) { return static_cast<unsigned long long>(v.load()); };
    std::fprintf(stderr,
                 "linkemu: %.1fs %s in %llu pkts %.1f MB | fwd %llu pkts %.1f MB | lost %llu | "
                 "queue-full %llu | write-err %llu | queue delay ms median %.3f p95 %.3f max %.3f\n",
                 elapsed_s, kDirName[d], ld(x.pkts_in), x.bytes_in.load() / 1e6, ld(x.pkts_fwd),
                 x.bytes_fwd.load() / 1e6, ld(x.pkts_lost), ld(x.pkts_dropped),
                 ld(x.write_errors) + ld(x.fifo_full), x.queue_delay.quantile_us(0.5) / 1000,
                 x.queue_delay.quantile_us(0.95) / 1000, x.queue_delay.max_us() / 1000.0);
  }
}

bool write_json(const std::string& path, const Counters c[2], const DirectionConfig cfg[2], uint64_t seed,
                double elapsed_s) {
  const std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (!f) {
    std::fprintf(stderr, "linkemu: cannot write stats JSON %s: %s\n", tmp.c_str(), std::strerror(errno));
    return false;
  }
  std::fprintf(f, "{\n  \"seconds\": %.3f,\n  \"seed\": %llu", elapsed_s, static_cast<unsigned long long>(seed));
  for (int d = 0; d < 2; ++d) {
    const auto& x = c[d];
    auto u = [](const std::atomic<uint64_t>& v) { return static_cast<unsigned long long>(v.load()); };
    std::fprintf(f,
                 ",\n  \"%s\": {\"delay_ms\": %.3f, \"rate_bps\": %.0f, \"loss\": %g, \"queue_bytes\": %llu,"
                 " \"packets_in\": %llu, \"bytes_in\": %llu, \"packets_forwarded\": %llu,"
                 " \"bytes_forwarded\": %llu, \"packets_lost\": %llu, \"bytes_lost\": %llu,"
                 " \"packets_dropped\": %llu, \"bytes_dropped\": %llu, \"write_errors\": %llu,"
                 " \"fifo_overflows\": %llu, \"queue_delay_median_ms\": %.3f, \"queue_delay_p95_ms\": %.3f,"
                 " \"queue_delay_max_ms\": %.3f}",
                 kDirKey[d], cfg[d].delay_s * 1000, cfg[d].rate_bps, cfg[d].loss,
                 static_cast<unsigned long long>(cfg[d].queue_bytes), u(x.pkts_in), u(x.bytes_in), u(x.pkts_fwd),
                 u(x.bytes_fwd), u(x.pkts_lost), u(x.bytes_lost), u(x.pkts_dropped), u(x.bytes_dropped),
                 u(x.write_errors), u(x.fifo_full), x.queue_delay.quantile_us(0.5) / 1000,
                 x.queue_delay.quantile_us(0.95) / 1000, x.queue_delay.max_us() / 1000.0);
  }
  std::fprintf(f, "\n}\n");
  const bool ok = std::fflush(f) == 0 && std::fclose(f) == 0;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::fprintf(stderr, "linkemu: cannot write stats JSON %s: %s\n", path.c_str(), std::strerror(errno));
    return false;
  }
  return true;
}

int run(int argc, char** argv) {
  const Options opt = parse_args(argc, argv);
  DirectionConfig cfg[2];
  resolve(opt, cfg);

  int tun[2];
  NamespaceId ns_id[2];
  for (int i = 0; i < 2; ++i) tun[i] = open_tun_in_namespace(opt.ns[i], opt.dev[i], ns_id[i]);
  // Our TUN fds keep a namespace alive after `ip netns del`; without this check a
  // linkemu whose namespaces were deleted under it would forward nothing forever.
  auto namespace_gone = [&]() -> int {
    for (int i = 0; i < 2; ++i) {
      struct stat st{};
      if (stat(namespace_path(opt.ns[i]).c_str(), &st) != 0 || st.st_dev != ns_id[i].dev ||
          st.st_ino != ns_id[i].ino) {
        return i;
      }
    }
    return -1;
  };

  // Signals are taken synchronously by the main thread only; the forwarders never see them.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  const int stop_fd = eventfd(0, EFD_CLOEXEC);
  if (stop_fd < 0) {
    std::fprintf(stderr, "linkemu: eventfd: %s\n", std::strerror(errno));
    return 1;
  }
  Counters counters[2];
  std::string errors[2];
  std::vector<std::thread> threads;
  const int64_t t0 = now_ns();
  for (int d = 0; d < 2; ++d) {
    threads.emplace_back([&, d] {
      if (opt.rt_priority > 0) {
        sched_param sp{};
        sp.sched_priority = opt.rt_priority;
        if (const int err = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp); err != 0) {
          std::fprintf(stderr, "linkemu: %s: SCHED_FIFO priority %d not granted (%s); running unprioritised\n",
                       kDirName[d], opt.rt_priority, std::strerror(err));
        }
      }
      Forwarder f(d, cfg[d], opt.seed, tun[d], tun[1 - d], stop_fd, counters[d]);
      errors[d] = f.run();
      // A failed direction stops the emulator: a half-working link would mislead.
      if (!errors[d].empty()) kill(getpid(), SIGTERM);
    });
  }
  for (int d = 0; d < 2; ++d) {
    std::fprintf(stderr, "linkemu: %s %s/%s -> %s/%s: delay %.3f ms, rate %.0f bit/s%s, queue %llu bytes, loss %g\n",
                 kDirName[d], opt.ns[d].c_str(), opt.dev[d].c_str(), opt.ns[1 - d].c_str(), opt.dev[1 - d].c_str(),
                 cfg[d].delay_s * 1000, cfg[d].rate_bps, cfg[d].rate_bps > 0 ? "" : " (unlimited)",
                 static_cast<unsigned long long>(cfg[d].queue_bytes), cfg[d].loss);
  }
  std::fprintf(stderr, "linkemu: ready (pid %d, seed %llu)\n", getpid(), static_cast<unsigned long long>(opt.seed));

  // Wake at least once a second to check the namespaces; print stats when due.
  const double interval = opt.stats_interval_s;
  int64_t next_stats = interval > 0 ? t0 + static_cast<int64_t>(interval * 1e9) : INT64_MAX;
  bool namespace_deleted = false;
  for (;;) {
    const int64_t wait_ns = std::clamp<int64_t>(next_stats - now_ns(), 1'000'000, 1'000'000'000);
    timespec ts{static_cast<time_t>(wait_ns / 1'000'000'000), static_cast<long>(wait_ns % 1'000'000'000)};
    const int sig = sigtimedwait(&sigs, nullptr, &ts);
    if (sig > 0) break;
    if (const int gone = namespace_gone(); gone >= 0) {
      std::fprintf(stderr, "linkemu: namespace %s was deleted or replaced; stopping\n", opt.ns[gone].c_str());
      namespace_deleted = true;
      break;
    }
    if (const int64_t now = now_ns(); now >= next_stats) {
      print_stats(counters, (now - t0) / 1e9);
      while (next_stats <= now) next_stats += static_cast<int64_t>(interval * 1e9);
    }
  }
  const uint64_t one = 1;
  if (write(stop_fd, &one, sizeof one) != sizeof one) {
    std::fprintf(stderr, "linkemu: cannot wake the forwarders: %s\n", std::strerror(errno));
    std::abort();
  }
  for (auto& t : threads) t.join();
  const double elapsed = (now_ns() - t0) / 1e9;
  print_stats(counters, elapsed);
  int rc = namespace_deleted ? 1 : 0;
  for (int d = 0; d < 2; ++d) {
    if (!errors[d].empty()) {
      std::fprintf(stderr, "linkemu: %s stopped: %s\n", kDirName[d], errors[d].c_str());
      rc = 1;
    }
  }
  if (!opt.stats_json.empty() && !write_json(opt.stats_json, counters, cfg, opt.seed, elapsed)) rc = 1;
  close(tun[0]);
  close(tun[1]);
  close(stop_fd);
  return rc;
}

}  // namespace
}  // namespace linkemu

int main(int argc, char** argv) { return linkemu::run(argc, argv); }

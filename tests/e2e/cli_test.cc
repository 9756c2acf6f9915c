// The ferry binary as users and scripts run it: real processes, real exit codes, and the
// peak RSS of each side against --memory.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <cstdio>

#include "e2e_util.h"
#include "ferry/url.h"

namespace ferry::test {
namespace {

struct Child {
  pid_t pid = -1;
  int out_fd = -1;  // child's stdout
  int err_fd = -1;  // child's stderr
};

Child spawn(const std::vector<std::string>& args) {
  int out[2], err[2];
  if (pipe(out) != 0 || pipe(err) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    dup2(out[1], 1);
    dup2(err[1], 2);
    close(out[0]);
    close(err[0]);
    // Every child runs under timeout(1): a hang fails the test with its output instead of
    // waiting for ctest's limit.
    std::vector<std::string> full = {"/usr/bin/timeout", "-k", "5", "240"};
    full.insert(full.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (const auto& a : full) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(out[1]);
  close(err[1]);
  return {pid, out[0], err[0]};
}

std::string read_all(int fd) {
  std::string s;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
  close(fd);
  return s;
}

std::string read_line(int fd) {
  std::string s;
  char c;
  while (read(fd, &c, 1) == 1 && c != '\n') s.push_back(c);
  return s;
}

struct Finished {
  int exit_code = -1;
  long max_rss_kb = 0;
  std::string out, err;
};

Finished wait_for(Child& c) {
  Finished f;
  f.out = read_all(c.out_fd);
  f.err = read_all(c.err_fd);
  int status = 0;
  rusage ru{};
  wait4(c.pid, &status, 0, &ru);
  f.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  f.max_rss_kb = ru.ru_maxrss;
  return f;
}

Finished run(const std::vector<std::string>& args) {
  Child c = spawn(args);
  return wait_for(c);
}

const std::string kFerry = FERRY_BINARY;
// In an AddressSanitizer build (packaging/run-sanitizers.sh) a process's peak RSS measures
// ASan (freed blocks held in its quarantine, shadow memory, redzones), not ferry's memory
// budget, so the RSS bounds are checked by the normal build only; the transfer itself and
// its result are still checked.
#ifdef __SANITIZE_ADDRESS__
constexpr bool kAddressSanitizer = true;
#else
constexpr bool kAddressSanitizer = false;
#endif

TEST(CliTest, RecvOncePrintsItsUrlFirstAndExitsWithTheTransferStatus) {
  TempDir src("src"), dst("dst");
  write_text(src / "hello.txt", "hello");
  Child rx = spawn({kFerry, "recv", "--listen", "127.0.0.1:0", "--root", dst.path(), "--once", "-q"});
  std::string url = read_line(rx.out_fd);
  ASSERT_EQ(url.rfind("ferry://127.0.0.1:", 0), 0u) << url;
  // Zero setup, secure by default: the URL carries the token and the certificate pin.
  auto parsed = parse_ferry_url(url);
  ASSERT_TRUE(parsed) << url;
  EXPECT_EQ(parsed->token.size(), 22u) << "128 random bits as base64url: " << url;
  EXPECT_EQ(parsed->fingerprint.size(), 7u + 64u) << url;
  Finished tx = run({kFerry, "send", "--no-progress", src / "hello.txt", url_with_path(url, "inbox")});
  EXPECT_EQ(tx.exit_code, 0) << tx.err;
  EXPECT_NE(tx.out.find("sent 1 files"), std::string::npos) << tx.out;
  Finished r = wait_for(rx);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(read_text(dst / "inbox/hello.txt"), "hello");
}

TEST(CliTest, JsonSummaryIsValidJsonWithTheWholeFileHash) {
  TempDir src("src"), dst("dst");
  write_random_file(src / "a.bin", 5 << 20, 1);
  Child rx = spawn({kFerry, "recv", "--listen", "127.0.0.1:0", "--root", dst.path(), "--once", "-q"});
  std::string url = read_line(rx.out_fd);
  Finished tx = run({kFerry, "send", "--json", src / "a.bin", url});
  ASSERT_EQ(tx.exit_code, 0) << tx.err;
  wait_for(rx);
  std::string json_file = src / "summary.json";
  write_text(json_file, tx.out);
  std::string check = "python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
                      "f=[x for x in d[\"files\"] if x[\"path\"]==\"a.bin\"][0]; "
                      "assert d[\"ok\"] and d[\"files_sent\"]==1 and d[\"bytes_on_disk\"]==5242880; "
                      "print(f[\"xxh3_128\"])' '" + json_file + "'";
  FILE* p = popen(check.c_str(), "r");
  ASSERT_NE(p, nullptr);
  char buf[128] = {};
  ASSERT_NE(fgets(buf, sizeof buf, p), nullptr) << tx.out;
  EXPECT_EQ(pclose(p), 0) << tx.out;
  EXPECT_EQ(std::string(buf).substr(0, 32), hash_file(src / "a.bin").hex());
}

// Peak RSS of both processes stays within --memory plus a fixed overhead (code, heap
// bookkeeping, thread stacks), whatever the file size: 256 MiB through a 32 MiB budget.
TEST(CliTest, PeakRssStaysWithinTheMemoryBudgetOnBothSides) {
  TempDir src("src"), dst("dst");
  write_random_file(src / "big.bin", 256ull << 20, 5);
  Child rx = spawn({kFerry, "recv", "--listen", "127.0.0.1:0", "--root", dst.path(), "--once", "-q", "--memory",
                    "32M"});
  std::string url = read_line(rx.out_fd);
  Finished tx = run({kFerry, "send", "-q", "--memory", "32M", "--chunk-size", "4M", src / "big.bin", url});
  Finished r = wait_for(rx);
  ASSERT_EQ(tx.exit_code, 0) << tx.err;
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(hash_file(dst / "big.bin"), hash_file(src / "big.bin"));
  const long kOverheadKb = 40 * 1024;
  if (!kAddressSanitizer) {  // see kAddressSanitizer
    EXPECT_LE(tx.max_rss_kb, 32 * 1024 + kOverheadKb) << "sender peak RSS";
    EXPECT_LE(r.max_rss_kb, 32 * 1024 + kOverheadKb) << "receiver peak RSS";
  }
}

TEST(CliTest, BadFlagsAreUsageErrorsWithExitCode2AndNameTheFlag) {
  Finished a = run({kFerry, "send", "--chunk-size", "5X", "a", "ferry://127.0.0.1/"});
  EXPECT_EQ(a.exit_code, 2);
  EXPECT_NE(a.err.find("--chunk-size"), std::string::npos) << a.err;
  Finished b = run({kFerry, "send", "--compress", "fast", "a", "ferry://127.0.0.1/"});
  EXPECT_EQ(b.exit_code, 2);
  EXPECT_NE(b.err.find("--compress"), std::string::npos) << b.err;
  Finished c = run({kFerry, "send", "a", "http://127.0.0.1/"});
  EXPECT_EQ(c.exit_code, 2);
  EXPECT_NE(c.err.find("http://127.0.0.1/"), std::string::npos) << c.err;
  Finished d = run({kFerry, "send", "--streams", "0", "a", "ferry://127.0.0.1/"});
  EXPECT_EQ(d.exit_code, 2);
  Finished e = run({kFerry, "send", "--memory", "1M", "a", "ferry://127.0.0.1/"});
  EXPECT_EQ(e.exit_code, 2);
  EXPECT_NE(e.err.find("--memory"), std::string::npos) << e.err;
  Finished f = run({kFerry, "recv"});
  EXPECT_EQ(f.exit_code, 2);
}

TEST(CliTest, BadUdpFlagsAreUsageErrors) {
  Finished a = run({kFerry, "send", "--target-rate", "100M", "a", "ferry://127.0.0.1/"});
  EXPECT_EQ(a.exit_code, 2);
  EXPECT_NE(a.err.find("--transport udp"), std::string::npos) << a.err;
  Finished b = run({kFerry, "send", "--transport", "udp", "--policy", "greedy", "a", "ferry://127.0.0.1/"});
  EXPECT_EQ(b.exit_code, 2);
  EXPECT_NE(b.err.find("--policy"), std::string::npos) << b.err;
  Finished c = run({kFerry, "send", "--transport", "udp", "--target-rate", "fast", "a", "ferry://127.0.0.1/"});
  EXPECT_EQ(c.exit_code, 2);
  EXPECT_NE(c.err.find("--target-rate"), std::string::npos) << c.err;
}

// The CLI over UDP with the seeded fault shim on both ends (FERRY_TEST_UDP_FAULTS, a named
// fake: loopback never loses): the data arrives intact, --json reports the UDP path, and
// both processes stay within --memory like the TCP path does.
TEST(CliTest, UdpTransferReportsItsPathInJsonAndStaysWithinTheMemoryBudget) {
  TempDir src("src"), dst("dst");
  write_random_file(src / "big.bin", 128ull << 20, 6);
  setenv("FERRY_TEST_UDP_FAULTS", "drop=0.02,reorder=0.02,dup=0.01,seed=5", 1);
  Child rx = spawn({kFerry, "recv", "--listen", "127.0.0.1:0", "--root", dst.path(), "--once", "-q", "--memory",
                    "32M"});
  std::string url = read_line(rx.out_fd);
  Finished tx = run({kFerry, "send", "--json", "--transport", "udp", "--memory", "32M", src / "big.bin", url});
  unsetenv("FERRY_TEST_UDP_FAULTS");
  Finished r = wait_for(rx);
  ASSERT_EQ(tx.exit_code, 0) << tx.err;
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(hash_file(dst / "big.bin"), hash_file(src / "big.bin"));
  std::string json_file = src / "summary.json";
  write_text(json_file, tx.out);
  std::string check = "python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); u=d[\"udp\"]; "
                      "assert d[\"ok\"] and u[\"policy\"]==\"fair\" and u[\"packets_lost\"]>0 and "
                      "u[\"retransmitted_bytes\"]>0 and u[\"data_goodput_bps\"]>0 and u[\"srtt_ms\"]>0' '" +
                      json_file + "'";
  EXPECT_EQ(std::system(check.c_str()), 0) << tx.out;
  const long kOverheadKb = 40 * 1024;
  if (!kAddressSanitizer) {  // see kAddressSanitizer
    EXPECT_LE(tx.max_rss_kb, 32 * 1024 + kOverheadKb) << "sender peak RSS";
    EXPECT_LE(r.max_rss_kb, 32 * 1024 + kOverheadKb) << "receiver peak RSS";
  }
}

TEST(CliTest, UnreachableReceiverExitsWith3AndNamesIt) {
  TempDir src("src");
  write_text(src / "a", "x");
  Finished r = run({kFerry, "send", "--no-progress", src / "a", "ferry://127.0.0.1:1/"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_NE(r.err.find("127.0.0.1:1"), std::string::npos) << r.err;
}

TEST(CliTest, SigtermStopsTheReceiverWithExitCode8) {
  TempDir dst("dst");
  Child rx = spawn({kFerry, "recv", "--listen", "127.0.0.1:0", "--root", dst.path()});
  std::string url = read_line(rx.out_fd);
  ASSERT_FALSE(url.empty());
  kill(rx.pid, SIGTERM);
  Finished r = wait_for(rx);
  EXPECT_EQ(r.exit_code, 8) << r.err;
}

TEST(CliTest, ManifestThenVerifyExitsZeroAndAFlippedByteExitsSeven) {
  TempDir src("src"), work("work");
  ASSERT_EQ(mkdir((src / "seq").c_str(), 0755), 0);
  for (int i = 0; i < 5; ++i) write_random_file(src / ("seq/f." + std::to_string(i) + ".exr"), 40000, i);
  std::string m = work / "seq.manifest";
  Finished made = run({kFerry, "manifest", "-q", src.path(), "-o", m});
  ASSERT_EQ(made.exit_code, 0) << made.err;
  Finished ok = run({kFerry, "verify", "-q", src.path(), "--manifest", m});
  EXPECT_EQ(ok.exit_code, 0) << ok.out << ok.err;
  std::string content = read_text(src / "seq/f.3.exr");
  content[777] = static_cast<char>(content[777] ^ 1);
  write_text(src / "seq/f.3.exr", content);
  Finished bad = run({kFerry, "verify", "-q", src.path(), "--manifest", m});
  EXPECT_EQ(bad.exit_code, 7);
  EXPECT_NE(bad.out.find("mismatch   seq/f.3.exr"), std::string::npos) << bad.out;
}

TEST(CliTest, SyncExitsZeroWhenItTransferredAndTenWhenNothingWasToDo) {
  TempDir src("src"), dst("dst");
  write_text(src / "a.txt", "a");
  Child rx = spawn({kFerry, "recv", "--listen", "127.0.0.1:0", "--root", dst.path(), "-q"});
  std::string url = read_line(rx.out_fd);
  Finished first = run({kFerry, "sync", "-q", src.path(), url_with_path(url, "m")});
  EXPECT_EQ(first.exit_code, 0) << first.err;
  Finished again = run({kFerry, "sync", "-q", "--json", src.path(), url_with_path(url, "m")});
  EXPECT_EQ(again.exit_code, 10) << again.err;
  EXPECT_NE(again.out.find("\"exit_code\":10"), std::string::npos) << again.out;
  Finished excluded = run({kFerry, "sync", "-q", "--exclude", "*.tmp", src.path(), url_with_path(url, "m")});
  EXPECT_EQ(excluded.exit_code, 10) << "an --exclude rule must not swallow SRC: " << excluded.err;
  kill(rx.pid, SIGTERM);
  wait_for(rx);
  EXPECT_EQ(read_text(dst / "m/a.txt"), "a");
}

TEST(CliTest, InsecureWarnsEvenWhenQuietAndPlaintextNeedsBothSides) {
  TempDir src("src"), dst("dst");
  write_text(src / "a.txt", "a");
  Child rx = spawn({kFerry, "recv", "--listen", "127.0.0.1:0", "--root", dst.path(), "-q"});
  std::string url = read_line(rx.out_fd);
  auto parsed = parse_ferry_url(url);
  ASSERT_TRUE(parsed) << url;
  // --insecure: no pin, no CA, but still the token; loud on stderr whatever -q says.
  FerryUrl no_pin = *parsed;
  no_pin.fingerprint.clear();
  Finished insecure = run({kFerry, "send", "-q", "--insecure", src / "a.txt", no_pin.to_string()});
  EXPECT_EQ(insecure.exit_code, 0) << insecure.err;
  EXPECT_NE(insecure.err.find("WARNING: --insecure"), std::string::npos) << insecure.err;
  // Without the pin and without --insecure the system store cannot vouch for an ephemeral
  // certificate: refused (exit 6).
  Finished unverified = run({kFerry, "send", "-q", src / "a.txt", no_pin.to_string()});
  EXPECT_EQ(unverified.exit_code, 6) << unverified.err;
  // A plaintext sender cannot talk to a TLS receiver.
  Finished plain = run({kFerry, "send", "-q", "--plaintext", src / "a.txt", url});
  EXPECT_NE(plain.exit_code, 0);
  kill(rx.pid, SIGTERM);
  wait_for(rx);

  Child prx = spawn({kFerry, "recv", "--listen", "127.0.0.1:0", "--root", dst.path(), "--plaintext", "--once", "-q"});
  std::string purl = read_line(prx.out_fd);
  EXPECT_EQ(purl.find('?'), std::string::npos) << "no token or fingerprint without TLS: " << purl;
  Finished ok = run({kFerry, "send", "--json", "--plaintext", src / "a.txt", url_with_path(purl, "p")});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("\"encrypted\":false"), std::string::npos) << ok.out;
  wait_for(prx);
  EXPECT_EQ(read_text(dst / "p/a.txt"), "a");
}

}  // namespace
}  // namespace ferry::test

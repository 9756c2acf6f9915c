// ferry get / ferry ls against a real receiver (in-process Receiver, or `ferry recv` and
// `ferry get` processes): the server plays the sender role on connections the client opened.
// Downloads must arrive byte-identical with modes and mtimes, resume after the client is
// killed, respect --overwrite, and never read anything outside the served root.
#include <signal.h>

#include <regex>

#include "e2e_util.h"
#include "codec/hash.h"
#include "ferry/get.h"
#include "ferry/url.h"
#include "manifest/journal.h"

namespace ferry::test {
namespace {

const std::string kFerry = FERRY_BINARY;

void set_mtime(const std::string& path, int64_t sec) {
  timespec ts[2] = {{sec, 123456789}, {sec, 123456789}};
  ASSERT_EQ(utimensat(AT_FDCWD, path.c_str(), ts, AT_SYMLINK_NOFOLLOW), 0) << path;
}

SendOptions get_options(const ReceiverThread& rx) {
  SendOptions o = quiet_options();
  o.token = rx.token();
  o.tls.fingerprint = rx.receiver()->fingerprint();
  o.chunk_size = 1 << 20;
  o.memory = 64 << 20;
  return o;
}

GetSource source(const ReceiverThread& rx, const std::string& path, bool contents = false) {
  return GetSource{rx.url(path), contents};
}

bool exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

// Every regular file under `dir` whose bytes contain `marker`.
std::vector<std::string> files_containing(const std::string& dir, const std::string& marker) {
  std::map<std::string, TreeItem> t;
  list_tree(dir, "", &t);
  std::vector<std::string> out;
  for (const auto& [rel, item] : t)
    if (item.type == 'f' && read_text(dir + "/" + rel).find(marker) != std::string::npos) out.push_back(rel);
  return out;
}

class GetTest : public ::testing::Test {
 protected:
  TempDir served_{"get-served"};
  TempDir local_{"get-local"};
  std::string dst() const { return local_ / "dl"; }
};

TEST_F(GetTest, LargeFileAndTreeArriveByteIdenticalWithModesAndMtimes) {
  std::string shot = served_ / "shot";
  ASSERT_EQ(mkdir(shot.c_str(), 0750), 0);
  write_random_file(shot + "/plate.exr", (64ull << 20) + 12345, 7);  // >= 64 MiB, odd tail
  ASSERT_EQ(mkdir((shot + "/empty dir").c_str(), 0700), 0);
  ASSERT_EQ(mkdir((shot + "/ünïcødé ✓").c_str(), 0755), 0);
  write_text(shot + "/ünïcødé ✓/naïve file.txt", "grüße");
  write_text(shot + "/zero", "");
  ASSERT_EQ(chmod((shot + "/zero").c_str(), 0600), 0);
  ASSERT_EQ(symlink("plate.exr", (shot + "/latest").c_str()), 0);
  ASSERT_EQ(symlink("/nonexistent/target", (shot + "/dangling").c_str()), 0);
  for (const char* p : {"/plate.exr", "/zero", "/ünïcødé ✓/naïve file.txt", "/ünïcødé ✓", "/empty dir", ""})
    set_mtime(shot + p, 1'600'000'000);

  ReceiverThread rx(served_.path());
  TransferReport r = get_files({source(rx, "shot")}, dst(), get_options(rx));
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_EQ(r.files_sent, 3u);
  EXPECT_EQ(r.bytes_on_disk, (64ull << 20) + 12345 + std::string("grüße").size());
  expect_same_tree(served_.path(), dst());
  EXPECT_TRUE(leftover_temp_files(dst()).empty());
}

TEST_F(GetTest, SeveralPathsAndTheContentsOfADirectoryLandUnderLocalDir) {
  write_text(served_ / "a.txt", "alpha");
  ASSERT_EQ(mkdir((served_ / "dir").c_str(), 0755), 0);
  write_text(served_ / "dir/b.txt", "beta");
  ASSERT_EQ(mkdir((served_ / "dir/sub").c_str(), 0755), 0);
  write_text(served_ / "dir/sub/c.txt", "gamma");
  ReceiverThread rx(served_.path());
  TransferReport r = get_files({source(rx, "a.txt"), source(rx, "dir", /*contents=*/true)}, dst(), get_options(rx));
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  EXPECT_EQ(read_text(dst() + "/a.txt"), "alpha");
  EXPECT_EQ(read_text(dst() + "/b.txt"), "beta");
  EXPECT_EQ(read_text(dst() + "/sub/c.txt"), "gamma");
  EXPECT_FALSE(exists(dst() + "/dir"));
}

TEST_F(GetTest, WrongTokenIsRefusedAndCreatesNothingLocally) {
  write_text(served_ / "a.txt", "alpha");
  ReceiverThread rx(served_.path());
  SendOptions o = get_options(rx);
  o.token = "not-the-token";
  GetSource s = source(rx, "a.txt");
  s.url.token.clear();
  TransferReport r = get_files({s}, dst(), o);
  EXPECT_EQ(r.status.code(), Error::kRefused) << r.status.to_string();
  EXPECT_NE(r.status.message().find("authentication failed"), std::string::npos) << r.status.message();
  EXPECT_FALSE(exists(dst()));
  EXPECT_EQ(rx.receiver()->metrics().auth_failures, 1u);
}

TEST_F(GetTest, DotDotAbsoluteAndSymlinkEscapesAreRefusedAndNothingOutsideIsRead) {
  // served_/secret.txt is outside the served root served_/root; links inside point at it.
  const std::string marker = "TOP-SECRET-7f3a";
  write_text(served_ / "secret.txt", marker);
  std::string root = served_ / "root";
  ASSERT_EQ(mkdir(root.c_str(), 0755), 0);
  write_text(root + "/ok.txt", "fine");
  ASSERT_EQ(symlink("../secret.txt", (root + "/escape").c_str()), 0);
  ASSERT_EQ(symlink(served_.path().c_str(), (root + "/up").c_str()), 0);  // a directory outside
  ReceiverThread rx(root);
  for (const std::string path : {"../secret.txt", "/etc/passwd", "up/secret.txt", "up/root/ok.txt", "ok.txt/../../secret.txt"}) {
    GetSource s = source(rx, "");
    s.url.path = path;  // as a hostile or mistaken client would send it, unnormalised
    TransferReport r = get_files({s}, dst(), get_options(rx));
    EXPECT_FALSE(r.status.is_ok()) << path;
    EXPECT_EQ(r.status.code(), Error::kRefused) << path << ": " << r.status.to_string();
    EXPECT_FALSE(exists(dst())) << path << ": nothing may be created for a refused request";
  }
  // The whole root: the links arrive as links (their text), never as what they point to.
  TransferReport r = get_files({source(rx, "", true)}, dst(), get_options(rx));
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  char buf[256] = {};
  ASSERT_GT(readlink((dst() + "/escape").c_str(), buf, sizeof buf - 1), 0);
  EXPECT_EQ(std::string(buf), "../secret.txt");
  struct stat st {};
  ASSERT_EQ(lstat((dst() + "/up").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  EXPECT_EQ(read_text(dst() + "/ok.txt"), "fine");
  EXPECT_TRUE(files_containing(local_.path(), marker).empty());
}

TEST_F(GetTest, SymlinkNamedAsTheSourceArrivesAsALink) {
  write_text(served_ / "secret-outside", "x");
  std::string root = served_ / "root";
  ASSERT_EQ(mkdir(root.c_str(), 0755), 0);
  ASSERT_EQ(symlink("../secret-outside", (root + "/link").c_str()), 0);
  ReceiverThread rx(root);
  TransferReport r = get_files({source(rx, "link")}, dst(), get_options(rx));
  ASSERT_TRUE(r.status.is_ok()) << r.status.to_string();
  struct stat st {};
  ASSERT_EQ(lstat((dst() + "/link").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
}

TEST_F(GetTest, MissingPathIsAUsageErrorNamingIt) {
  ReceiverThread rx(served_.path());
  TransferReport r = get_files({source(rx, "no/such/file")}, dst(), get_options(rx));
  EXPECT_EQ(r.status.code(), Error::kUsage) << r.status.to_string();
  EXPECT_NE(r.status.message().find("no such file or directory"), std::string::npos) << r.status.message();
  EXPECT_FALSE(exists(dst()));
}

TEST_F(GetTest, OverwriteNeverKeepsLocalFilesAndDiffReplacesOnlyChangedOnes) {
  write_text(served_ / "a.txt", "server version");
  write_text(served_ / "b.txt", "unchanged");
  ReceiverThread rx(served_.path());
  SendOptions o = get_options(rx);
  ASSERT_TRUE(get_files({source(rx, "", true)}, dst(), o).status.is_ok());
  write_text(dst() + "/a.txt", "local edit, longer than the server's");

  o.overwrite = Overwrite::kNever;
  TransferReport never = get_files({source(rx, "", true)}, dst(), o);
  ASSERT_TRUE(never.status.is_ok()) << never.status.to_string();
  EXPECT_EQ(never.files_sent, 0u);
  EXPECT_EQ(read_text(dst() + "/a.txt"), "local edit, longer than the server's");

  o.overwrite = Overwrite::kDiff;
  TransferReport diff = get_files({source(rx, "", true)}, dst(), o);
  ASSERT_TRUE(diff.status.is_ok()) << diff.status.to_string();
  EXPECT_EQ(diff.files_sent, 1u) << "only the changed file travels";
  EXPECT_EQ(read_text(dst() + "/a.txt"), "server version");
  EXPECT_EQ(read_text(dst() + "/b.txt"), "unchanged");
  // The report (what --json prints) has an entry per file: what happened, and the hash of
  // what was written.
  auto entry = [&](const std::string& path) -> FileReport {
    for (const auto& f : diff.files)
      if (f.path == path) return f;
    ADD_FAILURE() << "no report entry for " << path;
    return {};
  };
  const std::string server = "server version";
  FileReport a = entry("a.txt"), b = entry("b.txt");
  EXPECT_EQ(a.action, "sent");
  EXPECT_EQ(a.type, "file");
  EXPECT_EQ(a.size, server.size());
  EXPECT_EQ(a.xxh3_128, xxh3_128(server.data(), server.size()).hex());
  EXPECT_EQ(b.action, "skipped");
  EXPECT_EQ(b.xxh3_128, "");
  EXPECT_EQ(diff.files.size(), 2u);
}

TEST_F(GetTest, ListsADirectoryOneLevelOrRecursivelyAndAFileByItsName) {
  ASSERT_EQ(mkdir((served_ / "d").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((served_ / "d/sub").c_str(), 0700), 0);
  write_text(served_ / "d/a.txt", "12345");
  write_text(served_ / "d/sub/b.txt", "x");
  ASSERT_EQ(symlink("a.txt", (served_ / "d/ln").c_str()), 0);
  ReceiverThread rx(served_.path());
  SendOptions o = get_options(rx);
  auto names = [](const std::vector<RemoteEntry>& v) {
    std::vector<std::string> n;
    for (const auto& e : v) n.push_back(e.path);
    return n;
  };
  auto one = list_remote(rx.url("d"), false, o);
  ASSERT_TRUE(one) << one.status().to_string();
  EXPECT_EQ(names(*one), (std::vector<std::string>{"a.txt", "ln", "sub"}));
  EXPECT_EQ((*one)[0].size, 5u);
  EXPECT_EQ((*one)[1].type, "symlink");
  EXPECT_EQ((*one)[1].link_target, "a.txt");
  EXPECT_EQ((*one)[2].mode, 0700u);
  auto all = list_remote(rx.url("d"), true, o);
  ASSERT_TRUE(all) << all.status().to_string();
  EXPECT_EQ(names(*all), (std::vector<std::string>{"a.txt", "ln", "sub", "sub/b.txt"}));
  auto file = list_remote(rx.url("d/sub/b.txt"), false, o);
  ASSERT_TRUE(file) << file.status().to_string();
  EXPECT_EQ(names(*file), (std::vector<std::string>{"b.txt"}));
  auto missing = list_remote(rx.url("d/nope"), false, o);
  EXPECT_EQ(missing.status().code(), Error::kUsage);
}

TEST_F(GetTest, GetSessionsCountAgainstTheSessionLimitWhileTheRateCapPacesThem) {
  write_random_file(served_ / "big.bin", 8 << 20, 3);
  ReceiveOptions ro;
  ro.root = served_.path();
  ro.max_sessions = 1;
  ro.max_session_rate = 4 << 20;  // 8 MiB at 4 MiB/s: the first get runs for about 2 s
  ReceiverThread rx(ro);
  SendOptions o = get_options(rx);
  TransferReport first;
  std::thread t([&] { first = get_files({source(rx, "big.bin")}, dst(), o); });
  bool active = false;
  for (int i = 0; i < 200 && !active; ++i) {
    active = rx.receiver()->metrics().get_sessions_active == 1;
    if (!active) usleep(10'000);
  }
  EXPECT_TRUE(active);
  TransferReport second = get_files({source(rx, "big.bin")}, local_ / "second", o);
  EXPECT_EQ(second.status.code(), Error::kRefused) << second.status.to_string();
  EXPECT_NE(second.status.message().find("busy"), std::string::npos) << second.status.message();
  t.join();
  ASSERT_TRUE(first.status.is_ok()) << first.status.to_string();
  EXPECT_EQ(hash_file(dst() + "/big.bin"), hash_file(served_ / "big.bin"));
  ReceiverMetrics m = rx.receiver()->metrics();
  EXPECT_EQ(m.bytes_sent, 8u << 20);
  EXPECT_EQ(m.get_sessions_total, 1u);
}

// --- the CLI, as real processes ---------------------------------------------------------

uint64_t json_number(const std::string& json, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(json, m, std::regex("\"" + key + "\":([0-9]+)"))) return UINT64_MAX;
  return std::stoull(m[1]);
}

TEST_F(GetTest, CliInterruptedGetResumesAndTheRerunSendsLessThanEverything) {
  constexpr uint64_t kSize = 24ull << 20;
  ASSERT_EQ(mkdir((served_ / "cache").c_str(), 0755), 0);
  write_random_file(served_ / "cache/sim.bin", kSize, 11);
  write_text(served_ / "cache/notes.txt", "take 3");
  RecvProcess rx(served_.path(), {"-q"});
  std::vector<std::string> args = {kFerry, "get", "--no-progress", "--json", "--chunk-size", "1M", "--streams", "2",
                                   rx.url("cache"), dst()};
  // The client (the receiver here) kills itself with SIGKILL after 16 of the 24 chunks were
  // written and journaled: a reproducible point in a transfer this fast.
  constexpr uint64_t kKillAfter = 16;
  SpawnOptions kill_after;
  kill_after.env = {{"FERRY_TEST_SIGKILL_AFTER_CHUNKS", std::to_string(kKillAfter)}};
  Finished killed = run(args, kill_after);
  ASSERT_EQ(killed.exit_code, 128 + SIGKILL) << killed.err;
  EXPECT_FALSE(exists(dst() + "/cache/sim.bin")) << "a partial file never appears under its final name";

  Finished rerun = run(args);
  ASSERT_EQ(rerun.exit_code, 0) << rerun.err;
  // The journal is flushed every kFlushAfterChunks chunks: at most one batch is lost (and
  // one of the 16 may be notes.txt, a one-chunk file, which is not journaled).
  uint64_t resumed = json_number(rerun.out, "chunks_resumed");
  EXPECT_GE(resumed + journal::kFlushAfterChunks + 1, kKillAfter) << rerun.out;
  EXPECT_LE(json_number(rerun.out, "bytes_on_wire"), kSize - resumed * (1 << 20))
      << "the re-run fetches only what was not kept: " << rerun.out;
  EXPECT_LT(json_number(rerun.out, "bytes_on_wire"), kSize) << rerun.out;
  EXPECT_GE(json_number(rerun.out, "bytes_on_disk"), kSize) << rerun.out;  // notes.txt may have landed before the kill
  expect_same_tree(served_ / "cache", dst() + "/cache");
  EXPECT_TRUE(leftover_temp_files(dst()).empty());
}

TEST_F(GetTest, CliLsPrintsNamesLongFormatAndJsonAndExitsTwoForAMissingPath) {
  ASSERT_EQ(mkdir((served_ / "d").c_str(), 0755), 0);
  write_text(served_ / "d/a b.txt", "12345");
  ASSERT_EQ(symlink("a b.txt", (served_ / "d/ln").c_str()), 0);
  set_mtime(served_ / "d/a b.txt", 1'600'000'000);
  RecvProcess rx(served_.path(), {"-q"});
  Finished plain = run({kFerry, "ls", rx.url("d")});
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(plain.out, "a b.txt\nln\n");
  Finished longf = run({kFerry, "ls", "-l", rx.url("d")});
  ASSERT_EQ(longf.exit_code, 0) << longf.err;
  EXPECT_NE(longf.out.find("-rw-r--r--              5 2020-09-13T12:26:40Z a b.txt\n"), std::string::npos) << longf.out;
  EXPECT_NE(longf.out.find(" ln -> a b.txt\n"), std::string::npos) << longf.out;
  Finished json = run({kFerry, "ls", "-R", "--json", rx.url("d")});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  std::string file = local_ / "ls.json";
  write_text(file, json.out);
  Finished check = run({"/usr/bin/python3", "-c",
                    "import json,sys; d=json.load(open(sys.argv[1])); "
                    "assert [e['path'] for e in d]==['a b.txt','ln'], d; "
                    "assert d[0]['size']==5 and d[0]['type']=='file' and d[0]['mode']=='0644', d; "
                    "assert d[1]['link_target']=='a b.txt', d",
                    file});
  EXPECT_EQ(check.exit_code, 0) << check.err;
  Finished file_ls = run({kFerry, "ls", rx.url("d/a b.txt")});
  EXPECT_EQ(file_ls.out, "a b.txt\n");
  Finished missing = run({kFerry, "ls", rx.url("d/nope")});
  EXPECT_EQ(missing.exit_code, 2) << missing.err;
  EXPECT_NE(missing.err.find("no such file or directory"), std::string::npos) << missing.err;
}

TEST_F(GetTest, CliGetFromRecvOnceCountsAsTheTransferAndUdpIsAClearUsageError) {
  write_text(served_ / "a.txt", "alpha");
  RecvProcess rx(served_.path(), {"-q", "--once"});
  Finished udp = run({kFerry, "get", "--transport", "udp", rx.url("a.txt"), dst()});
  EXPECT_EQ(udp.exit_code, 2);
  EXPECT_NE(udp.err.find("--transport udp is not supported"), std::string::npos) << udp.err;
  Finished ok = run({kFerry, "get", "--no-progress", rx.url("a.txt"), dst()});
  ASSERT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find("received 1 files"), std::string::npos) << ok.out;
  EXPECT_EQ(read_text(dst() + "/a.txt"), "alpha");
  Finished recv = rx.wait();
  EXPECT_EQ(recv.exit_code, 0) << "ferry recv --once exits after the get, with its status: " << recv.err;
}

}  // namespace
}  // namespace ferry::test

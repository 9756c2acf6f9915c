// The receiver's filesystem fills up: a real, small tmpfs that the test mounts as the
// receiver's root (root only; skipped with the reason otherwise). The sender must fail the
// files that do not fit with "No space left on device" naming each one and exit 1 (partial,
// man/ferry.1); nothing under a final name may have wrong content; the resume journal must
// still parse; and once space is freed the same command completes byte-identical, sending
// only what had not landed. Covered for `ferry recv` over TCP and UDP and for ferryd.
#include <sys/mount.h>
#include <sys/statvfs.h>

#include <functional>
#include <regex>

#include "../daemon/daemon_util.h"
#include "e2e_util.h"
#include "manifest/journal.h"

namespace ferry::test {
namespace {

constexpr uint64_t kMiB = 1 << 20;
constexpr uint64_t kChunk = 256 << 10;

// A tmpfs of a fixed size mounted on `dir` for the test's lifetime. mounted() is false (and
// why() says why) when this process may not mount.
class TmpfsMount {
 public:
  TmpfsMount(const std::string& dir, uint64_t bytes) : dir_(dir) {
    if (geteuid() != 0) {
      why_ = "not root: mounting a small tmpfs needs CAP_SYS_ADMIN";
      return;
    }
    std::string opts = "size=" + std::to_string(bytes) + ",mode=0755";
    if (::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
      why_ = "mount -t tmpfs -o " + opts + " " + dir + ": " + std::strerror(errno);
      return;
    }
    mounted_ = true;
  }
  ~TmpfsMount() {
    // A receiver that has not let go yet (it should have) must not leave the mount behind.
    if (mounted_ && ::umount(dir_.c_str()) != 0) ::umount2(dir_.c_str(), MNT_DETACH);
  }
  bool mounted() const { return mounted_; }
  const std::string& why() const { return why_; }

 private:
  std::string dir_;
  std::string why_;
  bool mounted_ = false;
};

uint64_t json_number(const std::string& json, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(json, m, std::regex("\"" + key + "\":([0-9]+)"))) return UINT64_MAX;
  return std::stoull(m[1]);
}

bool is_temp_name(const std::string& rel) {
  return rel.find(".ferry-") != std::string::npos && rel.size() > 5 && rel.substr(rel.size() - 5) == ".part";
}

// Every regular file visible under a final name below `dst` has exactly the bytes of its
// counterpart below `src` (files that are missing are fine: they failed).
void expect_final_files_match(const std::string& src, const std::string& dst) {
  std::map<std::string, TreeItem> got;
  list_tree(dst, "", &got);
  for (const auto& [rel, item] : got) {
    if (item.type != 'f' || is_temp_name(rel)) continue;
    EXPECT_EQ(item.content, hash_file(src + "/" + rel).hex()) << "wrong content under the final name " << rel;
  }
}

void write_filler(const std::string& path, uint64_t bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  ASSERT_GE(fd, 0) << path;
  std::vector<uint8_t> block(kMiB, 0x5a);
  for (uint64_t done = 0; done < bytes; done += block.size())
    ASSERT_EQ(::write(fd, block.data(), block.size()), static_cast<ssize_t>(block.size())) << path;
  ::close(fd);
}

// The journals below `root`: each must parse whole (no torn or corrupt tail), and every file
// one records as committed must be the source's bytes. `dest` is the destination prefix of
// the journal's paths ("in/"), stripped to find the source file below `src`.
void expect_journals_intact(const std::string& root, const std::string& src, const std::string& dest) {
  std::string dir = root + "/.ferry/journal";
  DIR* d = opendir(dir.c_str());
  if (!d) return;  // no journal: nothing to resume, nothing to check
  while (dirent* e = readdir(d)) {
    std::string n = e->d_name;
    if (n.size() < 3 || n.substr(n.size() - 3) != ".fj") continue;
    std::string text = read_text(dir + "/" + n);
    auto loaded = journal::parse(std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size()));
    EXPECT_TRUE(loaded.header_ok) << n;
    EXPECT_EQ(loaded.ignored_bytes, 0u) << n << ": torn or corrupt records";
    for (const auto& [rel, f] : loaded.files) {
      if (!f.committed) continue;
      ASSERT_EQ(rel.rfind(dest, 0), 0u) << rel;
      EXPECT_EQ(hash_file(root + "/" + rel), hash_file(src + "/" + rel.substr(dest.size()))) << rel;
    }
  }
  closedir(d);
}

enum class Receiving { kRecvTcp, kRecvUdp, kFerrydTcp };

std::string name_of(const ::testing::TestParamInfo<Receiving>& p) {
  switch (p.param) {
    case Receiving::kRecvTcp: return "RecvTcp";
    case Receiving::kRecvUdp: return "RecvUdp";
    case Receiving::kFerrydTcp: return "FerrydTcp";
  }
  return "?";
}

class DiskFullTest : public ::testing::TestWithParam<Receiving> {
 protected:
  TempDir src_{"src"};
  TempDir dst_{"dst"};
  uint64_t total_chunks_ = 0;

  // 4 x 3 MiB plus 40 small files: about 12.8 MiB, more than the 8 MiB left beside the
  // filler, less than the 16 MiB tmpfs once the filler is gone.
  void make_tree() {
    std::string tree = src_ / "tree";
    ASSERT_EQ(mkdir(tree.c_str(), 0755), 0);
    ASSERT_EQ(mkdir((tree + "/big").c_str(), 0755), 0);
    for (int i = 0; i < 4; ++i) {
      write_random_file(tree + "/big/plate." + std::to_string(i) + ".exr", 3 * kMiB, 500 + i);
      total_chunks_ += 3 * kMiB / kChunk;
    }
    for (int i = 0; i < 40; ++i) {
      write_random_file(tree + "/frame." + std::to_string(1000 + i) + ".exr", 1024 * (1 + i), 600 + i);
      total_chunks_ += 1;
    }
  }
  std::vector<std::string> send_options() const {
    std::vector<std::string> o = {"--json", "--no-progress", "--retry-timeout", "0", "--chunk-size", "256K"};
    if (GetParam() == Receiving::kRecvUdp) {
      o.push_back("--transport");
      o.push_back("udp");
    }
    o.push_back(src_ / "tree");
    return o;
  }
};

TEST_P(DiskFullTest, FailsTheFilesThatDoNotFitNamingThemThenCompletesOnceSpaceIsFreed) {
  make_tree();
  std::string mnt = dst_ / "mnt";
  ASSERT_EQ(mkdir(mnt.c_str(), 0755), 0);
  std::unique_ptr<DaemonLayout> layout;
  if (GetParam() == Receiving::kFerrydTcp) {
    layout = std::make_unique<DaemonLayout>(std::vector<std::string>{"plates"}, "", false, "127.0.0.1:0", true);
    mnt = layout->export_path("plates");
  }
  TmpfsMount fs(mnt, 16 * kMiB);
  if (!fs.mounted()) GTEST_SKIP() << "cannot mount a small tmpfs here: " << fs.why();
  // Someone else's data fills half the filesystem before the transfer starts.
  write_filler(mnt + "/filler.bin", 8 * kMiB);

  // Each receiver lives in a scope that ends before the unmount.
  auto run_both = [&](const std::function<CommandResult()>& send) {
    CommandResult r1 = send();
    ASSERT_EQ(r1.exit_code, 1) << "a transfer where some files did not fit is a partial failure\n" << r1.err << r1.out;
    EXPECT_GE(json_number(r1.out, "files_failed"), 1u) << r1.out;
    int enospc_lines = 0;
    for (const auto& line : lines_of(r1.err)) {
      if (line.find("No space left on device") == std::string::npos) continue;
      ++enospc_lines;
      EXPECT_TRUE(std::regex_search(line, std::regex("'[^']*in/tree/[^']+'"))) << "names no file: " << line;
    }
    EXPECT_GE(enospc_lines, 1) << r1.err;
    expect_final_files_match(src_.path(), mnt + "/in");
    EXPECT_TRUE(leftover_temp_files(mnt).empty()) << "a failed file leaves no partial file behind";
    ASSERT_NO_FATAL_FAILURE(expect_journals_intact(mnt, src_.path(), "in/"));

    ASSERT_EQ(::unlink((mnt + "/filler.bin").c_str()), 0);
    CommandResult r2 = send();
    ASSERT_EQ(r2.exit_code, 0) << r2.err << r2.out;
    expect_same_tree(src_ / "tree", mnt + "/in/tree");
    EXPECT_TRUE(leftover_temp_files(mnt).empty());
    // The files that landed the first time were not sent again.
    EXPECT_GE(json_number(r2.out, "files_skipped"), 1u) << r2.out;
    EXPECT_LT(json_number(r2.out, "chunks_sent"), total_chunks_) << r2.out;
  };

  if (GetParam() == Receiving::kFerrydTcp) {
    Ferryd ferryd(layout->config_path);
    ASSERT_TRUE(ferryd.ready()) << ferryd.process().stderr_text();
    std::string token = layout->new_token("disk-full");
    auto args = layout->send_args(token, send_options());
    args.push_back(ferryd.url("plates/in"));
    run_both([&] { return run_command(args); });
    ferryd.process().signal(SIGTERM);
    EXPECT_EQ(ferryd.process().wait_exit(std::chrono::seconds(30)), 0) << ferryd.process().stderr_text();
  } else {
    ReceiverThread rx(mnt);
    std::vector<std::string> args = {FERRY_BINARY, "send"};
    for (const auto& o : send_options()) args.push_back(o);
    args.push_back(rx.url("in").to_string());
    run_both([&] { return run_command(args); });
  }
}

INSTANTIATE_TEST_SUITE_P(Receivers, DiskFullTest,
                         ::testing::Values(Receiving::kRecvTcp, Receiving::kRecvUdp, Receiving::kFerrydTcp), name_of);

// The disk fills while a file is being written (someone else's writer takes the space after
// the file was created and checked): the failure comes from a chunk's pwrite, mid-file. The
// transfer is slowed (UDP at 16 Mbit/s) so the filler lands while the file is in flight.
TEST(DiskFullMidFileTest, SpaceTakenWhileAFileIsWrittenFailsItCleanlyAndTheRerunCompletes) {
  TempDir src("src");
  TempDir dst("dst");
  write_random_file(src / "plate.exr", 6 * kMiB, 77);
  std::string mnt = dst / "mnt";
  ASSERT_EQ(mkdir(mnt.c_str(), 0755), 0);
  TmpfsMount fs(mnt, 16 * kMiB);
  if (!fs.mounted()) GTEST_SKIP() << "cannot mount a small tmpfs here: " << fs.why();

  ReceiverThread rx(mnt);
  std::vector<std::string> args = {FERRY_BINARY, "send",        "--json",     "--no-progress",      "--retry-timeout",
                                   "0",          "--chunk-size", "256K",       "--transport",        "udp",
                                   "--target-rate", "16M",      src / "plate.exr", rx.url("in").to_string()};
  CommandResult r1;
  std::thread sender([&] { r1 = run_command(args); });
  // Wait for the staged file, then take all but 2 MiB of what is free.
  bool seen = false;
  for (int i = 0; i < 3000 && !seen; ++i) {  // up to 30 s: a loaded machine starts slowly
    std::map<std::string, TreeItem> t;
    list_tree(mnt, "", &t);
    for (const auto& [rel, item] : t) seen = seen || is_temp_name(rel);
    if (!seen) usleep(10'000);
  }
  struct statvfs vfs {};
  if (seen && statvfs(mnt.c_str(), &vfs) == 0) {
    uint64_t free_bytes = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    write_filler(mnt + "/filler.bin", (free_bytes - 2 * kMiB) / kMiB * kMiB);
  }
  sender.join();
  ASSERT_TRUE(seen) << "the staged file never appeared\n" << r1.err;
  ASSERT_EQ(r1.exit_code, 1) << r1.err << r1.out;
  EXPECT_NE(r1.err.find("write 'in/plate.exr': No space left on device"), std::string::npos) << r1.err;
  EXPECT_NE(::access((mnt + "/in/plate.exr").c_str(), F_OK), 0) << "a file that did not fit is visible";
  EXPECT_TRUE(leftover_temp_files(mnt).empty());
  ASSERT_NO_FATAL_FAILURE(expect_journals_intact(mnt, src.path(), "in/"));

  ASSERT_EQ(::unlink((mnt + "/filler.bin").c_str()), 0);
  CommandResult r2 = run_command(args);
  ASSERT_EQ(r2.exit_code, 0) << r2.err << r2.out;
  EXPECT_EQ(hash_file(mnt + "/in/plate.exr"), hash_file(src / "plate.exr"));
  EXPECT_TRUE(leftover_temp_files(mnt).empty());
}

// Not one byte free when the transfer starts: the receiver cannot even create the resume
// journal, so the session is refused as a local I/O error (exit 5) naming the journal file,
// and nothing at all lands.
TEST(DiskFullAtStartTest, NoRoomForTheJournalRefusesTheSessionWithExit5NamingIt) {
  TempDir src("src");
  TempDir dst("dst");
  write_random_file(src / "plate.exr", 300 << 10, 78);
  std::string mnt = dst / "mnt";
  ASSERT_EQ(mkdir(mnt.c_str(), 0755), 0);
  TmpfsMount fs(mnt, 4 * kMiB);
  if (!fs.mounted()) GTEST_SKIP() << "cannot mount a small tmpfs here: " << fs.why();
  {
    int fd = ::open((mnt + "/filler.bin").c_str(), O_WRONLY | O_CREAT, 0644);
    ASSERT_GE(fd, 0);
    std::vector<uint8_t> block(64 << 10, 1);
    while (::write(fd, block.data(), block.size()) > 0) {
    }
    ASSERT_EQ(errno, ENOSPC);
    ::close(fd);
  }
  ReceiverThread rx(mnt);
  CommandResult r = run_command({FERRY_BINARY, "send", "--no-progress", "--retry-timeout", "0", src / "plate.exr",
                                 rx.url("in").to_string()});
  EXPECT_EQ(r.exit_code, 5) << r.err;
  EXPECT_TRUE(std::regex_search(r.err, std::regex("journal '[^']*/\\.ferry/journal/[0-9a-f]+\\.fj': No space left on device")))
      << r.err;
  EXPECT_NE(::access((mnt + "/in/plate.exr").c_str(), F_OK), 0);
  EXPECT_TRUE(leftover_temp_files(mnt).empty());
}

}  // namespace
}  // namespace ferry::test

// `ferry send --io X` to `ferry recv --io Y` as real processes over loopback: every
// combination of the file I/O backends lands a byte-identical tree, and -vv shows that the
// backend asked for is the one that ran. The uring cases skip, printing why, when this
// kernel refuses io_uring.
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>

#include "e2e_util.h"
#include "io/file_io.h"

namespace ferry::test {
namespace {

const std::string kFerry = FERRY_BINARY;

// A kernel that refuses io_uring, as seccomp profiles of container runtimes do: a real
// seccomp filter making io_uring_setup fail with EPERM in this process and its children.
bool refuse_io_uring_setup() {
#if defined(__x86_64__) && defined(__NR_io_uring_setup)
  sock_filter code[] = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
  };
  sock_fprog prog{static_cast<unsigned short>(sizeof code / sizeof code[0]), code};
  return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == 0;
#else
  return false;
#endif
}

// stderr to `log` (-vv output must never block the child); with `without_io_uring`, under
// refuse_io_uring_setup().
SpawnOptions logged_to(const std::string& log, bool without_io_uring = false) {
  SpawnOptions o;
  o.err_path = log;
  if (without_io_uring) o.in_child = refuse_io_uring_setup;
  return o;
}

class IoBackendTransferTest : public ::testing::TestWithParam<std::pair<std::string, std::string>> {};

TEST_P(IoBackendTransferTest, TreeArrivesByteIdentical) {
  auto [send_io, recv_io] = GetParam();
  if (send_io == "uring" || recv_io == "uring") {
    std::string why;
    if (uring_file_io(&why) == nullptr) GTEST_SKIP() << "io_uring refused by this kernel: " << why;
  }
  TempDir src("io-src"), dst("io-dst");
  // A file spread over many chunks with a ragged tail, a file smaller than a chunk, an empty
  // file, in a subdirectory too.
  ASSERT_EQ(::mkdir((src / "shots").c_str(), 0755), 0);
  write_random_file(src / "shots/big.bin", (37u << 20) + 4321, 11);
  write_random_file(src / "small.bin", 70000, 12);
  write_text(src / "shots/empty", "");

  RecvProcess rx(dst.path(), {"--once", "-vv", "--io", recv_io}, logged_to(src / "recv.log"));
  ASSERT_EQ(rx.url().rfind("ferry://127.0.0.1:", 0), 0u) << rx.url();
  Finished t = run({kFerry, "send", "--no-progress", "-vv", "--io", send_io, "--chunk-size", "1M", "--compress", "none",
                    src / "shots", src / "small.bin", rx.url()},
                   logged_to(src / "send.log"));
  Finished r = rx.wait();
  ASSERT_EQ(t.exit_code, 0) << t.err;
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(t.err.find("file I/O backend: " + send_io), std::string::npos) << t.err;
  EXPECT_NE(r.err.find("file I/O backend: " + recv_io), std::string::npos) << r.err;
  expect_same_tree(src / "shots", dst / "shots");
  EXPECT_EQ(hash_file(src / "small.bin").hex(), hash_file(dst / "small.bin").hex());
  EXPECT_TRUE(leftover_temp_files(dst.path()).empty());
}

INSTANTIATE_TEST_SUITE_P(Backends, IoBackendTransferTest,
                         ::testing::Values(std::pair{"posix", "posix"}, std::pair{"uring", "uring"},
                                           std::pair{"uring", "posix"}, std::pair{"posix", "uring"}),
                         [](const auto& info) { return info.param.first + "_to_" + info.param.second; });

// Where the kernel refuses io_uring, --io uring still transfers, through pread/pwrite, and
// says so once (a warning: uring was asked for by name).
TEST(IoBackendCliTest, RefusedIoUringFallsBackToPosixWithOneWarning) {
#if !defined(__x86_64__)
  GTEST_SKIP() << "the seccomp filter of this test is written for x86-64";
#endif
  TempDir src("io-src"), dst("io-dst");
  write_random_file(src / "a.bin", (9u << 20) + 5, 21);
  RecvProcess rx(dst.path(), {"--once", "--io", "uring"}, logged_to(src / "recv.log", true));
  ASSERT_EQ(rx.url().rfind("ferry://127.0.0.1:", 0), 0u) << rx.url() << read_text(src / "recv.log");
  Finished t = run({kFerry, "send", "--no-progress", "--io", "uring", src / "a.bin", rx.url()},
                   logged_to(src / "send.log", true));
  Finished r = rx.wait();
  ASSERT_EQ(t.exit_code, 0) << t.err;
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string line = "io_uring unavailable (io_uring_queue_init: Operation not permitted); file I/O uses pread/pwrite";
  EXPECT_NE(r.err.find(line), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(line), r.err.rfind(line)) << "logged more than once: " << r.err;
  EXPECT_NE(t.err.find(line), std::string::npos) << t.err;
  EXPECT_EQ(hash_file(src / "a.bin").hex(), hash_file(dst / "a.bin").hex());
}

TEST(IoBackendCliTest, UnknownBackendIsAUsageError) {
  TempDir src("io-src");
  write_text(src / "a", "a");
  Finished t = run({kFerry, "send", "--io", "aio", src / "a", "ferry://127.0.0.1:1/x"}, logged_to(src / "send.log"));
  EXPECT_EQ(t.exit_code, 2) << t.err;
  EXPECT_NE(t.err.find("--io"), std::string::npos) << t.err;
}

}  // namespace
}  // namespace ferry::test

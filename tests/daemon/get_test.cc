// ferry get / ferry ls against the real ferryd over TLS with real tokens: read access is
// required (a write-only token is refused before anything is read or created), downloads
// are byte-identical, and /metrics counts the bytes sent and the download sessions.
#include <gtest/gtest.h>

#include "daemon_util.h"

namespace ferry::test {
namespace {

// `ferry get|ls` with the token and the TLS settings that match this daemon.
std::vector<std::string> client_args(const DaemonLayout& layout, const std::string& cmd, const std::string& token,
                                     const std::vector<std::string>& rest) {
  std::vector<std::string> args = {FERRY_BINARY, cmd, "--token", token, "--ca-file", layout.cert()};
  args.insert(args.end(), rest.begin(), rest.end());
  return args;
}

bool exists(const std::string& path) {
  struct stat st {};
  return lstat(path.c_str(), &st) == 0;
}

TEST(DaemonGetTest, ReadTokenDownloadsAndListsAndMetricsCountBytesSent) {
  DaemonLayout layout;
  std::string token = layout.new_token("viewer", {"plates:r"});
  std::string tree = layout.export_path("plates") + "/shot010";
  ASSERT_EQ(mkdir(tree.c_str(), 0755), 0);
  write_random_file(tree + "/a.bin", 3 << 20, 5);
  write_text(tree + "/b.txt", "plate notes");
  Ferryd ferryd(layout.config_path);
  ASSERT_TRUE(ferryd.ready()) << ferryd.process().stderr_text();
  TempDir local("daemon-get");

  auto r = run_command(client_args(layout, "get", token, {"-q", ferryd.url("plates/shot010"), local / "dl"}));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  expect_same_tree(tree, local / "dl/shot010");

  auto ls = run_command(client_args(layout, "ls", token, {ferryd.url("plates/shot010")}));
  ASSERT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_EQ(ls.out, "a.bin\nb.txt\n");

  EXPECT_GE(ferryd.wait_metric("ferryd_bytes_sent_total", (3 << 20) + 11), (3 << 20) + 11);
  std::string m = ferryd.metrics();
  EXPECT_NE(m.find("ferryd_sessions_by_direction_total{direction=\"download\"} 1\n"), std::string::npos) << m;
  EXPECT_EQ(metric_value(m, "ferryd_errors_total"), 0) << m;
  EXPECT_EQ(metric_value(m, "ferryd_bytes_received_total"), 0) << m;
}

TEST(DaemonGetTest, WriteOnlyWrongAndMissingTokensAreRefusedAndNothingIsCreated) {
  DaemonLayout layout;
  std::string writer = layout.new_token("uploader", {"plates:w"});
  write_text(layout.export_path("plates") + "/a.txt", "alpha");
  Ferryd ferryd(layout.config_path);
  ASSERT_TRUE(ferryd.ready()) << ferryd.process().stderr_text();
  TempDir local("daemon-get-refused");
  std::string dst = local / "dl";

  auto w = run_command(client_args(layout, "get", writer, {ferryd.url("plates/a.txt"), dst}));
  EXPECT_EQ(w.exit_code, 6) << w.err;
  EXPECT_NE(w.err.find("token has no read access to export 'plates'"), std::string::npos) << w.err;
  auto wrong = run_command(client_args(layout, "get", "fy1_not-a-real-token", {ferryd.url("plates/a.txt"), dst}));
  EXPECT_EQ(wrong.exit_code, 6) << wrong.err;
  EXPECT_NE(wrong.err.find("authentication failed"), std::string::npos) << wrong.err;
  auto none = run_command({FERRY_BINARY, "get", "--ca-file", layout.cert(), ferryd.url("plates/a.txt"), dst});
  EXPECT_EQ(none.exit_code, 6) << none.err;
  auto ls = run_command(client_args(layout, "ls", writer, {ferryd.url("plates")}));
  EXPECT_EQ(ls.exit_code, 6) << ls.err;
  EXPECT_FALSE(exists(dst));
  EXPECT_GE(ferryd.wait_metric("ferryd_auth_failures_total", 4), 4);
}

TEST(DaemonGetTest, PathsOutsideTheExportAndOtherExportsAreRefused) {
  DaemonLayout layout({"plates", "private"});
  std::string token = layout.new_token("viewer", {"plates:r"});
  const std::string marker = "PRIVATE-c0ffee";
  write_text(layout.export_path("private") + "/secret.txt", marker);
  write_text(layout.outside() + "/secret.txt", marker);
  ASSERT_EQ(symlink((layout.outside() + "/secret.txt").c_str(), (layout.export_path("plates") + "/link").c_str()), 0);
  ASSERT_EQ(symlink(layout.outside().c_str(), (layout.export_path("plates") + "/outdir").c_str()), 0);
  Ferryd ferryd(layout.config_path);
  ASSERT_TRUE(ferryd.ready()) << ferryd.process().stderr_text();
  TempDir local("daemon-get-escape");
  std::string dst = local / "dl";
  for (const std::string& url : {ferryd.url("private/secret.txt"), ferryd.url("plates/outdir/secret.txt"),
                                ferryd.url("plates/%2E%2E/private/secret.txt")}) {
    auto r = run_command(client_args(layout, "get", token, {url, dst}));
    EXPECT_EQ(r.exit_code, 6) << url << ": " << r.err;
    EXPECT_FALSE(exists(dst)) << url;
  }
  // The whole export: the links arrive as links, the secret's bytes never.
  auto all = run_command(client_args(layout, "get", token, {ferryd.url("plates/"), dst}));
  ASSERT_EQ(all.exit_code, 0) << all.err;
  struct stat st {};
  ASSERT_EQ(lstat((dst + "/link").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  ASSERT_EQ(lstat((dst + "/outdir").c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  // Still serving after the refusals.
  auto ls = run_command(client_args(layout, "ls", token, {ferryd.url("plates")}));
  EXPECT_EQ(ls.exit_code, 0) << ls.err;
  EXPECT_EQ(ls.out, "link\noutdir\n");
}

}  // namespace
}  // namespace ferry::test

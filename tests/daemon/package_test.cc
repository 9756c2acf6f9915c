// Packaging: `cpack -G DEB` from the build dir gives ferry_<version>_amd64.deb with both
// programs, the man pages, the units, the example config and library dependencies; the
// extracted ferryd runs; every man page renders without warnings; the unit says what it must.
#include <gtest/gtest.h>

#include "daemon_util.h"

namespace ferry::test {
namespace {

TEST(PackageTest, CpackBuildsADebWithTheExpectedContents) {
  TempDir out("cpack");
  auto r = run_command({"cpack", "-G", "DEB", "--config", std::string(FERRY_BUILD_DIR) + "/CPackConfig.cmake", "-B",
                        out.path()});
  ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
  std::string deb = out / "ferry_0.2.0_amd64.deb";
  ASSERT_NE(r.out.find(deb + " generated"), std::string::npos) << r.out;

  auto contents = run_command({"dpkg-deb", "-c", deb});
  ASSERT_EQ(contents.exit_code, 0) << contents.err;
  for (const char* path : {"./usr/bin/ferry", "./usr/sbin/ferryd", "./usr/share/man/man1/ferry.1",
                           "./usr/share/man/man8/ferryd.8", "./usr/share/man/man5/ferryd.toml.5",
                           "./usr/lib/systemd/system/ferryd.service", "./usr/lib/systemd/system/ferry-sync@.service",
                           "./usr/lib/systemd/system/ferry-sync@.timer", "./usr/lib/sysusers.d/ferry.conf",
                           "./usr/share/doc/ferry/examples/ferryd.toml.example"})
    EXPECT_NE(contents.out.find(std::string(path) + "\n"), std::string::npos) << path << "\n" << contents.out;
  EXPECT_NE(contents.out.find("-rwxr-xr-x root/root"), std::string::npos);
  // Nothing is installed into /etc: the config is the operator's (the unit waits for it).
  EXPECT_EQ(contents.out.find("./etc/"), std::string::npos) << contents.out;

  auto info = run_command({"dpkg-deb", "-I", deb});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  for (const char* field : {"Package: ferry\n", "Version: 0.2.0\n", "Architecture: amd64\n", "Section: net\n"})
    EXPECT_NE(info.out.find(field), std::string::npos) << field << info.out;
  std::string depends = info.out.substr(info.out.find("Depends:"));
  depends = depends.substr(0, depends.find('\n'));
  for (const char* dep : {"systemd", "libc6", "libssl3", "libzstd1", "liburing2", "libstdc++6"})
    EXPECT_NE(depends.find(dep), std::string::npos) << dep << ": " << depends;
  EXPECT_NE(info.out.find("postinst"), std::string::npos);

  // The packaged daemon runs (stripped, with its libraries found by the loader).
  TempDir root("debroot");
  ASSERT_EQ(run_command({"dpkg-deb", "-x", deb, root.path()}).exit_code, 0);
  auto version = run_command({root / "usr/sbin/ferryd", "--version"});
  EXPECT_EQ(version.exit_code, 0) << version.err;
  EXPECT_EQ(version.out, "ferryd 0.2.0 (protocol 3)\n");
  auto check = run_command({root / "usr/sbin/ferryd", "--check-config", "--config",
                            root / "usr/share/doc/ferry/examples/ferryd.toml.example"});
  EXPECT_EQ(check.exit_code, 2);  // its /srv/ferry/... and /etc/ferry/*.pem do not exist here
  EXPECT_EQ(lines_of(check.err).size(), 1u) << check.err;
}

TEST(PackageTest, ManPagesRenderWithoutWarnings) {
  for (const char* page : {"man/ferry.1", "man/ferryd.8", "man/ferryd.toml.5"}) {
    std::string path = std::string(FERRY_SOURCE_DIR) + "/" + page;
    auto r = run_command({"man", "--warnings", "-l", path}, {"MANWIDTH=80", "MAN_KEEP_FORMATTING=0"});
    EXPECT_EQ(r.exit_code, 0) << page << r.err;
    EXPECT_EQ(r.err, "") << page;
    EXPECT_GT(r.out.size(), 1000u) << page;
  }
}

TEST(PackageTest, UnitIsNotifyTypeAndHardened) {
  std::string unit = read_text(std::string(FERRY_SOURCE_DIR) + "/packaging/systemd/ferryd.service");
  for (const char* line : {"\nType=notify\n", "\nWatchdogSec=", "\nUser=ferry\n", "\nNoNewPrivileges=yes\n",
                           "\nProtectSystem=strict\n", "\nPrivateTmp=yes\n", "\nCapabilityBoundingSet=\n",
                           "\nReadWritePaths=", "\nExecReload=/bin/kill -HUP $MAINPID\n",
                           "\nExecStart=/usr/sbin/ferryd --config /etc/ferry/ferryd.toml\n", "\nStateDirectory=ferry\n"})
    EXPECT_NE(unit.find(line), std::string::npos) << line;
  // The stop timeout leaves room for the default 20 s grace period.
  EXPECT_NE(unit.find("\nTimeoutStopSec=30s\n"), std::string::npos);
  auto verify = run_command({"systemd-analyze", "verify", "--man=no",
                             std::string(FERRY_SOURCE_DIR) + "/packaging/systemd/ferryd.service"});
  // Only the binary's absence (it is not installed on the build machine) may be reported.
  for (const auto& l : lines_of(verify.err))
    EXPECT_NE(l.find("/usr/sbin/ferryd"), std::string::npos) << l;
}

}  // namespace
}  // namespace ferry::test

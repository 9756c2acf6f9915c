// ferryd.toml: the TOML subset, every kind of config error as one "FILE:LINE: cause", the
// real ferryd binary's exit code 2 with one line, and a good config that round-trips.
#include "daemon/config.h"

#include <gtest/gtest.h>

#include "daemon/duration.h"
#include "daemon/toml_subset.h"
#include "daemon_util.h"

namespace ferry::daemon {
namespace {

using test::TempDir;
using test::write_text;

class ConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    mkdir((dir_ / "plates").c_str(), 0755);
    mkdir((dir_ / "cache").c_str(), 0755);
    write_text(dir_ / "cert.pem", "not parsed by the config layer\n");
    write_text(dir_ / "key.pem", "not parsed by the config layer\n");
  }
  // A valid config; `server_extra` and `tail` add lines.
  std::string good(const std::string& server_extra = "", const std::string& tail = "") const {
    return "# comment line\n"
           "[server]\n"
           "listen = [\"127.0.0.1:7400\", \"[::1]:7400\"]  # two\n" +
           server_extra +
           "state_dir = \"" + (dir_ / "state") + "\"\n"
           "\n[tls]\ncert = \"" + (dir_ / "cert.pem") + "\"\nkey = '" + (dir_ / "key.pem") + "'\n"
           "\n[[export]]\nname = \"plates\"\npath = \"" + (dir_ / "plates") + "\"\n"
           "\n[[export]]\nname = \"cache\"\npath = \"" + (dir_ / "cache") + "/\"\ntype = \"fs\"\n" + tail;
  }
  Result<DaemonConfig> parse(const std::string& text) const {
    auto doc = parse_toml(text, "ferryd.toml");
    if (!doc) return doc.status();
    return config_from_toml(*doc);
  }
  // The one-line error of a config, "" when it is valid.
  std::string error_of(const std::string& text) const {
    auto c = parse(text);
    return c ? "" : c.status().message();
  }
  TempDir dir_{"config"};
};

TEST_F(ConfigTest, GoodConfigParsesWithDefaults) {
  auto c = parse(good());
  ASSERT_TRUE(c) << c.status().message();
  EXPECT_EQ(c->server.listen, (std::vector<std::string>{"127.0.0.1:7400", "[::1]:7400"}));
  ASSERT_EQ(c->exports.size(), 2u);
  EXPECT_EQ(c->exports[1].name, "cache");
  EXPECT_EQ(c->exports[1].path, dir_ / "cache");  // trailing '/' removed
  EXPECT_EQ(c->server.memory, 256ull << 20);
  EXPECT_EQ(c->server.shutdown_grace, std::chrono::seconds(20));
  EXPECT_EQ(c->tokens_file, dir_ / "state/tokens.toml");
  EXPECT_FALSE(c->tls.plaintext);
  EXPECT_TRUE(c->metrics_listen.empty());
  EXPECT_EQ(c->server.io, IoMode::kAuto);
}

TEST_F(ConfigTest, SizesRatesDurationsAndPortsAreParsed) {
  auto c = parse(good("memory = \"1G\"\nmax_sessions = 1_000\nsession_rate_cap = \"800Mbit\"\n"
                      "total_rate_cap = \"100MB/s\"\nshutdown_grace = \"5s\"\nudp_ports = \"40000-40100\"\n"
                      "log_level = \"debug\"\nio = \"uring\"\n",
                      "\n[metrics]\nlisten = \"127.0.0.1:9471\"\n[tokens]\nfile = \"/etc/ferry/t.toml\"\n"));
  ASSERT_TRUE(c) << c.status().message();
  EXPECT_EQ(c->server.memory, 1ull << 30);
  EXPECT_EQ(c->server.max_sessions, 1000u);
  EXPECT_EQ(c->server.session_rate_cap, 100'000'000u);  // 800 Mbit/s in bytes
  EXPECT_EQ(c->server.total_rate_cap, 100'000'000u);
  EXPECT_EQ(c->server.shutdown_grace, std::chrono::seconds(5));
  EXPECT_EQ(c->server.udp_first, 40000);
  EXPECT_EQ(c->server.udp_last, 40100);
  EXPECT_EQ(c->server.log_level, log::Level::kDebug);
  EXPECT_EQ(c->server.io, IoMode::kUring);
  EXPECT_EQ(c->metrics_listen, "127.0.0.1:9471");
  EXPECT_EQ(c->tokens_file, "/etc/ferry/t.toml");
}

TEST_F(ConfigTest, GoodConfigRoundTripsThroughCanonicalToml) {
  auto c = parse(good("memory = \"64M\"\nsession_rate_cap = \"1G\"\nshutdown_grace = \"1500ms\"\nio = \"posix\"\n",
                      "\n[[export]]\nname = \"bucket\"\ntype = \"s3\"\nbucket = \"bkt\"\nprefix = \"in\"\n"
                      "endpoint = \"http://127.0.0.1:9000\"\nregion = \"eu-west-1\"\npath_style = true\npart_size = \"16M\"\n"
                      "\n[metrics]\nlisten = \"127.0.0.1:0\"\n"));
  ASSERT_TRUE(c) << c.status().message();
  ASSERT_EQ(c->exports.size(), 3u);
  EXPECT_EQ(c->exports[2].prefix, "in/");  // a "directory"
  EXPECT_EQ(c->exports[2].part_size, 16ull << 20);
  std::string text = to_toml(*c);
  auto again = parse(text);
  ASSERT_TRUE(again) << again.status().message() << "\n" << text;
  EXPECT_EQ(*again, *c) << text;
  EXPECT_EQ(to_toml(*again), text);
}

TEST_F(ConfigTest, UnknownKeyNamesLineKeyAndTable) {
  // line 11 is "rote = ..." inside the first [[export]]
  std::string text = good();
  text.insert(text.find("name = \"plates\""), "rote = \"/x\"\n");
  EXPECT_EQ(error_of(text), "ferryd.toml:11: unknown key 'rote' in [[export]]");
}

TEST_F(ConfigTest, EachErrorKindNamesTheLineAndTheCause) {
  struct Case {
    std::string text, expected;
  };
  std::string p = dir_ / "plates";
  std::string base = "[tls]\nplaintext = true\n";
  std::string exp = "\n[[export]]\nname = \"plates\"\npath = \"" + p + "\"\n";
  std::vector<Case> cases = {
      // duplicate key
      {"[server]\nmax_sessions = 4\nmax_sessions = 5\n" + base + exp,
       "ferryd.toml:3: duplicate key 'max_sessions' in [server] (first set at line 2)"},
      // duplicate table
      {"[server]\n[tls]\nplaintext = true\n[server]\n" + exp, "ferryd.toml:4: duplicate table [server] at line 1"},
      // wrong type
      {"[server]\nmax_sessions = \"4\"\n" + base + exp,
       "ferryd.toml:2: 'max_sessions' in [server] must be an integer, not a string"},
      {"[server]\nlisten = \"0.0.0.0:7400\"\n" + base + exp,
       "ferryd.toml:2: 'listen' in [server] must be an array of strings, not a string"},
      {base + "\n[[export]]\nname = \"plates\"\npath = 7\n",
       "ferryd.toml:6: 'path' in [[export]] must be a string, not an integer"},
      // missing required key (reported at the table header)
      {base + "\n[[export]]\nname = \"plates\"\n", "ferryd.toml:4: missing required key 'path' in [[export]]"},
      // unknown table
      {base + exp + "[serveur]\n", "ferryd.toml:7: unknown table [serveur] (expected [server], [tls], [[export]], [tokens] or [metrics])"},
      // bad values
      {"[server]\nmemory = \"12X\"\n" + base + exp,
       "ferryd.toml:2: 'memory' in [server]: invalid size '12X': unknown suffix 'X' (use K, M, G or T)"},
      {"[server]\nshutdown_grace = \"20\"\n" + base + exp,
       "ferryd.toml:2: 'shutdown_grace' in [server]: invalid duration '20': missing unit (expected e.g. 500ms, 20s, 90m, 12h, 30d, 2w)"},
      {"[server]\nlisten = [\"files1.example.com:7400\"]\n" + base + exp,
       "ferryd.toml:2: 'listen' in [server]: 'files1.example.com' is not an IP address (use 0.0.0.0, [::] or an address of this host)"},
      {"[server]\nlisten = [\"127.0.0.1:7400\", \"127.0.0.1:7400\"]\n" + base + exp,
       "ferryd.toml:2: 'listen' in [server]: '127.0.0.1:7400' is listed twice"},
      {"[server]\nlog_level = \"loud\"\n" + base + exp,
       "ferryd.toml:2: 'log_level' in [server]: must be error, warning, info or debug, not 'loud'"},
      {"[server]\nio = \"aio\"\n" + base + exp,
       "ferryd.toml:2: 'io' in [server]: must be auto, posix or uring, not 'aio'"},
      {"[server]\nmax_sessions = 0\n" + base + exp,
       "ferryd.toml:2: 'max_sessions' in [server]: must be between 1 and 100000"},
      {"[server]\nudp_ports = \"40100-40000\"\n" + base + exp,
       "ferryd.toml:2: 'udp_ports' in [server]: expected FIRST-LAST with 1 <= FIRST <= LAST <= 65535, not '40100-40000'"},
      // exports: unsafe or duplicate name, relative or missing path, s3
      {base + "\n[[export]]\nname = \"../etc\"\npath = \"" + p + "\"\n",
       "ferryd.toml:5: 'name' in [[export]]: '../etc' is not a safe export name (1-64 of A-Z a-z 0-9 . _ -, not starting with . or -)"},
      {base + exp + exp, "ferryd.toml:9: 'name' in [[export]]: duplicate export name 'plates'"},
      {base + "\n[[export]]\nname = \"x\"\npath = \"srv/x\"\n",
       "ferryd.toml:6: 'path' in [[export]]: must be an absolute path, not 'srv/x'"},
      {base + "\n[[export]]\nname = \"x\"\npath = \"" + p + "/missing\"\n",
       "ferryd.toml:6: 'path' in [[export]]: '" + p + "/missing': No such file or directory"},
      {base + exp + "type = \"s3\"\n", "ferryd.toml:6: 'path' in [[export]]: an s3 export has no path (its objects go to bucket/prefix)"},
      {base + exp + "type = \"ftp\"\n", "ferryd.toml:7: 'type' in [[export]]: must be \"fs\" (or \"dir\") or \"s3\", not 'ftp'"},
      {base + exp + "bucket = \"b\"\n", "ferryd.toml:7: 'bucket' in [[export]]: only for type = \"s3\" exports"},
      {base + "\n[[export]]\nname = \"c\"\ntype = \"s3\"\n", "ferryd.toml:4: missing required key 'bucket' in [[export]]"},
      {base + "\n[[export]]\nname = \"c\"\ntype = \"s3\"\nbucket = \"a_\"\n",
       "ferryd.toml:7: 'bucket' in [[export]]: invalid S3 URL 's3://a_': the bucket name must be 3 to 63 characters (expected s3://BUCKET/PREFIX/)"},
      {base + "\n[[export]]\nname = \"c\"\ntype = \"s3\"\nbucket = \"bkt\"\nprefix = \"a//b\"\n",
       "ferryd.toml:8: 'prefix' in [[export]]: invalid S3 URL 's3://bkt/a//b': empty path component in the prefix (expected s3://BUCKET/PREFIX/)"},
      {base + "\n[[export]]\nname = \"c\"\ntype = \"s3\"\nbucket = \"bkt\"\npart_size = \"1M\"\n",
       "ferryd.toml:8: 'part_size' in [[export]]: must be between 5M and 4G"},
      {base, "ferryd.toml:1: no [[export]]: ferryd would have nothing to serve"},
      // tls
      {exp, "ferryd.toml:1: [tls] needs cert and key (or plaintext = true, for tests and trusted networks only)"},
      {"[tls]\ncert = \"" + (dir_ / "nope.pem") + "\"\n" + exp,
       "ferryd.toml:2: 'cert' in [tls]: '" + (dir_ / "nope.pem") + "': No such file or directory"},
      {"[tls]\nplaintext = true\nkey = \"" + (dir_ / "key.pem") + "\"\n" + exp,
       "ferryd.toml:2: 'plaintext' in [tls]: plaintext = true cannot be combined with cert, key or client_ca"},
      // metrics must stay local
      {base + exp + "[metrics]\nlisten = \"0.0.0.0:9471\"\n",
       "ferryd.toml:8: 'listen' in [metrics]: must be a loopback address (127.0.0.1 or [::1]): /metrics has no authentication"},
      // syntax errors
      {"[server]\nlisten = [\"a:1\",\n", "ferryd.toml:2: unterminated array"},
      {"[server\n", "ferryd.toml:1: unterminated table header: expected ']'"},
      {"[server]\nstate_dir = \"/x\n", "ferryd.toml:2: unterminated string"},
      {"[server]\nstate_dir = \"\\q\"\n", "ferryd.toml:2: invalid escape '\\q' in a string"},
      {"[server]\nmax_sessions = 1.5\n", "ferryd.toml:2: invalid value '1.5' (expected a quoted string, an integer, true/false or [\"...\"])"},
      {"[server]\nmax_sessions = 4 5\n", "ferryd.toml:2: unexpected '5' after the value (one key = value per line)"},
      {"[server]\nserver.port = 4\n", "ferryd.toml:2: dotted keys are not supported"},
      {"[server]\nx = {a = 1}\n", "ferryd.toml:2: inline tables are not supported"},
      {"state_dir = \"/x\"\n", "ferryd.toml:1: key 'state_dir' must be inside a table such as [server]"},
      {"[export]\nname = \"x\"\n", "ferryd.toml:1: exports are declared as [[export]] (an array of tables), not [export]"},
  };
  for (const auto& c : cases) EXPECT_EQ(error_of(c.text), c.expected) << c.text;
}

TEST_F(ConfigTest, StringEscapesAndMultiLineArrays) {
  auto doc = parse_toml("[t]\ns = \"a\\tb\\\"c\\\\d\\u00e9\\U0001F600\"\nl = 'C:\\raw'\n"
                        "a = [\n  \"x\", # first\n  'y',\n]\nb = true\nn = -42\n",
                        "f");
  ASSERT_TRUE(doc) << doc.status().message();
  const TomlTable& t = doc->tables[1];
  EXPECT_EQ(t.find("s")->value.text, "a\tb\"c\\d\xC3\xA9\xF0\x9F\x98\x80");
  EXPECT_EQ(t.find("l")->value.text, "C:\\raw");
  EXPECT_EQ(t.find("a")->value.strings, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(t.find("a")->value.line, 4);
  EXPECT_TRUE(t.find("b")->value.boolean);
  EXPECT_EQ(t.find("n")->value.integer, -42);
  EXPECT_EQ(t.find("n")->value.line, 9);
}

TEST(DurationTest, UnitsAndRejects) {
  EXPECT_EQ(*parse_duration("500ms"), std::chrono::milliseconds(500));
  EXPECT_EQ(*parse_duration("20s"), std::chrono::seconds(20));
  EXPECT_EQ(*parse_duration("30d"), std::chrono::hours(24 * 30));
  EXPECT_EQ(*parse_duration("2w"), std::chrono::hours(24 * 14));
  for (const char* bad : {"", "s", "10", "10x", "-5s", "1.5h", "99999999999999d"})
    EXPECT_FALSE(parse_duration(bad)) << bad;
}

// The real binary: one line on stderr with file:line, exit 2; a good config exits 0.
TEST_F(ConfigTest, CheckConfigBinaryExitsTwoWithOneLine) {
  std::string path = dir_ / "ferryd.toml";
  std::string text = good();
  text.insert(text.find("name = \"plates\""), "rote = \"/x\"\n");
  write_text(path, text);
  auto r = test::run_command({FERRYD_BINARY, "--check-config", "--config", path});
  EXPECT_EQ(r.exit_code, 2);
  auto lines = test::lines_of(r.err);
  ASSERT_EQ(lines.size(), 1u) << r.err;
  EXPECT_NE(lines[0].find(path + ":11: unknown key 'rote' in [[export]]"), std::string::npos) << lines[0];

  // Running (not only checking) a broken config fails the same way, before binding anything.
  auto run = test::run_command({FERRYD_BINARY, "--config", path});
  EXPECT_EQ(run.exit_code, 2);
  EXPECT_EQ(test::lines_of(run.err).size(), 1u) << run.err;
  EXPECT_NE(run.err.find(":11: unknown key 'rote'"), std::string::npos) << run.err;

  write_text(path, good());
  auto ok = test::run_command({FERRYD_BINARY, "--check-config", "--config", path});
  EXPECT_EQ(ok.exit_code, 0) << ok.err;
  EXPECT_NE(ok.out.find(": ok (2 export(s), 2 listen address(es), 0 token(s) not revoked, TLS on)"), std::string::npos)
      << ok.out;

  auto missing = test::run_command({FERRYD_BINARY, "--check-config", "--config", dir_ / "absent.toml"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("absent.toml: cannot read: No such file or directory"), std::string::npos) << missing.err;
}

// The shipped example must stay valid: check it with its paths pointed at temp dirs.
TEST_F(ConfigTest, ShippedExampleIsValid) {
  std::string text = test::read_text(std::string(FERRY_SOURCE_DIR) + "/packaging/ferryd.toml.example");
  ASSERT_FALSE(text.empty());
  auto replace = [&](const std::string& from, const std::string& to) {
    for (size_t at; (at = text.find(from)) != std::string::npos;) text.replace(at, from.size(), to);
  };
  mkdir((dir_ / "srv").c_str(), 0755);
  mkdir((dir_ / "srv/plates").c_str(), 0755);
  mkdir((dir_ / "srv/cache").c_str(), 0755);
  replace("/srv/ferry/", dir_ / "srv/");
  replace("/etc/ferry/cert.pem", dir_ / "cert.pem");
  replace("/etc/ferry/key.pem", dir_ / "key.pem");
  auto c = parse(text);
  ASSERT_TRUE(c) << c.status().message();
  ASSERT_EQ(c->exports.size(), 3u);
  EXPECT_TRUE(c->exports[2].is_s3());
  EXPECT_EQ(c->exports[2].bucket, "studio-ingest");
  EXPECT_EQ(c->exports[2].prefix, "landing/");
  EXPECT_EQ(c->metrics_listen, "127.0.0.1:9471");
  EXPECT_EQ(c->server.memory, 1ull << 30);
}

}  // namespace
}  // namespace ferry::daemon

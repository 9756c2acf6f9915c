#include "s3/credentials.h"

#include <cstdlib>
#include <ctime>
#include <fstream>
#include <map>
#include <vector>

#include "s3/http_client.h"

namespace ferry::s3 {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? v : "";
}

std::string home_path(const std::string& rel) {
  std::string h = env("HOME");
  return h.empty() ? rel : h + "/" + rel;
}

std::string trim(std::string s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

using IniSection = std::map<std::string, std::string>;

// Reads one [section] of an AWS INI file: "key = value" lines, '#'/';' comments. Returns
// false when the file or the section does not exist. Nested (indented) sub-keys, as used
// for s3 = ... blocks, are skipped.
bool read_ini_section(const std::string& path, const std::string& section, IniSection* out) {
  std::ifstream in(path);
  if (!in) return false;
  std::string line;
  bool inside = false, found = false;
  size_t lines = 0;
  while (std::getline(in, line) && ++lines < 100'000) {
    if (!line.empty() && (line[0] == ' ' || line[0] == '\t')) continue;
    std::string t = trim(line);
    if (t.empty() || t[0] == '#' || t[0] == ';') continue;
    if (t.front() == '[' && t.back() == ']') {
      inside = trim(t.substr(1, t.size() - 2)) == section;
      found = found || inside;
      continue;
    }
    if (!inside) continue;
    size_t eq = t.find('=');
    if (eq == std::string::npos) continue;
    (*out)[trim(t.substr(0, eq))] = trim(t.substr(eq + 1));
  }
  return found;
}

std::string profile_name(const CredentialOptions& o) {
  if (!o.profile.empty()) return o.profile;
  std::string p = env("AWS_PROFILE");
  return p.empty() ? "default" : p;
}

std::string credentials_file() {
  std::string f = env("AWS_SHARED_CREDENTIALS_FILE");
  return f.empty() ? home_path(".aws/credentials") : f;
}

std::string config_file() {
  std::string f = env("AWS_CONFIG_FILE");
  return f.empty() ? home_path(".aws/config") : f;
}

// The config file names non-default profiles "[profile x]".
std::string config_section(const std::string& profile) {
  return profile == "default" ? "default" : "profile " + profile;
}

// Value of "Key" : "value" in a flat JSON object (the instance metadata document).
std::string json_string(const std::string& doc, const std::string& key) {
  size_t k = doc.find("\"" + key + "\"");
  if (k == std::string::npos) return "";
  size_t colon = doc.find(':', k);
  if (colon == std::string::npos) return "";
  size_t q1 = doc.find('"', colon);
  if (q1 == std::string::npos) return "";
  size_t q2 = doc.find('"', q1 + 1);
  if (q2 == std::string::npos) return "";
  return doc.substr(q1 + 1, q2 - q1 - 1);
}

int64_t parse_iso8601(const std::string& s) {
  std::tm tm{};
  if (!strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm)) return 0;
  return static_cast<int64_t>(timegm(&tm));
}

Result<Credentials> from_instance_metadata(const CredentialOptions& o) {
  std::string endpoint_text = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
  if (endpoint_text.empty()) endpoint_text = "http://169.254.169.254";
  auto endpoint = parse_endpoint(endpoint_text);
  if (!endpoint) return endpoint.status();
  HttpClientOptions ho;
  ho.connect_timeout = o.imds_timeout;
  ho.io_timeout = o.imds_timeout;
  auto client = HttpClient::create(*endpoint, ho);
  if (!client) return client.status();
  HttpRequest tok;
  tok.method = "PUT";
  tok.target = "/latest/api/token";
  tok.headers = {{"X-aws-ec2-metadata-token-ttl-seconds", "21600"}};
  auto t = (*client)->execute(tok);
  if (!t) return t.status();
  if (t->status != 200) return Status(Error::kRefused, "token request answered HTTP " + std::to_string(t->status));
  std::string token = trim(t->body);
  HttpRequest list;
  list.method = "GET";
  list.target = "/latest/meta-data/iam/security-credentials/";
  list.headers = {{"X-aws-ec2-metadata-token", token}};
  auto roles = (*client)->execute(list);
  if (!roles) return roles.status();
  if (roles->status != 200) return Status(Error::kRefused, "no instance role (HTTP " + std::to_string(roles->status) + ")");
  std::string role = trim(roles->body.substr(0, roles->body.find('\n')));
  if (role.empty() || role.find('/') != std::string::npos) return Status(Error::kRefused, "no instance role attached");
  list.target += role;
  auto doc = (*client)->execute(list);
  if (!doc) return doc.status();
  if (doc->status != 200) return Status(Error::kRefused, "role '" + role + "' answered HTTP " + std::to_string(doc->status));
  Credentials c;
  c.access_key_id = json_string(doc->body, "AccessKeyId");
  c.secret_access_key = json_string(doc->body, "SecretAccessKey");
  c.session_token = json_string(doc->body, "Token");
  c.expires_unix = parse_iso8601(json_string(doc->body, "Expiration"));
  c.source = "EC2 instance metadata (role '" + role + "')";
  if (c.access_key_id.empty() || c.secret_access_key.empty())
    return Status(Error::kProtocol, "role '" + role + "' document has no AccessKeyId/SecretAccessKey");
  return c;
}

}  // namespace

Result<Credentials> resolve_credentials(const CredentialOptions& o) {
  std::string tried;
  Credentials c;
  c.access_key_id = env("AWS_ACCESS_KEY_ID");
  c.secret_access_key = env("AWS_SECRET_ACCESS_KEY");
  c.session_token = env("AWS_SESSION_TOKEN");
  if (!c.access_key_id.empty() && !c.secret_access_key.empty()) {
    c.source = "environment";
    return c;
  }
  tried = c.access_key_id.empty() ? "environment" : "environment (AWS_SECRET_ACCESS_KEY is not set)";

  std::string profile = profile_name(o);
  const std::vector<std::pair<std::string, std::string>> files = {{credentials_file(), profile},
                                                                  {config_file(), config_section(profile)}};
  for (const auto& [path, section] : files) {
    IniSection s;
    bool found = read_ini_section(path, section, &s);
    tried += ", " + path + " profile '" + profile + "'";
    if (!found) continue;
    Credentials f;
    f.access_key_id = s["aws_access_key_id"];
    f.secret_access_key = s["aws_secret_access_key"];
    f.session_token = s["aws_session_token"];
    if (!f.access_key_id.empty() && !f.secret_access_key.empty()) {
      f.source = path + " profile '" + profile + "'";
      return f;
    }
    if (!f.access_key_id.empty()) tried += " (no aws_secret_access_key)";
  }

  std::string disabled = env("AWS_EC2_METADATA_DISABLED");
  if (disabled == "true" || disabled == "TRUE" || disabled == "1") {
    tried += ", EC2 instance metadata (disabled by AWS_EC2_METADATA_DISABLED)";
  } else {
    auto m = from_instance_metadata(o);
    if (m) return m;
    tried += ", EC2 instance metadata: " + m.status().message();
  }
  return Status(Error::kUsage, "no AWS credentials found (tried: " + tried + ")");
}

std::string resolve_region(const std::string& flag, const CredentialOptions& o) {
  if (!flag.empty()) return flag;
  for (const char* name : {"AWS_REGION", "AWS_DEFAULT_REGION"})
    if (std::string r = env(name); !r.empty()) return r;
  IniSection s;
  if (read_ini_section(config_file(), config_section(profile_name(o)), &s) && !s["region"].empty()) return s["region"];
  return "us-east-1";
}

Result<Credentials> CredentialProvider::get() {
  std::lock_guard lock(mu_);
  bool stale = loaded_ && creds_.expires_unix != 0 && creds_.expires_unix - 300 < static_cast<int64_t>(std::time(nullptr));
  if (!loaded_ || stale) {
    auto c = resolve_credentials(options_);
    if (!c) return c.status();
    creds_ = *c;
    loaded_ = true;
  }
  return creds_;
}

}  // namespace ferry::s3

// AWS credentials in the standard order: environment, shared credentials/config files
// (AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE), then EC2 instance metadata
// (IMDSv2: a PUT for a session token, then the role's credentials). Also the region.
#pragma once

#include <chrono>
#include <mutex>
#include <string>

#include "ferry/status.h"
#include "s3/sigv4.h"

namespace ferry::s3 {

struct CredentialOptions {
  std::string profile;  // empty: $AWS_PROFILE, else "default"
  // Instance metadata answers in milliseconds on EC2; elsewhere nothing answers, so keep the
  // wait short. AWS_EC2_METADATA_DISABLED=true skips it; AWS_EC2_METADATA_SERVICE_ENDPOINT
  // points it elsewhere (tests use a loopback server).
  std::chrono::milliseconds imds_timeout{1000};
};

// Resolves credentials once. On failure: kUsage "no AWS credentials found (tried:
// environment, ~/.aws/credentials profile 'x', ~/.aws/config profile 'x', EC2 instance
// metadata: <why>)". A profile that exists but lacks the secret is named as such.
Result<Credentials> resolve_credentials(const CredentialOptions& options);

// Region: the flag, else $AWS_REGION, $AWS_DEFAULT_REGION, the profile's `region` in the
// config file, else "us-east-1".
std::string resolve_region(const std::string& flag, const CredentialOptions& options);

// Thread-safe holder that refreshes temporary credentials (instance metadata) five minutes
// before they expire, so a long upload keeps signing with valid keys.
class CredentialProvider {
 public:
  explicit CredentialProvider(CredentialOptions options) : options_(std::move(options)) {}
  // A fixed set (tests, or keys given by the caller).
  explicit CredentialProvider(Credentials fixed) : creds_(std::move(fixed)), loaded_(true) {}
  Result<Credentials> get();

 private:
  CredentialOptions options_;
  std::mutex mu_;
  Credentials creds_;
  bool loaded_ = false;
};

}  // namespace ferry::s3

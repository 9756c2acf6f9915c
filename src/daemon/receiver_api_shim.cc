// TEMPORARY until branch security merges: see receiver_api_shim.h.
#include "daemon/receiver_api_shim.h"

#include <condition_variable>
#include <mutex>

#include "core/log.h"

namespace ferry::daemon {
namespace {

std::string parent_of(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == 0 ? "/" : path.substr(0, slash);
}

class ShimReceiver final : public Receiver {
 public:
  explicit ShimReceiver(std::unique_ptr<ferry::Receiver> inner) : inner_(std::move(inner)) {}

  std::string url() const override { return inner_->url(); }
  uint16_t port() const override { return inner_->port(); }
  Status run() override {
    Status st = inner_->run();
    std::lock_guard lock(mu_);
    finished_ = true;
    done_.notify_all();
    return st;
  }
  void stop() override { inner_->stop(); }
  ReceiverMetrics metrics() const override { return ReceiverMetrics{0, 0, 0, 0, 0, 0, 0}; }
  Status reload(std::vector<ExportSpec> exports, TokenVerifier verify_token) override {
    std::lock_guard lock(mu_);
    exports_ = std::move(exports);
    verify_token_ = std::move(verify_token);
    return Status::ok();
  }
  void stop_accepting() override {}
  Status shutdown(std::chrono::milliseconds grace) override {
    inner_->stop();
    std::unique_lock lock(mu_);
    if (!done_.wait_for(lock, grace, [this] { return finished_; }))
      return Status(Error::kInterrupted, "receiver did not stop within " + std::to_string(grace.count()) + " ms");
    return Status::ok();
  }

 private:
  std::unique_ptr<ferry::Receiver> inner_;
  std::mutex mu_;
  std::condition_variable done_;
  bool finished_ = false;
  std::vector<ExportSpec> exports_;
  TokenVerifier verify_token_;
};

}  // namespace

Result<std::unique_ptr<Receiver>> Receiver::create(const ReceiveOptions& options) {
  if (!options.tls.plaintext)
    return Status(Error::kUsage, "TLS is not in this build yet (receiver_api_shim, until branch security merges): "
                                 "set plaintext = true in [tls] to run");
  if (options.exports.empty()) return Status(Error::kUsage, "no exports");
  std::string parent = parent_of(options.exports[0].root);
  for (const auto& e : options.exports)
    if (parent_of(e.root) != parent || e.root != (parent == "/" ? "" : parent) + "/" + e.name)
      return Status(Error::kUsage, "receiver_api_shim: export '" + e.name + "' must be the directory " + parent + "/" +
                                       e.name + " (today's receiver serves one root; until branch security merges, "
                                       "exports are sibling directories named after the export)");
  ferry::ReceiveOptions inner = options;  // the base part: listen, memory, timeouts
  inner.root = parent;
  inner.once = false;
  log::event(log::Level::kWarning, "receiver_api_shim in use: no TLS, no token check, no session limits",
             {{"root", parent}});
  auto r = ferry::Receiver::create(inner);
  if (!r) return r.status();
  return std::unique_ptr<Receiver>(new ShimReceiver(std::move(*r)));
}

}  // namespace ferry::daemon

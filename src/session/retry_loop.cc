#include "session/retry_loop.h"

#include <algorithm>
#include <string>
#include <thread>

#include "core/log.h"

namespace ferry {

namespace {
constexpr auto kFirstBackoff = std::chrono::milliseconds(500);
constexpr auto kMaxBackoff = std::chrono::seconds(15);
}  // namespace

Status run_with_reconnects(const std::function<AttemptOutcome()>& attempt, const ReconnectPolicy& policy) {
  using Clock = std::chrono::steady_clock;
  Clock::time_point lost_at{};  // {}: not lost (no failure since the last established attempt)
  bool ever_established = false;
  std::chrono::milliseconds backoff = kFirstBackoff;
  for (;;) {
    AttemptOutcome a = attempt();
    ever_established |= a.established;
    if (a.established) {
      lost_at = {};
      backoff = kFirstBackoff;
    }
    if (a.status.code() != Error::kNetwork || !ever_established) return a.status;
    auto now = Clock::now();
    if (lost_at == Clock::time_point{}) lost_at = now;
    if (now - lost_at + backoff > policy.retry_timeout) {
      std::string note = " (gave up reconnecting)";
      if (policy.give_up_names_duration)
        note = " (gave up reconnecting after " +
               std::to_string(std::chrono::duration_cast<std::chrono::seconds>(now - lost_at).count()) + " s)";
      return Status(Error::kNetwork, a.status.message() + note);
    }
    log::warning(a.status.message() + "; reconnecting in " + std::to_string(backoff.count()) + " ms");
    if (policy.on_reconnect) policy.on_reconnect();
    std::this_thread::sleep_for(backoff);
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, kMaxBackoff);
  }
}

}  // namespace ferry

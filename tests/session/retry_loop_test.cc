// Tests for src/session/retry_loop.{h,cc}: which outcomes send/get retry, and how they give up.
// The attempts are scripted outcomes (a named fake: the loop itself opens no connection; the
// real lost-connection path is covered end to end by tests/e2e).
#include "session/retry_loop.h"

#include <gtest/gtest.h>

#include <vector>

namespace ferry {
namespace {

// Returns the scripted outcomes in order; counts the calls.
struct ScriptedAttempts {
  std::vector<AttemptOutcome> script;
  size_t calls = 0;
  AttemptOutcome operator()() { return script.at(calls++); }
};

Status lost() { return Status(Error::kNetwork, "receiver 127.0.0.1:9: connection reset"); }

TEST(RetryLoop, ARefusalIsNotRetriedEvenAfterTheSessionWasAccepted) {
  ScriptedAttempts s{{{Status(Error::kRefused, "no write access"), true}}};
  int reconnects = 0;
  ReconnectPolicy p;
  p.retry_timeout = std::chrono::seconds(60);
  p.on_reconnect = [&] { ++reconnects; };
  Status st = run_with_reconnects(std::ref(s), p);
  EXPECT_EQ(st.code(), Error::kRefused);
  EXPECT_EQ(st.message(), "no write access");
  EXPECT_EQ(s.calls, 1u);
  EXPECT_EQ(reconnects, 0);
}

TEST(RetryLoop, ANetworkErrorBeforeThePeerAcceptedFailsAtOnce) {
  ScriptedAttempts s{{{lost(), false}}};
  ReconnectPolicy p;
  p.retry_timeout = std::chrono::seconds(60);
  Status st = run_with_reconnects(std::ref(s), p);
  EXPECT_EQ(st.message(), lost().message()) << "no give-up note: it never reconnected";
  EXPECT_EQ(s.calls, 1u);
}

// Once one attempt was accepted, a later attempt that cannot even connect is retried too.
TEST(RetryLoop, ALostConnectionIsRetriedUntilAnAttemptEndsOtherwise) {
  ScriptedAttempts s{{{lost(), true}, {lost(), false}, {Status::ok(), true}}};
  int reconnects = 0;
  ReconnectPolicy p;
  p.retry_timeout = std::chrono::seconds(60);
  p.on_reconnect = [&] { ++reconnects; };
  Status st = run_with_reconnects(std::ref(s), p);  // waits 0.5 s, then 1 s
  EXPECT_TRUE(st.is_ok()) << st.to_string();
  EXPECT_EQ(s.calls, 3u);
  EXPECT_EQ(reconnects, 2);
}

TEST(RetryLoop, GivesUpWhenTheNextWaitWouldPassTheRetryTimeoutAndSaysSo) {
  ScriptedAttempts get{{{lost(), true}}};
  ReconnectPolicy p;
  p.retry_timeout = std::chrono::milliseconds(0);
  Status st = run_with_reconnects(std::ref(get), p);
  EXPECT_EQ(st.code(), Error::kNetwork);
  EXPECT_EQ(st.message(), lost().message() + " (gave up reconnecting)");
  EXPECT_EQ(get.calls, 1u);

  ScriptedAttempts send{{{lost(), true}}};
  p.give_up_names_duration = true;
  st = run_with_reconnects(std::ref(send), p);
  EXPECT_EQ(st.message(), lost().message() + " (gave up reconnecting after 0 s)");
}

}  // namespace
}  // namespace ferry

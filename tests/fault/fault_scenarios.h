// fault_scenarios.h: what the transport fault scenarios share (docs/
// reliability.md, "Transport scenarios"): a pipelined command stream that
// retries what was not accepted, the consumer's record of side effects, and
// a probe of request deadlines.
//
//   auto log = std::make_shared<EffectLog>();
//   auto consumer = consumer_transport->Consume(ep, log->Handler());
//   StreamResult r = RunCommandStream(*producer, op, options);
//   int64_t lost = log->WaitForAll(r.accepted_keys, absl::Seconds(30));
//
// "Accepted" means the transport's Enqueue called back OK. A command that
// was not accepted is sent again, with the same message id and idempotency
// key, after a short back-off (as a producer with a retry policy does), until
// the stream's time limit. The consumer applies the side effect of a key
// once (the idempotency check the middleware makes), so a redelivery is
// counted as a duplicate delivery, never as a second effect.
//
// Thread safety: EffectLog may be called from any thread; RunCommandStream
// and ProbeRequests block the calling thread.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "switchboard/transport.h"

namespace switchboard::testing {

// "nats://127.0.0.1:4222" or "amqp://guest:guest@127.0.0.1:5672" -> the
// port; 0 when it does not parse.
uint16_t PortOf(const std::string& url);
// `url` with its port replaced by `port` (the proxy in front of it).
std::string WithPort(const std::string& url, uint16_t port);

struct StreamOptions {
  int commands = 10'000;
  // Enqueues in flight at most.
  int window = 256;
  absl::Duration retry_backoff = absl::Milliseconds(100);
  // The whole stream, retries included, stops sending after this.
  absl::Duration time_limit = absl::Seconds(90);
  // An Enqueue that has not called back within this is counted as hung.
  absl::Duration callback_bound = absl::Seconds(15);
  // New commands per second at most (0 = as fast as the window allows), so
  // that a stream spans a slow fault such as a broker restart.
  double rate = 0;
  // Called on the sending thread before command i is first sent (faults).
  std::function<void(int i)> before_send;
};

struct StreamResult {
  int commands = 0;
  std::set<std::string> accepted_keys;
  // Enqueues that called back with an error (each then retried).
  int64_t failed_attempts = 0;
  // Error codes of the failed attempts; any with an empty message counts in
  // `unclear_errors`.
  std::map<absl::StatusCode, int64_t> error_codes;
  int64_t unclear_errors = 0;
  std::string first_error;
  // Enqueues that did not call back within callback_bound.
  int64_t hung = 0;
  absl::Duration slowest_callback;
  absl::Duration elapsed;
  // From the first failed attempt to the last one, and from the last failed
  // attempt to the next accepted command (how long the fault was visible).
  absl::Time first_failure = absl::InfinitePast();
  absl::Time last_failure = absl::InfinitePast();
  absl::Duration recovery;
  absl::Time first_accepted = absl::InfiniteFuture();
};

// Sends `options.commands` commands of `op` (idempotency keys "<op>#<i>")
// through `producer`, at most `window` at a time.
StreamResult RunCommandStream(Transport& producer, const std::string& op,
                              const StreamOptions& options);

// The codes a transport may give an enqueue it cannot take now.
bool IsRetryableSendError(absl::StatusCode code);

class EffectLog;

// What every stream scenario promises (gtest expectations): every command
// accepted, none lost, none hung, failures retryable with a message, one
// effect per accepted key and no other. Prints the scenario's result line
// ("[ fault ] <transport> <scenario>: ...", quoted by the docs).
void ExpectStreamIntact(const char* transport, const char* scenario, const StreamResult& r,
                        EffectLog& log, int64_t lost, const std::string& extra = "");

// The consumer's side effects, one per idempotency key.
class EffectLog : public std::enable_shared_from_this<EffectLog> {
 public:
  // Records the delivery's key, then acks it. Keep the log alive as long as
  // the subscription (the handler holds a reference).
  DeliveryHandler Handler();
  // Applies the side effect of `key` unless it was applied; true when it
  // was (a first delivery).
  bool Record(const std::string& key);
  // Waits (at most `limit`) until every key of `accepted` has its effect;
  // returns how many have none.
  int64_t WaitForAll(const std::set<std::string>& accepted, absl::Duration limit);
  int64_t deliveries() const;
  int64_t duplicate_deliveries() const;
  int64_t effects() const;
  // Effects of keys that are not in `accepted` (sent, not accepted, and
  // still delivered: allowed, the producer retried them anyway).
  int64_t EffectsOutside(const std::set<std::string>& accepted) const;

 private:
  mutable absl::Mutex mu_;
  std::set<std::string> keys_ ABSL_GUARDED_BY(mu_);
  int64_t deliveries_ ABSL_GUARDED_BY(mu_) = 0;
};

struct DeadlineResult {
  int calls = 0;
  int ok = 0;
  int deadline_exceeded = 0;
  int other = 0;
  std::string first_other;
  // Latest return relative to the call's deadline (negative: returned before
  // it), and the slowest and fastest call.
  absl::Duration worst_overrun = -absl::InfiniteDuration();
  absl::Duration slowest;
  absl::Duration fastest = absl::InfiniteDuration();
  // Calls that had not returned by deadline + 5 s.
  int hung = 0;
};

// `calls` requests of `op` through `client`, `concurrency` at a time, each
// with the deadline now + `timeout`.
DeadlineResult ProbeRequests(Transport& client, const std::string& op, int calls,
                             int concurrency, absl::Duration timeout);

// An echo server for ProbeRequests: replies with the request's data.
RequestHandler EchoHandler();

// Runs a shell command (a broker restart) on its own thread; Wait() returns
// its exit status.
class Background {
 public:
  explicit Background(std::string command);
  ~Background();
  int Wait();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace switchboard::testing

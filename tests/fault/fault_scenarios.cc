#include "fault_scenarios.h"

#include <algorithm>
#include <cstdio>
#include <atomic>
#include <cstdlib>
#include <deque>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "switchboard/envelope.h"
#include "switchboard/internal/strings.h"

namespace switchboard::testing {

uint16_t PortOf(const std::string& url) {
  size_t colon = url.rfind(':');
  size_t end = url.find('/', colon == std::string::npos ? 0 : colon);
  uint32_t port = 0;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(url.substr(colon + 1, end == std::string::npos ? std::string::npos
                                                                       : end - colon - 1),
                        &port) ||
      port > 65535) {
    return 0;
  }
  return static_cast<uint16_t>(port);
}

std::string WithPort(const std::string& url, uint16_t port) {
  size_t colon = url.rfind(':');
  if (colon == std::string::npos) return url;
  size_t end = url.find('/', colon);
  return Cat(url.substr(0, colon + 1), port, end == std::string::npos ? "" : url.substr(end));
}

bool IsRetryableSendError(absl::StatusCode code) {
  return code == absl::StatusCode::kUnavailable || code == absl::StatusCode::kDeadlineExceeded ||
         code == absl::StatusCode::kResourceExhausted || code == absl::StatusCode::kAborted;
}

namespace {

struct Completion {
  int index;
  absl::Status status;
  absl::Time at;
};

// What the Enqueue callbacks share with the sending thread (they may run
// after RunCommandStream gave up on them).
struct StreamShared {
  absl::Mutex mu;
  std::deque<Completion> done ABSL_GUARDED_BY(mu);
};

}  // namespace

StreamResult RunCommandStream(Transport& producer, const std::string& op,
                              const StreamOptions& options) {
  StreamResult r;
  r.commands = options.commands;
  auto shared = std::make_shared<StreamShared>();
  const std::string source = Cat("//fault-producer/", NewMessageId());
  std::vector<Envelope> commands(options.commands);
  std::map<int, absl::Time> in_flight;               // index -> sent at
  std::multimap<absl::Time, int> retries;            // due -> index
  int next = 0;
  int settled = 0;  // accepted, or abandoned at the time limit
  const absl::Time start = absl::Now();
  const absl::Time stop_sending = start + options.time_limit;

  auto send = [&](int i, absl::Time now) {
    in_flight[i] = now;
    producer.Enqueue(commands[i], [shared, i](absl::Status s) {
      absl::MutexLock lock(&shared->mu);
      shared->done.push_back({i, std::move(s), absl::Now()});
    });
  };

  while (true) {
    absl::Time now = absl::Now();
    std::deque<Completion> done;
    {
      absl::MutexLock lock(&shared->mu);
      done.swap(shared->done);
    }
    for (Completion& c : done) {
      auto it = in_flight.find(c.index);
      if (it == in_flight.end()) continue;  // counted as hung already
      r.slowest_callback = std::max(r.slowest_callback, c.at - it->second);
      in_flight.erase(it);
      if (c.status.ok()) {
        r.accepted_keys.insert(commands[c.index].idempotency_key);
        r.first_accepted = std::min(r.first_accepted, c.at);
        if (r.last_failure != absl::InfinitePast() && r.recovery == absl::ZeroDuration() &&
            c.at > r.last_failure) {
          // Provisional: updated while failures keep coming.
          r.recovery = c.at - r.last_failure;
        }
        ++settled;
        continue;
      }
      ++r.failed_attempts;
      ++r.error_codes[c.status.code()];
      if (c.status.message().empty()) ++r.unclear_errors;
      if (r.first_error.empty()) r.first_error = c.status.ToString();
      if (r.first_failure == absl::InfinitePast()) r.first_failure = c.at;
      r.last_failure = std::max(r.last_failure, c.at);
      r.recovery = absl::ZeroDuration();
      if (now < stop_sending) {
        retries.emplace(now + options.retry_backoff, c.index);
      } else {
        ++settled;
      }
    }
    // Hung: never called back within the bound.
    for (auto it = in_flight.begin(); it != in_flight.end();) {
      if (now - it->second > options.callback_bound) {
        ++r.hung;
        ++settled;
        it = in_flight.erase(it);
      } else {
        ++it;
      }
    }
    if (settled >= options.commands) break;
    if (now >= stop_sending) {
      // Abandon what waits for a retry; wait only for the calls in flight.
      settled += static_cast<int>(retries.size());
      retries.clear();
      if (next < options.commands) {
        settled += options.commands - next;
        next = options.commands;
      }
      if (settled >= options.commands) break;
    }
    while (!retries.empty() && retries.begin()->first <= now &&
           static_cast<int>(in_flight.size()) < options.window) {
      int i = retries.begin()->second;
      retries.erase(retries.begin());
      send(i, now);
    }
    while (next < options.commands && now < stop_sending &&
           static_cast<int>(in_flight.size()) < options.window &&
           (options.rate <= 0 || now >= start + absl::Seconds(next / options.rate))) {
      int i = next++;
      if (options.before_send) {
        options.before_send(i);
        now = absl::Now();
      }
      Envelope& cmd = commands[i];
      cmd.id = NewMessageId();
      cmd.source = source;
      cmd.type = op;
      cmd.time = now;
      cmd.style = Style::kCommand;
      cmd.idempotency_key = Cat(op, "#", i);
      cmd.data = Cat("payload-", i);
      send(i, now);
    }
    absl::MutexLock lock(&shared->mu);
    auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(shared->mu) { return !shared->done.empty(); };
    shared->mu.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(5));
  }
  r.elapsed = absl::Now() - start;
  return r;
}

void ExpectStreamIntact(const char* transport, const char* scenario, const StreamResult& r, EffectLog& log,
                        int64_t lost, const std::string& extra) {
  std::printf("[ fault ] %s %s: commands %d accepted %zu failed attempts %lld lost %lld "
              "effects %lld duplicate deliveries %lld hung %lld slowest enqueue %s "
              "elapsed %s%s\n",
              transport, scenario, r.commands, r.accepted_keys.size(),
              static_cast<long long>(r.failed_attempts), static_cast<long long>(lost),
              static_cast<long long>(log.effects()),
              static_cast<long long>(log.duplicate_deliveries()),
              static_cast<long long>(r.hung), absl::FormatDuration(r.slowest_callback).c_str(),
              absl::FormatDuration(r.elapsed).c_str(), extra.c_str());
  EXPECT_EQ(static_cast<int>(r.accepted_keys.size()), r.commands) << r.first_error;
  EXPECT_EQ(lost, 0);
  EXPECT_EQ(r.hung, 0);
  EXPECT_EQ(r.unclear_errors, 0);
  for (const auto& [code, n] : r.error_codes) {
    EXPECT_TRUE(IsRetryableSendError(code)) << n << " enqueues failed with " << code;
  }
  // One effect per key: every accepted command's, and no other.
  EXPECT_EQ(log.effects(), static_cast<int64_t>(r.accepted_keys.size()));
  EXPECT_EQ(log.EffectsOutside(r.accepted_keys), 0);
}

DeliveryHandler EffectLog::Handler() {
  std::shared_ptr<EffectLog> self = shared_from_this();
  return [self](std::unique_ptr<Delivery> d) {
    self->Record(d->envelope().idempotency_key);
    d->Ack();
  };
}

bool EffectLog::Record(const std::string& key) {
  absl::MutexLock lock(&mu_);
  ++deliveries_;
  return keys_.insert(key).second;
}

int64_t EffectLog::WaitForAll(const std::set<std::string>& accepted, absl::Duration limit) {
  const absl::Time end = absl::Now() + limit;
  while (true) {
    int64_t missing = 0;
    {
      absl::MutexLock lock(&mu_);
      for (const std::string& key : accepted) missing += keys_.count(key) == 0 ? 1 : 0;
    }
    if (missing == 0 || absl::Now() > end) return missing;
    absl::SleepFor(absl::Milliseconds(20));
  }
}

int64_t EffectLog::deliveries() const {
  absl::MutexLock lock(&mu_);
  return deliveries_;
}

int64_t EffectLog::duplicate_deliveries() const {
  absl::MutexLock lock(&mu_);
  return deliveries_ - static_cast<int64_t>(keys_.size());
}

int64_t EffectLog::effects() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(keys_.size());
}

int64_t EffectLog::EffectsOutside(const std::set<std::string>& accepted) const {
  absl::MutexLock lock(&mu_);
  int64_t n = 0;
  for (const std::string& key : keys_) n += accepted.count(key) == 0 ? 1 : 0;
  return n;
}

DeadlineResult ProbeRequests(Transport& client, const std::string& op, int calls,
                             int concurrency, absl::Duration timeout) {
  DeadlineResult r;
  r.calls = calls;
  std::vector<std::pair<absl::Time, absl::Time>> started;  // (sent, deadline) per call
  started.reserve(calls);
  int sent = 0;
  int returned = 0;
  // Completions arrive in any order; each carries its call's index.
  struct Done {
    int index;
    absl::Status status;
    absl::Time at;
  };
  auto results = std::make_shared<std::pair<absl::Mutex, std::vector<Done>>>();
  while (returned < calls) {
    while (sent < calls && sent - returned < concurrency) {
      Envelope req;
      req.id = NewMessageId();
      req.source = "//fault-probe";
      req.type = op;
      req.time = absl::Now();
      req.style = Style::kRequest;
      req.data = Cat("probe-", sent);
      req.deadline = req.time + timeout;
      started.emplace_back(req.time, req.deadline);
      const int index = sent++;
      client.Request(std::move(req), [results, index](absl::StatusOr<Envelope> reply) {
        absl::Status s = reply.ok() ? reply->status : reply.status();
        absl::MutexLock lock(&results->first);
        results->second.push_back({index, std::move(s), absl::Now()});
      });
    }
    std::vector<Done> done;
    {
      absl::MutexLock lock(&results->first);
      auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(results->first) {
        return !results->second.empty();
      };
      results->first.AwaitWithTimeout(absl::Condition(&ready), absl::Milliseconds(50));
      done.swap(results->second);
    }
    for (Done& d : done) {
      ++returned;
      const auto& [at_send, deadline] = started[d.index];
      r.worst_overrun = std::max(r.worst_overrun, d.at - deadline);
      r.slowest = std::max(r.slowest, d.at - at_send);
      r.fastest = std::min(r.fastest, d.at - at_send);
      if (d.status.ok()) {
        ++r.ok;
      } else if (d.status.code() == absl::StatusCode::kDeadlineExceeded) {
        ++r.deadline_exceeded;
      } else {
        ++r.other;
        if (r.first_other.empty()) r.first_other = d.status.ToString();
      }
    }
    // Calls long past their deadline are hung: stop waiting for them.
    if (returned < calls && sent == calls &&
        absl::Now() > started.back().second + absl::Seconds(5)) {
      r.hung = calls - returned;
      break;
    }
  }
  return r;
}

RequestHandler EchoHandler() {
  return [](Envelope request, ReplyCallback reply) {
    Envelope out;
    out.id = NewMessageId();
    out.source = "//fault-echo";
    out.type = request.type;
    out.time = absl::Now();
    out.data = request.data;
    std::move(reply)(std::move(out));
  };
}

struct Background::State {
  std::thread thread;
  std::atomic<int> rc{-1};
};

Background::Background(std::string command) : state_(std::make_shared<State>()) {
  std::shared_ptr<State> s = state_;
  state_->thread = std::thread([s, command = std::move(command)] {
    s->rc = std::system(command.c_str());
  });
}

Background::~Background() { Wait(); }

int Background::Wait() {
  if (state_->thread.joinable()) state_->thread.join();
  return state_->rc.load();
}

}  // namespace switchboard::testing

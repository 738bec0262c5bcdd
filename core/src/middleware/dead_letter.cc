#include "middleware/dead_letter.h"

#include <memory>
#include <set>

#include "absl/strings/numbers.h"
#include "builtin_middleware.h"
#include "middleware/policy_util.h"
#include "switchboard/internal/strings.h"
#include "switchboard/policies.h"
#include "switchboard/status.h"
#include "switchboard/trace_context.h"

namespace switchboard {
namespace policy {

void StampDeadLetter(Envelope* env, int attempts, absl::Time now) {
  env->extensions[std::string(attr::kDeadLetterAttempts)] = Cat(attempts);
  env->extensions[std::string(attr::kDeadLetteredAt)] = FormatRfc3339(now);
}

Envelope ReplayEnvelope(const Envelope& dead, absl::Time deadline, absl::Time now) {
  Envelope env = dead;
  env.attempt = 1;
  env.status = absl::OkStatus();
  env.reply_to.clear();  // the original caller stopped waiting long ago
  env.deadline = deadline;
  for (std::string_view key : {attr::kDeadLetterReason, attr::kDeadLetterCode,
                               attr::kDeadLetterAttempts, attr::kDeadLetteredAt}) {
    env.extensions.erase(std::string(key));
  }
  env.extensions[std::string(attr::kDeadLetterReplayedAt)] = FormatRfc3339(now);
  TraceParent parent;
  env.traceparent = TraceParent::Parse(env.traceparent, &parent) ? parent.Child().ToString()
                                                                 : TraceParent::NewRoot().ToString();
  return env;
}

}  // namespace policy

// ---------------------------------------------------------------------------
// Public API (switchboard/policies.h).

PolicyStats& GetPolicyStats(const Node& node) { return *NodeServicesOf(node)->policy_stats; }

absl::Status SetFallback(Node& node, std::string_view operation, RawFallback fallback) {
  absl::StatusOr<v1::OperationBinding> binding = node.Binding(operation);
  if (!binding.ok()) return binding.status();
  const auto& policies = node.config().policies();
  auto it = policies.find(binding->policy());
  if (binding->policy().empty() || it == policies.end() || !it->second.has_circuit_breaker()) {
    return absl::FailedPreconditionError(Cat(
        "operation ", operation, " has no circuit_breaker in its policy",
        binding->policy().empty() ? "" : Cat(" `", binding->policy(), "`"),
        "; a fallback runs only behind a breaker: add `circuit_breaker:` to the policy"));
  }
  NodeServicesOf(node)->fallbacks->Set(operation, std::move(fallback));
  return absl::OkStatus();
}

DeadLetter DeadLetterFromEnvelope(Envelope envelope) {
  DeadLetter dl;
  dl.operation = envelope.type;
  dl.attempts = envelope.attempt;
  auto get = [&](std::string_view key) -> const std::string* {
    auto it = envelope.extensions.find(std::string(key));
    return it == envelope.extensions.end() ? nullptr : &it->second;
  };
  if (const std::string* a = get(attr::kDeadLetterAttempts)) {
    int n;
    if (absl::SimpleAtoi(*a, &n) && n > 0) dl.attempts = n;
  }
  absl::StatusCode code = absl::StatusCode::kUnknown;
  if (const std::string* c = get(attr::kDeadLetterCode)) {
    if (!ParseCode(*c, &code)) code = absl::StatusCode::kUnknown;
  }
  const std::string* reason = get(attr::kDeadLetterReason);
  if (reason != nullptr || get(attr::kDeadLetterCode) != nullptr) {
    dl.last_error = absl::Status(code == absl::StatusCode::kOk ? absl::StatusCode::kUnknown : code,
                                 reason != nullptr ? *reason : "");
  }
  if (const std::string* at = get(attr::kDeadLetteredAt)) {
    absl::StatusOr<absl::Time> t = ParseRfc3339(*at);
    if (t.ok()) dl.dead_lettered_at = *t;
  }
  dl.envelope = std::move(envelope);
  return dl;
}

absl::StatusOr<DeadLetterReport> ProcessDeadLetters(
    Node& node, std::string_view operation,
    const std::function<DeadLetterAction(const DeadLetter&)>& decide, DeadLetterOptions options) {
  absl::StatusOr<v1::OperationBinding> binding = node.Binding(operation);
  if (!binding.ok()) return binding.status();
  const v1::Style style = binding->style();
  if (style != v1::STYLE_COMMAND && style != v1::STYLE_EVENT) {
    return absl::InvalidArgumentError(Cat("operation ", operation,
                                          " is not bound as a command or event, so it has no "
                                          "dead-letter queue"));
  }
  Transport* transport = node.FindTransport(binding->transport());
  if (transport == nullptr) {
    return absl::FailedPreconditionError(
        Cat("operation ", operation, ": transport \"", binding->transport(), "\" is not open"));
  }
  absl::Duration timeout = absl::ZeroDuration();
  if (auto it = node.config().policies().find(binding->policy());
      it != node.config().policies().end() && it->second.has_timeout()) {
    timeout = policy::FromProto(it->second.timeout());
  }
  PolicyCounters& counters = GetPolicyStats(node).For(operation);
  Clock* clock = &node.clock();

  struct State {
    absl::Mutex mu;
    DeadLetterReport report ABSL_GUARDED_BY(mu);
    int taken ABSL_GUARDED_BY(mu) = 0;
    int pending ABSL_GUARDED_BY(mu) = 0;  // replays waiting for the transport
    bool stop ABSL_GUARDED_BY(mu) = false;
    absl::Time last_activity ABSL_GUARDED_BY(mu) = absl::Now();
    std::set<std::string> kept ABSL_GUARDED_BY(mu);
    // Kept messages stay unsettled until the pass ends, so the pass does
    // not see them again and they are back in the queue at once after it.
    std::vector<std::unique_ptr<Delivery>> held ABSL_GUARDED_BY(mu);
  };
  auto state = std::make_shared<State>();
  const int max = std::max(0, options.max);
  const absl::Duration keep_delay = std::max(options.idle * 2, absl::Milliseconds(100));

  Endpoint endpoint;
  endpoint.operation = DeadLetterAddress(operation);
  endpoint.group = endpoint.operation;
  endpoint.max_in_flight = std::max(1, max);
  DeliveryHandler handler = [state, max, keep_delay, transport, style, timeout, clock, &counters,
                             decide](std::unique_ptr<Delivery> delivery) {
    {
      absl::MutexLock lock(&state->mu);
      if (state->stop || state->taken >= max) {
        // Not settled during the pass (a settlement could hand it straight
        // back to this handler); it returns to the queue when the pass ends.
        state->held.push_back(std::move(delivery));
        return;
      }
      state->last_activity = absl::Now();
      if (state->kept.contains(delivery->envelope().id)) {
        // Back around to one we left in the queue: every message was seen.
        state->stop = true;
        state->held.push_back(std::move(delivery));
        return;
      }
      ++state->taken;
      ++state->report.seen;
    }
    DeadLetter dl = DeadLetterFromEnvelope(delivery->envelope());
    DeadLetterAction action = decide(dl);
    if (action == DeadLetterAction::kDiscard) {
      delivery->Ack();
      absl::MutexLock lock(&state->mu);
      ++state->report.discarded;
      return;
    }
    if (action == DeadLetterAction::kKeep) {
      absl::MutexLock lock(&state->mu);
      ++state->report.kept;
      state->kept.insert(dl.envelope.id);
      state->held.push_back(std::move(delivery));
      return;
    }
    Envelope env = policy::ReplayEnvelope(
        dl.envelope, timeout > absl::ZeroDuration() ? clock->Now() + timeout : absl::InfiniteFuture(),
        clock->Now());
    std::string id = env.id;
    {
      absl::MutexLock lock(&state->mu);
      ++state->pending;
    }
    auto held = std::make_shared<std::unique_ptr<Delivery>>(std::move(delivery));
    DoneCallback accepted = [state, held, keep_delay, &counters, id](absl::Status s) {
      if (s.ok()) {
        (*held)->Ack();
        counters.dead_letters_replayed.fetch_add(1, std::memory_order_relaxed);
      } else {
        (*held)->Retry(keep_delay);
      }
      absl::MutexLock lock(&state->mu);
      if (s.ok()) {
        ++state->report.replayed;
      } else {
        ++state->report.failed;
        if (state->report.first_error.ok()) state->report.first_error = s;
        state->kept.insert(id);
      }
      --state->pending;
      state->last_activity = absl::Now();
    };
    if (style == v1::STYLE_COMMAND) {
      transport->Enqueue(std::move(env), std::move(accepted));
    } else {
      transport->Publish(std::move(env), std::move(accepted));
    }
  };

  absl::StatusOr<std::unique_ptr<Subscription>> sub = transport->Consume(endpoint, handler);
  if (!sub.ok()) return sub.status();

  const absl::Time give_up = absl::Now() + options.timeout;
  absl::CondVar tick;
  absl::MutexLock lock(&state->mu);
  while (true) {
    absl::Time now = absl::Now();
    bool drained = state->pending == 0 &&
                   (state->stop || state->taken >= max || now - state->last_activity >= options.idle);
    if (drained || now >= give_up) break;
    tick.WaitWithTimeout(&state->mu, absl::Milliseconds(10));  // nobody signals: a timed poll
  }
  state->stop = true;
  state->mu.Unlock();
  // Stop delivery first (waits for handler calls in progress): the
  // transport takes back what it handed out and did not get settled; the
  // Retry below tells a broker that needs it to redeliver now.
  sub->reset();
  std::vector<std::unique_ptr<Delivery>> held;
  {
    absl::MutexLock held_lock(&state->mu);
    held.swap(state->held);
  }
  for (auto& d : held) d->Retry(absl::ZeroDuration());
  state->mu.Lock();
  // Replays still waiting for the transport after the pass timed out.
  auto settled = [&state]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(state->mu) { return state->pending == 0; };
  state->mu.AwaitWithTimeout(absl::Condition(&settled), absl::Seconds(5));
  return state->report;
}

absl::StatusOr<int> ReplayDeadLetters(Node& node, std::string_view operation, int max) {
  DeadLetterOptions options;
  options.max = max;
  absl::StatusOr<DeadLetterReport> report = ProcessDeadLetters(
      node, operation, [](const DeadLetter&) { return DeadLetterAction::kReplay; }, options);
  if (!report.ok()) return report.status();
  if (report->replayed == 0 && report->failed > 0) return report->first_error;
  return report->replayed;
}

absl::StatusOr<std::vector<DeadLetter>> ReadDeadLetters(Node& node, std::string_view operation,
                                                        int max) {
  std::vector<DeadLetter> out;
  absl::Mutex mu;
  DeadLetterOptions options;
  options.max = max;
  absl::StatusOr<DeadLetterReport> report = ProcessDeadLetters(
      node, operation,
      [&](const DeadLetter& dl) {
        absl::MutexLock lock(&mu);
        out.push_back(dl);
        return DeadLetterAction::kKeep;
      },
      options);
  if (!report.ok()) return report.status();
  absl::MutexLock lock(&mu);
  std::vector<DeadLetter> result = std::move(out);
  return result;
}

}  // namespace switchboard

#include "middleware/tracing.h"

#include <utility>

#include "switchboard/clock.h"
#include "switchboard/context.h"
#include "switchboard/trace_context.h"

namespace switchboard {
namespace {

thread_local std::string_view current_hop_parent;

// "00-<trace id>-<span id>-<flags>": the fixed positions of version 00, which
// is what the node writes after parsing (higher versions are re-emitted as 00).
constexpr size_t kTraceIdPos = 3;
constexpr size_t kSpanIdPos = 36;
constexpr size_t kTraceparentSize = 55;

std::string_view TraceIdOf(std::string_view traceparent) {
  return traceparent.size() >= kTraceparentSize ? traceparent.substr(kTraceIdPos, 32)
                                                : std::string_view();
}
std::string_view SpanIdOf(std::string_view traceparent) {
  return traceparent.size() >= kTraceparentSize ? traceparent.substr(kSpanIdPos, 16)
                                                : std::string_view();
}

absl::Status OutcomeOf(const absl::StatusOr<Envelope>& result) {
  return result.ok() ? result->status : result.status();
}

SpanData BaseSpan(const CallSite& site, SpanKind kind, const Envelope& env) {
  SpanData span;
  span.kind = kind;
  span.operation = site.operation;
  span.style = site.style;
  span.transport = site.transport_name;
  span.transport_type = site.transport_type;
  span.attempt = env.attempt;
  span.idempotency_key = env.idempotency_key;
  span.message_id = env.id;
  return span;
}

LogLevel LevelFor(const absl::Status& status) {
  return status.ok() ? LogLevel::kInfo : LogLevel::kError;
}

class ClientTracing final : public ClientMiddleware {
 public:
  explicit ClientTracing(std::shared_ptr<Telemetry> telemetry) : telemetry_(std::move(telemetry)) {}

  void Invoke(const CallSite& site, Envelope&& envelope, ReplyCallback done,
              const ClientNext& next) override {
    std::string_view trace_id = TraceIdOf(envelope.traceparent);
    bool record = telemetry_->has_span_sinks() && telemetry_->Sampled(trace_id);
    bool log = telemetry_->log_level() != LogLevel::kOff;
    if ((!record && !log) || trace_id.empty()) {
      next(std::move(envelope), std::move(done));
      return;
    }
    SpanData span = BaseSpan(site, SpanKind::kClient, envelope);
    span.trace_id = std::string(trace_id);
    span.span_id = std::string(SpanIdOf(envelope.traceparent));
    span.parent_span_id = std::string(HopParentScope::Current());
    span.start = site.clock->Now();
    // Not the site: the call may finish while its node closes, after the
    // operation's middleware (and site) are gone. The clock outlives nodes.
    const Clock* clock = site.clock;
    next(std::move(envelope),
         [telemetry = telemetry_, clock, record, span = std::move(span),
          done = std::move(done)](absl::StatusOr<Envelope>&& result) mutable {
           absl::Status outcome = OutcomeOf(result);
           span.duration = clock->Now() - span.start;
           span.code = outcome.code();
           // The reply tells how many attempts the call took.
           if (result.ok() && result->attempt > span.attempt) span.attempt = result->attempt;
           if (record) telemetry->RecordSpan(span);
           telemetry->LogSpan(LevelFor(outcome), span, outcome);
           std::move(done)(std::move(result));
         });
  }

 private:
  std::shared_ptr<Telemetry> telemetry_;
};

class ServerTracing final : public ServerMiddleware {
 public:
  explicit ServerTracing(std::shared_ptr<Telemetry> telemetry) : telemetry_(std::move(telemetry)) {}

  void Invoke(const CallSite& site, Context& ctx, const Envelope& request, ReplyCallback done,
              const ServerNext& next) override {
    bool sampled = telemetry_->Sampled(TraceIdOf(ctx.envelope().traceparent));
    bool record = telemetry_->has_span_sinks() && sampled;
    bool log = telemetry_->log_level() != LogLevel::kOff;
    // Request and command-with-reply send a reply: it is a hop of its own.
    bool replies = site.style == Style::kRequest || !request.reply_to.empty();
    if (!record && !log) {
      if (!replies) {
        next(ctx, request, std::move(done));
        return;
      }
      // Nothing to record: only the reply's own span id.
      const Context* c = &ctx;
      next(ctx, request, [c, done = std::move(done)](absl::StatusOr<Envelope>&& result) mutable {
        if (result.ok()) c->span().Child().AssignTo(&result->traceparent);
        std::move(done)(std::move(result));
      });
      return;
    }
    SpanData span;
    if (record || log) {
      span = BaseSpan(site, SpanKind::kServer, request);
      span.trace_id = ctx.span().TraceId();
      span.span_id = ctx.span().SpanId();
      span.parent_span_id = std::string(HopParentScope::Current());
      span.start = site.clock->Now();
    }
    // The delivery holds its operation's runtime (and so `site`) and its
    // Context until `done` has run.
    const CallSite* s = &site;
    Context* c = &ctx;
    next(ctx, request,
         [telemetry = telemetry_, s, c, record, log, replies, span = std::move(span),
          done = std::move(done)](absl::StatusOr<Envelope>&& result) mutable {
           absl::Status outcome = OutcomeOf(result);
           absl::Time now = s->clock->Now();
           if (record || log) {
             span.duration = now - span.start;
             span.code = outcome.code();
             if (record) telemetry->RecordSpan(span);
             telemetry->LogSpan(LevelFor(outcome), span, outcome);
           }
           if (replies && result.ok()) {
             TraceParent reply_span = c->span().Child();
             reply_span.AssignTo(&result->traceparent);
             if (record || telemetry->log_level() == LogLevel::kDebug) {
               SpanData r = BaseSpan(*s, SpanKind::kReply, *result);
               r.trace_id = span.trace_id.empty() ? c->span().TraceId() : span.trace_id;
               r.span_id = reply_span.SpanId();
               r.parent_span_id = c->span().SpanId();
               r.start = now;
               r.code = result->status.code();
               if (record) telemetry->RecordSpan(r);
               telemetry->LogSpan(LogLevel::kDebug, r, result->status);
             }
           }
           std::move(done)(std::move(result));
         });
  }

 private:
  std::shared_ptr<Telemetry> telemetry_;
};

}  // namespace

HopParentScope::HopParentScope(std::string_view parent_span_id) : previous_(current_hop_parent) {
  current_hop_parent = parent_span_id;
}

HopParentScope::~HopParentScope() { current_hop_parent = previous_; }

std::string_view HopParentScope::Current() { return current_hop_parent; }

std::unique_ptr<ClientMiddleware> MakeClientTracing(std::shared_ptr<Telemetry> telemetry,
                                                    const CallSite& site) {
  (void)site;
  return std::make_unique<ClientTracing>(std::move(telemetry));
}

std::unique_ptr<ServerMiddleware> MakeServerTracing(std::shared_ptr<Telemetry> telemetry,
                                                    const CallSite& site) {
  (void)site;
  return std::make_unique<ServerTracing>(std::move(telemetry));
}

ReplyCallback TraceAttempt(Telemetry& telemetry, const CallSite& site, Envelope& envelope,
                           ReplyCallback done) {
  TraceParent current;
  if (!TraceParent::Parse(envelope.traceparent, &current)) return done;
  TraceParent attempt = current.Child();
  attempt.AssignTo(&envelope.traceparent);
  if (!(telemetry.has_span_sinks() || telemetry.log_level() == LogLevel::kDebug) ||
      !telemetry.Sampled(attempt.TraceId())) {
    return done;
  }
  SpanData span = BaseSpan(site, SpanKind::kAttempt, envelope);
  span.trace_id = attempt.TraceId();
  span.span_id = attempt.SpanId();
  span.parent_span_id = current.SpanId();
  span.start = site.clock->Now();
  const CallSite* s = &site;
  Telemetry* t = &telemetry;
  return [t, s, span = std::move(span),
          done = std::move(done)](absl::StatusOr<Envelope>&& result) mutable {
    absl::Status outcome = OutcomeOf(result);
    span.duration = s->clock->Now() - span.start;
    span.code = outcome.code();
    t->RecordSpan(span);
    t->LogSpan(LogLevel::kDebug, span, outcome);
    std::move(done)(std::move(result));
  };
}

}  // namespace switchboard

// telemetry.h: metrics, spans and per-call logs of a Node.
//
// Every Node has one `Telemetry` (its own, built from `v1::TelemetryConfig`,
// or one shared through `Node::Options::telemetry`). It holds:
//
//  - a metrics registry: counters, gauges and latency histograms, each
//    identified by a name and a label set. Lookups by name take a mutex;
//    the returned reference is stable for the registry's life, so resolve it
//    once (when the middleware is built) and only touch the atomic per call:
//
//      // in a middleware factory (once per operation):
//      Counter& rejected = telemetry.GetCounter(metric::kBulkheadRejections,
//                                               OperationLabels(site));
//      // per call (lock-free):
//      rejected.Increment();
//
//    Policies report with the names in `metric::` below and the labels of
//    `OperationLabels(site)`, so /metrics and /status find them:
//      circuit breaker: Gauge kBreakerState (BreakerStateValue), Counter
//        kBreakerTransitions with the extra label {"to", "open"|"half_open"|
//        "closed"}; retry: Counter kRetries (one per extra attempt) and
//        `TraceAttempt` below; bulkhead: kBulkheadRejections; rate limit:
//        kRateLimitRejections; idempotency: kDedupHits (a duplicate answered
//        from the store without running the handler).
//    Counters a policy keeps in its own structs (PolicyStats in policies.h,
//    IdempotencyCounters in idempotency.h) reach the same names through a
//    collector (MetricsRegistry::AddCollector; core/src/telemetry_bridge.cc).
//
//  - span sinks: each completed call (client span), delivery (server span),
//    reply and retry attempt becomes a `SpanData`; sampling is decided once
//    per trace from the trace id (`sample_ratio`), so a sampled trace is
//    recorded on every node with the same ratio and an unsampled one nowhere.
//
//  - the call log: one JSON line per completed call or delivery, at or above
//    `log_level` (off | error | info | debug: failures are logged at error,
//    successes at info, replies and retry attempts at debug). A line carries
//    ids, names, codes and timings only; payloads, headers, extension
//    attributes and tracestate are never logged, and error messages are
//    scrubbed of URL credentials and password/token/secret values.
//
// Exporters outside core (adapters/telemetry: the JSON-lines span file, the
// admin HTTP endpoint with /metrics, /healthz, /status) attach to a Telemetry;
// when switchboard::telemetry is linked, `spans_file` and `admin_listen` in
// config start them with the node.
//
// Thread safety: every method of every class here may be called from any
// thread. Span sinks and log sinks are called on the thread that completes
// the call (a transport or executor thread) and MUST NOT block for long.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "switchboard/envelope.h"
#include "switchboard/transport.h"
#include "switchboard/v1/config.pb.h"

namespace switchboard {

struct CallSite;

// ---------------------------------------------------------------------------
// Metric names. Labels: `OperationLabels(site)` = operation, style,
// transport (the transport's config name), plus the extra ones noted.
namespace metric {
// Counter; extra labels side (client|server) and code (canonical code name,
// e.g. "OK", "UNAVAILABLE").
inline constexpr std::string_view kCalls = "switchboard_calls_total";
// Histogram (seconds); extra label side.
inline constexpr std::string_view kLatency = "switchboard_call_duration_seconds";
// Gauge; extra label side.
inline constexpr std::string_view kInFlight = "switchboard_in_flight";
// Counter: attempts after the first (client retries).
inline constexpr std::string_view kRetries = "switchboard_retries_total";
// Counter: deliveries received again after a failure (server side).
inline constexpr std::string_view kRedeliveries = "switchboard_redeliveries_total";
// Gauge: BreakerStateValue.
inline constexpr std::string_view kBreakerState = "switchboard_breaker_state";
// Counter; extra label to (closed|open|half_open).
inline constexpr std::string_view kBreakerTransitions = "switchboard_breaker_transitions_total";
inline constexpr std::string_view kBulkheadRejections = "switchboard_bulkhead_rejections_total";
inline constexpr std::string_view kRateLimitRejections = "switchboard_rate_limit_rejections_total";
inline constexpr std::string_view kDedupHits = "switchboard_dedup_hits_total";
inline constexpr std::string_view kDeadLetters = "switchboard_dead_letters_total";
// Gauge read at collection time; extra label group.
inline constexpr std::string_view kQueueDepth = "switchboard_queue_depth";
// Counter, no labels: incoming traceparent headers that were invalid and
// replaced by a new root.
inline constexpr std::string_view kInvalidTraceparent = "switchboard_invalid_traceparent_total";
}  // namespace metric

// Values of metric::kBreakerState.
enum class BreakerStateValue : int64_t { kClosed = 0, kHalfOpen = 1, kOpen = 2 };
[[nodiscard]] std::string_view BreakerStateName(int64_t value);  // "closed", ...

// Ordered (name, value) pairs; order matters for identity, so build them the
// same way every time (OperationLabels does).
using MetricLabels = std::vector<std::pair<std::string, std::string>>;

// {operation, style, transport} of `site`, followed by `extra`.
[[nodiscard]] MetricLabels OperationLabels(const CallSite& site, MetricLabels extra = {});

class Counter {
 public:
  void Increment(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  [[nodiscard]] uint64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Gauge {
 public:
  void Set(int64_t v) { value_.store(v, std::memory_order_relaxed); }
  void Add(int64_t d) { value_.fetch_add(d, std::memory_order_relaxed); }
  [[nodiscard]] int64_t Value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<int64_t> value_{0};
};

// A latency histogram with fixed bucket bounds (10us .. 60s); Observe is a
// handful of relaxed atomic adds. Quantiles are estimated by linear
// interpolation inside the bucket that holds them, so they are as precise as
// the bucket widths (about 2.5x apart).
class Histogram {
 public:
  static constexpr std::array<double, 21> kBounds = {
      0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001,
      0.0025,  0.005,    0.01,    0.025,  0.05,    0.1,    0.25,
      0.5,     1,        2.5,     5,      10,      30,     60};

  void Observe(absl::Duration d);

  struct Snapshot {
    // Per bucket (not cumulative); the last one is +Inf.
    std::array<uint64_t, kBounds.size() + 1> buckets{};
    uint64_t count = 0;
    double sum_seconds = 0;
    // q in [0, 1]; 0 when empty.
    [[nodiscard]] double Quantile(double q) const;
  };
  [[nodiscard]] Snapshot Read() const;

 private:
  std::array<std::atomic<uint64_t>, kBounds.size() + 1> buckets_{};
  std::atomic<uint64_t> count_{0};
  std::atomic<int64_t> sum_nanos_{0};
};

enum class MetricType { kCounter, kGauge, kHistogram };

struct MetricSample {
  MetricLabels labels;
  double value = 0;              // counter, gauge
  Histogram::Snapshot histogram;  // histogram
};

struct MetricFamily {
  std::string name;
  std::string help;
  MetricType type = MetricType::kCounter;
  std::vector<MetricSample> samples;
};

class MetricsRegistry {
 public:
  MetricsRegistry();
  ~MetricsRegistry();
  MetricsRegistry(const MetricsRegistry&) = delete;
  MetricsRegistry& operator=(const MetricsRegistry&) = delete;

  // The same (name, labels) always returns the same object, valid for the
  // registry's life. `help` is kept from the first call that gives one. A
  // name used with two types gets the second a "_<type>" suffix rather
  // than failing: metrics never break a call.
  Counter& GetCounter(std::string_view name, const MetricLabels& labels = {},
                      std::string_view help = {});
  Gauge& GetGauge(std::string_view name, const MetricLabels& labels = {},
                  std::string_view help = {});
  Histogram& GetHistogram(std::string_view name, const MetricLabels& labels = {},
                          std::string_view help = {});

  // A gauge computed when metrics are collected (queue depth); `read`
  // returns nullopt when there is nothing to report. Returns an id for
  // RemoveGaugeCallback; `read` runs on the collecting thread.
  uint64_t AddGaugeCallback(std::string_view name, const MetricLabels& labels,
                            std::function<std::optional<double>()> read,
                            std::string_view help = {});
  void RemoveGaugeCallback(uint64_t id);

  // Adds whole families at collection time (counters kept elsewhere, e.g.
  // the policies' own structs). A series that another source already
  // reported with the same name and labels is summed into it. Returns an id
  // for RemoveCollector; `collect` runs on the collecting thread.
  using Collector = std::function<void(std::vector<MetricFamily>* out)>;
  uint64_t AddCollector(Collector collect);
  void RemoveCollector(uint64_t id);

  // Every series, families sorted by name.
  [[nodiscard]] std::vector<MetricFamily> Collect() const;

  // Lookup for tests and /status: nullptr if absent.
  [[nodiscard]] const Counter* FindCounter(std::string_view name, const MetricLabels& labels) const;
  [[nodiscard]] const Gauge* FindGauge(std::string_view name, const MetricLabels& labels) const;
  [[nodiscard]] const Histogram* FindHistogram(std::string_view name,
                                               const MetricLabels& labels) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// ---------------------------------------------------------------------------
// Spans.

enum class SpanKind {
  kClient,   // a call as the caller sees it: from Call() to its result
  kServer,   // one delivery of a request, command or event to a handler
  kReply,    // the reply a handler sends back (request, command+reply)
  kAttempt,  // one retry attempt inside a client span (TraceAttempt)
};
[[nodiscard]] std::string_view SpanKindName(SpanKind kind);  // "client", ...

struct SpanData {
  SpanKind kind = SpanKind::kClient;
  std::string operation;
  Style style = Style::kUnspecified;
  std::string transport;       // config name
  std::string transport_type;  // inproc, grpc, nats, amqp, ...
  std::string trace_id;        // 32 hex
  std::string span_id;         // 16 hex
  std::string parent_span_id;  // 16 hex; empty for the root of a trace
  absl::Time start = absl::UnixEpoch();
  absl::Duration duration = absl::ZeroDuration();
  absl::StatusCode code = absl::StatusCode::kOk;
  int attempt = 1;
  std::string idempotency_key;
  std::string message_id;
  std::string group;  // event subscriber group / command consumer group, when known
};

// One JSON object, no trailing newline:
// {"kind":"server","operation":...,"trace_id":...,"start":"RFC 3339",
//  "duration_us":..., "status_code":"OK", ...}
[[nodiscard]] std::string SpanToJson(const SpanData& span);

class SpanSink {
 public:
  virtual ~SpanSink() = default;
  // Called once per recorded span, on the thread that completed it. MUST be
  // thread-safe and MUST NOT block for long.
  virtual void Export(const SpanData& span) = 0;
};

// Keeps spans in memory (tests, the demo).
class MemorySpanSink final : public SpanSink {
 public:
  void Export(const SpanData& span) override;
  [[nodiscard]] std::vector<SpanData> Spans() const;
  // Spans of one trace, in export order.
  [[nodiscard]] std::vector<SpanData> Trace(std::string_view trace_id) const;
  void Clear();

 private:
  mutable absl::Mutex mu_;
  std::vector<SpanData> spans_ ABSL_GUARDED_BY(mu_);
};

// ---------------------------------------------------------------------------
// Logs.

enum class LogLevel { kDebug = 0, kInfo = 1, kError = 2, kOff = 3 };
// "off" | "error" | "info" | "debug" ("" = off); InvalidArgument otherwise.
[[nodiscard]] absl::StatusOr<LogLevel> ParseLogLevel(std::string_view text);

// Receives one complete JSON log line (no newline). Default: stderr.
using LogSink = std::function<void(std::string_view line)>;

// Removes what must never reach a log: credentials in URLs
// ("scheme://user:pass@" -> "scheme://***@"), and the value after password,
// passwd, pass, token, secret, authorization, api_key or apikey followed by
// '=' or ':'.
[[nodiscard]] std::string RedactSecrets(std::string_view text);

// ---------------------------------------------------------------------------

// What /status reports about one operation.
struct OperationInfo {
  std::string operation;
  Style style = Style::kUnspecified;
  bool reply = false;
  std::string transport;
  std::string transport_type;
  // Its policy has a circuit breaker (else /status says "none").
  bool circuit_breaker = false;
};

// Something attached to a Telemetry that runs until destroyed (an HTTP
// endpoint, a file exporter).
class TelemetryExporter {
 public:
  virtual ~TelemetryExporter() = default;
};

struct TelemetryOptions {
  // Fraction of traces whose spans are recorded, in [0, 1].
  double sample_ratio = 1;
  LogLevel log_level = LogLevel::kOff;
  // nullptr: stderr.
  LogSink log_sink;
};

class Telemetry {
 public:
  explicit Telemetry(TelemetryOptions options = {});
  ~Telemetry();
  Telemetry(const Telemetry&) = delete;
  Telemetry& operator=(const Telemetry&) = delete;

  // From config: sample_ratio (0 is read as "unset", i.e. 1; use a tiny
  // positive ratio to record almost nothing), log_level; and, when
  // switchboard::telemetry is linked, spans_file and admin_listen (else
  // setting them is FailedPrecondition naming the library). InvalidArgument
  // for a bad level or ratio.
  [[nodiscard]] static absl::StatusOr<std::shared_ptr<Telemetry>> Create(
      const v1::TelemetryConfig& config);

  // ---- metrics ----
  MetricsRegistry& metrics() { return metrics_; }
  const MetricsRegistry& metrics() const { return metrics_; }
  Counter& GetCounter(std::string_view name, const MetricLabels& labels = {},
                      std::string_view help = {}) {
    return metrics_.GetCounter(name, labels, help);
  }
  Gauge& GetGauge(std::string_view name, const MetricLabels& labels = {},
                  std::string_view help = {}) {
    return metrics_.GetGauge(name, labels, help);
  }
  Histogram& GetHistogram(std::string_view name, const MetricLabels& labels = {},
                          std::string_view help = {}) {
    return metrics_.GetHistogram(name, labels, help);
  }
  // Counted by the node where it replaces an incoming traceparent.
  Counter& invalid_traceparent() { return *invalid_traceparent_; }

  // ---- spans ----
  void AddSpanSink(std::shared_ptr<SpanSink> sink);
  // Whether spans of this trace are recorded (a pure function of the trace
  // id and the ratio).
  [[nodiscard]] bool Sampled(std::string_view trace_id) const;
  // Records the span if its trace is sampled and a sink is attached.
  void RecordSpan(const SpanData& span);
  [[nodiscard]] bool has_span_sinks() const {
    return has_sinks_.load(std::memory_order_acquire);
  }
  [[nodiscard]] double sample_ratio() const { return sample_ratio_.load(std::memory_order_relaxed); }
  void SetSampleRatio(double ratio);

  // ---- logs ----
  [[nodiscard]] LogLevel log_level() const { return log_level_.load(std::memory_order_relaxed); }
  void SetLogLevel(LogLevel level) { log_level_.store(level, std::memory_order_relaxed); }
  void SetLogSink(LogSink sink);
  // Writes the call log line for a completed span (if `level` is enabled).
  void LogSpan(LogLevel level, const SpanData& span, const absl::Status& status);

  // ---- operations (for /status) ----
  void RegisterOperation(OperationInfo info);
  [[nodiscard]] std::vector<OperationInfo> Operations() const;

  // Keeps `object` alive as long as this Telemetry: per-operation state that
  // a call still in flight may touch while its node closes.
  void Retain(std::shared_ptr<void> object);

  // True the first time `key` is passed: lets a process-wide source of
  // metrics attach once to a Telemetry that several nodes share.
  [[nodiscard]] bool MarkOnce(std::string_view key);

  // ---- exporters ----
  // Kept (and running) until the Telemetry is destroyed.
  void AddExporter(std::unique_ptr<TelemetryExporter> exporter);
  // The admin endpoint's bound host:port when one runs (port 0 in config
  // picks a free one), else "".
  [[nodiscard]] std::string admin_address() const;
  void set_admin_address(std::string address);

 private:
  MetricsRegistry metrics_;
  Counter* invalid_traceparent_;
  std::atomic<double> sample_ratio_{1};
  std::atomic<uint64_t> sample_threshold_{0};
  std::atomic<bool> sample_all_{true};
  std::atomic<LogLevel> log_level_{LogLevel::kOff};
  std::atomic<bool> has_sinks_{false};

  mutable absl::Mutex mu_;
  std::vector<std::shared_ptr<SpanSink>> sinks_ ABSL_GUARDED_BY(mu_);
  LogSink log_sink_ ABSL_GUARDED_BY(mu_);
  std::vector<OperationInfo> operations_ ABSL_GUARDED_BY(mu_);
  std::vector<std::unique_ptr<TelemetryExporter>> exporters_ ABSL_GUARDED_BY(mu_);
  std::string admin_address_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> marks_ ABSL_GUARDED_BY(mu_);
  std::vector<std::shared_ptr<void>> retained_ ABSL_GUARDED_BY(mu_);
};

// For a middleware that sends one call more than once (retry): stamps
// `envelope` with a new span (a child of the span it carries) and returns
// `done` wrapped so that the attempt's span (kind kAttempt, with
// envelope.attempt) is recorded when it completes. Call it for every
// attempt after the first, just before `next(envelope, done)`:
//
//   ReplyCallback d = TraceAttempt(telemetry, site, env, std::move(done));
//   next(std::move(env), std::move(d));
//
// Keeps the trace id, so a retried call stays one trace; the receiver's
// server span then has the attempt's span as its parent.
[[nodiscard]] ReplyCallback TraceAttempt(Telemetry& telemetry, const CallSite& site,
                                         Envelope& envelope, ReplyCallback done);

}  // namespace switchboard

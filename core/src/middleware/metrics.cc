#include "middleware/metrics.h"

#include <array>
#include <atomic>
#include <string>
#include <utility>

#include "switchboard/clock.h"
#include "switchboard/context.h"
#include "switchboard/status.h"

namespace switchboard {
namespace {

constexpr size_t kCodes = 17;  // canonical codes 0..16

// The series of one operation on one side.
class OpMetrics {
 public:
  OpMetrics(Telemetry* telemetry, const CallSite& site, std::string_view side)
      : telemetry_(telemetry),
        site_labels_(OperationLabels(site)),
        side_(side),
        latency_(telemetry_->GetHistogram(metric::kLatency, WithSide(),
                                          "Call and delivery latency in seconds")),
        in_flight_(telemetry_->GetGauge(metric::kInFlight, WithSide(),
                                        "Calls or deliveries started and not yet finished")) {
    // OK is by far the most common: resolve it now.
    (void)CallsFor(absl::StatusCode::kOk);
  }

  void Start() { in_flight_.Add(1); }

  void Finish(absl::StatusCode code, absl::Duration elapsed) {
    in_flight_.Add(-1);
    latency_.Observe(elapsed);
    CallsFor(code).Increment();
  }

  const MetricLabels& site_labels() const { return site_labels_; }

 private:
  MetricLabels WithSide() const {
    MetricLabels l = site_labels_;
    l.emplace_back("side", side_);
    return l;
  }

  Counter& CallsFor(absl::StatusCode code) {
    size_t i = static_cast<size_t>(code);
    if (i >= kCodes) i = static_cast<size_t>(absl::StatusCode::kUnknown);
    Counter* c = calls_[i].load(std::memory_order_acquire);
    if (c != nullptr) return *c;
    MetricLabels l = WithSide();
    l.emplace_back("code", std::string(CodeName(static_cast<absl::StatusCode>(i))));
    // Two threads may race here: the registry returns the same counter.
    c = &telemetry_->GetCounter(metric::kCalls, l, "Completed calls and deliveries by status code");
    calls_[i].store(c, std::memory_order_release);
    return *c;
  }

  Telemetry* telemetry_;
  MetricLabels site_labels_;
  std::string side_;
  Histogram& latency_;
  Gauge& in_flight_;
  std::array<std::atomic<Counter*>, kCodes> calls_{};
};

// A call may still finish while its node closes, after the operation's
// middleware is gone (a transport failing what is in flight): the state the
// completion touches is owned by the Telemetry, which outlives both.
OpMetrics* NewOpMetrics(Telemetry& telemetry, const CallSite& site, std::string_view side) {
  auto metrics = std::make_shared<OpMetrics>(&telemetry, site, side);
  OpMetrics* raw = metrics.get();
  telemetry.Retain(std::move(metrics));
  return raw;
}

absl::StatusCode CodeOf(const absl::StatusOr<Envelope>& result) {
  return result.ok() ? result->status.code() : result.status().code();
}

class ClientMetrics final : public ClientMiddleware {
 public:
  ClientMetrics(std::shared_ptr<Telemetry> telemetry, const CallSite& site)
      : telemetry_(std::move(telemetry)), metrics_(NewOpMetrics(*telemetry_, site, "client")) {}

  void Invoke(const CallSite& site, Envelope&& envelope, ReplyCallback done,
              const ClientNext& next) override {
    metrics_->Start();
    absl::Time start = site.clock->Now();
    const Clock* clock = site.clock;
    next(std::move(envelope), [m = metrics_, clock, start, done = std::move(done)](
                                  absl::StatusOr<Envelope>&& result) mutable {
      m->Finish(CodeOf(result), clock->Now() - start);
      std::move(done)(std::move(result));
    });
  }

 private:
  std::shared_ptr<Telemetry> telemetry_;
  OpMetrics* metrics_;
};

class ServerMetrics final : public ServerMiddleware {
 public:
  ServerMetrics(std::shared_ptr<Telemetry> telemetry, const CallSite& site)
      : telemetry_(std::move(telemetry)),
        metrics_(NewOpMetrics(*telemetry_, site, "server")),
        redeliveries_(telemetry_->GetCounter(metric::kRedeliveries, metrics_->site_labels(),
                                             "Deliveries received again after a failed attempt")) {}

  void Invoke(const CallSite& site, Context& ctx, const Envelope& request, ReplyCallback done,
              const ServerNext& next) override {
    if (request.attempt > 1) redeliveries_.Increment();
    metrics_->Start();
    absl::Time start = site.clock->Now();
    const Clock* clock = site.clock;
    next(ctx, request, [m = metrics_, clock, start, done = std::move(done)](
                                      absl::StatusOr<Envelope>&& result) mutable {
      m->Finish(CodeOf(result), clock->Now() - start);
      std::move(done)(std::move(result));
    });
  }

 private:
  std::shared_ptr<Telemetry> telemetry_;
  OpMetrics* metrics_;
  Counter& redeliveries_;
};

}  // namespace

namespace {
void Register(Telemetry& telemetry, const CallSite& site) {
  OperationInfo info;
  info.operation = site.operation;
  info.style = site.style;
  info.reply = site.reply;
  info.transport = site.transport_name;
  info.transport_type = site.transport_type;
  info.circuit_breaker = site.policy.has_circuit_breaker();
  telemetry.RegisterOperation(std::move(info));
}
}  // namespace

std::unique_ptr<ClientMiddleware> MakeClientMetrics(std::shared_ptr<Telemetry> telemetry,
                                                    const CallSite& site) {
  Register(*telemetry, site);
  return std::make_unique<ClientMetrics>(std::move(telemetry), site);
}

std::unique_ptr<ServerMiddleware> MakeServerMetrics(std::shared_ptr<Telemetry> telemetry,
                                                    const CallSite& site) {
  Register(*telemetry, site);
  return std::make_unique<ServerMetrics>(std::move(telemetry), site);
}

void CountDeadLetter(Telemetry& telemetry, const CallSite& site) {
  telemetry
      .GetCounter(metric::kDeadLetters, OperationLabels(site),
                  "Deliveries moved to the dead-letter address")
      .Increment();
}

uint64_t RegisterQueueDepth(Telemetry& telemetry, const CallSite& site,
                            std::weak_ptr<Transport> transport, Endpoint endpoint) {
  MetricLabels labels = OperationLabels(site, {{"group", endpoint.group}});
  return telemetry.metrics().AddGaugeCallback(
      metric::kQueueDepth, labels,
      [transport = std::move(transport), endpoint = std::move(endpoint)]() -> std::optional<double> {
        std::shared_ptr<Transport> t = transport.lock();
        if (!t) return std::nullopt;
        absl::StatusOr<int64_t> depth = t->QueueDepth(endpoint);
        if (!depth.ok()) return std::nullopt;
        return static_cast<double>(*depth);
      },
      "Messages waiting in the endpoint's queue, where the transport reports it");
}

}  // namespace switchboard

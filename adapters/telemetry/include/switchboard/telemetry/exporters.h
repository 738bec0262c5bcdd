// exporters.h: where a node's telemetry goes outside the process.
//
//  - `JsonLinesSpanExporter`: one JSON object per span per line, to a file
//    or stderr (config `telemetry.spans_file`; "-" is stderr).
//  - `PrometheusText`: the metrics registry in the Prometheus text
//    exposition format 0.0.4 (written here, no client library: counters,
//    gauges, and the latency histograms as Prometheus histograms, so
//    `histogram_quantile()` works on the server side).
//  - `StatusJson`: what /status serves: every operation with its style,
//    transport, breaker state, calls by code and p50/p95/p99 latency.
//  - `AdminServer`: an HTTP endpoint (config `telemetry.admin_listen`) with
//    GET /metrics, /healthz and /status.
//
// Linking switchboard::telemetry is enough for config to start them: a node
// whose config sets `spans_file` or `admin_listen` starts them with its
// Telemetry, and they stop when it is destroyed.
//
//   auto server = switchboard::telemetry::AdminServer::Start(node->telemetry(),
//                                                            "127.0.0.1:0");
//   std::cout << "metrics on http://" << (*server)->address() << "/metrics\n";
//
// Thread safety: every function and method may be called from any thread.
// The admin server answers on its own two threads; it only reads the
// Telemetry, which MUST outlive it (it does when attached with AddExporter).
#pragma once

#include <cstdio>
#include <memory>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "switchboard/telemetry.h"
#include "switchboard/v1/config.pb.h"

namespace switchboard::telemetry {

class JsonLinesSpanExporter final : public SpanSink {
 public:
  // `path` "-" is stderr; a file is appended to (created if missing).
  // InvalidArgument naming the path when it cannot be opened.
  [[nodiscard]] static absl::StatusOr<std::shared_ptr<JsonLinesSpanExporter>> Open(
      std::string_view path);
  ~JsonLinesSpanExporter() override;

  // Writes and flushes one line, so a crash loses at most the span being
  // written.
  void Export(const SpanData& span) override;

 private:
  JsonLinesSpanExporter(std::FILE* file, bool owned) : file_(file), owned_(owned) {}
  absl::Mutex mu_;
  std::FILE* file_ ABSL_GUARDED_BY(mu_);
  bool owned_;
};

// Every family of `metrics`, in the Prometheus text format (version 0.0.4).
[[nodiscard]] std::string PrometheusText(const MetricsRegistry& metrics);

// The /status document (one JSON object).
[[nodiscard]] std::string StatusJson(const Telemetry& telemetry);

class AdminServer final : public TelemetryExporter {
 public:
  // Binds `listen` ("host:port"; port 0 picks a free one) and starts
  // answering before it returns. InvalidArgument for a malformed address,
  // Unavailable when the port cannot be bound.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<AdminServer>> Start(
      const Telemetry& telemetry, std::string_view listen);
  // Stops answering and joins its threads.
  ~AdminServer() override;

  // "host:port" actually bound.
  [[nodiscard]] const std::string& address() const { return address_; }
  [[nodiscard]] int port() const { return port_; }

  class Impl;

 private:
  explicit AdminServer(std::unique_ptr<Impl> impl, std::string address, int port);
  std::unique_ptr<Impl> impl_;
  std::string address_;
  int port_;
};

// Starts what `config` asks for (spans_file, admin_listen) on `telemetry`,
// which keeps them running until it is destroyed. This is what a node does
// with its config when this library is linked.
[[nodiscard]] absl::Status StartExporters(Telemetry& telemetry, const v1::TelemetryConfig& config);

}  // namespace switchboard::telemetry

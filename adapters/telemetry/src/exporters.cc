#include "switchboard/telemetry/exporters.h"

#include <cerrno>
#include <cstdlib>
#include <cmath>
#include <cstring>
#include <map>
#include <vector>

#include "switchboard/internal/strings.h"
#include "switchboard/status.h"
#include "telemetry_json.h"

namespace switchboard::telemetry {

// ---------------------------------------------------------------------------
// JSON-lines spans.

absl::StatusOr<std::shared_ptr<JsonLinesSpanExporter>> JsonLinesSpanExporter::Open(
    std::string_view path) {
  if (path == "-") return std::shared_ptr<JsonLinesSpanExporter>(new JsonLinesSpanExporter(stderr, false));
  std::string p(path);
  std::FILE* f = std::fopen(p.c_str(), "a");
  if (f == nullptr) {
    return absl::InvalidArgumentError(Cat("telemetry.spans_file: cannot open \"", p,
                                          "\" for appending: ", std::strerror(errno)));
  }
  return std::shared_ptr<JsonLinesSpanExporter>(new JsonLinesSpanExporter(f, true));
}

JsonLinesSpanExporter::~JsonLinesSpanExporter() {
  absl::MutexLock lock(&mu_);
  if (owned_ && file_ != nullptr) std::fclose(file_);
  file_ = nullptr;
}

void JsonLinesSpanExporter::Export(const SpanData& span) {
  std::string line = SpanToJson(span);
  line.push_back('\n');
  absl::MutexLock lock(&mu_);
  if (file_ == nullptr) return;
  std::fwrite(line.data(), 1, line.size(), file_);
  std::fflush(file_);
}

// ---------------------------------------------------------------------------
// Prometheus text exposition.

namespace {

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 9007199254740992.0) {
    return std::to_string(static_cast<int64_t>(v));
  }
  // The shortest text that reads back as the same double ("0.00025", not
  // "0.00025000000000000001").
  char buf[40];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

void AppendEscaped(std::string* out, std::string_view s, bool quote) {
  for (char c : s) {
    if (c == '\\') {
      out->append("\\\\");
    } else if (c == '\n') {
      out->append("\\n");
    } else if (quote && c == '"') {
      out->append("\\\"");
    } else {
      out->push_back(c);
    }
  }
}

// Prometheus names allow [a-zA-Z_:][a-zA-Z0-9_:]*; label names no ':'.
std::string SanitizeName(std::string_view name, bool label) {
  std::string out;
  out.reserve(name.size());
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (!label && c == ':') || (i > 0 && c >= '0' && c <= '9');
    out.push_back(ok ? c : '_');
  }
  if (out.empty()) out = "_";
  return out;
}

void AppendSeries(std::string* out, const std::string& name, const MetricLabels& labels,
                  std::string_view extra_name, std::string_view extra_value, double value) {
  out->append(name);
  if (!labels.empty() || !extra_name.empty()) {
    out->push_back('{');
    bool first = true;
    for (const auto& [k, v] : labels) {
      if (!first) out->push_back(',');
      first = false;
      out->append(SanitizeName(k, true));
      out->append("=\"");
      AppendEscaped(out, v, true);
      out->push_back('"');
    }
    if (!extra_name.empty()) {
      if (!first) out->push_back(',');
      out->append(extra_name);
      out->append("=\"");
      out->append(extra_value);
      out->push_back('"');
    }
    out->push_back('}');
  }
  out->push_back(' ');
  out->append(FormatValue(value));
  out->push_back('\n');
}

std::string_view TypeName(MetricType t) {
  switch (t) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

std::string PrometheusText(const MetricsRegistry& metrics) {
  std::string out;
  for (const MetricFamily& f : metrics.Collect()) {
    if (f.samples.empty()) continue;
    std::string name = SanitizeName(f.name, false);
    if (!f.help.empty()) {
      out.append("# HELP ").append(name).push_back(' ');
      AppendEscaped(&out, f.help, false);
      out.push_back('\n');
    }
    out.append("# TYPE ").append(name).push_back(' ');
    out.append(TypeName(f.type));
    out.push_back('\n');
    for (const MetricSample& s : f.samples) {
      if (f.type != MetricType::kHistogram) {
        AppendSeries(&out, name, s.labels, "", "", s.value);
        continue;
      }
      uint64_t cumulative = 0;
      std::string bucket = name + "_bucket";
      for (size_t i = 0; i < Histogram::kBounds.size(); ++i) {
        cumulative += s.histogram.buckets[i];
        AppendSeries(&out, bucket, s.labels, "le", FormatValue(Histogram::kBounds[i]),
                     static_cast<double>(cumulative));
      }
      AppendSeries(&out, bucket, s.labels, "le", "+Inf", static_cast<double>(s.histogram.count));
      AppendSeries(&out, name + "_sum", s.labels, "", "", s.histogram.sum_seconds);
      AppendSeries(&out, name + "_count", s.labels, "", "", static_cast<double>(s.histogram.count));
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// /status.

namespace {

std::string_view Label(const MetricLabels& labels, std::string_view name) {
  for (const auto& [k, v] : labels) {
    if (k == name) return v;
  }
  return {};
}

struct SideStatus {
  std::map<std::string, uint64_t> calls;  // by code
  Histogram::Snapshot latency;
  bool has_latency = false;
  int64_t in_flight = 0;
};

struct OpStatus {
  OperationInfo info;
  bool known = false;
  std::string breaker = "none";
  std::map<std::string, SideStatus> sides;  // client, server
  std::map<std::string, double> counters;   // retries, dead letters, ...
};

void AppendSide(std::string* out, const SideStatus& side) {
  JsonObject s(out);
  std::string calls;
  JsonObject c(&calls);
  uint64_t total = 0;
  for (const auto& [code, n] : side.calls) {
    c.Int(code, static_cast<int64_t>(n));
    total += n;
  }
  c.Close();
  s.Int("calls_total", static_cast<int64_t>(total));
  s.Raw("calls", calls);
  s.Int("in_flight", side.in_flight);
  std::string latency;
  JsonObject l(&latency);
  l.Int("count", static_cast<int64_t>(side.latency.count));
  l.Num("p50_ms", side.latency.Quantile(0.50) * 1e3);
  l.Num("p95_ms", side.latency.Quantile(0.95) * 1e3);
  l.Num("p99_ms", side.latency.Quantile(0.99) * 1e3);
  l.Num("mean_ms", side.latency.count == 0
                       ? 0
                       : side.latency.sum_seconds * 1e3 / static_cast<double>(side.latency.count));
  l.Close();
  s.Raw("latency", latency);
  s.Close();
}

}  // namespace

std::string StatusJson(const Telemetry& telemetry) {
  std::map<std::string, OpStatus> ops;
  for (OperationInfo& info : telemetry.Operations()) {
    OpStatus& op = ops[info.operation];
    op.info = std::move(info);
    op.known = true;
    if (op.info.circuit_breaker) op.breaker = "closed";
  }
  uint64_t invalid_traceparent = 0;
  for (const MetricFamily& f : telemetry.metrics().Collect()) {
    if (f.name == metric::kInvalidTraceparent) {
      for (const auto& s : f.samples) invalid_traceparent += static_cast<uint64_t>(s.value);
      continue;
    }
    for (const MetricSample& s : f.samples) {
      std::string_view operation = Label(s.labels, "operation");
      if (operation.empty()) continue;
      OpStatus& op = ops[std::string(operation)];
      if (!op.known && op.info.operation.empty()) {
        op.info.operation = std::string(operation);
        if (!ParseStyle(Label(s.labels, "style"), &op.info.style)) op.info.style = Style::kUnspecified;
        op.info.transport = std::string(Label(s.labels, "transport"));
      }
      std::string side(Label(s.labels, "side"));
      if (f.name == metric::kCalls) {
        op.sides[side].calls[std::string(Label(s.labels, "code"))] += static_cast<uint64_t>(s.value);
      } else if (f.name == metric::kLatency) {
        SideStatus& st = op.sides[side];
        st.has_latency = true;
        st.latency = s.histogram;
      } else if (f.name == metric::kInFlight) {
        op.sides[side].in_flight = static_cast<int64_t>(s.value);
      } else if (f.name == metric::kBreakerState) {
        if (op.info.circuit_breaker || !op.known) {
          op.breaker = std::string(BreakerStateName(static_cast<int64_t>(s.value)));
        }
      } else if (f.type == MetricType::kCounter && s.value != 0) {
        std::string key = f.name;
        if (key.starts_with("switchboard_")) key = key.substr(12);
        if (key.ends_with("_total")) key.resize(key.size() - 6);
        std::string_view to = Label(s.labels, "to");
        if (!to.empty()) key = Cat(key, "_to_", to);
        if (!side.empty()) key = Cat(key, "_", side);
        op.counters[key] += s.value;
      } else if (f.type == MetricType::kGauge && f.name == metric::kQueueDepth) {
        op.counters[Cat("queue_depth_", Label(s.labels, "group"))] = s.value;
      }
    }
  }

  std::string out;
  JsonObject root(&out);
  root.Str("status", "ok");
  if (!telemetry.admin_address().empty()) root.Str("admin_address", telemetry.admin_address());
  root.Num("sample_ratio", telemetry.sample_ratio());
  root.Int("invalid_traceparent", static_cast<int64_t>(invalid_traceparent));
  std::string list = "[";
  bool first = true;
  for (const auto& [name, op] : ops) {
    if (!first) list.push_back(',');
    first = false;
    JsonObject o(&list);
    o.Str("operation", name);
    o.Str("style", StyleName(op.info.style));
    if (op.info.style == Style::kCommand) o.Bool("reply", op.info.reply);
    o.Str("transport", op.info.transport);
    if (!op.info.transport_type.empty()) o.Str("transport_type", op.info.transport_type);
    o.Str("breaker_state", op.breaker);
    for (const auto& [side, st] : op.sides) {
      if (side.empty()) continue;
      std::string s;
      AppendSide(&s, st);
      o.Raw(side, s);
    }
    if (!op.counters.empty()) {
      std::string c;
      JsonObject co(&c);
      for (const auto& [k, v] : op.counters) co.Num(k, v);
      co.Close();
      o.Raw("counters", c);
    }
    o.Close();
  }
  list.push_back(']');
  root.Raw("operations", list);
  root.Close();
  return out;
}

// ---------------------------------------------------------------------------

absl::Status StartExporters(Telemetry& telemetry, const v1::TelemetryConfig& config) {
  if (!config.spans_file().empty()) {
    absl::StatusOr<std::shared_ptr<JsonLinesSpanExporter>> spans =
        JsonLinesSpanExporter::Open(config.spans_file());
    if (!spans.ok()) return spans.status();
    telemetry.AddSpanSink(*std::move(spans));
  }
  if (!config.admin_listen().empty()) {
    absl::StatusOr<std::unique_ptr<AdminServer>> server =
        AdminServer::Start(telemetry, config.admin_listen());
    if (!server.ok()) return server.status();
    telemetry.set_admin_address((*server)->address());
    telemetry.AddExporter(*std::move(server));
  }
  return absl::OkStatus();
}

}  // namespace switchboard::telemetry

// Found by core (a weak reference in telemetry.cc) when this library is
// linked: config alone then starts the exporters.
extern "C" void SwitchboardStartTelemetryExporters(switchboard::Telemetry* telemetry,
                                                   const switchboard::v1::TelemetryConfig* config,
                                                   absl::Status* status) {
  *status = switchboard::telemetry::StartExporters(*telemetry, *config);
}

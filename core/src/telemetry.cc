#include "switchboard/telemetry.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>

#include "switchboard/internal/strings.h"
#include "switchboard/middleware.h"
#include "switchboard/status.h"
#include "telemetry_json.h"

// Defined by switchboard::telemetry (adapters/telemetry) when linked: starts
// the exporters `config` asks for (spans_file, admin_listen) on `telemetry`.
extern "C" __attribute__((weak)) void SwitchboardStartTelemetryExporters(
    switchboard::Telemetry* telemetry, const switchboard::v1::TelemetryConfig* config,
    absl::Status* status);

namespace switchboard {

// ---------------------------------------------------------------------------
// Labels and names.

std::string_view BreakerStateName(int64_t value) {
  switch (static_cast<BreakerStateValue>(value)) {
    case BreakerStateValue::kClosed:
      return "closed";
    case BreakerStateValue::kHalfOpen:
      return "half_open";
    case BreakerStateValue::kOpen:
      return "open";
  }
  return "unknown";
}

MetricLabels OperationLabels(const CallSite& site, MetricLabels extra) {
  MetricLabels labels;
  labels.reserve(3 + extra.size());
  labels.emplace_back("operation", site.operation);
  labels.emplace_back("style", std::string(StyleName(site.style)));
  labels.emplace_back("transport", site.transport_name);
  for (auto& l : extra) labels.push_back(std::move(l));
  return labels;
}

std::string_view SpanKindName(SpanKind kind) {
  switch (kind) {
    case SpanKind::kClient:
      return "client";
    case SpanKind::kServer:
      return "server";
    case SpanKind::kReply:
      return "reply";
    case SpanKind::kAttempt:
      return "attempt";
  }
  return "unknown";
}

// ---------------------------------------------------------------------------
// Histogram.

void Histogram::Observe(absl::Duration d) {
  double seconds = absl::ToDoubleSeconds(d);
  if (!(seconds >= 0)) seconds = 0;  // also catches NaN
  size_t i = std::lower_bound(kBounds.begin(), kBounds.end(), seconds) - kBounds.begin();
  buckets_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_nanos_.fetch_add(absl::ToInt64Nanoseconds(d), std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::Read() const {
  Snapshot s;
  uint64_t total = 0;
  for (size_t i = 0; i < buckets_.size(); ++i) {
    s.buckets[i] = buckets_[i].load(std::memory_order_relaxed);
    total += s.buckets[i];
  }
  // Buckets and count are read at slightly different moments; the bucket
  // total is the consistent one.
  s.count = total;
  s.sum_seconds = static_cast<double>(sum_nanos_.load(std::memory_order_relaxed)) * 1e-9;
  return s;
}

double Histogram::Snapshot::Quantile(double q) const {
  if (count == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  double rank = q * static_cast<double>(count);
  uint64_t seen = 0;
  for (size_t i = 0; i < buckets.size(); ++i) {
    if (buckets[i] == 0) continue;
    if (static_cast<double>(seen + buckets[i]) >= rank) {
      double lower = i == 0 ? 0 : kBounds[i - 1];
      // The +Inf bucket has no upper bound: report its lower one.
      if (i == kBounds.size()) return lower;
      double upper = kBounds[i];
      double within = (rank - static_cast<double>(seen)) / static_cast<double>(buckets[i]);
      return lower + (upper - lower) * std::clamp(within, 0.0, 1.0);
    }
    seen += buckets[i];
  }
  return kBounds.back();
}

// ---------------------------------------------------------------------------
// MetricsRegistry.

namespace {

std::string LabelsKey(const MetricLabels& labels) {
  std::string key;
  for (const auto& [k, v] : labels) {
    key.append(k);
    key.push_back('\x01');
    key.append(v);
    key.push_back('\x02');
  }
  return key;
}

std::string_view TypeSuffix(MetricType t) {
  switch (t) {
    case MetricType::kCounter:
      return "_counter";
    case MetricType::kGauge:
      return "_gauge";
    case MetricType::kHistogram:
      return "_histogram";
  }
  return "_metric";
}

}  // namespace

struct MetricsRegistry::State {
  struct Series {
    MetricLabels labels;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
  };
  struct Family {
    MetricType type = MetricType::kCounter;
    std::string help;
    std::map<std::string, Series> series;
  };
  struct Callback {
    std::string name;
    std::string help;
    MetricLabels labels;
    std::function<std::optional<double>()> read;
  };

  mutable absl::Mutex mu;
  std::map<std::string, Family, std::less<>> families ABSL_GUARDED_BY(mu);
  std::map<uint64_t, std::shared_ptr<Callback>> callbacks ABSL_GUARDED_BY(mu);
  std::map<uint64_t, std::shared_ptr<Collector>> collectors ABSL_GUARDED_BY(mu);
  uint64_t next_callback ABSL_GUARDED_BY(mu) = 1;

  Series& Get(std::string_view name, MetricType type, const MetricLabels& labels,
              std::string_view help) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    auto it = families.find(name);
    if (it == families.end()) {
      it = families.emplace(std::string(name), Family{}).first;
      it->second.type = type;
    } else if (it->second.type != type) {
      std::string other = Cat(name, TypeSuffix(type));
      return Get(other, type, labels, help);
    }
    Family& family = it->second;
    if (family.help.empty() && !help.empty()) family.help = std::string(help);
    auto [sit, inserted] = family.series.try_emplace(LabelsKey(labels));
    Series& s = sit->second;
    if (inserted) {
      s.labels = labels;
      switch (type) {
        case MetricType::kCounter:
          s.counter = std::make_unique<Counter>();
          break;
        case MetricType::kGauge:
          s.gauge = std::make_unique<Gauge>();
          break;
        case MetricType::kHistogram:
          s.histogram = std::make_unique<Histogram>();
          break;
      }
    }
    return s;
  }

  const Series* Find(std::string_view name, MetricType type, const MetricLabels& labels) const
      ABSL_SHARED_LOCKS_REQUIRED(mu) {
    auto it = families.find(name);
    if (it == families.end() || it->second.type != type) return nullptr;
    auto sit = it->second.series.find(LabelsKey(labels));
    return sit == it->second.series.end() ? nullptr : &sit->second;
  }
};

MetricsRegistry::MetricsRegistry() : state_(std::make_unique<State>()) {}
MetricsRegistry::~MetricsRegistry() = default;

Counter& MetricsRegistry::GetCounter(std::string_view name, const MetricLabels& labels,
                                     std::string_view help) {
  absl::MutexLock lock(&state_->mu);
  return *state_->Get(name, MetricType::kCounter, labels, help).counter;
}

Gauge& MetricsRegistry::GetGauge(std::string_view name, const MetricLabels& labels,
                                 std::string_view help) {
  absl::MutexLock lock(&state_->mu);
  return *state_->Get(name, MetricType::kGauge, labels, help).gauge;
}

Histogram& MetricsRegistry::GetHistogram(std::string_view name, const MetricLabels& labels,
                                         std::string_view help) {
  absl::MutexLock lock(&state_->mu);
  return *state_->Get(name, MetricType::kHistogram, labels, help).histogram;
}

uint64_t MetricsRegistry::AddGaugeCallback(std::string_view name, const MetricLabels& labels,
                                           std::function<std::optional<double>()> read,
                                           std::string_view help) {
  auto cb = std::make_shared<State::Callback>();
  cb->name = std::string(name);
  cb->help = std::string(help);
  cb->labels = labels;
  cb->read = std::move(read);
  absl::MutexLock lock(&state_->mu);
  uint64_t id = state_->next_callback++;
  state_->callbacks.emplace(id, std::move(cb));
  return id;
}

void MetricsRegistry::RemoveGaugeCallback(uint64_t id) {
  std::shared_ptr<State::Callback> removed;
  absl::MutexLock lock(&state_->mu);
  auto it = state_->callbacks.find(id);
  if (it == state_->callbacks.end()) return;
  removed = std::move(it->second);
  state_->callbacks.erase(it);
}

uint64_t MetricsRegistry::AddCollector(Collector collect) {
  auto c = std::make_shared<Collector>(std::move(collect));
  absl::MutexLock lock(&state_->mu);
  uint64_t id = state_->next_callback++;
  state_->collectors.emplace(id, std::move(c));
  return id;
}

void MetricsRegistry::RemoveCollector(uint64_t id) {
  std::shared_ptr<Collector> removed;
  absl::MutexLock lock(&state_->mu);
  auto it = state_->collectors.find(id);
  if (it == state_->collectors.end()) return;
  removed = std::move(it->second);
  state_->collectors.erase(it);
}

namespace {

// Adds `sample` to `family`, summing it into a series with the same labels.
void MergeSample(MetricFamily& family, MetricSample sample) {
  for (MetricSample& s : family.samples) {
    if (s.labels != sample.labels) continue;
    s.value += sample.value;
    for (size_t i = 0; i < s.histogram.buckets.size(); ++i) {
      s.histogram.buckets[i] += sample.histogram.buckets[i];
    }
    s.histogram.count += sample.histogram.count;
    s.histogram.sum_seconds += sample.histogram.sum_seconds;
    return;
  }
  family.samples.push_back(std::move(sample));
}

}  // namespace

std::vector<MetricFamily> MetricsRegistry::Collect() const {
  std::map<std::string, MetricFamily> out;
  std::vector<std::shared_ptr<State::Callback>> callbacks;
  std::vector<std::shared_ptr<Collector>> collectors;
  {
    absl::MutexLock lock(&state_->mu);
    for (const auto& [name, family] : state_->families) {
      MetricFamily& f = out[name];
      f.name = name;
      f.help = family.help;
      f.type = family.type;
      for (const auto& [key, series] : family.series) {
        MetricSample sample;
        sample.labels = series.labels;
        switch (family.type) {
          case MetricType::kCounter:
            sample.value = static_cast<double>(series.counter->Value());
            break;
          case MetricType::kGauge:
            sample.value = static_cast<double>(series.gauge->Value());
            break;
          case MetricType::kHistogram:
            sample.histogram = series.histogram->Read();
            break;
        }
        f.samples.push_back(std::move(sample));
      }
    }
    for (const auto& [id, cb] : state_->callbacks) callbacks.push_back(cb);
    for (const auto& [id, c] : state_->collectors) collectors.push_back(c);
  }
  // Callbacks may take a transport's locks: never under ours.
  for (const auto& cb : callbacks) {
    std::optional<double> v = cb->read ? cb->read() : std::nullopt;
    if (!v.has_value()) continue;
    auto it = out.find(cb->name);
    if (it != out.end() && it->second.type != MetricType::kGauge) continue;
    MetricFamily& f = out[cb->name];
    f.name = cb->name;
    f.type = MetricType::kGauge;
    if (f.help.empty()) f.help = cb->help;
    MergeSample(f, MetricSample{cb->labels, *v, {}});
  }
  for (const auto& collect : collectors) {
    std::vector<MetricFamily> extra;
    (*collect)(&extra);
    for (MetricFamily& e : extra) {
      auto it = out.find(e.name);
      if (it != out.end() && it->second.type != e.type) continue;
      MetricFamily& f = out[e.name];
      if (f.name.empty()) {
        f.name = e.name;
        f.type = e.type;
      }
      if (f.help.empty()) f.help = e.help;
      for (MetricSample& sample : e.samples) MergeSample(f, std::move(sample));
    }
  }
  std::vector<MetricFamily> result;
  result.reserve(out.size());
  for (auto& [name, f] : out) result.push_back(std::move(f));
  return result;
}

const Counter* MetricsRegistry::FindCounter(std::string_view name,
                                            const MetricLabels& labels) const {
  absl::MutexLock lock(&state_->mu);
  const State::Series* s = state_->Find(name, MetricType::kCounter, labels);
  return s == nullptr ? nullptr : s->counter.get();
}

const Gauge* MetricsRegistry::FindGauge(std::string_view name, const MetricLabels& labels) const {
  absl::MutexLock lock(&state_->mu);
  const State::Series* s = state_->Find(name, MetricType::kGauge, labels);
  return s == nullptr ? nullptr : s->gauge.get();
}

const Histogram* MetricsRegistry::FindHistogram(std::string_view name,
                                                const MetricLabels& labels) const {
  absl::MutexLock lock(&state_->mu);
  const State::Series* s = state_->Find(name, MetricType::kHistogram, labels);
  return s == nullptr ? nullptr : s->histogram.get();
}

// ---------------------------------------------------------------------------
// Spans.

std::string SpanToJson(const SpanData& span) {
  std::string out;
  out.reserve(512);
  JsonObject json(&out);
  json.Str("kind", SpanKindName(span.kind));
  json.Str("operation", span.operation);
  json.Str("style", StyleName(span.style));
  json.Str("transport", span.transport);
  if (!span.transport_type.empty()) json.Str("transport_type", span.transport_type);
  json.Str("trace_id", span.trace_id);
  json.Str("span_id", span.span_id);
  json.Str("parent_span_id", span.parent_span_id);
  json.Str("start", FormatRfc3339(span.start));
  json.Int("duration_us", absl::ToInt64Microseconds(span.duration));
  json.Str("status_code", CodeName(span.code));
  json.Int("attempt", span.attempt);
  json.Str("idempotency_key", span.idempotency_key);
  if (!span.message_id.empty()) json.Str("message_id", span.message_id);
  if (!span.group.empty()) json.Str("group", span.group);
  json.Close();
  return out;
}

void MemorySpanSink::Export(const SpanData& span) {
  absl::MutexLock lock(&mu_);
  spans_.push_back(span);
}

std::vector<SpanData> MemorySpanSink::Spans() const {
  absl::MutexLock lock(&mu_);
  return spans_;
}

std::vector<SpanData> MemorySpanSink::Trace(std::string_view trace_id) const {
  absl::MutexLock lock(&mu_);
  std::vector<SpanData> out;
  for (const auto& s : spans_) {
    if (s.trace_id == trace_id) out.push_back(s);
  }
  return out;
}

void MemorySpanSink::Clear() {
  absl::MutexLock lock(&mu_);
  spans_.clear();
}

// ---------------------------------------------------------------------------
// Logs.

absl::StatusOr<LogLevel> ParseLogLevel(std::string_view text) {
  if (text.empty() || text == "off") return LogLevel::kOff;
  if (text == "error") return LogLevel::kError;
  if (text == "info") return LogLevel::kInfo;
  if (text == "debug") return LogLevel::kDebug;
  return absl::InvalidArgumentError(
      Cat("telemetry.log_level: \"", text, "\" is not one of off, error, info, debug"));
}

namespace {

std::string_view LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug:
      return "debug";
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kError:
      return "error";
    case LogLevel::kOff:
      return "off";
  }
  return "off";
}

char Lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool StartsWithNoCase(std::string_view text, size_t pos, std::string_view word) {
  if (pos + word.size() > text.size()) return false;
  for (size_t i = 0; i < word.size(); ++i) {
    if (Lower(text[pos + i]) != word[i]) return false;
  }
  return true;
}

bool IsWordChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-';
}

constexpr std::string_view kSecretWords[] = {"authorization", "password", "passwd", "api_key",
                                             "apikey",        "secret",   "token",  "pass"};

}  // namespace

std::string RedactSecrets(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    // scheme://user:pass@host -> scheme://***@host
    if (text.compare(i, 3, "://") == 0) {
      size_t start = i + 3;
      size_t end = start;
      while (end < text.size() && text[end] != '@' && text[end] != '/' && text[end] != ' ' &&
             text[end] != '"' && text[end] != '\'') {
        ++end;
      }
      if (end < text.size() && text[end] == '@' && end > start) {
        out.append("://***@");
        i = end + 1;
        continue;
      }
      out.append("://");
      i = start;
      continue;
    }
    // password=..., token: ..., Authorization: Bearer ...
    bool at_word_start = i == 0 || !IsWordChar(text[i - 1]);
    if (at_word_start) {
      bool matched = false;
      for (std::string_view word : kSecretWords) {
        if (!StartsWithNoCase(text, i, word)) continue;
        size_t j = i + word.size();
        // Allow suffixes such as "password_file"? No: only the bare word, or
        // a quoted key, before the separator.
        if (j < text.size() && text[j] == '"') ++j;
        while (j < text.size() && text[j] == ' ') ++j;
        if (j >= text.size() || (text[j] != '=' && text[j] != ':')) continue;
        ++j;
        while (j < text.size() && (text[j] == ' ' || text[j] == '"')) ++j;
        size_t end = j;
        // "Bearer xyz" / "Basic xyz": the scheme word and its credential.
        if (StartsWithNoCase(text, j, "bearer ") || StartsWithNoCase(text, j, "basic ")) {
          end = text.find(' ', j) + 1;
        }
        while (end < text.size() && text[end] != ' ' && text[end] != ',' && text[end] != ';' &&
               text[end] != '&' && text[end] != '"' && text[end] != '\'' && text[end] != ')') {
          ++end;
        }
        out.append(text.substr(i, j - i));
        out.append("***");
        i = end;
        matched = true;
        break;
      }
      if (matched) continue;
    }
    out.push_back(text[i]);
    ++i;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Telemetry.

Telemetry::Telemetry(TelemetryOptions options)
    : invalid_traceparent_(&metrics_.GetCounter(
          metric::kInvalidTraceparent, {},
          "Incoming traceparent headers that were invalid and replaced by a new root")) {
  SetSampleRatio(options.sample_ratio);
  log_level_.store(options.log_level);
  log_sink_ = std::move(options.log_sink);
}

Telemetry::~Telemetry() {
  // Exporters (an HTTP server) may read the registry: stop them first.
  std::vector<std::unique_ptr<TelemetryExporter>> exporters;
  {
    absl::MutexLock lock(&mu_);
    exporters.swap(exporters_);
  }
  while (!exporters.empty()) exporters.pop_back();
}

absl::StatusOr<std::shared_ptr<Telemetry>> Telemetry::Create(const v1::TelemetryConfig& config) {
  TelemetryOptions options;
  double ratio = config.sample_ratio();
  if (!(ratio >= 0 && ratio <= 1)) {
    return absl::InvalidArgumentError(
        Cat("telemetry.sample_ratio: ", ratio, " is outside [0, 1]"));
  }
  options.sample_ratio = ratio == 0 ? 1 : ratio;
  absl::StatusOr<LogLevel> level = ParseLogLevel(config.log_level());
  if (!level.ok()) return level.status();
  options.log_level = *level;
  auto telemetry = std::make_shared<Telemetry>(std::move(options));
  if (!config.spans_file().empty() || !config.admin_listen().empty()) {
    if (SwitchboardStartTelemetryExporters == nullptr) {
      return absl::FailedPreconditionError(
          "telemetry.spans_file / telemetry.admin_listen need the switchboard::telemetry "
          "library linked into this program; link it or leave them empty");
    }
    absl::Status started;
    SwitchboardStartTelemetryExporters(telemetry.get(), &config, &started);
    if (!started.ok()) return started;
  }
  return telemetry;
}

void Telemetry::AddSpanSink(std::shared_ptr<SpanSink> sink) {
  if (sink == nullptr) return;
  absl::MutexLock lock(&mu_);
  sinks_.push_back(std::move(sink));
  has_sinks_.store(true, std::memory_order_release);
}

void Telemetry::SetSampleRatio(double ratio) {
  ratio = std::clamp(std::isnan(ratio) ? 1.0 : ratio, 0.0, 1.0);
  sample_ratio_.store(ratio, std::memory_order_relaxed);
  sample_all_.store(ratio >= 1, std::memory_order_relaxed);
  // ratio * 2^64, computed without overflowing.
  double scaled = std::ldexp(ratio, 64);
  uint64_t threshold = scaled >= std::ldexp(1.0, 64) ? UINT64_MAX : static_cast<uint64_t>(scaled);
  sample_threshold_.store(threshold, std::memory_order_relaxed);
}

bool Telemetry::Sampled(std::string_view trace_id) const {
  if (sample_all_.load(std::memory_order_relaxed)) return true;
  // The trace id's last 8 bytes are random (W3C trace context, level 2), so
  // they decide uniformly and the same way on every node.
  if (trace_id.size() < 16) return false;
  uint64_t v = 0;
  for (char c : trace_id.substr(trace_id.size() - 16)) {
    int d = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (d < 0) return false;
    v = (v << 4) | static_cast<uint64_t>(d);
  }
  return v < sample_threshold_.load(std::memory_order_relaxed);
}

void Telemetry::RecordSpan(const SpanData& span) {
  if (!has_span_sinks() || !Sampled(span.trace_id)) return;
  std::vector<std::shared_ptr<SpanSink>> sinks;
  {
    absl::MutexLock lock(&mu_);
    sinks = sinks_;
  }
  for (const auto& sink : sinks) sink->Export(span);
}

void Telemetry::SetLogSink(LogSink sink) {
  absl::MutexLock lock(&mu_);
  log_sink_ = std::move(sink);
}

void Telemetry::LogSpan(LogLevel level, const SpanData& span, const absl::Status& status) {
  if (level < log_level() || log_level() == LogLevel::kOff) return;
  std::string line;
  line.reserve(512);
  JsonObject json(&line);
  json.Str("ts", FormatRfc3339(span.start + span.duration));
  json.Str("level", LevelName(level));
  json.Str("msg", span.kind == SpanKind::kServer ? "delivery completed"
                  : span.kind == SpanKind::kClient ? "call completed"
                  : span.kind == SpanKind::kReply  ? "reply sent"
                                                   : "attempt completed");
  json.Str("kind", SpanKindName(span.kind));
  json.Str("operation", span.operation);
  json.Str("style", StyleName(span.style));
  json.Str("transport", span.transport);
  json.Str("trace_id", span.trace_id);
  json.Str("span_id", span.span_id);
  if (!span.parent_span_id.empty()) json.Str("parent_span_id", span.parent_span_id);
  json.Str("status_code", CodeName(status.code()));
  json.Int("duration_us", absl::ToInt64Microseconds(span.duration));
  json.Int("attempt", span.attempt);
  if (!span.message_id.empty()) json.Str("message_id", span.message_id);
  if (!span.group.empty()) json.Str("group", span.group);
  if (!status.ok()) json.Str("error", RedactSecrets(AsStd(status.message())));
  json.Close();

  LogSink sink;
  {
    absl::MutexLock lock(&mu_);
    sink = log_sink_;
  }
  if (sink) {
    sink(line);
    return;
  }
  line.push_back('\n');
  // One fwrite per line: stdio locks the stream, so lines never interleave.
  std::fwrite(line.data(), 1, line.size(), stderr);
}

void Telemetry::RegisterOperation(OperationInfo info) {
  absl::MutexLock lock(&mu_);
  for (auto& op : operations_) {
    if (op.operation == info.operation && op.transport == info.transport) {
      op = std::move(info);
      return;
    }
  }
  operations_.push_back(std::move(info));
}

std::vector<OperationInfo> Telemetry::Operations() const {
  absl::MutexLock lock(&mu_);
  std::vector<OperationInfo> ops = operations_;
  std::sort(ops.begin(), ops.end(), [](const OperationInfo& a, const OperationInfo& b) {
    return a.operation < b.operation;
  });
  return ops;
}

void Telemetry::Retain(std::shared_ptr<void> object) {
  absl::MutexLock lock(&mu_);
  retained_.push_back(std::move(object));
}

bool Telemetry::MarkOnce(std::string_view key) {
  absl::MutexLock lock(&mu_);
  if (std::find(marks_.begin(), marks_.end(), key) != marks_.end()) return false;
  marks_.emplace_back(key);
  return true;
}

void Telemetry::AddExporter(std::unique_ptr<TelemetryExporter> exporter) {
  absl::MutexLock lock(&mu_);
  exporters_.push_back(std::move(exporter));
}

std::string Telemetry::admin_address() const {
  absl::MutexLock lock(&mu_);
  return admin_address_;
}

void Telemetry::set_admin_address(std::string address) {
  absl::MutexLock lock(&mu_);
  admin_address_ = std::move(address);
}

}  // namespace switchboard

#include "wire.h"

#include <array>
#include <cstdint>
#include <cstring>

#include "absl/strings/numbers.h"
#include "switchboard/internal/strings.h"
#include "switchboard/internal/attribute_names.h"
#include "switchboard/status.h"

namespace switchboard::grpc::wire {
namespace {

constexpr std::string_view kPrefix = "ce-";

// Extensions travel as `ce-` keys only under CloudEvents attribute names
// that have no field of their own (switchboard/internal/attribute_names.h).
using internal::IsAttributeName;
using internal::IsMappedAttribute;

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string PercentDecode(std::string_view value) {
  size_t pct = value.find('%');
  if (pct == std::string_view::npos) return std::string(value);
  std::string out;
  out.reserve(value.size());
  size_t done = 0;
  while (pct != std::string_view::npos) {
    out.append(value.substr(done, pct - done));
    int hi = pct + 2 < value.size() ? HexValue(value[pct + 1]) : -1;
    int lo = hi >= 0 ? HexValue(value[pct + 2]) : -1;
    if (lo >= 0) {
      out.push_back(static_cast<char>(hi * 16 + lo));
      done = pct + 3;
    } else {
      out.push_back('%');
      done = pct + 1;
    }
    pct = value.find('%', done);
  }
  out.append(value.substr(done));
  return out;
}

void ForEachMetadata(const Envelope& env, MetadataSet set,
                     absl::FunctionRef<void(std::string_view, std::string_view)> emit) {
  std::string scratch;
  std::string key;
  auto add = [&](std::string_view name, std::string_view value) {
    if (value.empty() || value.size() > kMaxMetadataValue) return;
    if (!NeedsPercentEncoding(value)) {
      emit(name, value);
      return;
    }
    scratch.clear();
    AppendPercentEncoded(value, &scratch);
    // Headers are for readers along the way; long values stay in the body
    // so that a call never trips HTTP/2 header limits.
    if (scratch.size() > kMaxMetadataValue) return;
    emit(name, scratch);
  };
  add("ce-type", env.type);
  // W3C Trace Context has its own header names; proxies and tracers look
  // for those, not for ce-traceparent.
  add("traceparent", env.traceparent);
  add("tracestate", env.tracestate);
  if (set == MetadataSet::kRouting) return;

  add("ce-id", env.id);
  add("ce-source", env.source);
  add("ce-specversion", env.spec_version);
  add("ce-correlationid", env.correlation_id);
  if (env.time != absl::UnixEpoch()) add("ce-time", FormatRfc3339(env.time));
  add("ce-datacontenttype", env.data_content_type);
  add("ce-subject", env.subject);
  if (!WireOmitsIdempotencyKey(env)) add("ce-idempotencykey", env.idempotency_key);
  if (env.has_deadline()) add("ce-expirytime", FormatRfc3339(env.deadline));
  add("ce-replyto", env.reply_to);
  if (!WireOmitsAttempt(env)) add("ce-attempt", Cat(env.attempt));
  if (env.style != Style::kUnspecified) add("ce-style", StyleName(env.style));
  if (!env.status.ok()) {
    add("ce-statuscode", Cat(static_cast<int>(env.status.code())));
    add("ce-statusmessage", AsStd(env.status.message()));
  }
  for (const auto& [name, value] : env.extensions) {
    if (IsAttributeName(name) && !IsMappedAttribute(name) && name != kQueuedTypeExtension) {
      key.assign(kPrefix);
      key.append(name);
      add(key, value);
    }
  }
}

Metadata ToMetadata(const Envelope& env, MetadataSet set) {
  Metadata md;
  ForEachMetadata(env, set, [&md](std::string_view key, std::string_view value) {
    md.emplace_back(key, value);
  });
  return md;
}

void FillFromMetadata(const Metadata& md, Envelope* env, internal::EnvelopeWireRest* rest) {
  std::vector<MetadataView> views;
  views.reserve(md.size());
  for (const auto& [key, value] : md) views.emplace_back(key, value);
  FillFromMetadata(views, env, rest);
}

void FillFromMetadata(absl::Span<const MetadataView> md, Envelope* env,
                      internal::EnvelopeWireRest* rest) {
  // Sets an attribute from the metadata value when the body left it empty.
  auto fill = [](std::string* field, std::string_view raw) {
    if (field->empty()) *field = PercentDecode(raw);
  };
  auto fill_time = [](bool* has, absl::Time* field, std::string_view raw) {
    if (*has) return;
    if (absl::StatusOr<absl::Time> t = ParseRfc3339(PercentDecode(raw)); t.ok()) {
      *field = *t;
      *has = true;
    }
  };
  for (const auto& [key, raw] : md) {
    if (key == "traceparent") {
      fill(&env->traceparent, raw);
      continue;
    }
    if (key == "tracestate") {
      fill(&env->tracestate, raw);
      continue;
    }
    if (key.substr(0, kPrefix.size()) != kPrefix) continue;
    std::string_view name = key.substr(kPrefix.size());
    if (name == "id") {
      fill(&env->id, raw);
    } else if (name == "source") {
      fill(&env->source, raw);
    } else if (name == "specversion") {
      fill(&env->spec_version, raw);
    } else if (name == "type") {
      fill(&env->type, raw);
    } else if (name == "time") {
      fill_time(&rest->has_time, &env->time, raw);
    } else if (name == "datacontenttype") {
      fill(&env->data_content_type, raw);
    } else if (name == "subject") {
      fill(&env->subject, raw);
    } else if (name == attr::kIdempotencyKey) {
      fill(&env->idempotency_key, raw);
    } else if (name == attr::kExpiryTime) {
      fill_time(&rest->has_deadline, &env->deadline, raw);
    } else if (name == attr::kCorrelationId) {
      fill(&env->correlation_id, raw);
    } else if (name == attr::kReplyTo) {
      fill(&env->reply_to, raw);
    } else if (name == attr::kAttempt) {
      int attempt = 0;
      if (rest->attempt == 0 && absl::SimpleAtoi(AsAbsl(PercentDecode(raw)), &attempt)) {
        rest->attempt = attempt;
      }
    } else if (name == attr::kStyle) {
      Style style;
      if (rest->style == 0 && ParseStyle(PercentDecode(raw), &style)) {
        rest->style = static_cast<int32_t>(style);
      }
    } else if (name == attr::kStatusCode || name == attr::kStatusMessage) {
      // Outcome of a reply: the gRPC status is authoritative.
    } else if (IsAttributeName(name) && !env->extensions.contains(std::string(name))) {
      env->extensions.emplace(std::string(name), PercentDecode(raw));
    }
  }
}

TargetKeyList TargetKeys(std::string_view operation) {
  TargetKeyList keys;
  keys.push_back(operation);
  if (size_t slash = operation.find('/'); slash != std::string_view::npos) {
    keys.push_back(operation.substr(0, slash));
  } else if (size_t dot = operation.rfind('.'); dot != std::string_view::npos) {
    keys.push_back(operation.substr(0, dot));
  }
  keys.push_back("*");
  return keys;
}

std::string InboxAddress(std::string_view host_port, std::string_view inbox_id) {
  return Cat("grpc://", host_port, "/inbox/", inbox_id);
}

absl::StatusOr<InboxRef> ParseInboxAddress(std::string_view address) {
  constexpr std::string_view kScheme = "grpc://";
  constexpr std::string_view kPath = "/inbox/";
  size_t path = address.find(kPath, kScheme.size());
  if (address.substr(0, kScheme.size()) != kScheme || path == std::string_view::npos ||
      path == kScheme.size() || path + kPath.size() == address.size()) {
    return absl::InvalidArgumentError(
        Cat("\"", address,
                     "\" is not a gRPC reply address (expected grpc://host:port/inbox/<id>)"));
  }
  InboxRef ref;
  ref.target = std::string(address.substr(kScheme.size(), path - kScheme.size()));
  ref.inbox = std::string(address.substr(path + kPath.size()));
  return ref;
}

std::string GroupQueue(std::string_view type, std::string_view group) {
  return Cat(type, "#", group);
}

}  // namespace switchboard::grpc::wire

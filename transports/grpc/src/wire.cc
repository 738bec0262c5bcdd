#include "wire.h"

#include <array>
#include <cstdint>
#include <cstring>

#include "absl/strings/numbers.h"
#include "switchboard/internal/attribute_names.h"
#include "switchboard/internal/proto_wire.h"
#include "switchboard/internal/strings.h"
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

// ---- Send stream frames ----

namespace {

using internal::kLengthDelimited;
using internal::kVarint;

// A sequence number, left out when 0 as proto3 does.
size_t SeqSize(uint64_t seq) { return seq == 0 ? 0 : 1 + internal::VarintSize(seq); }
uint8_t* PutSeq(uint64_t seq, uint8_t* out) {
  if (seq == 0) return out;
  return internal::PutVarint(seq, internal::PutVarint(internal::Tag(1, kVarint), out));
}

// SendFrame{seq = 1, <kind> = request}, without its own tag and length.
size_t FrameBodySize(uint64_t seq, size_t request_size) {
  return SeqSize(seq) + 1 + internal::VarintSize(request_size) + request_size;
}

size_t AckBodySize(uint64_t seq, const absl::Status& status) {
  size_t n = SeqSize(seq);
  if (!status.ok()) {
    n += 1 + internal::VarintSize(internal::Int32Bits(static_cast<int32_t>(status.code())));
    if (!status.message().empty()) n += internal::StringFieldSize(3, status.message().size());
  }
  return n;
}

}  // namespace

RequestShape ShapeOf(SendKind kind) {
  switch (kind) {
    case SendKind::kEnqueue:
      return {1, 2, "switchboard.v1.EnqueueRequest"};
    case SendKind::kPublish:
      return {1, 2, "switchboard.v1.PublishRequest"};
    case SendKind::kReply:
      break;
  }
  return {2, 1, "switchboard.v1.ReplyRequest"};
}

size_t FrameWireSize(uint64_t seq, size_t request_size) {
  return internal::StringFieldSize(1, FrameBodySize(seq, request_size));
}

uint8_t* WriteFrameHeader(uint64_t seq, SendKind kind, size_t request_size, uint8_t* out) {
  out = internal::PutFieldHeader(1, FrameBodySize(seq, request_size), out);
  out = PutSeq(seq, out);
  return internal::PutFieldHeader(static_cast<int>(kind), request_size, out);
}

bool ReadSendBatch(std::string_view bytes, std::vector<FrameView>* frames) {
  return internal::ReadMessage(
      bytes, internal::kMaxDepth, [&](uint32_t tag, internal::WireReader& r, int depth) {
        if (tag != internal::Tag(1, kLengthDelimited)) return r.SkipField(tag, depth);
        std::string_view frame;
        if (!r.Bytes(&frame)) return false;
        FrameView f;
        const bool read = internal::ReadMessage(
            frame, depth, [&f](uint32_t t, internal::WireReader& fr, int d) {
              const uint32_t field = t >> 3;
              if (field == 1 && (t & 7) == kVarint) return fr.Varint(&f.seq);
              if (field >= 2 && field <= 4 && (t & 7) == kLengthDelimited) {
                std::string_view request;
                if (!fr.Bytes(&request)) return false;
                const auto kind = static_cast<SendKind>(field);
                if (f.kind != kind) {
                  f.kind = kind;
                  f.request = request;
                  f.merged.reset();
                  return true;
                }
                auto merged = std::make_shared<std::string>(f.request);
                merged->append(request.data(), request.size());
                f.request = *merged;
                f.merged = std::move(merged);
                return true;
              }
              return fr.SkipField(t, d);
            });
        if (!read) return false;
        frames->push_back(f);
        return true;
      });
}

size_t AckBatchWireSize(const AckList& acks) {
  size_t size = 0;
  for (const auto& [seq, status] : acks) {
    size += internal::StringFieldSize(1, AckBodySize(seq, status));
  }
  return size;
}

uint8_t* WriteAckBatch(const AckList& acks, uint8_t* out) {
  for (const auto& [seq, status] : acks) {
    out = internal::PutFieldHeader(1, AckBodySize(seq, status), out);
    out = PutSeq(seq, out);
    if (status.ok()) continue;
    out = internal::PutVarint(internal::Tag(2, kVarint), out);
    out = internal::PutVarint(internal::Int32Bits(static_cast<int32_t>(status.code())), out);
    if (!status.message().empty()) {
      out = internal::PutBytesField(
          3, std::string_view(status.message().data(), status.message().size()), out);
    }
  }
  return out;
}

bool ReadAckBatch(std::string_view bytes, AckList* acks) {
  return internal::ReadMessage(
      bytes, internal::kMaxDepth, [&](uint32_t tag, internal::WireReader& r, int depth) {
        if (tag != internal::Tag(1, kLengthDelimited)) return r.SkipField(tag, depth);
        std::string_view ack;
        if (!r.Bytes(&ack)) return false;
        uint64_t seq = 0;
        uint64_t code = 0;
        std::string_view message;
        const bool read = internal::ReadMessage(
            ack, depth, [&](uint32_t t, internal::WireReader& ar, int d) {
              if (t == internal::Tag(1, kVarint)) return ar.Varint(&seq);
              if (t == internal::Tag(2, kVarint)) return ar.Varint(&code);
              if (t == internal::Tag(3, kLengthDelimited)) return ar.Bytes(&message);
              return ar.SkipField(t, d);
            });
        if (!read) return false;
        const auto c = static_cast<int32_t>(code);
        absl::Status status;
        if (c != 0) {
          status = absl::Status(
              c > 0 && c <= 16 ? static_cast<absl::StatusCode>(c) : absl::StatusCode::kUnknown,
              message.empty() ? absl::string_view("rejected by the server")
                              : absl::string_view(message.data(), message.size()));
        }
        acks->emplace_back(seq, std::move(status));
        return true;
      });
}

}  // namespace switchboard::grpc::wire

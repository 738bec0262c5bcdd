#include "switchboard/internal/envelope_pool.h"

#include <cstdint>
#include <map>
#include <mutex>
#include <utility>

#include "absl/container/inlined_vector.h"

namespace switchboard::internal {
namespace {

// The fields of Envelope, in order. A field added to Envelope changes its
// size, and must be cleared in ClearKeepingBuffers too, or a spare would
// carry it from one call into the next.
struct EnvelopeFields {
  std::string id, source, spec_version, type;
  absl::Time time;
  std::string data_content_type, subject, traceparent, tracestate, idempotency_key;
  absl::Time deadline;
  std::string correlation_id, reply_to;
  int32_t attempt;
  Style style;
  absl::Status status;
  std::map<std::string, std::string> extensions;
  std::string data;
};
static_assert(sizeof(Envelope) == sizeof(EnvelopeFields),
              "Envelope changed: clear the new field in ClearKeepingBuffers");

// Shared by all threads: envelopes are often built on one thread (a
// transport's) and dropped on another (an executor's). Never waited for: when
// another thread holds the lock, the envelope is allocated or freed as usual.
struct Spares {
  std::mutex mu;
  absl::InlinedVector<Envelope, kMaxSpares> envelopes;
};

Spares& TheSpares() {
  static Spares* spares = new Spares();
  return *spares;
}

bool WorthKeeping(const Envelope& env) { return env.data.capacity() <= kMaxSpareDataBytes; }

}  // namespace

void ClearKeepingBuffers(Envelope* env) {
  env->id.clear();
  env->source.clear();
  env->spec_version.assign("1.0");
  env->type.clear();
  env->time = absl::UnixEpoch();
  env->data_content_type.assign(kContentTypeProtobuf);
  env->subject.clear();
  env->traceparent.clear();
  env->tracestate.clear();
  env->idempotency_key.clear();
  env->deadline = absl::InfiniteFuture();
  env->correlation_id.clear();
  env->reply_to.clear();
  env->attempt = 1;
  env->style = Style::kUnspecified;
  env->status = absl::OkStatus();
  env->extensions.clear();
  env->data.clear();
}

Envelope NewEnvelope() {
  Spares& spares = TheSpares();
  std::unique_lock<std::mutex> lock(spares.mu, std::try_to_lock);
  if (!lock.owns_lock() || spares.envelopes.empty()) return Envelope{};
  // Returned as a prvalue (one move, straight into the caller's object); the
  // moved-from spare is dropped after that, still under the lock.
  struct PopOnReturn {
    Spares& spares;
    ~PopOnReturn() { spares.envelopes.pop_back(); }
  } pop{spares};
  ClearKeepingBuffers(&spares.envelopes.back());
  return Envelope(std::move(spares.envelopes.back()));
}

void RecycleEnvelope(Envelope&& env) {
  if (!WorthKeeping(env)) return;
  Spares& spares = TheSpares();
  std::unique_lock<std::mutex> lock(spares.mu, std::try_to_lock);
  if (!lock.owns_lock() || spares.envelopes.size() >= kMaxSpares) return;
  spares.envelopes.push_back(std::move(env));
}

size_t SpareEnvelopes() {
  Spares& spares = TheSpares();
  std::lock_guard<std::mutex> lock(spares.mu);
  return spares.envelopes.size();
}

}  // namespace switchboard::internal

// envelope_pool.h: spare envelopes whose strings keep their buffers.
//
// A call builds three envelopes (the request, the retry step's copy of it,
// the reply) and drops three, each a dozen strings of which half are longer
// than std::string's small buffer: about twenty allocations per call for
// text of the same length every time (ids, operation names, trace context,
// the content type). An envelope dropped through `RecycleEnvelope` keeps its
// buffers among a few spares, and `NewEnvelope` hands one out again, cleared:
// assigning into it copies characters and allocates nothing.
//
//   Envelope env = internal::NewEnvelope();   // equal to Envelope{}
//   env.type = operation;                     // no allocation when it fits
//   ...
//   internal::RecycleEnvelope(std::move(env));
//
// The spares are shared by all threads (an envelope is often decoded on a
// transport's thread and dropped on an executor's) and never waited for:
// when another thread holds them, the envelope is allocated or freed as
// usual. At most kMaxSpares are kept, none with a payload buffer larger than
// kMaxSpareDataBytes.
#pragma once

#include <cstddef>
#include <string>

#include "switchboard/envelope.h"

namespace switchboard::internal {

inline constexpr size_t kMaxSpares = 32;
inline constexpr size_t kMaxSpareDataBytes = 16 * 1024;

// An envelope equal to `Envelope{}`: a spare when one is free.
[[nodiscard]] Envelope NewEnvelope();

// Keeps `env`'s buffers for a later NewEnvelope, or frees them.
// `env` is left valid and unspecified (moved from).
void RecycleEnvelope(Envelope&& env);

// Sets every field of `env` to its default, keeping the strings' buffers.
void ClearKeepingBuffers(Envelope* env);

// Writes a new message id (NewMessageId) into `out`, reusing its buffer.
void AssignNewMessageId(std::string* out);

// Spare envelopes held now (for tests).
[[nodiscard]] size_t SpareEnvelopes();

}  // namespace switchboard::internal

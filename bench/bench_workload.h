// bench_workload.h: what the transport benchmark runner measures.
//
// A `Workload` does one unit of work at a time per slot (a slot is one of the
// `concurrency` calls kept in flight): a request and its reply, or a command
// or event from send until the handler has seen it. The runner calls RunOnce
// from one thread per slot, so every unit is measured from start to finish
// the same way for Switchboard and for the raw library.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "switchboard/test/v1/echo.pb.h"

namespace switchboard::bench {

enum class Style { kRequest, kCommand, kEvent };

inline const char* StyleName(Style s) {
  switch (s) {
    case Style::kRequest:
      return "request";
    case Style::kCommand:
      return "command";
    case Style::kEvent:
      return "event";
  }
  return "?";
}

// Bound on one unit of work: nothing in the runner waits longer.
inline constexpr std::chrono::seconds kUnitTimeout{5};

class Workload {
 public:
  virtual ~Workload() = default;
  // Does one unit for `slot` (0 <= slot < concurrency, one thread per slot)
  // and returns once it is complete. `seq` grows by one per call per slot.
  virtual absl::Status RunOnce(int slot, uint64_t seq) = 0;
};

// Handlers of commands and events tell the sending slot that its message
// arrived. A redelivered or late message carries an older `seq` and is
// ignored by the wait.
class SlotSignals {
 public:
  explicit SlotSignals(int slots) : slots_(slots) {}

  void Done(int slot, uint64_t seq) {
    if (slot < 0 || slot >= static_cast<int>(slots_.size())) return;
    Slot& s = slots_[slot];
    {
      std::lock_guard<std::mutex> lock(s.mu);
      if (seq > s.done) s.done = seq;
    }
    s.cv.notify_all();
  }

  bool Wait(int slot, uint64_t seq) {
    Slot& s = slots_[slot];
    std::unique_lock<std::mutex> lock(s.mu);
    return s.cv.wait_for(lock, kUnitTimeout, [&] { return s.done >= seq; });
  }

 private:
  struct Slot {
    std::mutex mu;
    std::condition_variable cv;
    uint64_t done = 0;
  };
  std::vector<Slot> slots_;
};

// The message every workload sends: `text` names the slot and sequence
// ("slot:seq") so the consumer can signal the sender; `blob` pads the
// serialized message to the payload size.
inline test::v1::EchoRequest MakeRequest(int slot, uint64_t seq, size_t payload_bytes) {
  test::v1::EchoRequest req;
  req.set_text(std::to_string(slot) + ":" + std::to_string(seq));
  size_t used = req.ByteSizeLong() + 4;  // blob tag and length
  req.set_blob(std::string(payload_bytes > used ? payload_bytes - used : 0, 'x'));
  return req;
}

// Parses "slot:seq" from a received request; false when it is not ours.
inline bool ParseSlot(const std::string& text, int* slot, uint64_t* seq) {
  size_t colon = text.find(':');
  if (colon == std::string::npos) return false;
  try {
    *slot = std::stoi(text.substr(0, colon));
    *seq = std::stoull(text.substr(colon + 1));
  } catch (...) {
    return false;
  }
  return true;
}

// The handler side of an echo: parse the request, build the reply, serialize.
inline absl::StatusOr<std::string> EchoBytes(const std::string& request_bytes) {
  test::v1::EchoRequest req;
  if (!req.ParseFromString(request_bytes)) return absl::InvalidArgumentError("bad request");
  test::v1::EchoReply reply;
  reply.set_text(req.text());
  reply.set_blob(req.blob());
  return reply.SerializeAsString();
}

// The ids a Switchboard envelope carries (message id, traceparent), of the
// same length and changing per message: what the raw baselines put on the
// wire with `envelope_headers`. The idempotency key is the id, which the
// wire leaves out.
struct EnvelopeLikeIds {
  char id[40];
  char trace[64];
};

inline EnvelopeLikeIds MakeEnvelopeLikeIds(uint64_t seq) {
  EnvelopeLikeIds ids;
  const auto n = static_cast<unsigned long long>(seq);
  std::snprintf(ids.id, sizeof ids.id, "0190f3a2-7c41-7b2e-9d1a-%012llx", n);
  std::snprintf(ids.trace, sizeof ids.trace,
                "00-4bf92f3577b34da6a3ce929d0e0e%04llx-00f067aa0ba9%04llx-01", n & 0xffff,
                (n >> 16) & 0xffff);
  return ids;
}

// Raw baselines, each built only when its library is part of the build.
// They return NotFound when the style is not a thing the library does.
struct RawOptions {
  Style style = Style::kRequest;
  size_t payload_bytes = 128;
  int concurrency = 1;
  std::string run_id;
  // nats: jetstream; amqp: unused.
  bool jetstream = false;
  // nats and amqp: every message carries the headers (NATS) or application
  // properties and message fields (AMQP) a Switchboard envelope puts on the
  // wire (CloudEvents binary mode, W3C trace context) and the receiver reads
  // each one: separates the wire format's cost from the library's
  // (`transport_bench --raw-headers`).
  bool envelope_headers = false;
  std::string url;             // nats / amqp server
  std::string management_url;  // amqp
};

absl::StatusOr<std::unique_ptr<Workload>> MakeRawGrpc(const RawOptions& options);
absl::StatusOr<std::unique_ptr<Workload>> MakeRawNats(const RawOptions& options);
absl::StatusOr<std::unique_ptr<Workload>> MakeRawAmqp(const RawOptions& options);

}  // namespace switchboard::bench

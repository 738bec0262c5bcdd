// context.h: what a handler knows about the call it serves.
//
// A `Context` is valid for the duration of the handler call (for an async
// handler, until its future resolves). Downstream calls made with
// `CallOptions{.parent = &ctx}` inherit the remaining deadline (minus the
// policy's margin), the trace (a child span) and nothing else.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "switchboard/clock.h"
#include "switchboard/envelope.h"
#include "switchboard/trace_context.h"

namespace switchboard {

class Node;
class Clock;

class Context {
 public:
  Context(Node* node, const Clock* clock, std::string_view transport, const Envelope* envelope,
          TraceParent span)
      : node_(node), clock_(clock), transport_(transport), envelope_(envelope), span_(span) {}

  const std::string& operation() const { return envelope_->type; }
  Style style() const { return envelope_->style; }
  std::string_view transport() const { return transport_; }
  const std::string& message_id() const { return envelope_->id; }
  const std::string& idempotency_key() const { return envelope_->idempotency_key; }
  // 1 for the first delivery; redeliveries and retries count up.
  int attempt() const { return envelope_->attempt; }
  // absl::InfiniteFuture() when the call has none.
  absl::Time deadline() const { return envelope_->deadline; }
  absl::Duration remaining() const { return envelope_->deadline - clock_->Now(); }
  bool expired() const { return remaining() <= absl::ZeroDuration(); }

  // This hop's span (a child of the caller's).
  const TraceParent& span() const { return span_; }
  std::string trace_id() const { return span_.TraceId(); }
  const std::string& tracestate() const { return envelope_->tracestate; }
  const Envelope& envelope() const { return *envelope_; }

  // The subscriber group this delivery is for (events), or the consumer
  // group of a command; empty for a request.
  std::string_view group() const { return group_; }
  void set_group(std::string_view group) { group_ = group; }

  // The node serving this call, for downstream calls.
  Node& node() const { return *node_; }
  const Clock& clock() const { return *clock_; }

  // Per-call values a middleware offers the handler, by name (the middleware
  // that sets one documents its type; e.g. the idempotency store's
  // transaction). nullptr when unset. Set before the handler runs.
  void* attachment(std::string_view key) const {
    for (const auto& [k, v] : attachments_) {
      if (k == key) return v;
    }
    return nullptr;
  }
  // nullptr removes the entry.
  void set_attachment(std::string_view key, void* value) {
    for (auto it = attachments_.begin(); it != attachments_.end(); ++it) {
      if (it->first != key) continue;
      if (value == nullptr) {
        attachments_.erase(it);
      } else {
        it->second = value;
      }
      return;
    }
    if (value != nullptr) attachments_.emplace_back(std::string(key), value);
  }

 private:
  Node* node_;
  const Clock* clock_;
  std::string_view transport_;
  const Envelope* envelope_;
  TraceParent span_;
  std::string_view group_;
  std::vector<std::pair<std::string, void*>> attachments_;
};

}  // namespace switchboard

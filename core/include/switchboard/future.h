// future.h: the asynchronous result of a call.
//
// A `Future<T>` resolves once with absl::StatusOr<T>. No thread is blocked
// while a call is in flight: continuations registered with Then() run on the
// thread that resolves the promise (a transport or handler thread), or inline
// if the result is already there. Get() blocks the calling thread and exists
// for examples, tests and main().
//
//   auto [promise, future] = MakePromise<Reply>();
//   std::move(future).Then([](absl::StatusOr<Reply> r) { ... });
//   promise.Set(Reply{});
//
// Thread safety: a Promise and its Future may be used from different threads.
// Each is single-owner (move-only); Set() and Then() may race safely.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "switchboard/internal/idle_watch.h"

namespace switchboard {

class Node;

// What a caller can know about its call as soon as it is started.
struct CallInfo {
  std::string message_id;
  std::string idempotency_key;
  std::string trace_id;
  std::string traceparent;
};

namespace internal {

// The identifiers behind a CallInfo, as the node writes them once per call:
// the message id and traceparent have fixed sizes and stay in place, and the
// idempotency key is kept only when the caller chose one. The CallInfo's
// strings are built when a caller first asks for them.
class CallIds {
 public:
  void Set(std::string_view message_id, std::string_view traceparent,
           std::string_view idempotency_key) {
    id_size_ = Put(message_id, id_);
    traceparent_size_ = Put(traceparent, traceparent_);
    if (idempotency_key != message_id) idempotency_key_ = std::string(idempotency_key);
  }

  CallInfo ToInfo() const {
    CallInfo info;
    info.message_id = std::string(id_.data(), id_size_);
    info.idempotency_key = idempotency_key_.has_value() ? *idempotency_key_ : info.message_id;
    info.traceparent = std::string(traceparent_.data(), traceparent_size_);
    // "00-<32 hex trace id>-<16 hex span id>-<flags>"
    if (traceparent_size_ >= 35) info.trace_id = info.traceparent.substr(3, 32);
    return info;
  }

 private:
  // A UUID and a version-00 traceparent; anything longer is cut.
  static constexpr size_t kIdSize = 36;
  static constexpr size_t kTraceparentSize = 55;

  template <size_t N>
  static uint8_t Put(std::string_view text, std::array<char, N>& out) {
    const size_t n = std::min(text.size(), N);
    std::copy_n(text.data(), n, out.data());
    return static_cast<uint8_t>(n);
  }

  std::array<char, kIdSize> id_{};
  std::array<char, kTraceparentSize> traceparent_{};
  uint8_t id_size_ = 0;
  uint8_t traceparent_size_ = 0;
  std::optional<std::string> idempotency_key_;
};

// One per call, so it uses std::mutex: absl::Mutex costs about three times as
// much per lock even with its deadlock detection off (see docs/design-notes.md).
template <class T>
class FutureState {
 public:
  using Callback = absl::AnyInvocable<void(absl::StatusOr<T>) &&>;

  void Set(absl::StatusOr<T> value) {
    Callback cb;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (done_) return;  // first result wins
      done_ = true;
      if (callback_) {
        cb = std::move(callback_);
      } else {
        value_.emplace(std::move(value));
        ready_.store(true, std::memory_order_release);
        if (waiting_) cv_.notify_all();
        return;
      }
    }
    std::move(cb)(std::move(value));
  }

  void Then(Callback cb) {
    std::optional<absl::StatusOr<T>> ready;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!value_.has_value()) {
        if (done_) return;  // already consumed
        callback_ = std::move(cb);
        return;
      }
      ready = std::move(value_);
      value_.reset();
    }
    std::move(cb)(std::move(*ready));
  }

  bool Ready() const {
    std::lock_guard<std::mutex> lock(mu_);
    return value_.has_value();
  }

  // How long WaitFor watches for the result before it sleeps (see
  // idle_watch.h): about the time an inproc call takes through the executor.
  static constexpr int64_t kWatchNanos = 50'000;

  std::optional<absl::StatusOr<T>> WaitFor(absl::Duration timeout) {
    if (timeout > absl::ZeroDuration()) {
      const int64_t watch = timeout == absl::InfiniteDuration()
                                ? kWatchNanos
                                : std::min(kWatchNanos, absl::ToInt64Nanoseconds(timeout));
      internal::WatchBeforeSleeping(watch,
                                    [this] { return ready_.load(std::memory_order_acquire); });
    }
    std::unique_lock<std::mutex> lock(mu_);
    waiting_ = true;
    if (timeout == absl::InfiniteDuration()) {
      cv_.wait(lock, [this] { return value_.has_value(); });
    } else if (!cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                             [this] { return value_.has_value(); })) {
      return std::nullopt;
    }
    std::optional<absl::StatusOr<T>> out = std::move(value_);
    value_.reset();
    return out;
  }

  // Written by the node before the call starts; read through info(), which
  // builds the strings once, whichever thread asks first.
  CallIds ids;
  const CallInfo& info() const {
    std::call_once(info_once_, [this] { info_ = std::make_unique<CallInfo>(ids.ToInfo()); });
    return *info_;
  }

 private:
  mutable std::once_flag info_once_;
  mutable std::unique_ptr<CallInfo> info_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool waiting_ = false;
  bool done_ = false;
  // value_ has been set (it may have been taken since): read without the lock
  // while WaitFor watches.
  std::atomic<bool> ready_{false};
  std::optional<absl::StatusOr<T>> value_;
  Callback callback_;
};

}  // namespace internal

template <class T>
class Future;

template <class T>
class Promise {
 public:
  Promise() : state_(std::make_shared<internal::FutureState<T>>()) {}
  Promise(Promise&&) noexcept = default;
  Promise& operator=(Promise&&) noexcept = default;
  Promise(const Promise&) = delete;
  Promise& operator=(const Promise&) = delete;
  // A promise dropped without a value resolves its future with Cancelled, so
  // no caller waits forever.
  ~Promise() {
    if (state_) state_->Set(absl::CancelledError("promise dropped without a result"));
  }

  // Resolves the future; later calls are ignored.
  void Set(absl::StatusOr<T> value) {
    if (state_) {
      auto state = std::move(state_);
      state->Set(std::move(value));
    }
  }
  bool valid() const { return state_ != nullptr; }
  Future<T> GetFuture() { return Future<T>(state_); }

 private:
  friend class Node;
  internal::CallIds& ids() { return state_->ids; }

  std::shared_ptr<internal::FutureState<T>> state_;
};

template <class T>
class Future {
 public:
  Future() = default;
  explicit Future(std::shared_ptr<internal::FutureState<T>> state) : state_(std::move(state)) {}

  // A future that is already resolved.
  static Future Ready(absl::StatusOr<T> value) {
    Promise<T> p;
    Future f = p.GetFuture();
    p.Set(std::move(value));
    return f;
  }

  bool valid() const { return state_ != nullptr; }
  bool ready() const { return state_ && state_->Ready(); }
  const CallInfo& info() const { return state_->info(); }

  // Registers the continuation. It runs exactly once, on the resolving thread
  // or inline if already resolved. Consumes the future.
  template <class F>
  void Then(F&& fn) && {
    auto state = std::move(state_);
    state->Then(std::forward<F>(fn));
  }

  // Blocks until resolved. Consumes the result.
  absl::StatusOr<T> Get() && {
    auto r = state_->WaitFor(absl::InfiniteDuration());
    state_.reset();
    return std::move(*r);
  }
  // Blocks at most `timeout`; DeadlineExceeded if still pending (the call
  // itself goes on and its result is dropped).
  absl::StatusOr<T> GetFor(absl::Duration timeout) && {
    auto r = state_->WaitFor(timeout);
    if (!r) return absl::DeadlineExceededError("Future::GetFor: no result within the wait");
    state_.reset();
    return std::move(*r);
  }

 private:
  std::shared_ptr<internal::FutureState<T>> state_;
};

template <class T>
std::pair<Promise<T>, Future<T>> MakePromise() {
  Promise<T> p;
  Future<T> f = p.GetFuture();
  return {std::move(p), std::move(f)};
}

}  // namespace switchboard

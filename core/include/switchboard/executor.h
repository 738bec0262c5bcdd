// executor.h: where handler code runs.
//
// An `Executor` runs closures on a bounded set of threads; Switchboard never
// creates a thread per call or per message. `ThreadPool` is the default.
//
// Thread safety: Post() may be called from any thread, including from inside
// a running task.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"

namespace switchboard {

class Executor {
 public:
  using Task = absl::AnyInvocable<void() &&>;
  virtual ~Executor() = default;
  // Runs `task` soon on one of the executor's threads. After Shutdown() tasks
  // are dropped (and destroyed on the calling thread).
  virtual void Post(Task task) = 0;
  virtual size_t thread_count() const = 0;
};

// A fixed-size pool with one shared FIFO queue.
//
// A worker that finds the queue empty watches it for up to `idle_spin`
// before it sleeps, yielding its CPU to any other runnable thread while it
// watches; at most half the workers (at least one) watch at a time. A task
// posted while a worker watches is taken without waking a sleeping thread,
// which on a virtual machine costs tens of microseconds of CPU.
// `idle_spin` = zero turns the watching off.
class ThreadPool final : public Executor {
 public:
  static constexpr absl::Duration kDefaultIdleSpin = absl::Microseconds(50);

  // `threads` <= 0 means hardware concurrency (at least 2).
  explicit ThreadPool(int threads, std::string_view name = "sb-worker",
                      absl::Duration idle_spin = kDefaultIdleSpin);
  // Runs the tasks already queued, then joins the threads.
  ~ThreadPool() override;

  void Post(Task task) override;
  size_t thread_count() const override { return threads_.size(); }
  // Stops accepting tasks, drains the queue and joins. Idempotent.
  void Shutdown();
  // Tasks queued and not yet started.
  size_t queued() const;

 private:
  void Loop();
  // Watches the queue for up to idle_spin_; true when a task showed up or
  // the pool is stopping.
  bool WatchQueue();

  // std::mutex, not absl::Mutex: a post must choose whether to wake a
  // sleeping worker (not when a watching one will take the task).
  // Guards tasks_, stopping_, watching_ and sleeping_.
  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Task> tasks_;
  bool stopping_ = false;
  int watching_ = 0;  // workers watching the queue
  int sleeping_ = 0;  // workers waiting on wake_
  // tasks_.size() and stopping_, readable without the lock by a watching
  // worker.
  std::atomic<size_t> queued_{0};
  std::atomic<bool> stop_requested_{false};
  const int64_t idle_spin_ns_;
  int max_watching_ = 1;
  std::vector<std::thread> threads_;
};

// Runs tasks inline on the posting thread. For tests only.
class InlineExecutor final : public Executor {
 public:
  void Post(Task task) override { std::move(task)(); }
  size_t thread_count() const override { return 0; }
};

}  // namespace switchboard

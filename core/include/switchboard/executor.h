// executor.h: where handler code runs.
//
// An `Executor` runs closures on a bounded set of threads; Switchboard never
// creates a thread per call or per message. `ThreadPool` is the default.
//
// Thread safety: Post() may be called from any thread, including from inside
// a running task.
#pragma once

#include <cstddef>
#include <deque>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"
#include "absl/synchronization/mutex.h"

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
class ThreadPool final : public Executor {
 public:
  // `threads` <= 0 means hardware concurrency (at least 2).
  explicit ThreadPool(int threads, std::string_view name = "sb-worker");
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

  mutable absl::Mutex mu_;
  std::deque<Task> tasks_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

// Runs tasks inline on the posting thread. For tests only.
class InlineExecutor final : public Executor {
 public:
  void Post(Task task) override { std::move(task)(); }
  size_t thread_count() const override { return 0; }
};

}  // namespace switchboard

#include "switchboard/executor.h"

#include <pthread.h>

#include <string>

#include "switchboard/internal/idle_watch.h"

namespace switchboard {

ThreadPool::ThreadPool(int threads, std::string_view name, absl::Duration idle_spin)
    : idle_spin_ns_(idle_spin > absl::ZeroDuration() ? absl::ToInt64Nanoseconds(idle_spin) : 0) {
  if (threads <= 0) {
    threads = static_cast<int>(std::thread::hardware_concurrency());
    if (threads < 2) threads = 2;
  }
  max_watching_ = threads / 2 > 0 ? threads / 2 : 1;
  std::string thread_name(name.substr(0, 15));
  threads_.reserve(threads);
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this] { Loop(); });
    pthread_setname_np(threads_.back().native_handle(), thread_name.c_str());
  }
}

ThreadPool::~ThreadPool() { Shutdown(); }

void ThreadPool::Post(Task task) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!stopping_) {
      tasks_.push_back(std::move(task));
      queued_.store(tasks_.size(), std::memory_order_release);
      // A watching worker takes the task; wake a sleeper only for the tasks
      // the watchers cannot take.
      if (sleeping_ > 0 && tasks_.size() > static_cast<size_t>(watching_)) wake_.notify_one();
      return;
    }
  }
  // Dropped after shutdown: destroyed here, outside the lock.
}

void ThreadPool::Shutdown() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stopping_ = true;
    stop_requested_.store(true, std::memory_order_release);
    wake_.notify_all();
  }
  for (auto& t : threads_) {
    if (t.joinable() && t.get_id() != std::this_thread::get_id()) t.join();
  }
}

size_t ThreadPool::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return tasks_.size();
}

bool ThreadPool::WatchQueue() {
  return internal::WatchBeforeSleeping(
      idle_spin_ns_, [this] {
        return queued_.load(std::memory_order_acquire) > 0 ||
               stop_requested_.load(std::memory_order_acquire);
      });
}

void ThreadPool::Loop() {
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    if (tasks_.empty() && !stopping_ && idle_spin_ns_ > 0 && watching_ < max_watching_) {
      ++watching_;
      lock.unlock();
      WatchQueue();
      lock.lock();
      --watching_;
    }
    while (tasks_.empty() && !stopping_) {
      ++sleeping_;
      wake_.wait(lock);
      --sleeping_;
    }
    if (tasks_.empty()) return;  // stopping and drained
    Task task = std::move(tasks_.front());
    tasks_.pop_front();
    queued_.store(tasks_.size(), std::memory_order_release);
    // More queued than the awake workers will take: wake another.
    if (!tasks_.empty() && sleeping_ > 0 && tasks_.size() > static_cast<size_t>(watching_)) {
      wake_.notify_one();
    }
    lock.unlock();
    std::move(task)();
    lock.lock();
  }
}

}  // namespace switchboard

// futex.hpp — a bell a thread can sleep on, rung by other threads (Linux futex).
//
// Why not std::condition_variable: a waiter woken from a condition variable must take
// the mutex again before it can return, and the thread that woke it usually still holds
// it, so a hand-off costs a second sleep and wake ("hurry up and wait"). With a bell the
// waker publishes the result in atomics first, and the woken thread returns without the
// lock. The waker may ring after unlocking, even after the sleeper has gone: FUTEX_WAKE
// only uses the address, and a sleeper at a reused address sees a spurious wake-up,
// which every sleeper here tolerates (it re-checks its state).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

#if !defined(__linux__)
#error "poolbench's pool uses Linux futexes (lib/src/futex.hpp)"
#endif

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <ctime>

namespace poolbench::internal {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t) &&
                  std::atomic<std::uint32_t>::is_always_lock_free,
              "a futex word must be a plain 32-bit atomic");

/// Thread-safety: any thread may ring(); one thread at a time sleeps in wait_until().
class Bell {
public:
    /// The value to pass to wait_until(); read it before releasing whatever lock guards
    /// the condition the sleeper waits for, so a ring after that is never missed.
    [[nodiscard]] std::uint32_t seen() const noexcept { return word_.load(std::memory_order_acquire); }

    /// Marks the bell rung; wake() then wakes the sleeper. Split so the (system call)
    /// wake can happen after the waker has released its lock. mark() writes the bell, so
    /// call it BEFORE publishing whatever lets the sleeper return without the lock: the
    /// sleeper may wake early, see the result and reuse the memory the bell lives in.
    std::uint32_t* mark() noexcept {
        word_.fetch_add(1, std::memory_order_release);
        return address();
    }

    static void wake(std::uint32_t* address) noexcept {
        (void)::syscall(SYS_futex, address, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
    }

    void ring() noexcept { wake(mark()); }

    /// Sleeps until rung after `seen`, until `deadline` (CLOCK_MONOTONIC, the clock of
    /// std::chrono::steady_clock on Linux), or spuriously. Callers re-check their state.
    void wait_until(std::uint32_t seen, std::chrono::steady_clock::time_point deadline) noexcept {
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count();
        if (ns <= 0) return;
        timespec ts{};
        ts.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
        ts.tv_nsec = static_cast<long>(ns % 1'000'000'000);
        (void)::syscall(SYS_futex, address(), FUTEX_WAIT_BITSET_PRIVATE, seen, &ts, nullptr,
                        FUTEX_BITSET_MATCH_ANY);
    }

private:
    std::uint32_t* address() noexcept { return reinterpret_cast<std::uint32_t*>(&word_); }

    std::atomic<std::uint32_t> word_{0};
};

}  // namespace poolbench::internal

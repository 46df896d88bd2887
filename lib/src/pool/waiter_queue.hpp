// pool/waiter_queue.hpp — threads queued for a connection, and the rule for who gets a
// returned one: bounded barging.
//
// While threads are queued, a running thread may still take an idle connection (as in
// HikariCP and Go's sync.Mutex "normal mode"): handing every returned connection to a
// sleeping waiter costs a context switch per operation and halves throughput under
// contention. A release then only wakes the front waiter to compete for it. Once the front
// waiter has waited `starvation_threshold`, the pool turns strict: running threads queue
// behind it and the next returned connection is handed straight to it. So barging is
// bounded by the threshold, and the queue itself is first come, first served.
//
// A waiter that woke to look and lost to running threads is "passed over": releases stop
// waking it (each wake would be a futile context switch) until it starts starving.
//
// FrontSignals is what lock-free paths read (is the front starving? is a wake already on
// its way?); WaiterQueue is the list itself, changed only under the pool's mutex, which
// keeps FrontSignals in step with the front.
//
// Thread-safety: FrontSignals may be used from any number of threads at once. WaiterQueue
// is not thread-safe: its owner serialises every call (the pool holds its mutex). A
// Waiter's fields other than `outcome` and `bell` belong to the queue's owner.
#pragma once

#include "../futex.hpp"

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace poolbench::internal {

/// A thread queued for a connection, on its own stack.
struct Waiter {
    enum class Outcome { waiting, handed, permit, closed, circuit_open };
    Bell bell;
    Waiter* next = nullptr;
    Waiter* prev = nullptr;
    std::int64_t since_ns = 0;  // when it queued
    std::atomic<Outcome> outcome{Outcome::waiting};
    std::uint32_t slot = 0;
    std::uint32_t word = 0;     // the lease word, when handed
    bool notified = false;      // woken to look for an idle connection
    bool passed_over = false;   // woke to look and found running threads had taken it all
    bool looked_at_threshold = false;

    /// Marks the bell and sets the final outcome; the caller wakes the returned address
    /// (Bell::wake), under the owner's lock or after releasing it. The outcome store is the
    /// last write to *this: a waiter that wakes early and sees `handed` returns without the
    /// lock, and its stack frame is reused at once. Marking first loses nothing: a waiter
    /// that sees the mark but not yet the outcome takes the lock, which we hold.
    std::uint32_t* settle(Outcome o) noexcept {
        std::uint32_t* const address = bell.mark();
        outcome.store(o, std::memory_order_release);
        return address;
    }
};

class FrontSignals {
public:
    explicit FrontSignals(std::int64_t starvation_ns) noexcept : starvation_ns_(starvation_ns < 1 ? 1 : starvation_ns) {}

    [[nodiscard]] std::int64_t starvation_ns() const noexcept { return starvation_ns_; }

    /// The front waiter has waited past the threshold as of `now`: hand-offs are strict.
    [[nodiscard]] bool starving(std::int64_t now) const noexcept {
        const std::int64_t since = front_since_ns_.load(std::memory_order_relaxed);
        return since != 0 && now - since >= starvation_ns_;
    }

    enum class OnRelease { nothing, wake_front, hand_off };
    /// For a thread that just made a connection idle while someone is in the slow path:
    /// hand it to a starving front waiter, wake the front waiter to compete for it (once:
    /// this claims the pending wake), or leave it to running threads.
    OnRelease after_release(std::int64_t now) noexcept {
        if (starving(now)) return OnRelease::hand_off;
        if (!front_passed_over_.load(std::memory_order_seq_cst) && !wake_pending_.load(std::memory_order_seq_cst) &&
            !wake_pending_.exchange(true, std::memory_order_seq_cst))
            return OnRelease::wake_front;
        return OnRelease::nothing;
    }

    /// A wake claimed by after_release() found nobody to wake, or the woken waiter looked.
    void clear_wake_pending() noexcept { wake_pending_.store(false, std::memory_order_seq_cst); }

private:
    friend class WaiterQueue;
    const std::int64_t starvation_ns_;
    std::atomic<std::int64_t> front_since_ns_{0};  // when the front waiter queued (0: nobody)
    std::atomic<bool> wake_pending_{false};        // the front waiter was woken and has not looked yet
    std::atomic<bool> front_passed_over_{false};   // the front waiter is passed over
};

class WaiterQueue {
public:
    explicit WaiterQueue(FrontSignals& signals) noexcept : signals_(signals) {}
    WaiterQueue(const WaiterQueue&) = delete;
    WaiterQueue& operator=(const WaiterQueue&) = delete;

    [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] bool is_front(const Waiter& w) const noexcept { return head_ == &w; }

    void push_back(Waiter& w) noexcept;
    /// Removes `w`; if it had been woken to look, the next release may wake the new front.
    void unlink(Waiter& w) noexcept;
    Waiter* pop_front() noexcept;

    /// Under the owner's lock, after a release claimed a wake: marks the front waiter
    /// woken and returns its bell (ring it after unlocking), or nullptr.
    std::uint32_t* notify_front() noexcept;
    /// Something is idle: wake the front waiter to look, unless it already was.
    void ring_front() noexcept;
    /// As ring_front(), but returns the bell to ring after unlocking (nullptr: none).
    [[nodiscard]] std::uint32_t* wake_front_to_look() noexcept;
    /// The front waiter gets connection (slot, word); returns the bell to ring.
    std::uint32_t* hand_to_front(std::uint32_t slot, std::uint32_t word) noexcept;
    /// The front waiter may open a connection into `slot`; returns the bell to ring.
    std::uint32_t* permit_front(std::uint32_t slot) noexcept;
    /// Every waiter leaves with `outcome` (shutdown, circuit open); rings them all.
    void fail_all(Waiter::Outcome outcome) noexcept;

    /// `w` woke and is about to look for an idle connection. Returns whether a release had
    /// woken it for that (clearing the flag first, so a release after the look wakes it again).
    bool begin_look(Waiter& w) noexcept;
    /// `w` looked after a release woke it and found nothing: stop waking it on releases.
    void pass_over(Waiter& w) noexcept;
    /// `w` reached the starvation threshold: releases wake it (and soon hand to it) again.
    void starving_now(Waiter& w) noexcept;

private:
    FrontSignals& signals_;
    Waiter* head_ = nullptr;
    Waiter* tail_ = nullptr;
    std::size_t size_ = 0;
};

}  // namespace poolbench::internal

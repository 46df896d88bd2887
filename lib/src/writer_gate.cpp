// writer_gate.cpp — a FIFO turn for writers: each waiter sleeps on its own futex bell
// and the releasing writer hands the turn straight to the front of the queue, so no
// newcomer can barge in between and nobody is woken for nothing. The granted writer
// returns without taking the gate's mutex again (see futex.hpp).
#include "poolbench/writer_gate.hpp"

#include "futex.hpp"
#include "poolbench/error.hpp"

#include <algorithm>
#include <atomic>

namespace poolbench {

// On the waiting thread's stack; next/prev guarded by mutex_. `granted` is set under
// mutex_ and read by the sleeper without it.
struct WriterGate::Waiter {
    internal::Bell bell;
    Waiter* next = nullptr;
    Waiter* prev = nullptr;
    std::atomic<bool> granted{false};
};

Lease& WriteLease::lease() & {
    if (gate_ == nullptr) throw UsageError("WriteLease is empty (moved from or released); acquire one from a WriterGate");
    return lease_;
}

void WriteLease::release() noexcept {
    if (gate_ == nullptr) return;
    // Ordering: the connection goes back first, so the writer we hand the turn to finds it
    // idle in the pool instead of opening another one or waiting.
    lease_.release();
    WriterGate* gate = gate_;
    gate_ = nullptr;
    gate->give_turn();
}

WriterGate::WriterGate(std::string name) : name_(std::move(name)) {}

WriteLease WriterGate::acquire(Pool& pool) { return acquire(pool, pool.config().acquire_timeout); }

WriteLease WriterGate::acquire(Pool& pool, std::chrono::milliseconds timeout) {
    // One deadline for the turn and the lease together: waiting for one cannot restart the
    // timeout of the other.
    const auto start = std::chrono::steady_clock::now();
    const auto deadline = start + timeout;
    take_turn(deadline, pool);
    try {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        Lease lease = pool.acquire(std::max(left, std::chrono::milliseconds{0}));
        return WriteLease(this, std::move(lease));
    } catch (...) {
        give_turn();
        throw;
    }
}

void WriterGate::take_turn(std::chrono::steady_clock::time_point deadline, const Pool& pool) {
    internal::MutexLock lock(mutex_);
    if (!held_ && head_ == nullptr) {
        held_ = true;
        ++turns_;
        return;
    }
    Waiter w;
    w.prev = tail_;
    if (tail_ != nullptr) tail_->next = &w;
    else head_ = &w;
    tail_ = &w;
    ++queued_;
    ++waits_;
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
        const std::uint32_t seen = w.bell.seen();
        lock.unlock();
        w.bell.wait_until(seen, deadline);
        // give_turn() unlinked us, counted the turn and left held_ set: the turn is ours.
        if (w.granted.load(std::memory_order_acquire)) return;
        lock.lock();
        if (w.granted.load(std::memory_order_relaxed)) return;
        if (std::chrono::steady_clock::now() >= deadline) break;
    }
    // Timed out while still queued: leave the queue; nobody waits on us.
    if (w.prev != nullptr) w.prev->next = w.next;
    else head_ = w.next;
    if (w.next != nullptr) w.next->prev = w.prev;
    else tail_ = w.prev;
    --queued_;
    const auto waited =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    const std::size_t queued = queued_;
    lock.unlock();
    throw PoolTimeout("writer gate '" + name_ + "' (pool '" + pool.config().name + "'): timed out after " +
                          std::to_string(waited.count()) + " ms waiting for the write turn (1 writer holds it, " +
                          std::to_string(queued) +
                          " others queued); writers are holding it too long (keep write transactions short) "
                          "or raise the timeout",
                      waited, 1, 1, queued);
}

void WriterGate::give_turn() noexcept {
    std::uint32_t* bell = nullptr;
    {
        internal::MutexLock lock(mutex_);
        Waiter* w = head_;
        if (w == nullptr) {
            held_ = false;
            return;
        }
        // Hand-off: held_ stays true, so nobody arriving now can take the turn first.
        head_ = w->next;
        if (head_ != nullptr) head_->prev = nullptr;
        else tail_ = nullptr;
        --queued_;
        ++turns_;
        // `granted` is the last write to *w: a writer that wakes early and sees it returns
        // without the mutex, and its stack frame is reused at once.
        bell = w->bell.mark();
        w->granted.store(true, std::memory_order_release);
    }
    // After unlocking, so the writer does not wake into a held mutex. It may already have
    // returned (it saw `granted`): waking a stale address is harmless (futex.hpp).
    internal::Bell::wake(bell);
}

std::size_t WriterGate::waiting() const {
    internal::MutexLock lock(mutex_);
    return queued_;
}

std::uint64_t WriterGate::turns() const {
    internal::MutexLock lock(mutex_);
    return turns_;
}

std::uint64_t WriterGate::waits() const {
    internal::MutexLock lock(mutex_);
    return waits_;
}

}  // namespace poolbench

// writer_gate.cpp — a FIFO turn for writers: each waiter sleeps on its own condition
// variable and the releasing writer hands the turn straight to the front of the queue, so
// no newcomer can barge in between and nobody is woken for nothing.
#include "poolbench/writer_gate.hpp"

#include "poolbench/error.hpp"

#include <algorithm>

namespace poolbench {

struct WriterGate::Waiter {
    std::condition_variable cv;
    Waiter* next = nullptr;
    Waiter* prev = nullptr;
    bool granted = false;
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
    std::unique_lock lock(mutex_);
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
    const bool granted = w.cv.wait_until(lock, deadline, [&w] { return w.granted; });
    if (granted) {
        ++turns_;
        return;  // give_turn() unlinked us and left held_ set: the turn is ours
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
    std::lock_guard lock(mutex_);
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
    w->granted = true;
    // Notify under the lock: once we unlock, the waiter may return and destroy `w`.
    w->cv.notify_one();
}

std::size_t WriterGate::waiting() const {
    std::lock_guard lock(mutex_);
    return queued_;
}

std::uint64_t WriterGate::turns() const {
    std::lock_guard lock(mutex_);
    return turns_;
}

std::uint64_t WriterGate::waits() const {
    std::lock_guard lock(mutex_);
    return waits_;
}

}  // namespace poolbench

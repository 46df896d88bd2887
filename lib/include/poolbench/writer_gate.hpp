// poolbench/writer_gate.hpp — one writer at a time, first come first served (SQLite).
//
// When to use it. SQLite allows one writer per database file. With many threads writing
// to one file through a pool, writers collide: an IMMEDIATE (or EXCLUSIVE) BEGIN waits in
// SQLite's busy handler, which sleeps and polls — unfair (a newcomer can grab the lock
// between a sleeper's polls, so some writers starve until busy_timeout expires and they
// fail with SQLITE_BUSY) and slow under contention (the lock sits free while sleepers
// sleep); a DEFERRED transaction that reads and then writes fails its lock upgrade with
// SQLITE_BUSY at once, whatever busy_timeout says. A WriterGate queues writers in the
// process instead: each waits on its own condition variable and the gate hands the turn
// straight to the longest waiter, so the file lock is never contended within the process
// and no writer starves. Readers do not go through the gate (in WAL mode they never block
// a writer or each other): they acquire from the pool directly.
//
// It does not help across processes (they still meet in SQLite's locks: keep a
// busy_timeout and retries for that), and it is unnecessary on PostgreSQL, which has
// row-level locks and many concurrent writers. Use one gate per database file, shared by
// every writer of that file in the process.
//
// Usage:
//     poolbench::WriterGate gate("orders.db");
//     {
//         poolbench::WriteLease w = gate.acquire(pool, std::chrono::seconds(5));
//         poolbench::Transaction tx(w.lease(), pool, {.sqlite_mode = poolbench::SqliteMode::immediate});
//         tx.execute("INSERT INTO orders ...");
//         tx.commit();
//     }   // the connection goes back to the pool, then the next writer gets the gate
//     // or: run_in_transaction(pool, options, body, RetryPolicy{}, &gate);
//
// Thread-safety: WriterGate::acquire() may be called from any number of threads at once;
// waiters are served strictly in arrival order (a writer arriving while others wait
// queues behind them; a waiter that times out leaves the queue without holding anyone
// up). A WriterGate must outlive every WriteLease it handed out and must not be destroyed
// while threads wait in acquire(). A WriteLease, like a Lease, is used by one thread at a
// time and may be moved to another thread; a moved-from or released WriteLease is empty
// (operator bool is false, using it throws UsageError); release() is idempotent and never
// throws.
#pragma once

#include "poolbench/connection.hpp"
#include "poolbench/internal/mutex.hpp"
#include "poolbench/pool.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace poolbench {

class WriterGate;

/// A write turn at a WriterGate plus a Lease from the pool; releases the lease first, then
/// the turn (so the next writer finds the connection back in the pool).
class WriteLease {
public:
    WriteLease() noexcept = default;
    WriteLease(const WriteLease&) = delete;
    WriteLease& operator=(const WriteLease&) = delete;
    WriteLease(WriteLease&& other) noexcept : gate_(other.gate_), lease_(std::move(other.lease_)) {
        other.gate_ = nullptr;
    }
    WriteLease& operator=(WriteLease&& other) noexcept {
        if (this != &other) {
            release();
            gate_ = other.gate_;
            lease_ = std::move(other.lease_);
            other.gate_ = nullptr;
        }
        return *this;
    }
    ~WriteLease() { release(); }

    // Named objects only, as with Lease. Throw UsageError on an empty WriteLease.
    Connection& operator*() & { return lease().connection(); }
    Connection* operator->() & { return &lease().connection(); }
    Connection& connection() & { return lease().connection(); }
    Lease& lease() &;
    Connection& operator*() && = delete;
    Connection* operator->() && = delete;
    Connection& connection() && = delete;
    Lease& lease() && = delete;

    [[nodiscard]] explicit operator bool() const noexcept { return gate_ != nullptr; }

    /// Returns the connection, then the turn. Idempotent; never throws.
    void release() noexcept;

private:
    friend class WriterGate;
    WriteLease(WriterGate* gate, Lease lease) noexcept : gate_(gate), lease_(std::move(lease)) {}

    WriterGate* gate_ = nullptr;
    Lease lease_;
};

class WriterGate {
public:
    explicit WriterGate(std::string name = "writer-gate");
    WriterGate(const WriterGate&) = delete;
    WriterGate& operator=(const WriterGate&) = delete;
    ~WriterGate() = default;

    /// Waits for the write turn (in arrival order), then acquires a lease from `pool`, all
    /// within `timeout` (default: the pool's acquire_timeout). Throws PoolTimeout naming the
    /// gate when the turn does not come in time; the pool's own PoolTimeout, PoolClosed or
    /// ConnectError when the lease cannot be had (the turn is given back first).
    [[nodiscard]] WriteLease acquire(Pool& pool);
    [[nodiscard]] WriteLease acquire(Pool& pool, std::chrono::milliseconds timeout);

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    /// Threads queued for the turn now (a moment old by the time you read it).
    [[nodiscard]] std::size_t waiting() const;
    /// Turns granted since the gate was made, and how many of them had to queue.
    [[nodiscard]] std::uint64_t turns() const;
    [[nodiscard]] std::uint64_t waits() const;

private:
    friend class WriteLease;
    struct Waiter;

    /// Blocks until this thread holds the turn or `deadline` passes (then throws).
    void take_turn(std::chrono::steady_clock::time_point deadline, const Pool& pool) POOLBENCH_EXCLUDES(mutex_);
    /// Hands the turn to the front waiter, or frees it. Never throws.
    void give_turn() noexcept POOLBENCH_EXCLUDES(mutex_);

    std::string name_;
    mutable internal::Mutex mutex_;
    bool held_ POOLBENCH_GUARDED_BY(mutex_) = false;
    Waiter* head_ POOLBENCH_GUARDED_BY(mutex_) = nullptr;  // FIFO of queued writers
    Waiter* tail_ POOLBENCH_GUARDED_BY(mutex_) = nullptr;
    std::size_t queued_ POOLBENCH_GUARDED_BY(mutex_) = 0;
    std::uint64_t turns_ POOLBENCH_GUARDED_BY(mutex_) = 0;
    std::uint64_t waits_ POOLBENCH_GUARDED_BY(mutex_) = 0;
};

}  // namespace poolbench

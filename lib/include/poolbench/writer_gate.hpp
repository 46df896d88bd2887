// poolbench/writer_gate.hpp — one writer at a time, with a bounded wait (SQLite).
//
// When to use it. SQLite allows one writer per database file. With many threads writing
// to one file through a pool, writers collide: an IMMEDIATE (or EXCLUSIVE) BEGIN waits in
// SQLite's busy handler, which sleeps and polls — unfair (a newcomer can grab the lock
// between a sleeper's polls, so some writers starve until busy_timeout expires and they
// fail with SQLITE_BUSY) and slow under contention (the lock sits free while sleepers
// sleep); a DEFERRED transaction that reads and then writes fails its lock upgrade with
// SQLITE_BUSY at once, whatever busy_timeout says. A WriterGate queues writers in the
// process instead, so writers never contend for the file lock within the process and no
// writer waits longer than the bound below. Readers do not go through the gate (in WAL mode
// they do not block a writer, but for a moment: see "What it guarantees" below): they
// acquire from the pool directly.
//
// Who gets the turn (bounded barging; WriterGateOptions::starvation_threshold = T):
//   - Writers that have to wait queue, and are served in arrival order among themselves:
//     a queued writer is never overtaken by one that queued after it.
//   - A writer that is running when the turn is free takes it at once, even while others
//     are queued (barging) — unless the front writer has waited T. Releasing the turn only
//     wakes the front writer to compete for it; if it loses to a barging writer it is
//     "passed over": releases do not wake it again until it has waited T, but it looks
//     again by itself every max(T/8, 100 us), taking the turn if it is free. (Only the
//     front writer may take a free turn from the queue, so the writers behind it cannot
//     time out while a free turn waits for it for longer than that.)
//   - Once the front writer has waited T, the turn is handed straight to it on release
//     and arriving writers queue behind it; this lasts while the front writer has waited
//     T, so after a barging spell the writers queued during it are served in order.
//   - Bound: a writer that queues at time t is served by about t + T + the hold of the
//     writer holding the turn at t + T + the holds (and wake-ups) of the writers queued
//     ahead of it. Barging is allowed until t + T, so a writer that barges just before
//     t + T adds its whole hold time; from t + T on no one can barge past it. If the turn is
//     free and no barging writer comes, a passed-over front writer takes it within
//     max(T/8, 100 us).
//   - T = 0: strict first come, first served (every turn is handed to the front writer).
// Why: handing every turn to a sleeping thread costs a wake-up per write, which on a busy
// machine is more than the write (8 writers, strict hand-off: 0.41-0.60x of ungated). A running
// writer taking a free turn costs nothing; the threshold keeps that from starving anyone.
// (This is Go's sync.Mutex normal and starvation modes, as the pool uses them: see
// README, "SQLite writers, with and without WriterGate".)
//
// The WAL checkpoint (SQLite). SQLite runs the WAL auto-checkpoint (PASSIVE, two
// fdatasyncs) inside the COMMIT that takes the WAL past wal_autocheckpoint frames (N,
// default 1000), after releasing its write lock — so inside the turn, where it held up every
// queued writer (at 8 writers most of the gate's cost: gated ran at 0.57x of ungated, and at
// 1.1x with auto-checkpoints off). Under a turn (Connection::begin_write_turn()) a SQLite
// connection defers that checkpoint: the writer gives the turn back, then hands the checkpoint
// and its lease to the gate's own thread (started with the first one, joined by ~WriterGate;
// one checkpoint at a time: one due meanwhile is skipped, as SQLite's hook skips when another
// connection checkpoints, and the next commit past N asks again). Its lease returns to the
// pool when the checkpoint is done, a moment after the WriteLease was released (wait_idle()
// waits for that). A checkpoint that runs while others write cannot backfill the whole WAL,
// and SQLite restarts the WAL
// only when one has, so from 2N frames on the checkpoint runs inside the turn again if it can
// start (not while the gate's thread runs one), and from 4N frames on the writer holding the
// turn waits for the gate's thread first: the WAL never grows past 4N frames plus one commit
// while no reader holds an old snapshot (ungated, under sustained writes it grows without
// bound: 380-670 MB in 2 s of write_bench). Other backends have no
// such work (Connection::TurnWork::none): the lease goes back, then the turn.
//
// What it guarantees, and what it does not (SQLite). Within the process, no writer holds
// SQLite's write lock while another writer holds a turn. One other connection may still
// hold it for a moment: SQLite's own (walIndexReadHdr), where a connection that read the
// WAL index header while a commit was writing it takes the write lock to read it again —
// the gate's checkpoint thread (its PASSIVE checkpoint runs while the next writer commits)
// or any reader. A writer that takes the lock at BEGIN IMMEDIATE waits that out in SQLite's
// busy handler; a DEFERRED transaction that read first upgrades without one and failed at
// once with SQLITE_BUSY (writer-contention-sqlite: 1 in ~46,000 gated writes). So under a
// turn the SQLite connection runs such a statement again, waiting as the busy handler would,
// up to busy_timeout (sqlite_connection.cpp): a gated read-then-write gets no busy error from
// the process itself. SQLITE_BUSY_SNAPSHOT (someone committed since the transaction's read:
// another process, or a write outside the gate) still fails at once.
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
// queued writers are served in arrival order, with bounded barging as above (a waiter that
// times out leaves the queue without holding anyone up). Mutual exclusion: at most one
// WriteLease holds the turn at any time; the gate's checkpoint thread never holds it and
// only runs a checkpoint (PASSIVE: it never writes rows and never waits for a lock; it may
// hold SQLite's write lock for a moment, as any reader may: see "What it guarantees"). A
// WriterGate must outlive every WriteLease it handed out and must not be destroyed while
// threads wait in acquire(); its destructor waits for the checkpoint in hand. A WriteLease,
// like a Lease, is used by one thread at a time and may be moved to another thread; a
// moved-from or released WriteLease is empty (operator bool is false, using it throws
// UsageError); release() is idempotent and never throws (it may wait, holding the turn,
// for the gate's checkpoint thread, as above).
#pragma once

#include "poolbench/connection.hpp"
#include "poolbench/internal/mutex.hpp"
#include "poolbench/pool.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace poolbench {

class WriterGate;

namespace internal {
class GateTurns;
class GateCheckpointer;
}

/// How a WriterGate trades fairness for throughput (see the rules at the top of this file).
struct WriterGateOptions {
    /// T: once the front queued writer has waited this long, turns are handed to writers in
    /// arrival order and nobody may barge. Longer: more barging, so more writes per second,
    /// but a longer worst wait (about T plus a hold plus the queue ahead); 0: strict first come, first
    /// served (a wake-up per turn). Must be 0 to max_starvation_threshold (1 h).
    std::chrono::microseconds starvation_threshold{10'000};

    /// The largest starvation_threshold accepted: a queued writer may wait that long past
    /// others, and larger values would overflow the gate's nanosecond clock arithmetic.
    static constexpr std::chrono::microseconds max_starvation_threshold{3'600'000'000};

    /// Empty when valid, otherwise what is wrong (WriterGate's constructor throws it as a
    /// ConfigError).
    [[nodiscard]] std::string why_invalid() const;
};

/// A write turn at a WriterGate plus a Lease from the pool; releases the lease first, then
/// the turn (so the next writer finds the connection back in the pool) — unless a commit
/// left a WAL checkpoint to run after the turn (see "The WAL checkpoint" above).
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

    /// Returns the connection, then the turn (or the turn, then the connection through the
    /// gate's checkpoint thread: see above). Idempotent; never throws.
    void release() noexcept;

private:
    friend class WriterGate;
    WriteLease(WriterGate* gate, Lease lease) noexcept : gate_(gate), lease_(std::move(lease)) {}

    WriterGate* gate_ = nullptr;
    Lease lease_;
};

class WriterGate {
public:
    /// Throws ConfigError if `options` are invalid (WriterGateOptions::why_invalid()).
    explicit WriterGate(std::string name = "writer-gate", WriterGateOptions options = {});
    WriterGate(const WriterGate&) = delete;
    WriterGate& operator=(const WriterGate&) = delete;
    ~WriterGate();

    /// Waits for the write turn (see the rules above), then acquires a lease from `pool`, all
    /// within `timeout` (default: the pool's acquire_timeout). Throws PoolTimeout naming the
    /// gate when the turn does not come in time; the pool's own PoolTimeout, PoolClosed or
    /// ConnectError when the lease cannot be had (the turn is given back first).
    [[nodiscard]] WriteLease acquire(Pool& pool);
    [[nodiscard]] WriteLease acquire(Pool& pool, std::chrono::milliseconds timeout);

    [[nodiscard]] const std::string& name() const noexcept { return name_; }
    [[nodiscard]] const WriterGateOptions& options() const noexcept { return options_; }
    /// Threads queued for the turn now (a moment old by the time you read it).
    [[nodiscard]] std::size_t waiting() const;
    /// Turns granted since the gate was made; how many writers had to queue; how many turns
    /// were taken past queued writers (barging); how many were handed straight to a front
    /// writer that had waited starvation_threshold.
    [[nodiscard]] std::uint64_t turns() const;
    [[nodiscard]] std::uint64_t waits() const;
    [[nodiscard]] std::uint64_t barges() const;
    [[nodiscard]] std::uint64_t handoffs() const;
    /// Work turns left for after them (SQLite: WAL checkpoints) that the gate's helper
    /// thread ran, and that it skipped because it was running one already.
    [[nodiscard]] std::uint64_t checkpoints_run() const;
    [[nodiscard]] std::uint64_t checkpoints_skipped() const;
    /// Waits until the gate's thread has no job: the lease of the checkpoint in hand, if
    /// any, is back in the pool. Call it before reading the pool's stats (active) or
    /// shutting the pool down after the last write: a released WriteLease's lease may still
    /// be out for its checkpoint (see "The WAL checkpoint" above). Never throws.
    void wait_idle() const noexcept;

private:
    friend class WriteLease;

    /// Blocks until this thread holds the turn or `deadline` passes (then throws).
    void take_turn(std::chrono::steady_clock::time_point deadline, const Pool& pool) POOLBENCH_EXCLUDES(mutex_);
    /// Frees the turn (waking the front writer to compete) or hands it to a starving front
    /// writer. Never throws.
    void give_turn() noexcept POOLBENCH_EXCLUDES(mutex_);

    std::string name_;
    WriterGateOptions options_;
    mutable internal::Mutex mutex_;
    // The turn, the queue and the counters (lib/src/gate_turns.hpp); never null.
    const std::unique_ptr<internal::GateTurns> turns_ POOLBENCH_PT_GUARDED_BY(mutex_);
    // Runs the work a turn left for after it (SQLite's WAL checkpoint) off every writer's
    // path (lib/src/gate_checkpointer.hpp; its own lock); never null.
    const std::unique_ptr<internal::GateCheckpointer> checkpointer_;
};

}  // namespace poolbench

// gate_checkpointer.hpp — the WriterGate's helper thread: it runs the work a write turn
// left for after the turn (Connection::after_write_turn(); SQLite: the WAL checkpoint,
// with its fdatasyncs), so that no writer's acquire-to-release waits for it.
//
// Why a thread: inside the turn, the checkpoint stalled every queued writer (SQLite runs it
// inside COMMIT); run by the writer after giving the turn back, it no longer stalls the
// others, but that writer's own call took as long as two fdatasyncs, which on a disk other
// processes use took up to 150 ms while writers kept appending (perf trace).
//
// At most one job at a time: a lease offered while a job runs is released at once and its
// work skipped. For SQLite that is what SQLite's own hook does when another connection is
// checkpointing (its PASSIVE checkpoint returns BUSY): the next commit past the threshold
// asks again, so the WAL stays bounded as without a gate. The thread starts with the first
// job (a gate whose writers never leave work starts none); if it cannot be started, the job
// runs on the offering thread. The job's lease is held while it runs (the pool has one
// connection fewer meanwhile); leases outliving their pool stay valid (pool.hpp).
//
// wait_idle() is for work that must not overlap the job in hand (SQLite: a checkpoint that
// could not start while the thread's was running; the writer waits, holding its turn).
//
// A lease that leak reclaim revoked (Pool's leak_reclaim_after) is returned untouched: its
// connection is closed when it comes back, and using it would throw LeaseRevoked
// (turn_connection()).
//
// Thread-safety: offer() and wait_idle() may be called from any number of threads at once
// (the thread never waits for a writer or a turn, so a writer holding the turn may wait for
// it). The destructor
// runs the job in hand, then joins; it must not run concurrently with offer().
#pragma once

#include "poolbench/internal/mutex.hpp"
#include "poolbench/pool.hpp"

#include <condition_variable>
#include <cstdint>
#include <thread>

namespace poolbench::internal {

/// The connection of `lease` for the turn's brackets, or null when `lease` is empty or leak
/// reclaim revoked it (then nothing is owed: the pool closes it when it comes back). Never
/// throws, unlike Lease::connection().
[[nodiscard]] Connection* turn_connection(Lease& lease) noexcept;

class GateCheckpointer {
public:
    GateCheckpointer() = default;
    GateCheckpointer(const GateCheckpointer&) = delete;
    GateCheckpointer& operator=(const GateCheckpointer&) = delete;
    ~GateCheckpointer();

    /// Takes `lease` (whose connection's end_write_turn() said work is due): the thread
    /// runs after_write_turn() on it and releases it. If a job is running, releases `lease`
    /// at once instead. Never throws; `lease` is empty afterwards.
    void offer(Lease& lease) noexcept POOLBENCH_EXCLUDES(mu_);

    /// Returns once no job is handed over or running (at once if none is).
    void wait_idle() noexcept POOLBENCH_EXCLUDES(mu_);

    /// Jobs run, and jobs skipped because one was running (a moment old when read).
    [[nodiscard]] std::uint64_t ran() const POOLBENCH_EXCLUDES(mu_);
    [[nodiscard]] std::uint64_t skipped() const POOLBENCH_EXCLUDES(mu_);

private:
    void run() POOLBENCH_EXCLUDES(mu_);

    mutable Mutex mu_;
    std::condition_variable wake_;  // the thread: a job or stop
    std::condition_variable idle_;  // wait_idle(): the job in hand is done
    Lease job_ POOLBENCH_GUARDED_BY(mu_);  // handed to the thread, not yet taken
    bool busy_ POOLBENCH_GUARDED_BY(mu_) = false;  // a job is handed over or running
    bool stop_ POOLBENCH_GUARDED_BY(mu_) = false;
    std::uint64_t ran_ POOLBENCH_GUARDED_BY(mu_) = 0;
    std::uint64_t skipped_ POOLBENCH_GUARDED_BY(mu_) = 0;
    std::thread thread_ POOLBENCH_GUARDED_BY(mu_);
};

}  // namespace poolbench::internal

// runner_loop.hpp — the load loop itself: one operation, a worker, a phase, templated on
// a "Source" of connections. Internal to runner.cpp (the single-database sources: pooled,
// gated, unpooled) and runner_topology.cpp (a primary with replicas, shards); moved here
// unchanged from runner.cpp so both instantiate the same code. See runner.cpp for the
// per-operation cost rules.
//
// A Source has either open(write) / opened_ns / conn / close / invalidate (it hands the
// loop a connection), or, a "routed" source, run(workload, state, write) -> RoutedOp (it
// runs the whole operation itself, e.g. through ReplicaRouter::read, and says when the
// acquire and the statement ended). The choice is made at compile time: the plain sources'
// code is what it was.
//
// Thread-safety: as runner.hpp; a Source is shared by every worker of a phase.
#pragma once

#include "runner.hpp"
#include "runner_phase.hpp"

#include <poolbench/error.hpp>
#include <poolbench/internal/fast_clock.hpp>
#include <poolbench/stats.hpp>
#include <poolbench/writer_gate.hpp>

#include <fmt/format.h>

#include <sys/prctl.h>

#include <algorithm>
#include <concepts>
#include <random>
#include <thread>
#include <utility>

namespace poolbench::cli::runner_detail {

// Takes up to claim_batch operations from the --ops budget; 0 once it is spent.
inline std::uint64_t claim(Phase& ph) noexcept {
    const std::uint64_t limit = *ph.spec.ops;
    const std::uint64_t prev = ph.claimed.fetch_add(claim_batch, std::memory_order_relaxed);
    if (prev >= limit) return 0;
    return std::min(claim_batch, limit - prev);
}

// When the pool handed a lease out, on the fast clock: the acquire's end without a
// clock read of our own.
inline std::int64_t acquired_ns(const Lease& lease) noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(lease.acquired_at().time_since_epoch()).count();
}

// The acquire's end: the lease's own timestamp, unless the pool tracks leaks. The pool
// stamps a lease before recording its holder (a stack capture, ~1.5 us), and that is
// part of acquiring, not of the query that follows: then one clock read of our own.
inline std::int64_t acquire_end_ns(const Lease& lease, bool tracks_leaks) noexcept {
    return tracks_leaks ? internal::fast_clock::now_ns() : acquired_ns(lease);
}
inline bool tracks_leaks(const Pool& pool) noexcept { return pool.config().leak_threshold.count() > 0; }


/// What a routed source's run() measured: when the acquire ended (its first entry into the
/// operation's body) and the statements ended (fast clock ns), and whether it wrote.
struct RoutedOp {
    std::int64_t acquired_ns = 0, done_ns = 0;
    bool wrote = false;
};
template <class Source>
concept RoutedSource = requires(Source& s, const Workload& w, WorkerState& ws) {
    { s.run(w, ws, true) } -> std::same_as<RoutedOp>;
};

// A write behind a WriterGate takes the gate's turn and its lease; a read, a plain lease.
struct GatedHandle {
    WriteLease gated;
    Lease plain;
    Lease& lease() { return gated ? gated.lease() : plain; }
    void release() noexcept {
        if (gated) {
            gated.release();
        } else {
            plain.release();
        }
    }
};

// Counts a failed operation by its class (and its write as in doubt when its COMMIT got
// no answer), marks the outage probe, and backs off as a client would (woken at once when
// the phase stops). runner.cpp.
void failed_op(Phase& ph, Shard& shard, bool shared, const std::exception* e, std::int64_t started_ns,
               std::optional<WriteKey> in_doubt);

// One operation, begun at `t0` (fast clock ns). Returns when it ended, or 0 when it
// failed (the next one then reads the clock for its start).
template <class Source>
std::int64_t run_one_op(Phase& ph, Source& source, Shard& shard, bool shared, WorkerState& ws,
                        std::int64_t t0, std::uint64_t lag_ns) {
    namespace fc = internal::fast_clock;
    std::int64_t t1 = 0, t2 = 0, t3 = 0;
    bool wrote = false;
    try {
        const bool write = ph.workload.next_writes(ws);
        if constexpr (RoutedSource<Source>) {
            const RoutedOp r = source.run(ph.workload, ws, write);
            t1 = r.acquired_ns;
            t2 = r.done_ns;
            wrote = r.wrote;
        } else {
            auto handle = source.open(write);
            t1 = source.opened_ns(handle);
            try {
                wrote = ph.workload.run_op(Source::conn(handle), ws, write).wrote;
            } catch (const QueryError& e) {
                if (e.broken()) Source::invalidate(handle);
                throw;
            }
            t2 = fc::now_ns();
            Source::close(handle);
        }
        t3 = fc::now_ns();
    } catch (const std::exception& e) {
        const auto seq = std::exchange(ws.committing, std::nullopt);
        failed_op(ph, shard, shared, &e, t0,
                  seq && commit_in_doubt(e) ? std::optional(WriteKey{ws.worker, *seq}) : std::nullopt);
        return 0;
    } catch (...) {
        const auto seq = std::exchange(ws.committing, std::nullopt);
        failed_op(ph, shard, shared, nullptr, t0, seq ? std::optional(WriteKey{ws.worker, *seq}) : std::nullopt);
        return 0;
    }
    for_each_probe(ph.probe, [&](OutageProbe& p) { p.succeeded(t0); });
    // Paced: an operation's latency counts from when it was scheduled (pgbench --rate), so a
    // stall that delays the schedule shows in the latency instead of hiding in it.
    const std::uint64_t op_ns = ns_between(t0, t3) + lag_ns;
    const auto lock = record_lock(shard, shared);
    if (lag_ns >= late_after_ns) ++shard.late;
    shard.acquire.record_exclusive(ns_between(t0, t1));
    shard.query.record_exclusive(ns_between(t1, t2));
    shard.op.record_exclusive(op_ns);
    shard.ok.add();
    if (wrote) ++shard.writes;
    return t3;
}

template <class Source>
void worker_main(Phase& ph, Source& source, std::size_t index) {
    // Named before the first acquire: the pool records a thread's name with its leak
    // traces the first time that thread acquires.
    name_this_thread(fmt::format("pb-worker-{}", index));
    {
        std::unique_lock lock(ph.gate_mu);
        ph.gate_cv.wait(lock, [&] { return ph.go; });
    }
    const std::size_t shard_count = ph.shards.size();
    Shard& shard = *ph.shards[index % shard_count];
    const bool shared = index % shard_count + shard_count < ph.spec.threads;  // another worker records here too
    WorkerState ws = ph.workload.make_worker_state(static_cast<std::uint32_t>(index), ph.seed);
    const bool counted = ph.spec.ops.has_value();
    std::uint64_t budget = 0;

    // Pacing (soak --rate): each worker runs rate/threads ops per second, staggered so
    // the workers do not fire together; a worker that falls behind catches up at most 2 ms
    // of its backlog, and drops the rest rather than bursting.
    Clock::duration period{};
    Clock::time_point next = ph.start;
    if (ph.spec.rate_ops_s > 0) {
        // Paced sleeps are short: without this the kernel may add its default 50 us of
        // timer slack to each, which at high rates is what limits the rate.
        (void)::prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
        const double per_worker_s = static_cast<double>(ph.spec.threads) / ph.spec.rate_ops_s;
        period = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(per_worker_s));
        next += period * static_cast<long>(index + 1) / static_cast<long>(ph.spec.threads);
    }

    std::uint64_t lag_ns = 0;
    std::int64_t end_ns = 0;  // when the last operation ended (0: it failed, or the worker slept)
    while (!ph.stop.load(std::memory_order_relaxed)) {
        if (counted) {
            if (budget == 0 && (budget = claim(ph)) == 0) break;
            --budget;
        }
        if (period.count() > 0) {
            // Sleep only when ahead of schedule: the shared lock and the condition variable
            // cost microseconds, which at high rates would be what limits the rate.
            if (next > Clock::now()) {
                std::unique_lock lock(ph.pace_mu);
                if (ph.pace_cv.wait_until(lock, next, [&] { return ph.stop.load(std::memory_order_relaxed); })) break;
            }
            // Behind by a few milliseconds at most it catches up (sleeps overshoot); further
            // behind, it drops the backlog instead of bursting.
            const auto now = Clock::now();
            lag_ns = now > next ? static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(now - next).count())
                                : 0;
            next += period;
            const auto floor = now - std::chrono::milliseconds(2);
            if (next < floor) {
                // pgbench's "skipped": operations whose time passed while the worker was
                // held up are dropped, not sent in a burst.
                const auto dropped = static_cast<std::uint64_t>((floor - next) / period);
                if (dropped > 0) {
                    const auto lock = record_lock(shard, shared);
                    shard.skipped += dropped;
                }
                next = floor;
            }
            end_ns = 0;  // the schedule decided when this one starts: read the clock
        }
        // Unpaced, an operation starts when the previous one ended: one clock read less.
        const std::int64_t start_ns = end_ns != 0 ? end_ns : internal::fast_clock::now_ns();
        end_ns = run_one_op(ph, source, shard, shared, ws, start_ns, lag_ns);
    }
}

template <class Source>
LoadResult run_phase(Source source, std::vector<const Pool*> pools, const Workload& workload, const LoadSpec& spec,
                     const RunHooks& hooks) {
    LoadResult result;
    Phase ph(workload, spec, hooks.probe);
    const std::size_t threads = std::max<std::size_t>(spec.threads, 1);
    const std::size_t shard_count = std::min(threads, max_shards);
    ph.shards.reserve(shard_count);
    for (std::size_t i = 0; i < shard_count; ++i) ph.shards.push_back(std::make_unique<Shard>());
    ph.seed = std::random_device{}();

    std::vector<std::thread> workers;
    workers.reserve(threads);
    auto release_gate = [&] {
        {
            std::lock_guard lock(ph.gate_mu);
            ph.start = Clock::now();
            ph.go = true;
        }
        ph.gate_cv.notify_all();
    };
    try {
        for (std::size_t i = 0; i < threads; ++i) {
            {
                std::lock_guard lock(ph.done_mu);
                ++ph.running;
            }
            try {
                workers.emplace_back([&ph, &source, i] {
                    worker_main(ph, source, i);
                    {
                        std::lock_guard lock(ph.done_mu);
                        --ph.running;
                    }
                    ph.done_cv.notify_all();
                });
            } catch (...) {
                std::lock_guard lock(ph.done_mu);
                --ph.running;
                throw;
            }
        }
    } catch (...) {
        ph.stop = true;
        release_gate();
        for (auto& t : workers) t.join();
        throw;
    }

    auto stop_workers = [&] {
        {
            std::lock_guard lock(ph.pace_mu);
            ph.stop = true;
        }
        ph.pace_cv.notify_all();
        if (hooks.on_stop) hooks.on_stop();
    };
    release_gate();
    Sampler sampler(ph, std::move(pools), hooks, result);
    std::thread sampler_thread;
    try {
        if (hooks.on_start) hooks.on_start(ph.start);
        sampler_thread = std::thread([&sampler] { sampler.run(); });
    } catch (...) {
        // The workers are running: stop and join them before the error leaves.
        stop_workers();
        for (auto& t : workers) t.join();
        throw;
    }

    {
        const auto deadline = spec.duration ? ph.start + *spec.duration : Clock::time_point::max();
        std::unique_lock lock(ph.done_mu);
        while (ph.running > 0) {
            if (hooks.cancel != nullptr && hooks.cancel->load()) {
                result.cancelled = true;
                break;
            }
            const auto now = Clock::now();
            if (now >= deadline) break;
            // Wake at least every 100 ms to notice a cancel request.
            ph.done_cv.wait_until(lock, std::min(deadline, now + std::chrono::milliseconds{100}));
        }
    }
    stop_workers();
    for (auto& t : workers) t.join();
    const auto end = Clock::now();
    sampler.finish();
    sampler_thread.join();

    result.duration_s = seconds_between(ph.start, end);
    for (auto& shard : ph.shards) {
        shard->acquire.snapshot_into(result.acquire_ns);
        shard->query.snapshot_into(result.query_ns);
        shard->op.snapshot_into(result.op_ns);
        result.ops.ok += shard->ok.get();
        result.ops.failed += shard->failed.get();
        result.ops.timed_out += shard->timed_out.get();
        result.ops.statement_timeouts += shard->statement_timeouts.get();
        if (shard->failed_op) result.failed_ns.merge(*shard->failed_op);
        result.writes_acknowledged += shard->writes;
        result.writes_in_doubt.insert(result.writes_in_doubt.end(), shard->in_doubt.begin(), shard->in_doubt.end());
        result.late += shard->late;
        result.skipped += shard->skipped;
        for (std::size_t k = 0; k < result.errors_by_kind.size(); ++k) result.errors_by_kind[k] += shard->by_kind[k].get();
    }
    result.ops.total = result.ops.ok + result.ops.failed + result.ops.timed_out + result.ops.statement_timeouts;
    ph.errors.move_into(result);
    return result;
}


}  // namespace poolbench::cli::runner_detail

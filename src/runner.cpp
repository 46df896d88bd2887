// runner.cpp — the single-database sources of connections (pooled, behind a WriterGate,
// unpooled) and the entry points that run a phase through them. The loop itself (one
// operation, a worker, a phase) is in runner_loop.hpp, shared with runner_topology.cpp;
// what the workers and the sampler share is in runner_phase.hpp; the sampler itself in
// runner_sampler.cpp.
//
// Per-operation cost is kept small because it is part of what we measure: two reads of
// the library's TSC clock, after the statement and after the release (steady_clock's vDSO
// call costs ~25 ns here, the TSC about 10-20; an unpaced operation starts at the read
// that ended the one before, and its acquire ends at the lease's own timestamp), no
// locked instruction (each worker records into its own shard with plain loads and
// stores of relaxed atomics, which the sampler reads as they are; only beyond max_shards
// threads do workers share shards, and then a shard's mutex), and, for --ops runs, one
// atomic fetch_add per claim_batch operations. Failures take a shared lock, but only on
// the error path.
#include "runner.hpp"
#include "runner_loop.hpp"

#include <poolbench/error.hpp>
#include <poolbench/internal/atomic_histogram.hpp>
#include <poolbench/internal/fast_clock.hpp>
#include <poolbench/stats.hpp>
#include <poolbench/writer_gate.hpp>

#include <fmt/format.h>

#include <pthread.h>
#include <sys/prctl.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <condition_variable>
#include <mutex>
#include <random>
#include <system_error>
#include <thread>
#include <utility>

namespace poolbench::cli {

namespace runner_detail {

// Counts a failed operation by its class, marks the outage probe, and backs off as a
// client would (woken at once when the phase stops).
void failed_op(Phase& ph, Shard& shard, bool shared, const std::exception* e, std::int64_t started_ns,
               std::optional<WriteKey> in_doubt) {
    static const std::runtime_error unknown("unknown exception");
    const std::exception& error = e != nullptr ? *e : unknown;
    const ErrorKind kind = error_kind(error);
    ph.errors.note(error, kind);
    const std::int64_t now_ns = internal::fast_clock::now_ns();
    {
        const auto lock = record_lock(shard, shared);
        if (kind == ErrorKind::pool_timeout) {
            shard.timed_out.add();
        } else if (kind == ErrorKind::statement_timeout) {
            shard.statement_timeouts.add();
        } else {
            shard.failed.add();
        }
        shard.by_kind[static_cast<std::size_t>(kind)].add();
        if (in_doubt) shard.in_doubt.push_back(*in_doubt);
        if (!shard.failed_op) shard.failed_op = std::make_unique<Histogram>();
        shard.failed_op->record(ns_between(started_ns, now_ns));
    }
    for_each_probe(ph.probe, [&](OutageProbe& p) { p.failed(now_ns); });
    if (ph.spec.error_backoff.count() > 0) {
        std::unique_lock lock(ph.pace_mu);
        ph.pace_cv.wait_for(lock, ph.spec.error_backoff, [&] { return ph.stop.load(std::memory_order_relaxed); });
    }
}


}  // namespace runner_detail

namespace {

using namespace runner_detail;

// The plain pooled source: a lease per operation (the hot path, kept minimal).
struct PoolSource {
    Pool& pool;
    bool leaks_tracked;
    [[nodiscard]] Lease open(bool /*write*/) { return pool.acquire(); }
    [[nodiscard]] std::int64_t opened_ns(const Lease& lease) const noexcept { return acquire_end_ns(lease, leaks_tracked); }
    static Connection& conn(Lease& lease) { return *lease; }
    static void close(Lease& lease) noexcept { lease.release(); }
    static void invalidate(Lease& lease) noexcept { lease.invalidate(); }
};

struct GatedPoolSource {
    Pool& pool;
    WriterGate& gate;
    bool leaks_tracked;
    [[nodiscard]] GatedHandle open(bool write) {
        GatedHandle h;
        if (write) {
            h.gated = gate.acquire(pool);
        } else {
            h.plain = pool.acquire();
        }
        return h;
    }
    [[nodiscard]] std::int64_t opened_ns(GatedHandle& h) const { return acquire_end_ns(h.lease(), leaks_tracked); }
    static Connection& conn(GatedHandle& h) { return *h.lease(); }
    static void close(GatedHandle& h) noexcept { h.release(); }
    static void invalidate(GatedHandle& h) noexcept { h.lease().invalidate(); }
};

struct DriverSource {
    Driver& driver;
    std::chrono::milliseconds timeout;
    [[nodiscard]] std::unique_ptr<Connection> open(bool /*write*/) { return driver.connect(Clock::now() + timeout); }
    static std::int64_t opened_ns(const std::unique_ptr<Connection>& /*c*/) noexcept {
        return internal::fast_clock::now_ns();
    }
    static Connection& conn(std::unique_ptr<Connection>& c) { return *c; }
    static void close(std::unique_ptr<Connection>& c) noexcept { c.reset(); }
    static void invalidate(std::unique_ptr<Connection>& /*c*/) noexcept {}
};

}  // namespace

void name_this_thread(const std::string& name) noexcept {
    // The kernel keeps 15 bytes; a failure only loses the name in reports.
    const std::string truncated = name.substr(0, 15);
    (void)::pthread_setname_np(::pthread_self(), truncated.c_str());
}

LoadResult run_load(Pool& pool, const Workload& workload, const LoadSpec& spec, const RunHooks& hooks,
                    WriterGate* gate) {
    if (gate != nullptr) return run_phase(GatedPoolSource{pool, *gate, tracks_leaks(pool)}, {&pool}, workload, spec, hooks);
    return run_phase(PoolSource{pool, tracks_leaks(pool)}, {&pool}, workload, spec, hooks);
}

LoadResult run_load_unpooled(Driver& driver, const Workload& workload, const LoadSpec& spec,
                             const RunHooks& hooks) {
    return run_phase(DriverSource{driver, spec.connect_timeout}, {}, workload, spec, hooks);
}

LatencySet summarize(const LoadResult& result) {
    return {summarize_ns(result.acquire_ns), summarize_ns(result.query_ns), summarize_ns(result.op_ns),
            summarize_ns(result.failed_ns)};
}

}  // namespace poolbench::cli

// runner.cpp — worker threads, the sampler, and the stress plan built on them.
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

namespace {

using Clock = std::chrono::steady_clock;

// Each shard holds three ~45 KiB histograms (a fourth on the first failure). Up to this
// many threads every worker has its own and records without a lock.
constexpr std::size_t max_shards = 128;
constexpr std::size_t max_error_messages = 8;
constexpr std::uint64_t claim_batch = 4;
constexpr std::uint64_t late_after_ns = 1'000'000;  // a paced operation this far behind its schedule is late

/// Nanoseconds from a to b on the fast clock; 0 if a refinement moved it backwards.
std::uint64_t ns_between(std::int64_t a, std::int64_t b) noexcept {
    return b > a ? static_cast<std::uint64_t>(b - a) : 0;
}

double seconds_between(Clock::time_point a, Clock::time_point b) noexcept {
    return std::chrono::duration<double>(b - a).count();
}

// A count with one writer at a time (see Shard): a load and a store, no locked
// instruction; the sampler reads it as it is.
class Count {
public:
    void add(std::uint64_t n = 1) noexcept { v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
    [[nodiscard]] std::uint64_t get() const noexcept { return v_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> v_{0};
};

// What one worker measured (or, beyond max_shards threads, a group of workers, who then
// serialise their records with `mu`). Only the recording worker(s) write it, with
// record_exclusive and Count::add, so no record takes a locked instruction; the sampler
// reads `op` and the counts concurrently (relaxed atomics: a sample may see an
// operation's count a moment before its latency, or the reverse). The rest is read
// after the workers are joined.
struct alignas(64) Shard {
    std::mutex mu;  // only when workers share the shard
    internal::AtomicHistogram acquire, query, op;  // whole phase, ns; the sampler diffs `op`
    Count ok, failed, timed_out, statement_timeouts;
    std::array<Count, error_kind_count> by_kind{};  // failed + timed_out, by ErrorKind
    std::uint64_t writes = 0;
    std::uint64_t late = 0, skipped = 0;  // paced: began 1 ms+ after schedule; dropped from a backlog
    std::unique_ptr<Histogram> failed_op;  // start to error of failed operations; made on the first
};

// The shard's mutex, when its workers share it; nothing when the worker has it alone.
[[nodiscard]] std::unique_lock<std::mutex> record_lock(Shard& shard, bool shared) {
    return shared ? std::unique_lock(shard.mu) : std::unique_lock<std::mutex>();
}

// Errors grouped by class and code (ErrorKind, then SQLSTATE or SQLite code): messages
// that differ in timestamps, pids or counts are one group, whose first message is kept as
// its example. Error path only.
class ErrorLog {
public:
    void note(const std::exception& e, ErrorKind kind) {
        const auto* q = dynamic_cast<const QueryError*>(&e);
        std::string code = q != nullptr ? q->code() : std::string();
        std::lock_guard lock(mu_);
        for (auto& s : samples_) {
            if (s.kind == to_string(kind) && s.code == code) {
                ++s.count;
                return;
            }
        }
        if (samples_.size() < max_error_messages) {
            samples_.push_back({e.what(), 1, std::string(to_string(kind)), std::move(code)});
        } else {
            ++other_;
        }
    }
    void move_into(LoadResult& r) {
        std::lock_guard lock(mu_);
        std::stable_sort(samples_.begin(), samples_.end(),
                         [](const ErrorSample& a, const ErrorSample& b) { return a.count > b.count; });
        r.errors = std::move(samples_);
        r.errors_other = other_;
    }

private:
    std::mutex mu_;
    std::vector<ErrorSample> samples_;
    std::uint64_t other_ = 0;
};

struct Phase {
    Phase(const Workload& w, const LoadSpec& s, const std::atomic<OutageProbe*>* p) : workload(w), spec(s), probe(p) {}

    const Workload& workload;
    const LoadSpec& spec;
    const std::atomic<OutageProbe*>* probe;
    std::vector<std::unique_ptr<Shard>> shards;
    std::uint64_t seed = 0;
    ErrorLog errors;

    // On lines of their own: every worker reads `stop` once an operation; --ops runs
    // write `claimed` every claim_batch operations.
    alignas(64) std::atomic<std::uint64_t> claimed{0};
    alignas(64) std::atomic<bool> stop{false};

    // Start gate: workers wait here until every thread exists, so thread creation is
    // not part of the measured time.
    alignas(64) std::mutex gate_mu;
    std::condition_variable gate_cv;
    bool go = false;
    Clock::time_point start;

    // Paced workers sleep on this so stop wakes them at once.
    std::mutex pace_mu;
    std::condition_variable pace_cv;

    // The controller waits here for the last worker.
    std::mutex done_mu;
    std::condition_variable done_cv;
    std::size_t running = 0;
};

// Takes up to claim_batch operations from the --ops budget; 0 once it is spent.
std::uint64_t claim(Phase& ph) noexcept {
    const std::uint64_t limit = *ph.spec.ops;
    const std::uint64_t prev = ph.claimed.fetch_add(claim_batch, std::memory_order_relaxed);
    if (prev >= limit) return 0;
    return std::min(claim_batch, limit - prev);
}

// When the pool handed a lease out, on the fast clock: the acquire's end without a
// clock read of our own.
std::int64_t acquired_ns(const Lease& lease) noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(lease.acquired_at().time_since_epoch()).count();
}

// The acquire's end: the lease's own timestamp, unless the pool tracks leaks. The pool
// stamps a lease before recording its holder (a stack capture, ~1.5 us), and that is
// part of acquiring, not of the query that follows: then one clock read of our own.
std::int64_t acquire_end_ns(const Lease& lease, bool tracks_leaks) noexcept {
    return tracks_leaks ? internal::fast_clock::now_ns() : acquired_ns(lease);
}
bool tracks_leaks(const Pool& pool) noexcept { return pool.config().leak_threshold.count() > 0; }

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

// A write behind a WriterGate takes the gate's turn and its lease; a read, a plain lease.
struct GatedHandle {
    WriteLease gated;
    Lease plain;
    Lease& lease() { return gated ? gated.lease() : plain; }
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
    static void close(GatedHandle& h) noexcept {
        if (h.gated) {
            h.gated.release();
        } else {
            h.plain.release();
        }
    }
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

// Counts a failed operation by its class, marks the outage probe, and backs off as a
// client would (woken at once when the phase stops).
void failed_op(Phase& ph, Shard& shard, bool shared, const std::exception* e, std::int64_t started_ns) {
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
        if (!shard.failed_op) shard.failed_op = std::make_unique<Histogram>();
        shard.failed_op->record(ns_between(started_ns, now_ns));
    }
    if (const auto* slot = ph.probe) {
        if (OutageProbe* probe = slot->load(std::memory_order_acquire)) probe->failed(now_ns);
    }
    if (ph.spec.error_backoff.count() > 0) {
        std::unique_lock lock(ph.pace_mu);
        ph.pace_cv.wait_for(lock, ph.spec.error_backoff, [&] { return ph.stop.load(std::memory_order_relaxed); });
    }
}

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
        t3 = fc::now_ns();
    } catch (const std::exception& e) {
        failed_op(ph, shard, shared, &e, t0);
        return 0;
    } catch (...) {
        failed_op(ph, shard, shared, nullptr, t0);
        return 0;
    }
    if (const auto* slot = ph.probe) {
        if (OutageProbe* probe = slot->load(std::memory_order_acquire)) probe->succeeded(t0);
    }
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

// Samples the shards (and the pool's gauges) every spec.sample_interval until told to
// finish, then takes one last partial sample.
class Sampler {
public:
    Sampler(Phase& ph, const Pool* pool, const RunHooks& hooks, LoadResult& out)
        : ph_(ph), pool_(pool), hooks_(hooks), out_(out) {}

    void run() {
        last_ = ph_.start;
        auto next = ph_.start + ph_.spec.sample_interval;
        std::unique_lock lock(mu_);
        while (!finish_) {
            if (cv_.wait_until(lock, next, [&] { return finish_; })) break;
            lock.unlock();
            sample();
            lock.lock();
            next += ph_.spec.sample_interval;
        }
        lock.unlock();
        // The last, partial interval; skipped when it is a sliver (under a tenth of an
        // interval) after a full one, whose rate would be noise.
        if (out_.timeline.empty() || (Clock::now() - last_) * 10 >= ph_.spec.sample_interval) sample();
    }

    void finish() {
        {
            std::lock_guard lock(mu_);
            finish_ = true;
        }
        cv_.notify_all();
    }

private:
    // `interval` = what `total` grew by since `seen`; then `seen` = `total`.
    static void growth(std::vector<std::uint64_t>& total, std::vector<std::uint64_t>& seen, Histogram& interval) {
        interval.clear();
        std::size_t lowest = total.size(), highest = 0;
        for (std::size_t b = 0; b < total.size(); ++b) {
            const std::uint64_t grew = total[b] - seen[b];
            if (grew == 0) continue;
            interval.add_raw(b, grew);
            lowest = std::min(lowest, b);
            highest = b;
        }
        // Within the buckets' precision: the interval's extremes are those of its buckets.
        if (interval.count() > 0) interval.set_sum_min_max(0, Histogram::bucket_low(lowest), Histogram::bucket_high(highest));
        std::swap(seen, total);
    }

    void sample() {
        internal::fast_clock::refine();  // workers time operations with it (rate-limited, cheap)
        std::uint64_t ok = 0, failed = 0, timed_out = 0, statement_timeouts = 0;
        ErrorCounts by_kind{};
        // The interval's latencies are the growth of the shards' whole-phase histograms since
        // the last sample (no lock: the workers go on recording meanwhile).
        std::fill(total_.begin(), total_.end(), 0);
        std::fill(acquire_total_.begin(), acquire_total_.end(), 0);
        for (const auto& shard : ph_.shards) {
            ok += shard->ok.get();
            const std::uint64_t to = shard->timed_out.get();
            const std::uint64_t st = shard->statement_timeouts.get();
            failed += shard->failed.get() + to + st;
            timed_out += to;
            statement_timeouts += st;
            for (std::size_t k = 0; k < by_kind.size(); ++k) by_kind[k] += shard->by_kind[k].get();
            for (std::size_t b = 0; b < total_.size(); ++b) total_[b] += shard->op.bucket(b);
            for (std::size_t b = 0; b < acquire_total_.size(); ++b) acquire_total_[b] += shard->acquire.bucket(b);
        }
        growth(total_, seen_, interval_);
        growth(acquire_total_, acquire_seen_, acquire_interval_);
        const auto now = Clock::now();
        const double interval_s = seconds_between(last_, now);
        ProgressSample s;
        s.point.t_s = seconds_between(ph_.start, now);
        s.point.ops_s = interval_s > 0 ? static_cast<double>(ok - last_ok_) / interval_s : 0.0;
        s.point.p99_us = static_cast<double>(interval_.percentile(0.99)) / 1000.0;
        s.point.p50_us = static_cast<double>(interval_.percentile(0.50)) / 1000.0;
        s.point.acquire_p50_us = static_cast<double>(acquire_interval_.percentile(0.50)) / 1000.0;
        s.point.acquire_p99_us = static_cast<double>(acquire_interval_.percentile(0.99)) / 1000.0;
        if (pool_ != nullptr) {
            const PoolStats st = pool_->stats();
            s.point.active = st.active;
            s.point.idle = st.idle;
            s.point.waiting = st.waiting;
            s.max_size = st.max_size;
            out_.max_total_seen = std::max(out_.max_total_seen, st.total);
            if (st.total > st.max_size) out_.limit_violated = true;
        }
        s.ok = ok;
        s.failed = failed;
        s.timed_out = timed_out;
        s.statement_timeouts = statement_timeouts;
        s.point.failed = failed - last_failed_;
        ErrorCounts interval{};
        for (std::size_t k = 0; k < by_kind.size(); ++k) interval[k] = by_kind[k] - last_by_kind_[k];
        last_ = now;
        last_ok_ = ok;
        last_failed_ = failed;
        last_by_kind_ = by_kind;
        out_.timeline.push_back(s.point);
        out_.interval_errors.push_back(interval);
        if (hooks_.on_sample) {
            try {
                hooks_.on_sample(s);
            } catch (...) {  // NOLINT(bugprone-empty-catch): a broken progress line must not stop the run
            }
        }
    }

    Phase& ph_;
    const Pool* pool_;
    const RunHooks& hooks_;
    LoadResult& out_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool finish_ = false;
    Clock::time_point last_;
    std::uint64_t last_ok_ = 0;
    std::uint64_t last_failed_ = 0;
    ErrorCounts last_by_kind_{};
    // The shards' `op` and `acquire` bucket counts at the last sample and now (summed), and the growth.
    std::vector<std::uint64_t> seen_ = std::vector<std::uint64_t>(Histogram::bucket_count, 0);
    std::vector<std::uint64_t> total_ = std::vector<std::uint64_t>(Histogram::bucket_count, 0);
    Histogram interval_;
    std::vector<std::uint64_t> acquire_seen_ = std::vector<std::uint64_t>(Histogram::bucket_count, 0);
    std::vector<std::uint64_t> acquire_total_ = std::vector<std::uint64_t>(Histogram::bucket_count, 0);
    Histogram acquire_interval_;
};

template <class Source>
LoadResult run_phase(Source source, const Pool* pool, const Workload& workload, const LoadSpec& spec,
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
    Sampler sampler(ph, pool, hooks, result);
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
        result.late += shard->late;
        result.skipped += shard->skipped;
        for (std::size_t k = 0; k < result.errors_by_kind.size(); ++k) result.errors_by_kind[k] += shard->by_kind[k].get();
    }
    result.ops.total = result.ops.ok + result.ops.failed + result.ops.timed_out + result.ops.statement_timeouts;
    ph.errors.move_into(result);
    return result;
}

}  // namespace

void name_this_thread(const std::string& name) noexcept {
    // The kernel keeps 15 bytes; a failure only loses the name in reports.
    const std::string truncated = name.substr(0, 15);
    (void)::pthread_setname_np(::pthread_self(), truncated.c_str());
}

LoadResult run_load(Pool& pool, const Workload& workload, const LoadSpec& spec, const RunHooks& hooks,
                    WriterGate* gate) {
    if (gate != nullptr) return run_phase(GatedPoolSource{pool, *gate, tracks_leaks(pool)}, &pool, workload, spec, hooks);
    return run_phase(PoolSource{pool, tracks_leaks(pool)}, &pool, workload, spec, hooks);
}

LoadResult run_load_unpooled(Driver& driver, const Workload& workload, const LoadSpec& spec,
                             const RunHooks& hooks) {
    return run_phase(DriverSource{driver, spec.connect_timeout}, nullptr, workload, spec, hooks);
}

LatencySet summarize(const LoadResult& result) {
    return {summarize_ns(result.acquire_ns), summarize_ns(result.query_ns), summarize_ns(result.op_ns),
            summarize_ns(result.failed_ns)};
}

}  // namespace poolbench::cli

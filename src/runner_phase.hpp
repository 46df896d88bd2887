// runner_phase.hpp — what one load phase shares between its workers and its sampler:
// per-worker shards, the error log, the phase's gates, and the Sampler. Internal to
// runner.cpp and runner_sampler.cpp; see runner.cpp for the cost rules.
//
// Thread-safety: a Shard is written by its worker(s) only (shared shards under `mu`)
// and read concurrently by the sampler through relaxed atomics; ErrorLog is
// thread-safe; Phase's fields are guarded as their comments say; a Sampler runs on one
// thread, and finish() may be called from any other.
#pragma once

#include "runner.hpp"

#include <poolbench/error.hpp>
#include <poolbench/internal/atomic_histogram.hpp>
#include <poolbench/stats.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace poolbench::cli::runner_detail {

using Clock = std::chrono::steady_clock;

// Each shard holds three ~45 KiB histograms (a fourth on the first failure). Up to this
// many threads every worker has its own and records without a lock.
constexpr std::size_t max_shards = 128;
constexpr std::size_t max_error_messages = 8;
constexpr std::uint64_t claim_batch = 4;
constexpr std::uint64_t late_after_ns = 1'000'000;  // a paced operation this far behind its schedule is late

/// Nanoseconds from a to b on the fast clock; 0 if a refinement moved it backwards.
inline std::uint64_t ns_between(std::int64_t a, std::int64_t b) noexcept {
    return b > a ? static_cast<std::uint64_t>(b - a) : 0;
}

inline double seconds_between(Clock::time_point a, Clock::time_point b) noexcept {
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
    std::vector<WriteKey> in_doubt;  // writes whose COMMIT got no answer (workload.hpp)
    std::uint64_t late = 0, skipped = 0;  // paced: began 1 ms+ after schedule; dropped from a backlog
    std::unique_ptr<Histogram> failed_op;  // start to error of failed operations; made on the first
};

// The shard's mutex, when its workers share it; nothing when the worker has it alone.
[[nodiscard]] inline std::unique_lock<std::mutex> record_lock(Shard& shard, bool shared) {
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


// Samples the shards (and the pools' gauges) every spec.sample_interval until told to
// finish, then takes one last partial sample (runner_sampler.cpp).
class Sampler {
public:
    /// `pools`: whose gauges each sample sums (none unpooled; several for replicas, shards).
    Sampler(Phase& ph, std::vector<const Pool*> pools, const RunHooks& hooks, LoadResult& out)
        : ph_(ph), pools_(std::move(pools)), hooks_(hooks), out_(out) {}

    /// Samples until finish(); on the sampler thread.
    void run();
    /// Ends run() after one last partial sample; from any thread.
    void finish();

private:
    // `interval` = what `total` grew by since `seen`; then `seen` = `total`.
    static void growth(std::vector<std::uint64_t>& total, std::vector<std::uint64_t>& seen, Histogram& interval);
    void sample();

    Phase& ph_;
    std::vector<const Pool*> pools_;
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


}  // namespace poolbench::cli::runner_detail

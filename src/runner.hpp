// runner.hpp — runs a plan against a database and measures it; prints nothing.
//
// Layers, so later commands can reuse the parts they need:
//
//   run_load(pool, workload, spec, hooks)       one load phase through a pool: starts
//                                                spec.threads workers and a sampler,
//                                                stops at spec.ops or spec.duration (or
//                                                on hooks.cancel), returns LoadResult.
//   run_load_unpooled(driver, workload, spec,…)  the same loop with connect()/close per op.
//
// The scenario engine (scenario_runner.hpp) runs run_load once per phase on one pool;
// stress and soak are one-phase scenarios. Hooks see the phase start (the fault clock
// starts there) and every timeline point as it is taken (progress line, abort_on_fail).
//
// Thread-safety: run_load/run_load_unpooled block the calling thread until the phase is
// over; the hooks are called from the sampler thread (never concurrently with each other).
#pragma once

#include "redaction.hpp"
#include "report.hpp"
#include "workload.hpp"

#include <poolbench/config.hpp>
#include <poolbench/connection.hpp>
#include <poolbench/pool.hpp>
#include <poolbench/url.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace poolbench {
class WriterGate;
}

namespace poolbench::cli {

/// The database could not be used: preflight connect or workload setup failed (exit 3).
/// The message is already redacted and names the database.
class DatabaseUnusable : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// How one load phase is bounded and paced.
struct LoadSpec {
    std::size_t threads = 100;
    std::optional<std::uint64_t> ops;                   ///< stop after this many operations
    std::optional<std::chrono::milliseconds> duration;  ///< or after this long
    double rate_ops_s = 0;                              ///< total target rate; 0 = as fast as possible
    std::chrono::milliseconds sample_interval{1000};
    /// Deadline for connect() in unpooled runs (pooled runs use the pool's acquire timeout).
    std::chrono::milliseconds connect_timeout{30'000};
    /// A worker pauses this long after a failed operation, as a real client backs off, so
    /// the counts during an outage measure the outage rather than a spin rate (0: none).
    std::chrono::milliseconds error_backoff{0};
};

/// The outage as time (fast clock nanoseconds, 0 = not yet): from the first failed
/// operation (when it failed) to the start of the first success that began after a failure
/// and was followed by `confirm` successes in a row. A failure before that many resets the
/// candidate; once confirmed the probe no longer changes, so a later, unrelated failure
/// does not stretch the outage. Once its fault has ended (`closed`), a probe that saw no
/// failure ignores later ones: they are another fault's.
///
/// Workers update the probe RunHooks::probe points to and every probe it chains to through
/// `previous` (for_each_probe): a fault started while an earlier one's outage is still open
/// does not leave that outage without an end. `previous` is set before the probe is
/// published and never changes after.
struct OutageProbe {
    static constexpr std::uint32_t confirm = 20;
    std::atomic<std::int64_t> first_failure_ns{0};
    std::atomic<std::int64_t> candidate_ns{0};    ///< the success that may end the outage
    std::atomic<std::uint32_t> streak{0};         ///< successes since the last failure
    std::atomic<std::int64_t> recovered_ns{0};    ///< the confirmed end (0: still out)
    std::atomic<bool> closed{false};              ///< its fault has ended
    OutageProbe* previous = nullptr;              ///< the probe published before this one

    void failed(std::int64_t now_ns) noexcept {
        if (recovered_ns.load(std::memory_order_relaxed) != 0) return;
        if (closed.load(std::memory_order_relaxed) && first_failure_ns.load(std::memory_order_relaxed) == 0) return;
        std::int64_t none = 0;
        first_failure_ns.compare_exchange_strong(none, now_ns, std::memory_order_relaxed);
        candidate_ns.store(0, std::memory_order_relaxed);
        streak.store(0, std::memory_order_relaxed);
    }
    void succeeded(std::int64_t began_ns) noexcept {
        const std::int64_t failed_at = first_failure_ns.load(std::memory_order_relaxed);
        if (failed_at == 0 || began_ns <= failed_at || recovered_ns.load(std::memory_order_relaxed) != 0) return;
        std::int64_t none = 0;
        candidate_ns.compare_exchange_strong(none, began_ns, std::memory_order_relaxed);
        if (streak.fetch_add(1, std::memory_order_relaxed) + 1 >= confirm) {
            const std::int64_t candidate = candidate_ns.load(std::memory_order_relaxed);
            std::int64_t open = 0;
            if (candidate != 0) recovered_ns.compare_exchange_strong(open, candidate, std::memory_order_relaxed);
        }
    }
};

/// Calls `f` on the probe `slot` holds and on each it chains to (none when `slot` is null).
template <class F>
void for_each_probe(const std::atomic<OutageProbe*>* slot, F f) {
    if (slot == nullptr) return;
    for (OutageProbe* p = slot->load(std::memory_order_acquire); p != nullptr; p = p->previous) f(*p);
}

/// What the sampler sees at each tick; handed to the progress callback.
struct ProgressSample {
    TimelinePoint point;
    std::size_t max_size = 0;         ///< pool max (0 unpooled)
    std::uint64_t ok = 0;             ///< cumulative
    std::uint64_t failed = 0;         ///< cumulative, timeouts included
    std::uint64_t timed_out = 0;      ///< cumulative, the acquire timeouts among `failed`
    std::uint64_t statement_timeouts = 0;  ///< cumulative, the statement timeouts among `failed`
};

struct RunHooks {
    /// Called from the sampler thread after each sample (progress line, scenario triggers).
    std::function<void(const ProgressSample&)> on_sample;
    /// When it becomes true the phase stops early (SIGINT). May be null.
    const std::atomic<bool>* cancel = nullptr;
    /// Called once on the controlling thread when the workers are released, with the
    /// phase's start (timeline t_s counts from it). Scenarios start their fault clock here.
    std::function<void(std::chrono::steady_clock::time_point)> on_start;
    /// Where workers mark failures and recoveries (see OutageProbe). May be null.
    const std::atomic<OutageProbe*>* probe = nullptr;
    /// Called on the controlling thread when the phase ends (its time is up, its ops are
    /// done, or it was cancelled), before the workers are joined: whatever blocks them (a
    /// fault) must be undone here, or joining them waits for it.
    std::function<void()> on_stop;
};

/// The raw outcome of one load phase (histograms in nanoseconds).
struct LoadResult {
    double duration_s = 0;
    OpCounts ops;
    Histogram acquire_ns, query_ns, op_ns;
    Histogram failed_ns;  ///< start to error of operations that did not succeed
    std::uint64_t writes_acknowledged = 0;
    /// Writes whose COMMIT got no answer (the connection broke): they may or may not be in
    /// the database; verification looks each one up.
    std::vector<WriteKey> writes_in_doubt;
    std::uint64_t late = 0;     ///< paced: operations begun 1 ms or more after their scheduled time
    std::uint64_t skipped = 0;  ///< paced: operations dropped because their time had passed (pgbench -L's "skipped")
    std::vector<TimelinePoint> timeline;
    /// Failed operations by ErrorKind in each timeline interval (aligned with `timeline`).
    std::vector<ErrorCounts> interval_errors;
    ErrorCounts errors_by_kind{};      ///< the whole phase
    std::vector<ErrorSample> errors;  ///< one example per error class and code (unredacted), most frequent first
    std::uint64_t errors_other = 0;
    std::size_t max_total_seen = 0;   ///< highest stats().total the sampler saw
    bool limit_violated = false;      ///< stats().total > max_size at some sample
    bool cancelled = false;

    [[nodiscard]] double throughput_ops_s() const noexcept {
        return duration_s > 0 ? static_cast<double>(ops.ok) / duration_s : 0.0;
    }
};

/// One load phase through `pool`; writes take their turn at `gate` first when it is given.
/// Never throws for failures of individual operations (they are counted); throws
/// std::system_error if worker threads cannot be started.
[[nodiscard]] LoadResult run_load(Pool& pool, const Workload& workload, const LoadSpec& spec,
                                  const RunHooks& hooks, WriterGate* gate = nullptr);

/// One load phase with no pool: every operation opens a connection, runs, closes it.
[[nodiscard]] LoadResult run_load_unpooled(Driver& driver, const Workload& workload, const LoadSpec& spec,
                                           const RunHooks& hooks);

/// Names the calling thread (pthread_setname_np; at most 15 bytes are kept), so leak
/// reports and debuggers show it. Call before the thread's first acquire.
void name_this_thread(const std::string& name) noexcept;

/// Summaries of a phase's histograms in microseconds.
[[nodiscard]] LatencySet summarize(const LoadResult& result);



}  // namespace poolbench::cli

// report.hpp — the one report model every command fills and every renderer reads.
//
// The runner measures; this model holds what it measured, already summarised (latencies
// in microseconds). Renderers only format it: none of them measures or recomputes a
// figure beyond unit conversion. Field names follow the JSON report "poolbench/report@1"
// (DESIGN.md): fields may be added, never renamed.
//
// Thread-safety: plain value types; build a Report on one thread, then hand it over.
#pragma once

#include <poolbench/config.hpp>
#include <poolbench/error.hpp>
#include <poolbench/histogram.hpp>
#include <poolbench/stats.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace poolbench::cli {

inline constexpr const char* report_schema = "poolbench/report@1";

/// A latency distribution summarised in microseconds.
struct LatencySummary {
    std::uint64_t count = 0;
    double mean = 0, p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;
    double min = 0;
    /// The histogram itself, for an exact merge of several runs (`poolbench merge`): each
    /// non-empty bucket as (Histogram bucket index, count), in index order.
    std::vector<std::pair<std::uint32_t, std::uint64_t>> buckets;
};
/// Summarises a histogram of nanoseconds (buckets included).
[[nodiscard]] LatencySummary summarize_ns(const Histogram& ns);

struct LatencySet {
    LatencySummary acquire;  ///< acquire() call to lease in hand (baseline: connect())
    LatencySummary query;    ///< the workload statement(s)
    LatencySummary op;       ///< the whole operation, including release
    /// Operations that failed, timed out or were cancelled: from their start to the error
    /// (so a run where most acquires time out does not look fast).
    LatencySummary failed;
};

struct OpCounts {
    std::uint64_t total = 0, ok = 0, failed = 0, timed_out = 0;
    /// Statements cancelled by a statement timeout: counted here, not in `failed`.
    std::uint64_t statement_timeouts = 0;
};

struct TimelinePoint {
    double t_s = 0;     ///< seconds since the load started, at the end of the interval
    double ops_s = 0;   ///< successful operations per second in the interval
    std::size_t active = 0, idle = 0, waiting = 0;  ///< pool gauges at the sample
    double p99_us = 0;  ///< p99 of whole-op latency in the interval
    std::uint64_t failed = 0;  ///< operations that failed or timed out in the interval
    double p50_us = 0;          ///< p50 of whole-op latency in the interval
    double acquire_p50_us = 0;  ///< p50 of acquire latency in the interval
    double acquire_p99_us = 0;  ///< p99 of acquire latency in the interval
};

/// One bin of a latency histogram: the values in [lo_us, hi_us).
struct HistogramBin {
    double lo_us = 0, hi_us = 0;
    std::uint64_t count = 0;
};
/// `ns` in coarse bins for a chart: four per power of two (edges 2^k, 1.25·2^k, 1.5·2^k,
/// 1.75·2^k ns, each an edge of the pool's own buckets, so every count is exact), from the
/// first bin with a value to the last; empty when `ns` is.
[[nodiscard]] std::vector<HistogramBin> histogram_bins_us(const Histogram& ns);
/// The run's latency distributions (all phases), for the HTML report's histogram.
struct LatencyHistograms {
    std::vector<HistogramBin> acquire, op;
};

/// One circuit-breaker state change (the reason is already redacted).
struct BreakerEvent {
    std::chrono::system_clock::time_point at;
    std::string to;      ///< "closed", "open", "half_open"
    std::string reason;
};

struct BreakerSection {
    std::string state = "closed";     ///< at the end of the run
    std::uint64_t transitions = 0;    ///< since the pool was made
    std::vector<BreakerEvent> history;  ///< the most recent ones (the library keeps 32), oldest first
};

struct PoolSection {
    std::uint64_t created = 0, destroyed = 0;
    std::array<std::uint64_t, destroy_reason_count> destroyed_by_reason{};
    std::uint64_t hits = 0, misses = 0;
    double hit_ratio = 0;
    std::uint64_t waits = 0, timeouts = 0;
    std::size_t peak_active = 0, peak_total = 0, max_size = 0, min_idle = 0;
    std::uint64_t validation_failures = 0, connect_failures = 0;
    std::uint64_t reconnects = 0;   ///< connections opened to replace broken or invalid ones
    std::uint64_t overloaded = 0;   ///< acquires refused by max_waiting
    std::uint64_t circuit_rejections = 0;  ///< acquires refused while the breaker was open
    std::uint64_t transaction_retries = 0;  ///< transaction bodies re-run (busy, serialization, deadlock)
    std::uint64_t keepalives = 0;           ///< keepalive pings of idle connections
    std::uint64_t leaks_detected = 0, leaks_returned_late = 0, leaks_reclaimed = 0;
    BreakerSection breaker;
    LatencySummary connect_us;      ///< opening one connection (connect() plus setup)
    /// Opening min_idle connections before the load began (pgbench's "initial connection
    /// time"); 0 when min_idle is 0.
    double warmup_ms = 0;
    std::size_t active_at_end = 0;  ///< leases still out after every worker stopped
    bool shutdown_clean = true;     ///< shutdown() closed everything within its grace
};

struct Report;

struct LeakRecord {
    double held_ms = 0;
    std::string thread;       ///< "name (id)", or the id alone when the thread had no name
    long thread_id = 0;       ///< kernel thread id (gettid)
    std::string thread_name;
    std::string kind;         ///< "suspected", "returned", "reclaimed"
    std::vector<std::string> stack;  ///< innermost first, the pool's own frames removed
};
/// Leak reports with one kind and one stack, as a reader wants them: not 2,500 copies.
struct LeakGroup {
    std::string kind;
    std::vector<std::string> stack;
    std::uint64_t count = 0;
    double longest_held_ms = 0;
    std::string first_thread;
};
/// Groups `leaks` by kind and stack, most frequent first.
[[nodiscard]] std::vector<LeakGroup> group_leaks(const std::vector<LeakRecord>& leaks);
/// Leaks the pool detected that the report does not list (it keeps the most recent 1000).
[[nodiscard]] std::uint64_t leaks_not_listed(const Report& report);

/// Converts a library leak report.
[[nodiscard]] LeakRecord make_leak_record(const LeakReport& report);
[[nodiscard]] std::string_view to_string(LeakReport::Kind kind) noexcept;

/// What a leak fault injected and what the pool found (`poolbench leak`: the report's own).
struct LeakCheckSection {
    std::uint64_t injected = 0;            ///< leases leaked on purpose
    std::uint64_t reported = 0;            ///< first reports (suspected, or a traced reclaim) of injected leases
    std::uint64_t reclaimed_before_report = 0;  ///< ... whose first report was the reclaim itself
    std::uint64_t false_positives = 0;     ///< first reports of any other lease
    std::uint64_t traced_to_injector = 0;  ///< reports with the injecting function in their top frames
    std::uint64_t legitimate_holds = 0;    ///< leases held for part of the threshold, then returned
    std::uint64_t returned_late = 0;       ///< "returned" reports after the leaked leases were released
    std::optional<std::int64_t> reclaim_after_ms;  ///< set with --reclaim
    std::uint64_t reclaimed = 0;           ///< injected leases reclaimed (and so revoked)
    bool revoked_use_threw = false;        ///< using a revoked lease threw LeaseRevoked (with --reclaim)
    std::optional<OpCounts> second_phase;  ///< the workload after reclaim (with --reclaim)
    std::optional<double> detection_wait_ms;  ///< from the injection to the last awaited report (when awaited)
    std::string injector;                  ///< the function name looked for in the traces
};

struct WritesSection {
    std::uint64_t acknowledged = 0;  ///< commits the database acknowledged during the run
    std::uint64_t verified = 0;      ///< rows of this run found afterwards
    std::uint64_t lost = 0;          ///< acknowledged writes not found (never negative)
    bool checked = false;            ///< false when the backend cannot count (null://) or counting failed
    std::string error;               ///< why counting failed (redacted); "" when it ran or cannot run (null://)
    /// Writes whose COMMIT got no answer because the connection broke while it was under
    /// way (a server restart, a killed backend): neither acknowledged nor failed. Each is
    /// looked up by its key; `in_doubt_committed` of them are in the database (counted in
    /// `verified`, never in `lost`). Jepsen calls these indeterminate.
    std::uint64_t in_doubt = 0;
    std::uint64_t in_doubt_committed = 0;
};

struct Expectation {
    Expectation() = default;
    Expectation(std::string name_, std::string expected_, double actual_, bool passed_)
        : name(std::move(name_)), expected(std::move(expected_)), actual(actual_), passed(passed_) {}

    std::string name;      ///< e.g. "ops.failed == 0"
    std::string expected;  ///< e.g. "== 0"
    double actual = 0;
    bool passed = false;
    std::string scope;     ///< "" (the run), "phase NAME", "fault N (KIND) in phase NAME"
    std::string note;      ///< why there is no actual value ("no samples"); actual is then meaningless
};

struct BaselineSection {
    std::uint64_t ops_requested = 0;  ///< 0 when bounded by duration
    double duration_limit_s = 0;      ///< 0 when bounded by ops
    double duration_s = 0;
    OpCounts ops;
    double throughput_ops_s = 0;
    LatencySet latency_us;
    double speedup = 0;  ///< pooled throughput / baseline throughput (0 when undefined)
};

struct ErrorSample {
    ErrorSample() = default;
    ErrorSample(std::string message_, std::uint64_t count_, std::string kind_ = {}, std::string code_ = {})
        : message(std::move(message_)), count(count_), kind(std::move(kind_)), code(std::move(code_)) {}

    std::string message;  ///< one example, already redacted
    std::uint64_t count = 0;
    std::string kind;     ///< the ErrorKind name ("connection_lost", "pool_timeout", ...)
    std::string code;     ///< SQLSTATE or SQLite code name; "" for the pool's own errors
};

/// Failed operations counted by ErrorKind (index: static_cast<std::size_t>(kind)).
using ErrorCounts = std::array<std::uint64_t, error_kind_count>;

struct RunConfig {
    std::size_t threads = 0;
    std::size_t pool_max = 0, pool_min_idle = 0;
    std::int64_t acquire_timeout_ms = 0;
    std::string workload;
    std::optional<std::uint64_t> ops;       ///< set when bounded by an operation count
    std::optional<double> duration_s;       ///< set when bounded by time
    double write_ratio = 0;                 ///< fraction of operations that write
    std::uint64_t rows = 0;                 ///< seeded rows (read / mixed)
    double sample_interval_s = 1;
    double rate_ops_s = 0;                  ///< soak --rate: target operations per second (0: unpaced)
    std::int64_t leak_threshold_ms = 0;     ///< 0: leak tracking off
    std::int64_t leak_reclaim_after_ms = 0; ///< 0: no reclaim
    std::int64_t error_backoff_ms = 0;      ///< a worker's pause after a failed operation
    std::int64_t starvation_threshold_us = 0;  ///< the pool's bounded-barging limit
    /// Every other pool setting that shaped the run, by its PoolConfig name (durations in ms).
    std::vector<std::pair<std::string, double>> pool_settings;
};

/// One phase of a scenario: its settings and what it measured.
struct PhaseRecord {
    std::string name;
    std::size_t threads = 0;
    std::string workload;
    double write_ratio = 0;
    double rate_ops_s = 0;                    ///< 0: unpaced
    bool writer_gate = false;                 ///< writes queued at a WriterGate
    std::optional<std::uint64_t> ops_requested;
    std::optional<double> duration_requested_s;
    double started_s = 0;                     ///< since the run's first phase started
    double load_started_s = 0;                ///< when its load began, since the run started (timeline t_s's clock)
    double duration_s = 0;                    ///< wall time, its faults' start and end included
    double load_duration_s = 0;               ///< the time its load ran (throughput's)
    OpCounts ops;
    double throughput_ops_s = 0;
    LatencySet latency_us;
    ErrorCounts errors_by_class{};
    std::uint64_t writes_acknowledged = 0;
    std::uint64_t writes_in_doubt = 0;  ///< writes whose COMMIT got no answer (the connection broke)
    /// Paced phases (pgbench --rate): op latency counts from the scheduled start; `late`
    /// operations began 1 ms or more behind it, `skipped` ones were dropped as overdue.
    std::uint64_t late = 0, skipped = 0;
    bool cancelled = false;                   ///< stopped early (Ctrl-C, abort_on_fail)
    double sample_interval_s = 0;
    std::optional<std::uint64_t> stalled_intervals;  ///< when the stall rule applies (check_stalls)
    std::vector<double> stalled_at_s;  ///< when each stalled interval ended, since the run began (first 20)
    /// Phases without faults: first failure to the start of steady success (20 in a row);
    /// 0 = nothing failed; none = still failing at the end. (With faults: per fault.)
    std::optional<double> outage_ms;
    /// This process's resources when the phase ended (a soak compares them across phases).
    std::uint64_t open_fds = 0, rss_bytes = 0, pool_connections = 0;
};

/// What built up between the end of the first phase (the warm-up) and the end of the last:
/// the soak rules (scenarios/README.md).
struct DriftSection {
    std::string from_phase, to_phase;
    std::int64_t open_fds = 0;          ///< change in open file descriptors
    std::int64_t pool_connections = 0;  ///< change in the pool's open connections
    std::int64_t rss_bytes = 0;         ///< change in resident memory
    std::uint64_t rss_allowance_bytes = 0;       ///< 10% of the warm-up's RSS + 8 MiB
    std::uint64_t rss_over_allowance_bytes = 0;  ///< growth beyond the allowance (0: within it)
};

/// One fault of a scenario: when it was asked for, when it really ran, and what it did.
struct FaultRecord {
    std::size_t index = 0;                    ///< 1-based within its phase (as --set counts)
    std::string kind;                         ///< "sqlite.lock", "pg.restart", ...
    std::string phase;
    double at_s = 0;                          ///< asked: offset into the phase
    std::optional<double> for_s;              ///< asked: how long (none: pg.restart)
    std::optional<double> started_s, ended_s; ///< actual, since the run started (none: never started)
    bool reverted = false;                    ///< the fault was undone (also on failure and Ctrl-C)
    std::string error;                        ///< why it did not start or revert ("" = fine)
    std::string detail;                       ///< what it did ("terminated 10 backends", command output)
    /// Fault end → the first interval back at 90% of the level with no failed operation,
    /// from which 20 operations in a row succeed; none = not recovered in the phase.
    std::optional<double> recovery_ms;
    std::string recovery_basis;               ///< "before" (level before the fault) or "after" (at = 0)
    double level_ops_s = 0;                   ///< the throughput level recovery was measured against
    /// First failed operation → first success that began after it; 0 = nothing failed;
    /// none = still failing when the phase ended.
    std::optional<double> outage_ms;
    /// leak faults: the leaked leases the pool reported (leak_check.reported).
    std::optional<std::uint64_t> leaks_reported;
    /// leak faults: what was leaked and what the pool found (as `poolbench leak` reports it).
    std::optional<LeakCheckSection> leak_check;
    double stalled_ms = 0;                    ///< longest stretch with no completed operation (blocked, not failed)
    std::uint64_t failed = 0;                 ///< operations that failed from the fault's start to its recovery
    ErrorCounts errors_by_class{};            ///< ... by class
    /// replica.stop, replica.promote: the fault's start to the replica leaving the router's
    /// rotation (none: it never left), and the fault's end to its return (none: not back
    /// by the phase's end; a promotion never comes back).
    std::optional<double> failover_ms, rejoin_ms;
    /// A multi-node run: the node the fault acted on (a replica fault's replica; any other
    /// fault acts on the first node, primary or shard-0). "" with one database.
    std::string node;

    /// replica.stop or replica.promote: the record has failover_ms and rejoin_ms.
    [[nodiscard]] bool replica_fault() const noexcept { return kind.rfind("replica.", 0) == 0; }
};

/// Why a run did not complete: exit 2 (bad usage), 3 (unusable database) or 130
/// (interrupted). A report with an error has verdict "error".
struct RunError {
    int exit_code = 0;
    std::string message;  ///< already redacted
};

/// One agent's report in a merged one (`poolbench merge`).
struct MergedSource {
    std::string path;        ///< as given on the command line
    std::string started_at;  ///< its started_at (UTC text)
    double offset_s = 0;     ///< its started_at after the earliest agent's
    OpCounts ops;
    double throughput_ops_s = 0, load_duration_s = 0;
    std::string verdict;     ///< its own verdict
};

/// One pool of a multi-node run (a primary, a replica or a shard): the report's `pools`
/// entry, keyed there by `name` ("primary", "replica-1", "shard-0", ...).
struct NodeRecord {
    std::string name;
    std::string role;  ///< "primary", "replica", "shard"
    std::string url;   ///< redacted
    std::uint64_t reads = 0;          ///< reads served here (operations that did not write)
    std::uint64_t writes = 0;         ///< writes run here
    std::uint64_t read_failures = 0;  ///< router nodes: read bodies that threw here
    std::optional<std::string> state;            ///< replicas: "healthy" or why out of rotation, at the end
    std::optional<std::uint64_t> left_rotation;  ///< replicas: times it left the rotation
    std::optional<std::uint64_t> rows_verified;  ///< shards (and the primary): rows of this run found here
    PoolSection pool;                            ///< this node's own pool
};
/// The primary/replica router's figures (router.hpp RouterStats).
struct RouterSection {
    std::string strategy;  ///< "round_robin", "random", "least_active"
    std::uint64_t reads_retried = 0, reads_rerouted = 0, primary_fallbacks = 0, no_replica_errors = 0;
};
struct Report {
    /// False for the report a failed command leaves (report_files.hpp): only command,
    /// scenario, database and error are meaningful then.
    bool ran = true;
    std::optional<RunError> error;
    std::string command;
    std::optional<std::string> scenario;
    /// Tags this run's rows: poolbench_writes.run_id is "RUN_ID-PHASE" ("" when it ran nothing).
    std::string run_id;
    std::chrono::system_clock::time_point started_at{};  ///< when the run began (epoch: unknown); timeline t_s counts from it
    /// When the first phase's load began and the last one's ended (epoch: unknown): the
    /// span `poolbench merge` divides all agents' operations by.
    std::chrono::system_clock::time_point load_started_at{}, load_ended_at{};
    std::string backend;       ///< "sqlite", "postgresql", "null"
    std::string url_redacted;  ///< never the original URL
    /// How the driver sent statements: "named", "unnamed" (PostgreSQL: prepare=off, or a
    /// pooler such as PgBouncer found), "" when the backend does not say (Driver::prepared_statements).
    std::string prepared_statements;
    RunConfig config;
    double duration_s = 0;       ///< wall time of the phases
    double load_duration_s = 0;  ///< the time their load ran (throughput's)
    OpCounts ops;
    double throughput_ops_s = 0;
    LatencySet latency_us;
    LatencyHistograms latency_histogram_us;
    PoolSection pool;  ///< with several pools: the sum over them
    std::vector<NodeRecord> pools;       ///< several pools (replicas, shards): one each, in node order
    std::optional<RouterSection> router;  ///< primary/replica runs
    bool leaks_tracked = false;
    std::vector<LeakRecord> leaks;
    /// Why `leaks` may not list every detection (text report; leaks_not_listed counts them).
    std::string leaks_list_rule = "the pool keeps the most recent 1000 reports";
    std::optional<LeakCheckSection> leak_check;  ///< `poolbench leak` only
    std::optional<WritesSection> writes;
    std::vector<TimelinePoint> timeline;
    std::vector<Expectation> expectations;
    std::optional<BaselineSection> baseline;
    std::vector<ErrorSample> errors;
    std::uint64_t errors_other = 0;  ///< errors beyond the distinct messages kept
    ErrorCounts errors_by_class{};   ///< failed and timed-out operations by ErrorKind
    std::vector<PhaseRecord> phases;  ///< scenarios
    std::vector<FaultRecord> faults;  ///< scenarios, in the order they were scheduled
    std::optional<DriftSection> drift;  ///< runs of two or more phases
    std::vector<std::string> notes;   ///< things the reader should know (a converted journal mode, ...)
    std::string recovery_rule;        ///< how recovery_ms is measured (scenarios with faults)
    bool aborted = false;             ///< stopped by abort_on_fail
    std::string abort_reason;
    std::vector<MergedSource> merged_from;  ///< `poolbench merge`: the agents' reports, in order
    bool interrupted = false;        ///< stopped early by SIGINT/SIGTERM
    std::string interrupted_at;      ///< where: "during the baseline", "in phase 'steady'"; "" = the load

    [[nodiscard]] bool passed() const noexcept;  ///< every expectation held
    /// "error" when the run did not complete (error is set), else "pass" or "fail".
    [[nodiscard]] const char* verdict() const noexcept { return error ? "error" : passed() ? "pass" : "fail"; }
};

/// Fills the pool section from a snapshot taken after the run (counters) and the number
/// of leases still out when every worker had stopped.
[[nodiscard]] PoolSection make_pool_section(const PoolStats& final_stats, std::size_t min_idle,
                                            std::size_t active_at_end, bool shutdown_clean);

/// The pools of a multi-node run as one table, header row first (empty with one pool): the
/// text and HTML reports print the same cells, each node's (redacted) URL last. "-" where a
/// figure does not apply.
[[nodiscard]] std::vector<std::vector<std::string>> pools_table(const Report& report);
/// What the run's `database` URL is the first of, for the header ("" with one pool):
/// "the primary of 1 primary and 2 replicas", "shard-0 of 3 shards".
[[nodiscard]] std::string nodes_note(const Report& report);
/// The router's figures in one line ("" without a router).
[[nodiscard]] std::string router_line(const Report& report);

/// "2024-05-01T12:34:56.789Z" (UTC, milliseconds).
[[nodiscard]] std::string format_utc(std::chrono::system_clock::time_point at);

/// Formats one renderer-independent view of a report; each renderer returns the whole
/// document as a string so a command decides where it goes (stdout, stderr, a file).
class Renderer {
public:
    Renderer() = default;
    Renderer(const Renderer&) = delete;
    Renderer& operator=(const Renderer&) = delete;
    virtual ~Renderer() = default;
    [[nodiscard]] virtual std::string render(const Report& report) const = 0;
};

[[nodiscard]] std::unique_ptr<Renderer> make_text_renderer();
[[nodiscard]] std::unique_ptr<Renderer> make_json_renderer();
[[nodiscard]] std::unique_ptr<Renderer> make_junit_renderer();  ///< JUnit XML: one testcase per expectation
[[nodiscard]] std::unique_ptr<Renderer> make_html_renderer();   ///< one self-contained page, SVG timeline

}  // namespace poolbench::cli

// report.hpp — the one report model every command fills and every renderer reads.
//
// The runner measures; this model holds what it measured, already summarised (latencies
// in microseconds). Renderers only format it: none of them measures or recomputes a
// figure beyond unit conversion. Field names follow the JSON report "poolbench/report@1"
// (DESIGN.md): fields may be added, never renamed.
//
// Thread-safety: plain value types; build a Report on one thread, then hand it over.
#pragma once

#include <poolbench/histogram.hpp>
#include <poolbench/stats.hpp>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace poolbench::cli {

inline constexpr const char* report_schema = "poolbench/report@1";

/// A latency distribution summarised in microseconds.
struct LatencySummary {
    std::uint64_t count = 0;
    double mean = 0, p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;
};
/// Summarises a histogram of nanoseconds.
[[nodiscard]] LatencySummary summarize_ns(const Histogram& ns);

struct LatencySet {
    LatencySummary acquire;  ///< acquire() call to lease in hand (baseline: connect())
    LatencySummary query;    ///< the workload statement(s)
    LatencySummary op;       ///< the whole operation, including release
};

struct OpCounts {
    std::uint64_t total = 0, ok = 0, failed = 0, timed_out = 0;
};

struct TimelinePoint {
    double t_s = 0;     ///< seconds since the load started, at the end of the interval
    double ops_s = 0;   ///< successful operations per second in the interval
    std::size_t active = 0, idle = 0, waiting = 0;  ///< pool gauges at the sample
    double p99_us = 0;  ///< p99 of whole-op latency in the interval
};

struct PoolSection {
    std::uint64_t created = 0, destroyed = 0;
    std::array<std::uint64_t, destroy_reason_count> destroyed_by_reason{};
    std::uint64_t hits = 0, misses = 0;
    double hit_ratio = 0;
    std::uint64_t waits = 0, timeouts = 0;
    std::size_t peak_active = 0, peak_total = 0, max_size = 0, min_idle = 0;
    std::uint64_t validation_failures = 0, connect_failures = 0;
    std::uint64_t reconnects = 0;   ///< not tracked by the library yet: always 0
    std::size_t active_at_end = 0;  ///< leases still out after every worker stopped
    bool shutdown_clean = true;     ///< shutdown() closed everything within its grace
};

struct LeakRecord {
    double held_ms = 0;
    std::string thread;
    std::vector<std::string> stack;
};

struct WritesSection {
    std::uint64_t acknowledged = 0;  ///< commits the database acknowledged during the run
    std::uint64_t verified = 0;      ///< rows of this run found afterwards
    std::uint64_t lost = 0;          ///< acknowledged - verified (never negative)
    bool checked = false;            ///< false when the backend cannot count (null://)
};

struct Expectation {
    std::string name;      ///< e.g. "ops.failed == 0"
    std::string expected;  ///< e.g. "== 0"
    double actual = 0;
    bool passed = false;
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
    std::string message;  ///< already redacted
    std::uint64_t count = 0;
};

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
};

struct Report {
    std::string command;
    std::optional<std::string> scenario;
    std::string backend;       ///< "sqlite", "postgresql", "null"
    std::string url_redacted;  ///< never the original URL
    RunConfig config;
    double duration_s = 0;
    OpCounts ops;
    double throughput_ops_s = 0;
    LatencySet latency_us;
    PoolSection pool;
    bool leaks_tracked = false;
    std::vector<LeakRecord> leaks;
    std::optional<WritesSection> writes;
    std::vector<TimelinePoint> timeline;
    std::vector<Expectation> expectations;
    std::optional<BaselineSection> baseline;
    std::vector<ErrorSample> errors;
    std::uint64_t errors_other = 0;  ///< errors beyond the distinct messages kept
    bool interrupted = false;        ///< stopped early by SIGINT/SIGTERM

    [[nodiscard]] bool passed() const noexcept;  ///< every expectation held
    [[nodiscard]] const char* verdict() const noexcept { return passed() ? "pass" : "fail"; }
};

/// Fills the pool section from a snapshot taken after the run (counters) and the number
/// of leases still out when every worker had stopped.
[[nodiscard]] PoolSection make_pool_section(const PoolStats& final_stats, std::size_t min_idle,
                                            std::size_t active_at_end, bool shutdown_clean);

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

}  // namespace poolbench::cli

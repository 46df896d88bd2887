// cli.hpp — what every poolbench command shares: exit codes, durations, the common
// options, the database choice, report output, the progress line and interrupts.
//
// Thread-safety: everything here is used from the main thread, except ProgressLine::
// update() (called from the runner's sampler thread; one sampler at a time) and the
// interrupt flag (an atomic set from a signal handler).
#pragma once

#include "report.hpp"
#include "runner.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace CLI {
class App;
class Option;
}

namespace poolbench::cli {

/// The documented exit codes (DESIGN.md "The CLI contract").
enum class ExitCode : int {
    ok = 0,        ///< ran and every expectation held
    failed = 1,    ///< ran, but an expectation, threshold, leak or lost write failed it
    usage = 2,     ///< bad usage, bad URL or bad scenario file
    database = 3,  ///< the database could not be used
    interrupted = 130,  ///< stopped by SIGINT/SIGTERM (the shell's 128 + SIGINT); the report says where
};

/// Bad usage found after CLI11 accepted the flags (exit 2). One line, no trailing period.
class UsageFailure : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// Parses "250ms", "1.5s", "10m", "1h" (parse_duration_into, zero refused). Throws UsageFailure
/// naming `option` and the text.
[[nodiscard]] std::chrono::milliseconds parse_duration(std::string_view text, std::string_view option = "duration");
/// The library's one duration grammar (poolbench/internal/duration.hpp, also read by the
/// PostgreSQL driver), with a unit required: a number (with an optional fraction: 1.5s)
/// and ms, s, m/min or h in any letter case, at most 30 days, rounded to milliseconds.
/// Sets `out` and returns "", or returns "invalid duration 'TEXT': why (examples: ...)".
[[nodiscard]] std::string parse_duration_into(std::string_view text, std::chrono::milliseconds& out, bool allow_zero);
/// "" when `text` is a valid duration, else the reason (a CLI11 validator's contract).
[[nodiscard]] std::string check_duration(const std::string& text);
/// Levenshtein distance, for "did you mean" on a mistyped name.
[[nodiscard]] std::size_t edit_distance(std::string_view a, std::string_view b);
/// For `poolbench stress --threds 10`: "unknown option '--threds'; did you mean
/// '--threads'?" naming the first --word in argv that neither `command` nor the top-level
/// `app` knows, with the nearest of the command's long option names (at most 2 edits away,
/// 3 for names longer than 8). Empty when every --word is known. (cli_suggest.cpp)
[[nodiscard]] std::string unknown_option(const CLI::App& app, const CLI::App& command, int argc, char** argv);

/// "" when `text` is a finite number (CLI::Range lets NaN through), else the reason.
[[nodiscard]] std::string check_finite(const std::string& text);

/// Options every running command has.
struct CommonOptions {
    std::string db;                     ///< --db; empty: $POOLBENCH_DB or a temporary SQLite file
    std::string json;                   ///< --json FILE or "-" (stdout); empty: no JSON
    std::string junit;                  ///< --junit FILE; empty: none
    std::string html;                   ///< --html FILE; empty: none
    bool no_progress = false;           ///< --no-progress
    std::string progress_every;         ///< --progress D: a line every D, also when stderr is not a terminal
    std::string sample_interval = "1s"; ///< --sample-interval (hidden)
    /// The options themselves (null when a command fills the fields by hand): tells
    /// `--json ''` (an error) from no --json at all.
    const CLI::Option* json_option = nullptr;
    const CLI::Option* junit_option = nullptr;
    const CLI::Option* html_option = nullptr;
    const CLI::Option* sample_interval_option = nullptr;  ///< given: overrides the sampling rule
};
/// --db (group "Database"); add it first so --help lists the database first. With
/// `several`, --db may be repeated (one URL per shard: topology.hpp) and every URL given
/// goes there (options.db is then left empty: see apply_topology_options).
void add_database_option(CLI::App& cmd, CommonOptions& options, std::vector<std::string>* several = nullptr);
/// --json, --no-progress (group "Output") and the hidden --sample-interval; add them last.
void add_output_options(CLI::App& cmd, CommonOptions& options);

/// --threads and --ops | --duration (group "Load"): every command that runs a load phase.
struct LoadOptions {
    std::size_t threads = 100;
    std::uint64_t ops = 100'000;
    std::string duration;
    CLI::Option* duration_option = nullptr;
};
struct LoadHelp {
    std::string_view threads, ops, duration;
};
void add_load_options(CLI::App& cmd, LoadOptions& options, const LoadHelp& help);
/// Sets spec.threads, spec.ops or spec.duration, and spec.sample_interval. Throws UsageFailure.
void apply_load_options(const LoadOptions& options, const CommonOptions& common, LoadSpec& spec);

/// The database a command runs against: --db, else $POOLBENCH_DB, else an embedded
/// SQLite file in a fresh mkdtemp directory that is removed when this object dies.
class DatabaseChoice {
public:
    /// Throws UsageFailure when a temporary directory cannot be made.
    [[nodiscard]] static DatabaseChoice resolve(const std::string& db_option);
    DatabaseChoice(DatabaseChoice&& other) noexcept;
    DatabaseChoice& operator=(DatabaseChoice&&) = delete;
    DatabaseChoice(const DatabaseChoice&) = delete;
    DatabaseChoice& operator=(const DatabaseChoice&) = delete;
    ~DatabaseChoice();

    /// The URL as given: may hold a password, so never print it (print DbUrl::redacted).
    [[nodiscard]] const std::string& url() const noexcept { return url_; }
    /// True for the embedded SQLite file in a fresh temporary directory (no --db, no $POOLBENCH_DB).
    [[nodiscard]] bool temporary() const noexcept { return !temp_dir_.empty(); }

private:
    DatabaseChoice(std::string url, std::string temp_dir) : url_(std::move(url)), temp_dir_(std::move(temp_dir)) {}
    std::string url_;
    std::string temp_dir_;
};

/// The driver for `db`; a failure to make it (e.g. an in-memory SQLite database that cannot
/// be created) is DatabaseUnusable (exit 3) with one redacted line.
[[nodiscard]] std::shared_ptr<Driver> open_driver(const DbUrl& db);
/// What open_driver() checks of `db` short of connecting (its parameters, as the backend
/// reads them): UsageFailure (exit 2) for one it rejects. For `run --check`.
void check_url_options(const DbUrl& db);

/// For commands with their own documents (compare, diagnose): `text` to stdout and `json`
/// to the --json FILE; with --json -, the JSON to stdout and the text to stderr. Throws
/// UsageFailure when the file cannot be written.
void emit_text_and_json(const std::string& text, const std::string& json, const std::string& json_option);

/// Writes the text report to stdout (stderr when --json - takes stdout) and the JSON,
/// JUnit and HTML reports where the options say (each by rename: report_files.hpp), then
/// disarms the error reports. An interrupted run gets its RunError (exit 130) here.
/// Returns the report's exit code (ok, failed, interrupted), or usage when a report file
/// cannot be written.
[[nodiscard]] ExitCode emit_report(Report report, const CommonOptions& options);

/// The live progress line on stderr, pgbench -P style. On a terminal it is redrawn in
/// place, cut to the terminal's width; with --progress D it is printed as one line every D
/// (also to a pipe or a CI log, as pgbench -P 5 does); --no-progress turns both off.
class ProgressLine {
public:
    explicit ProgressLine(bool no_progress);
    /// From the common options (--no-progress, --progress D). Throws UsageFailure.
    explicit ProgressLine(const CommonOptions& options);
    /// A run bounded by operations: the line shows how far it is and the time left.
    void set_ops_target(std::uint64_t ops) noexcept { ops_target_ = ops; }
    ProgressLine(const ProgressLine&) = delete;
    ProgressLine& operator=(const ProgressLine&) = delete;
    ~ProgressLine();
    [[nodiscard]] bool enabled() const noexcept { return enabled_; }
    /// Redraws the line (from the sampler thread).
    void update(const ProgressSample& sample);
    /// Clears the line so the report starts on a clean one. Idempotent.
    void finish();
    /// A callback for RunHooks::on_sample, or an empty function when disabled.
    [[nodiscard]] std::function<void(const ProgressSample&)> callback();

private:
    bool enabled_;
    bool drawn_ = false;
    std::chrono::milliseconds every_{0};  ///< > 0: one line per interval, not a redrawn one
    double last_printed_s_ = -1;
    std::uint64_t ops_target_ = 0;
};

/// Ctrl-C, the way pgbench users expect and a bit better: the first SIGINT/SIGTERM sets
/// interrupt_flag() (the run stops, reverts its faults and writes its report, exit 130);
/// a second abandons the run (no report) but still removes the temporary database
/// directory; a third while that takes time kills at once. The signals are blocked in
/// every thread started afterwards and taken on a thread of their own. Idempotent.
void install_interrupt_handler();
/// The hooks every running command gives its load: the progress line and Ctrl-C (the
/// interrupt handler is installed here).
[[nodiscard]] RunHooks command_hooks(ProgressLine& progress);

/// The load has begun: from now on the first Ctrl-C stops it gracefully (before, while
/// connecting or seeding, it ends the run at once with an error report, exit 130).
void mark_load_started() noexcept;

/// Waits `d` (--metrics-linger), ended early by the first SIGINT/SIGTERM, which then only
/// ends the wait (its message says so). Returns false when a signal ended it.
bool linger_unless_interrupted(std::chrono::milliseconds d);

/// The temporary directory a second Ctrl-C removes ("" = none).
void register_temp_dir(const std::string& dir);
[[nodiscard]] const std::atomic<bool>& interrupt_flag() noexcept;

/// A subcommand: registered on the app before parsing, run after.
struct Command {
    CLI::App* app = nullptr;
    std::function<ExitCode()> run;
};
[[nodiscard]] Command add_stress_command(CLI::App& app);
[[nodiscard]] Command add_soak_command(CLI::App& app);
[[nodiscard]] Command add_leak_command(CLI::App& app);
[[nodiscard]] Command add_compare_command(CLI::App& app);
[[nodiscard]] Command add_merge_command(CLI::App& app);  ///< cmd_merge.cpp
[[nodiscard]] Command add_diagnose_command(CLI::App& app);
[[nodiscard]] Command add_run_command(CLI::App& app);
[[nodiscard]] Command add_clean_command(CLI::App& app);
[[nodiscard]] Command add_scenarios_command(CLI::App& app);
[[nodiscard]] Command add_hold_lock_command(CLI::App& app);  ///< internal: the sqlite.lock fault's other process

/// The whole CLI: parse, dispatch, map every failure to one stderr line and an exit code.
[[nodiscard]] int run_cli(int argc, char** argv);

}  // namespace poolbench::cli

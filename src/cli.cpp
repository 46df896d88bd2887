// cli.cpp — the shared CLI plumbing and the dispatcher behind main().
#include "cli.hpp"
#include "report_files.hpp"

#include <poolbench/drivers.hpp>
#include <poolbench/error.hpp>
#include <poolbench/internal/duration.hpp>

#include "cli11.hpp"
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cerrno>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <vector>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <pthread.h>
#include <unistd.h>

#ifndef POOLBENCH_VERSION
#define POOLBENCH_VERSION "unknown"
#endif

namespace poolbench::cli {

// ---------------------------------------------------------------------------------------
// Durations.

namespace {

std::string duration_error(std::string_view text, std::string_view why) {
    return fmt::format("invalid duration '{}': {} (examples: 250ms, 30s, 10m, 1h)", text, why);
}

}  // namespace

std::string parse_duration_into(std::string_view text, std::chrono::milliseconds& out, bool allow_zero) {
    if (auto why = poolbench::internal::read_duration(text, out, {.allow_zero = allow_zero, .bare_number_is_ms = false});
        !why.empty()) {
        return duration_error(text, why);
    }
    return {};
}

std::chrono::milliseconds parse_duration(std::string_view text, std::string_view option) {
    std::chrono::milliseconds out{0};
    if (auto error = parse_duration_into(text, out, false); !error.empty()) {
        throw UsageFailure(fmt::format("{}: {}", option, error));
    }
    return out;
}

std::string check_finite(const std::string& text) {
    try {
        std::size_t used = 0;
        const double v = std::stod(text, &used);
        if (used == text.size() && std::isfinite(v)) return {};
    } catch (const std::exception&) {  // NOLINT(bugprone-empty-catch): reported below
    }
    return "'" + text + "' is not a finite number";
}

std::string check_duration(const std::string& text) {
    std::chrono::milliseconds ignored{0};
    return parse_duration_into(text, ignored, false);
}

// ---------------------------------------------------------------------------------------
// Common options.

void add_database_option(CLI::App& cmd, CommonOptions& options, std::vector<std::string>* several) {
    const std::string help = "Database URL: sqlite:///abs/path.db, sqlite://rel/path.db, sqlite::memory:, "
                             "postgresql://user:pass@host:port/db, mariadb://user:pass@host:port/db, null://";
    CLI::Option* db = several == nullptr
                          ? cmd.add_option("--db", options.db, help)
                          : cmd.add_option("--db", *several, help + " (repeat it to give one URL per shard)")
                                ->allow_extra_args(false)
                                ->type_name("URL");
    db->default_str("$POOLBENCH_DB, else a SQLite file in a new temporary directory")->group("Database");
}

namespace {
/// A parameter in the URL the backend rejects (an unknown name, sslmode=bogus): a bad URL
/// (exit 2), not an unusable database. The URL may have come from --db, a file or
/// $POOLBENCH_DB: the message names it, not a flag.
[[noreturn]] void bad_url_options(const DbUrl& db, const ConfigError& e) {
    const std::string what = e.what();
    throw UsageFailure(scrub(what.find(db.redacted) != std::string::npos
                                 ? what
                                 : fmt::format("database URL '{}': {}", db.redacted, what),
                             url_secrets(db.original)));
}
}  // namespace

void check_url_options(const DbUrl& db) {
    try {
        (void)make_driver(db);
    } catch (const ConfigError& e) {
        bad_url_options(db, e);
    } catch (const Error&) {
        // Not the URL's fault (an in-memory database that could not be made): the run says.
    }
}

std::shared_ptr<Driver> open_driver(const DbUrl& db) {
    try {
        return make_driver(db);
    } catch (const ConfigError& e) {
        bad_url_options(db, e);
    } catch (const Error& e) {
        throw DatabaseUnusable(
            unusable_message(db, e.what()));
    }
}

void add_load_options(CLI::App& cmd, LoadOptions& o, const LoadHelp& help) {
    cmd.add_option("--threads", o.threads, std::string(help.threads))
        ->check(CLI::Range(std::size_t{1}, std::size_t{10'000}))
        ->capture_default_str()
        ->group("Load");
    auto* ops = cmd.add_option("--ops", o.ops, std::string(help.ops))
                    ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1'000'000'000'000}))
                    ->capture_default_str()
                    ->group("Load");
    o.duration_option = cmd.add_option("--duration", o.duration, std::string(help.duration))
                            ->type_name("DURATION")
                            ->check(CLI::Validator(check_duration, "250ms|30s|10m|1h"))
                            ->group("Load");
    ops->excludes(o.duration_option);
    o.duration_option->excludes(ops);
}

void apply_load_options(const LoadOptions& o, const CommonOptions& common, LoadSpec& spec) {
    spec.threads = o.threads;
    if (o.duration_option != nullptr && o.duration_option->count() > 0) {
        spec.duration = parse_duration(o.duration, "--duration");
    } else {
        spec.ops = o.ops;
    }
    spec.sample_interval = parse_duration(common.sample_interval, "--sample-interval");
}

void add_output_options(CLI::App& cmd, CommonOptions& options) {
    options.json_option = cmd.add_option("--json", options.json, "Write the JSON report to FILE, or to stdout with '-'")
                              ->type_name("FILE|-")
                              ->group("Output");
    options.junit_option = cmd.add_option("--junit", options.junit,
                   "Write the expectations as JUnit XML to FILE (one test case each), for CI test reports")
        ->type_name("FILE")
        ->group("Output");
    options.html_option = cmd.add_option("--html", options.html,
                   "Write the report as one self-contained HTML page (timeline charts included) to FILE")
        ->type_name("FILE")
        ->group("Output");
    cmd.add_option("--progress", options.progress_every,
                   "Print a progress line every D (also when stderr is not a terminal, e.g. in CI logs), as pgbench -P does")
        ->type_name("DURATION")
        ->check(CLI::Validator(check_duration, "DURATION"))
        ->group("Output");
    cmd.add_flag("--no-progress", options.no_progress, "No live progress line (never shown when stderr is not a terminal)")
        ->group("Output");
    options.sample_interval_option =
        cmd.add_option("--sample-interval", options.sample_interval,
                       "Timeline sampling interval (default: the sampling rule: at least 20 points, at most 1 s apart)")
            ->check(CLI::Validator(check_duration, "DURATION"))
            ->group("");  // hidden
}

// ---------------------------------------------------------------------------------------
// The database choice.

DatabaseChoice DatabaseChoice::resolve(const std::string& db_option) {
    if (!db_option.empty()) return DatabaseChoice(db_option, {});
    if (const char* env = std::getenv("POOLBENCH_DB"); env != nullptr && *env != '\0') {
        return DatabaseChoice(env, {});
    }
    std::string base = "/tmp";
    if (const char* tmp = std::getenv("TMPDIR"); tmp != nullptr && *tmp != '\0') base = tmp;
    std::string pattern = base + "/poolbench-XXXXXX";
    std::vector<char> buffer(pattern.begin(), pattern.end());
    buffer.push_back('\0');
    if (::mkdtemp(buffer.data()) == nullptr) {
        throw UsageFailure(fmt::format("cannot create a temporary directory in {}: {} (set TMPDIR or pass --db)",
                                       base, std::strerror(errno)));
    }
    std::string dir(buffer.data());
    register_temp_dir(dir);  // a second Ctrl-C removes it too
    return DatabaseChoice(fmt::format("sqlite://{}/poolbench.db", dir), dir);
}

DatabaseChoice::DatabaseChoice(DatabaseChoice&& other) noexcept
    : url_(std::move(other.url_)), temp_dir_(std::exchange(other.temp_dir_, {})) {}

DatabaseChoice::~DatabaseChoice() {
    if (temp_dir_.empty()) return;
    register_temp_dir({});
    std::error_code ec;  // best effort: a leftover temp dir is not worth failing the run
    std::filesystem::remove_all(temp_dir_, ec);
}

// ---------------------------------------------------------------------------------------
// Report output.

void emit_text_and_json(const std::string& text, const std::string& json, const std::string& json_option) {
    disarm_error_reports();
    if (json_option == "-") {
        fmt::print(stderr, "{}", text);
        fmt::print("{}\n", json);
        return;
    }
    fmt::print("{}", text);
    std::fflush(stdout);
    if (json_option.empty()) return;
    if (auto error = write_atomically(json_option, json + "\n"); !error.empty()) {
        throw UsageFailure(fmt::format("--json: cannot write {}: {}", json_option, error));
    }
}

ExitCode emit_report(Report report, const CommonOptions& options) {
    if (report.interrupted && !report.error) {
        report.error = RunError{static_cast<int>(ExitCode::interrupted),
                                fmt::format("interrupted by a signal {:.1f} s into the run{}; the figures cover the part "
                                            "that ran",
                                            report.duration_s,
                                            report.interrupted_at.empty() ? "" : " (" + report.interrupted_at + ")")};
    }
    const bool json_to_stdout = options.json == "-";
    const std::string text = make_text_renderer()->render(report);
    std::FILE* text_out = json_to_stdout ? stderr : stdout;
    std::fputs(text.c_str(), text_out);
    std::fflush(text_out);
    disarm_error_reports();
    ExitCode code = report.error ? static_cast<ExitCode>(report.error->exit_code)
                    : report.passed() ? ExitCode::ok
                                      : ExitCode::failed;
    auto write = [&](const char* flag, const std::string& path, const Renderer& renderer) {
        if (!path.empty() && !write_report_output(flag, path, renderer.render(report))) code = ExitCode::usage;
    };
    write("--json", options.json, *make_json_renderer());
    write("--junit", options.junit, *make_junit_renderer());
    write("--html", options.html, *make_html_renderer());
    return code;
}

// ---------------------------------------------------------------------------------------
// Interrupts.

namespace {

std::atomic<bool> g_interrupted{false};
std::atomic<bool> g_load_started{false};
std::atomic<bool> g_lingering{false};

// Never destroyed: the detached signal thread may still be notifying when main returns
// and static destructors run.
std::mutex& linger_mutex() {
    static auto* mu = new std::mutex;
    return *mu;
}
std::condition_variable& linger_cv() {
    static auto* cv = new std::condition_variable;
    return *cv;
}

std::mutex& temp_dir_mutex() {
    static std::mutex mu;
    return mu;
}
std::string& temp_dir_registered() {
    static std::string dir;
    return dir;
}

void say(const char* text) noexcept {
    const std::size_t n = std::strlen(text);
    (void)!::write(STDERR_FILENO, text, n);
}

// SIGINT and SIGTERM are blocked in every thread and taken here, on a thread of their own,
// so the second one can do real work (remove a directory) that a signal handler cannot.
void remove_temp_dir() {
    std::string dir;
    {
        std::lock_guard lock(temp_dir_mutex());
        dir = temp_dir_registered();
    }
    if (!dir.empty()) {
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }
}

/// The same signal sent twice at once is one interrupt: GNU timeout (how CI bounds a run)
/// signals poolbench and then its process group, and a held Ctrl-C repeats. A repeat from
/// the same sender within 250 ms does not count as the "second Ctrl-C" that abandons.
bool is_echo(const siginfo_t& info, const siginfo_t& last, std::chrono::steady_clock::time_point last_at) {
    return info.si_signo == last.si_signo && info.si_pid == last.si_pid && info.si_code == last.si_code &&
           std::chrono::steady_clock::now() - last_at < std::chrono::milliseconds(250);
}

void signal_thread(sigset_t signals) {
    int seen = 0;
    siginfo_t last{};
    auto last_at = std::chrono::steady_clock::time_point{};
    while (true) {
        siginfo_t info{};
        if (::sigwaitinfo(&signals, &info) < 0) continue;
        if (seen > 0 && is_echo(info, last, last_at)) continue;
        last = info;
        last_at = std::chrono::steady_clock::now();
        if (++seen == 1 && g_lingering.load()) {
            // The run is over and its report written: the signal only ends --metrics-linger.
            // Said before the main thread is woken, which then exits (and would cut it off).
            say("poolbench: interrupted: the metrics endpoint stops now\n");
            {
                std::lock_guard lock(linger_mutex());
                g_interrupted.store(true);
            }
            linger_cv().notify_all();
            continue;
        }
        if (seen == 1 && !g_load_started.load()) {
            // Nothing ran yet (connecting, creating or seeding tables, which may take long):
            // there is nothing to stop gracefully. The report says so; the run ends now.
            g_interrupted.store(true);
            say("poolbench: interrupted before the load began\n");
            write_error_reports(static_cast<int>(ExitCode::interrupted),
                                "interrupted before the load began (while connecting to the database or preparing "
                                "its tables)");
            remove_temp_dir();
            std::_Exit(static_cast<int>(ExitCode::interrupted));
        }
        if (seen == 1) {
            g_interrupted.store(true);
            say("poolbench: interrupted: stopping, reverting faults and writing the report (Ctrl-C again to "
                "abandon it)\n");
            continue;
        }
        // The second: abandon the run, but leave no temporary database behind, and no stale
        // report that could pass for this run's (an error report replaces it, unless the
        // final reports are already being written). A third (while that takes time) kills
        // at once: the default action, unblocked here only.
        ::signal(SIGINT, SIG_DFL);
        ::signal(SIGTERM, SIG_DFL);
        ::pthread_sigmask(SIG_UNBLOCK, &signals, nullptr);
        remove_temp_dir();
        write_error_reports(static_cast<int>(ExitCode::interrupted),
                            "abandoned by a second interrupt before the report was written; no figures were kept");
        say("poolbench: abandoned: the run's figures were not written\n");
        std::_Exit(static_cast<int>(ExitCode::interrupted));
    }
}

}  // namespace

void install_interrupt_handler() {
    static std::once_flag once;
    std::call_once(once, [] {
        sigset_t signals;
        sigemptyset(&signals);
        sigaddset(&signals, SIGINT);
        sigaddset(&signals, SIGTERM);
        // Threads started from here on (workers, the pool's housekeeper) inherit the mask.
        ::pthread_sigmask(SIG_BLOCK, &signals, nullptr);
        std::thread(signal_thread, signals).detach();
    });
}

void mark_load_started() noexcept { g_load_started.store(true); }

bool linger_unless_interrupted(std::chrono::milliseconds d) {
    std::unique_lock lock(linger_mutex());
    g_lingering.store(true);
    const bool signalled = linger_cv().wait_for(lock, d, [] { return g_interrupted.load(); });
    g_lingering.store(false);
    return !signalled;
}

RunHooks command_hooks(ProgressLine& progress) {
    install_interrupt_handler();
    RunHooks hooks;
    hooks.on_sample = progress.callback();
    hooks.cancel = &interrupt_flag();
    return hooks;
}

void register_temp_dir(const std::string& dir) {
    std::lock_guard lock(temp_dir_mutex());
    temp_dir_registered() = dir;
}

const std::atomic<bool>& interrupt_flag() noexcept { return g_interrupted; }

// ---------------------------------------------------------------------------------------
// Dispatch.

namespace {

std::string one_line(std::string text) {
    std::replace(text.begin(), text.end(), '\n', ' ');
    while (!text.empty() && (text.back() == ' ' || text.back() == '.')) text.pop_back();
    return text;
}

}  // namespace

int run_cli(int argc, char** argv) {
    // A report pipe or FIFO whose reader went away (--json >(jq .), a CI step that stopped
    // reading) makes write() fail with EPIPE, which the report writer says, instead of
    // killing the process silently before its other reports are written. Before any thread.
    std::signal(SIGPIPE, SIG_IGN);
    // Any password on the command line is scrubbed from every error line we print, even
    // when CLI11 echoes an argument it did not expect.
    std::vector<std::string> secrets;
    for (int i = 1; i < argc; ++i) {
        for (auto& s : url_secrets(argv[i])) secrets.push_back(std::move(s));
    }
    auto fail = [&](ExitCode code, const std::string& message) {
        const std::string line = scrub(one_line(message), secrets);
        fmt::print(stderr, "poolbench: {}\n", line);
        // Reports already armed say what went wrong instead of staying stale or empty.
        write_error_reports(static_cast<int>(code), line);
        return static_cast<int>(code);
    };

    CLI::App app{"poolbench: load and fault tool for the poolbench connection pool (SQLite, PostgreSQL, MariaDB / MySQL)",
                 "poolbench"};
    app.set_version_flag("--version", std::string("poolbench ") + POOLBENCH_VERSION);
    app.require_subcommand(1);
    app.footer(
        "Exit codes: 0 every expectation held, 1 an expectation failed (diagnose: a finding is a problem), 2 bad usage "
        "or URL, "
        "3 the database could not be used, 130 interrupted (Ctrl-C).");

    std::vector<Command> commands;
    commands.push_back(add_stress_command(app));
    commands.push_back(add_run_command(app));
    commands.push_back(add_scenarios_command(app));
    commands.push_back(add_soak_command(app));
    commands.push_back(add_leak_command(app));
    commands.push_back(add_diagnose_command(app));
    commands.push_back(add_compare_command(app));
    commands.push_back(add_merge_command(app));
    commands.push_back(add_clean_command(app));
    commands.push_back(add_hold_lock_command(app));

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version: stdout, exit 0
        std::string hint = "poolbench --help";
        const CLI::App* parsed = nullptr;
        for (const auto& c : commands) {
            if (c.app->parsed()) {
                hint = fmt::format("poolbench {} --help", c.app->get_name());
                parsed = c.app;
            }
        }
        if (parsed != nullptr && dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr) {
            if (const std::string unknown = unknown_option(app, *parsed, argc, argv); !unknown.empty()) {
                return fail(ExitCode::usage, fmt::format("{} (see '{}')", unknown, hint));
            }
        }
        // "poolbench strss": an unknown command, not "2 extra arguments".
        const bool any_command = std::any_of(commands.begin(), commands.end(), [](const Command& c) { return c.app->parsed(); });
        if (!any_command && argc > 1 && argv[1][0] != '-') {
            const std::string typed = argv[1];
            std::string nearest;
            std::size_t best = 3;
            for (const auto& c : commands) {
                const std::string& name = c.app->get_name();
                if (name.rfind("__", 0) == 0) continue;
                if (const std::size_t d = edit_distance(typed, name); d < best) {
                    best = d;
                    nearest = name;
                }
            }
            return fail(ExitCode::usage, fmt::format("unknown command '{}'{} (see 'poolbench --help')", typed,
                                                     nearest.empty() ? "" : fmt::format("; did you mean '{}'?", nearest)));
        }
        return fail(ExitCode::usage, fmt::format("{} (see '{}')", one_line(e.what()), hint));
    }

    try {
        for (auto& c : commands) {
            if (c.app->parsed()) return static_cast<int>(c.run());
        }
        return fail(ExitCode::usage, "no command given (see 'poolbench --help')");
    } catch (const UnsafeReportPath& e) {
        disarm_error_reports();  // the targets themselves are the problem: write nothing
        return fail(ExitCode::usage, e.what());
    } catch (const UsageFailure& e) {
        return fail(ExitCode::usage, e.what());
    } catch (const ConfigError& e) {
        return fail(ExitCode::usage, e.what());
    } catch (const DatabaseUnusable& e) {
        return fail(ExitCode::database, e.what());
    } catch (const Error& e) {
        return fail(ExitCode::database, e.what());
    } catch (const std::exception& e) {
        return fail(ExitCode::failed, fmt::format("internal error: {}", e.what()));
    }
}

}  // namespace poolbench::cli

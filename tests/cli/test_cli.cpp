// test_cli.cpp — the poolbench executable end to end: exit codes, stderr lines, the JSON
// report's fields and types, write verification, baseline, redaction, progress.
//
// Each test runs the built binary (POOLBENCH_BIN) with posix_spawn, stdout and stderr
// redirected to files in a fresh temporary directory (also its TMPDIR and working
// directory), and POOLBENCH_DB removed from its environment. Runs are kept to a few
// thousand operations so the suite stays fast on two cores.
#include "cli_support.hpp"

#include <sqlite3.h>

using namespace clitest;  // NOLINT(google-build-using-namespace): test file
using nlohmann::json;
namespace fs = std::filesystem;

TEST_CASE("an unknown flag exits 2 with one line on stderr", "[cli]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"stress", "--no-such-flag"});
    CHECK(r.code == 2);
    CHECK(count_lines(r.err) == 1);
    CHECK(r.err.find("--no-such-flag") != std::string::npos);
    CHECK(r.out.empty());
}

TEST_CASE("no command exits 2", "[cli]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {});
    CHECK(r.code == 2);
    CHECK(count_lines(r.err) == 1);
}

TEST_CASE("numeric options are range-checked", "[cli]") {
    TempDir dir;
    for (const auto& args : std::vector<std::vector<std::string>>{{"--threads", "0"},
                                                                    {"--threads", "10001"},
                                                                    {"--pool-size", "0"},
                                                                    {"--ops", "0"},
                                                                    {"--write-ratio", "1.5"},
                                                                    {"--threads", "many"}}) {
        INFO(args[0] << " " << args[1]);
        const auto r = run_in(dir.path(), {"stress", "--db", "null://", args[0], args[1]});
        CHECK(r.code == 2);
        CHECK(count_lines(r.err) == 1);
        CHECK(r.err.find(args[0]) != std::string::npos);
    }
}

TEST_CASE("a bad duration exits 2 naming the value", "[cli]") {
    TempDir dir;
    for (const char* bad : {"5parsecs", "10", "ms", "0s", "-1s", "1.s", "0.0001s"}) {
        INFO(bad);
        const auto r = run_in(dir.path(), {"stress", "--db", "null://", "--duration", bad});
        CHECK(r.code == 2);
        CHECK(count_lines(r.err) == 1);
    }
    const auto r = run_in(dir.path(), {"stress", "--db", "null://", "--duration", "5parsecs"});
    CHECK(r.err.find("5parsecs") != std::string::npos);
    const auto t = run_in(dir.path(), {"stress", "--db", "null://", "--acquire-timeout", "soon"});
    CHECK(t.code == 2);
    // A fraction is a valid duration (1.5s), rounded to milliseconds.
    const auto frac = run_in(dir.path(), {"stress", "--db", "null://", "--duration", "0.3s", "--threads", "1",
                                          "--no-progress", "--json", "-"});
    REQUIRE(frac.code == 0);
    CHECK(parse_json(frac.out).at("config").at("duration_s") == 0.3);
}

TEST_CASE("stress --ops and --duration are mutually exclusive", "[cli]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"stress", "--db", "null://", "--ops", "10", "--duration", "1s"});
    CHECK(r.code == 2);
    CHECK(count_lines(r.err) == 1);
}

TEST_CASE("stress --write-ratio applies only to the mixed workload", "[cli]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"stress", "--db", "null://", "--write-ratio", "0.5"});
    CHECK(r.code == 2);
    CHECK(r.err.find("--write-ratio") != std::string::npos);
}

TEST_CASE("stress --min-idle above --pool-size exits 2", "[cli]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"stress", "--db", "null://", "--pool-size", "2", "--min-idle", "3"});
    CHECK(r.code == 2);
    CHECK(count_lines(r.err) == 1);
}

TEST_CASE("a bad URL exits 2", "[cli]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"stress", "--db", "oracle://x"});
    CHECK(r.code == 2);
    CHECK(count_lines(r.err) == 1);
    CHECK(r.out.empty());
}

TEST_CASE("a URL parameter the backend rejects exits 2, not 3", "[cli]") {
    TempDir dir;
    for (const char* q : {"sslmode=bogus", "sslmdoe=disable", "connect_timeout=soon"}) {
        INFO(q);
        // Port 1: were it taken for a database problem, the connect would fail with exit 3.
        const auto r = run_in(dir.path(), {"stress", "--db", std::string("postgresql://u:hunter2@127.0.0.1:1/db?") + q,
                                           "--ops", "10"});
        CHECK(r.code == 2);
        CHECK(count_lines(r.err) == 1);
        CHECK(r.err.find(std::string(q).substr(0, std::string(q).find('='))) != std::string::npos);
        CHECK(r.err.find("hunter2") == std::string::npos);
    }
}

TEST_CASE("an unopenable SQLite path exits 3 naming the path", "[cli]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"stress", "--db", "sqlite:///nonexistent-dir/x.db", "--ops", "10"});
    CHECK(r.code == 3);
    CHECK(count_lines(r.err) == 1);
    CHECK(r.err.find("/nonexistent-dir/x.db") != std::string::npos);
    CHECK(r.err.rfind("poolbench: ", 0) == 0);
}

TEST_CASE("a password in the URL never appears in any output", "[cli]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"stress", "--db", "postgresql://u:hunter2@127.0.0.1:1/db", "--ops", "10",
                                       "--acquire-timeout", "2s"});
    CHECK((r.code == 2 || r.code == 3));
    CHECK(r.out.find("hunter2") == std::string::npos);
    CHECK(r.err.find("hunter2") == std::string::npos);
    // Even when CLI11 echoes an unexpected argument.
    const auto e = run_in(dir.path(), {"stress", "postgresql://u:hunter2@127.0.0.1:1/db"});
    CHECK(e.code == 2);
    CHECK(e.err.find("hunter2") == std::string::npos);
}

TEST_CASE("stress --help exits 0 and groups options by purpose", "[cli]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"stress", "--help"});
    CHECK(r.code == 0);
    for (const char* group : {"Database:", "Load:", "Pool:", "Workload:", "Output:"}) {
        INFO(group);
        CHECK(r.out.find(group) != std::string::npos);
    }
    CHECK(r.out.find("--threads") != std::string::npos);
    CHECK(r.out.find("=100") != std::string::npos);  // defaults are shown
    CHECK(r.out.find("--sample-interval") == std::string::npos);  // hidden
    const auto top = run_in(dir.path(), {"--help"});
    CHECK(top.code == 0);
    CHECK(top.out.find("stress") != std::string::npos);
}

TEST_CASE("stress --version prints the version", "[cli]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"--version"});
    CHECK(r.code == 0);
    CHECK(std::regex_search(r.out, std::regex(R"(^poolbench \d+\.\d+\.\d+)")));
}

TEST_CASE("null backend: the JSON report has every DESIGN.md field", "[cli]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"stress", "--db", "null://", "--ops", "2000", "--threads", "8", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);

    CHECK(j.at("schema") == "poolbench/report@1");
    CHECK(j.at("command") == "stress");
    CHECK(j.at("scenario").is_null());
    CHECK(j.at("database").at("backend") == "null");
    CHECK(j.at("database").at("url").is_string());

    const json& config = j.at("config");
    require_number_fields(config, {"threads", "pool_max", "pool_min_idle", "acquire_timeout_ms", "ops", "write_ratio"});
    CHECK(config.at("workload") == "select1");
    CHECK(config.at("threads") == 8);
    CHECK(config.at("ops") == 2000);
    CHECK(config.at("pool_max") == 10);
    CHECK(config.at("acquire_timeout_ms") == 30000);

    require_number_fields(j, {"duration_s", "throughput_ops_s"});
    require_number_fields(j.at("ops"), {"total", "ok", "failed", "timed_out"});
    CHECK(j.at("ops").at("total") == 2000);
    CHECK(j.at("ops").at("ok") == 2000);
    CHECK(j.at("ops").at("failed") == 0);
    CHECK(j.at("ops").at("timed_out") == 0);
    CHECK(j.at("throughput_ops_s").get<double>() > 0);

    require_latency(j.at("latency_us"));
    CHECK(j.at("latency_us").at("op").at("count") == 2000);

    const json& pool = j.at("pool");
    require_number_fields(pool, {"created", "destroyed", "hits", "misses", "hit_ratio", "waits", "timeouts",
                                 "peak_active", "peak_total", "max_size", "validation_failures", "reconnects"});
    require_number_fields(pool.at("destroyed_by_reason"),
                          {"broken", "validation", "reset", "idle", "lifetime", "shutdown", "surplus", "evicted"});
    require_number_fields(pool, {"overloaded", "circuit_rejections", "transaction_retries", "keepalives", "leaks_detected", "leaks_returned_late",
                                 "leaks_reclaimed"});
    CHECK(pool.at("reconnects") == 0);
    const json& breaker = pool.at("breaker");
    CHECK(breaker.at("state") == "closed");
    CHECK(breaker.at("transitions") == 0);
    CHECK(breaker.at("history").is_array());
    CHECK(r.err.find("breaker:") == std::string::npos);  // shown only after a transition
    CHECK(pool.at("peak_total").get<int>() <= pool.at("max_size").get<int>());
    CHECK(pool.at("max_size") == 10);
    CHECK(pool.at("hits").get<int>() + pool.at("misses").get<int>() == 2000);

    CHECK(j.at("leaks").is_array());
    CHECK(j.at("leaks_tracked") == false);
    CHECK_FALSE(j.contains("leak_check"));
    CHECK(r.err.find("leaks: tracking not enabled") != std::string::npos);
    CHECK_FALSE(j.contains("writes"));  // select1 does not write
    REQUIRE(j.at("timeline").is_array());
    REQUIRE_FALSE(j.at("timeline").empty());
    for (const auto& point : j.at("timeline")) require_number_fields(point, {"t_s", "ops_s", "active", "idle", "waiting", "p99_us"});

    REQUIRE(j.at("expectations").is_array());
    CHECK(j.at("expectations").size() >= 4);
    for (const auto& e : j.at("expectations")) {
        CHECK(e.at("name").is_string());
        CHECK(e.contains("expected"));
        CHECK(e.at("actual").is_number());
        CHECK(e.at("passed") == true);
    }
    CHECK_FALSE(j.contains("baseline"));
    CHECK(j.at("errors").is_array());
    CHECK(j.at("verdict") == "pass");

    // With --json - the text report moves to stderr.
    CHECK(r.err.find("verdict: PASS") != std::string::npos);
}

TEST_CASE("stress --json FILE writes the file and keeps the text on stdout", "[cli]") {
    TempDir dir;
    const auto path = (dir.path() / "report.json").string();
    const auto r = run_in(dir.path(), {"stress", "--db", "null://", "--ops", "500", "--threads", "4", "--json", path});
    REQUIRE(r.code == 0);
    CHECK(r.out.find("verdict: PASS") != std::string::npos);
    const json j = parse_json(slurp(path));
    CHECK(j.at("ops").at("total") == 500);
    const auto bad = run_in(dir.path(), {"stress", "--db", "null://", "--ops", "10", "--json", "/nonexistent-dir/r.json"});
    CHECK(bad.code == 2);
}

TEST_CASE("write workload on SQLite: every acknowledged write is verified", "[cli]") {
    TempDir dir;
    const std::string url = "sqlite://" + (dir.path() / "w.db").string();
    const auto r = run_in(dir.path(), {"stress", "--db", url, "--workload", "write", "--ops", "1500", "--threads", "8",
                                       "--pool-size", "4", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    const json& w = j.at("writes");
    require_number_fields(w, {"acknowledged", "verified", "lost"});
    CHECK(w.at("lost") == 0);
    CHECK(w.at("acknowledged") == 1500);
    CHECK(w.at("verified") == 1500);
    CHECK(j.at("config").at("workload") == "write");
    CHECK(j.at("verdict") == "pass");

    // A second run counts only its own rows.
    const auto again = run_in(dir.path(), {"stress", "--db", url, "--workload", "write", "--ops", "300", "--threads",
                                           "4", "--json", "-"});
    REQUIRE(again.code == 0);
    CHECK(parse_json(again.out).at("writes").at("verified") == 300);
}

TEST_CASE("read and mixed workloads run on a seeded SQLite table", "[cli]") {
    TempDir dir;
    const std::string url = "sqlite://" + (dir.path() / "r.db").string();
    const auto r = run_in(dir.path(), {"stress", "--db", url, "--workload", "read", "--rows", "500", "--ops", "2000",
                                       "--threads", "8", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    CHECK(j.at("ops").at("ok") == 2000);
    CHECK(j.at("config").at("rows") == 500);

    const auto m = run_in(dir.path(), {"stress", "--db", url, "--workload", "mixed", "--write-ratio", "0.5", "--rows",
                                       "500", "--ops", "1000", "--threads", "8", "--json", "-"});
    INFO(m.err);
    REQUIRE(m.code == 0);
    const json mj = parse_json(m.out);
    CHECK(mj.at("ops").at("ok") == 1000);
    const auto acknowledged = mj.at("writes").at("acknowledged").get<int>();
    CHECK(acknowledged > 0);
    CHECK(acknowledged < 1000);
    CHECK(mj.at("writes").at("verified") == acknowledged);
}

TEST_CASE("stress --baseline on SQLite reports a speedup over connect-per-operation", "[cli]") {
    TempDir dir;
    const std::string url = "sqlite://" + (dir.path() / "b.db").string();
    const auto r = run_in(dir.path(), {"stress", "--db", url, "--ops", "3000", "--threads", "8", "--baseline", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    REQUIRE(j.contains("baseline"));
    const json& b = j.at("baseline");
    require_number_fields(b, {"throughput_ops_s", "speedup"});
    require_latency(b.at("latency_us"));
    CHECK(b.at("ops").at("ok") == 3000);
    CHECK(b.at("speedup").get<double>() > 1.0);
    CHECK(r.err.find("speedup") != std::string::npos);
}

TEST_CASE("the default database is a temporary SQLite file, removed at exit", "[cli]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"stress", "--ops", "200", "--threads", "4", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    CHECK(j.at("database").at("backend") == "sqlite");
    CHECK(j.at("database").at("url").get<std::string>().find(dir.path().string()) != std::string::npos);
    for (const auto& entry : fs::directory_iterator(dir.path())) {
        INFO(entry.path());
        CHECK(entry.path().filename().string().rfind("poolbench-", 0) != 0);
    }
}

TEST_CASE("a --duration run stops by itself and records a timeline, with no progress when piped", "[cli]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"stress", "--db", "null://", "--duration", "600ms", "--threads", "4",
                                       "--sample-interval", "100ms", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    CHECK(j.at("config").at("duration_s").get<double>() == Approx(0.6));
    CHECK_FALSE(j.at("config").contains("ops"));
    CHECK(j.at("duration_s").get<double>() >= 0.6);
    CHECK(j.at("duration_s").get<double>() < 10.0);
    CHECK(j.at("timeline").size() >= 5);
    CHECK(r.err.find("progress:") == std::string::npos);
}

TEST_CASE("stress --leak-threshold tracks leaks and expects none", "[cli][leak]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"stress", "--db", "null://", "--ops", "2000", "--threads", "8",
                                       "--leak-threshold", "5s", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    CHECK(j.at("leaks_tracked") == true);
    CHECK(j.at("leaks").empty());
    CHECK(j.at("config").at("leak_threshold_ms") == 5000);
    CHECK(j.at("pool").at("leaks_detected") == 0);
    bool expectation = false;
    for (const auto& e : j.at("expectations")) {
        if (e.at("name") == "pool.leaks_detected == 0") expectation = e.at("passed") == true;
    }
    CHECK(expectation);
    CHECK(r.err.find("tracking not enabled") == std::string::npos);
    CHECK(r.err.find("leaks: none") != std::string::npos);

    const auto bad = run_in(dir.path(), {"stress", "--db", "null://", "--leak-threshold", "soon"});
    CHECK(bad.code == 2);
    CHECK(count_lines(bad.err) == 1);
    CHECK(bad.err.find("--leak-threshold") != std::string::npos);
}

TEST_CASE("clean drops poolbench's tables and nothing else, and never creates a database", "[cli][sqlite]") {
    TempDir dir;
    const std::string db = "sqlite://" + (dir.path() / "c.db").string();
    REQUIRE(run_in(dir.path(), {"stress", "--db", db, "--workload", "mixed", "--rows", "100", "--ops", "50",
                                "--no-progress"})
                .code == 0);
    // A table of the user's, in the same file.
    sqlite3* h = nullptr;
    REQUIRE(sqlite3_open((dir.path() / "c.db").c_str(), &h) == SQLITE_OK);
    REQUIRE(sqlite3_exec(h, "CREATE TABLE orders(id INTEGER)", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(h);

    const auto dry = run_in(dir.path(), {"clean", "--db", db, "--dry-run"});
    CHECK(dry.code == 0);
    CHECK(dry.out.find("would drop poolbench_accounts (100 rows)") != std::string::npos);
    const auto r = run_in(dir.path(), {"clean", "--db", db});
    CHECK(r.code == 0);
    CHECK(r.out.find("dropped poolbench_writes") != std::string::npos);
    REQUIRE(sqlite3_open((dir.path() / "c.db").c_str(), &h) == SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(h, "SELECT group_concat(name) FROM sqlite_schema WHERE type = 'table'", -1, &st,
                               nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    CHECK(std::string(reinterpret_cast<const char*>(sqlite3_column_text(st, 0))) == "orders");
    sqlite3_finalize(st);
    sqlite3_close(h);
    CHECK(run_in(dir.path(), {"clean", "--db", db}).out.find("nothing to drop") != std::string::npos);

    const auto none = run_in(dir.path(), {"clean"});
    CHECK(none.code == 2);
    CHECK(none.err.find("which database?") != std::string::npos);
    const auto missing = run_in(dir.path(), {"clean", "--db", "sqlite://" + (dir.path() / "typo.db").string()});
    CHECK(missing.code == 3);
    CHECK_FALSE(fs::exists(dir.path() / "typo.db"));
}

TEST_CASE("progress: --progress D prints one line per interval, also to a pipe, and an --ops run shows how far it is",
          "[cli]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"stress", "--db", "null://", "--threads", "2", "--duration", "1s",
                                       "--progress", "200ms"});
    REQUIRE(r.code == 0);
    std::size_t lines = 0;
    for (std::size_t at = r.err.find("progress: "); at != std::string::npos; at = r.err.find("progress: ", at + 1)) {
        ++lines;
    }
    CHECK(lines >= 4);
    CHECK(lines <= 6);
    CHECK(r.err.find('\r') == std::string::npos);  // lines, not a line redrawn in place
    const auto ops = run_in(dir.path(), {"stress", "--db", "null://", "--threads", "1", "--ops", "3000000",
                                         "--progress", "100ms"});
    REQUIRE(ops.code == 0);
    CHECK(ops.err.find("/3000000 ops (") != std::string::npos);
    // Without --progress and with stderr not a terminal: no progress at all.
    const auto quiet = run_in(dir.path(), {"stress", "--db", "null://", "--ops", "100"});
    CHECK(quiet.err.find("progress:") == std::string::npos);
    const auto bad = run_in(dir.path(), {"stress", "--db", "null://", "--progress", "soon"});
    CHECK(bad.code == 2);
}

TEST_CASE("a write workload on a read-only SQLite URL is refused before it runs", "[cli][sqlite]") {
    TempDir dir;
    const std::string db = "sqlite://" + (dir.path() / "r.db").string();
    REQUIRE(run_in(dir.path(), {"stress", "--db", db, "--workload", "read", "--rows", "100", "--ops", "10",
                                "--no-progress"})
                .code == 0);
    for (const char* option : {"?mode=ro", "?immutable=1"}) {
        INFO(option);
        const auto w = run_in(dir.path(), {"stress", "--db", db + option, "--workload", "write", "--ops", "10"});
        CHECK(w.code == 2);
        CHECK(count_lines(w.err) == 1);
        CHECK(w.err.find("opens the database read-only") != std::string::npos);
        const auto r = run_in(dir.path(), {"stress", "--db", db + option, "--workload", "read", "--rows", "100",
                                           "--ops", "100", "--no-progress"});
        CHECK(r.code == 0);
    }
}

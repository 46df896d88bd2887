// test_cli_check.cpp — `run --check` as a CI gate: without a database it validates the file
// (commands and replicas come at run time); with --db it validates the invocation as the run
// would, short of connecting, so a gate that passes is a run that does not exit 2.
#include "cli_support.hpp"

using namespace clitest;  // NOLINT(google-build-using-namespace): test file

TEST_CASE("run --check: with a database given it checks the invocation as the run would", "[cli][run]") {
    TempDir dir;
    const std::string pg = "postgresql://u:secretpw@127.0.0.1:1/db";  // never connected to
    // The file alone: valid.
    CHECK(run_in(dir.path(), {"run", "--check", "server-restart-postgres"}).code == 0);
    // With --db: the restart command it needs is missing, as the run would say.
    const auto no_command = run_in(dir.path(), {"run", "--check", "server-restart-postgres", "--db", pg});
    CHECK(no_command.code == 2);
    CHECK_THAT(no_command.err, Catch::Contains("pass --restart-command CMD"));
    CHECK(count_lines(no_command.err) == 1);
    CHECK(no_command.err.find("secretpw") == std::string::npos);
    const auto given = run_in(dir.path(), {"run", "--check", "server-restart-postgres", "--db", pg, "--restart-command", "true"});
    CHECK(given.code == 0);
    CHECK_THAT(given.out, Catch::Contains("is valid"));
    // A replica fault with a database but no replicas.
    const auto replicas = run_in(dir.path(), {"run", "--check", "replica-failover-postgres", "--db", pg});
    CHECK(replicas.code == 2);
    CHECK_THAT(replicas.err, Catch::Contains("needs a run with replicas"));
}

TEST_CASE("run --check and the commands: a bad or empty --metrics-addr exits 2", "[cli][run][metrics]") {
    TempDir dir;
    for (const char* addr : {"localhost:abc", "127.0.0.1:99999", "127.0.0.1:"}) {
        INFO(addr);
        const auto r = run_in(dir.path(), {"run", "--check", "lock-recovery-sqlite", "--metrics-addr", addr});
        CHECK(r.code == 2);
        CHECK_THAT(r.err, Catch::Contains("--metrics-addr"));
        CHECK(count_lines(r.err) == 1);
    }
    // Given empty: an error, not a run that silently serves nothing.
    const auto empty = run_in(dir.path(), {"stress", "--db", "null://", "--ops", "10", "--metrics-addr", ""});
    CHECK(empty.code == 2);
    CHECK_THAT(empty.err, Catch::Contains("--metrics-addr: give HOST:PORT or PORT"));
}

TEST_CASE("run --check: a --set that puts a fault outside its phase is named, not the file's line", "[cli][run]") {
    TempDir dir;
    const auto shorter = run_in(dir.path(), {"run", "--check", "lost-replies", "--set", "phase.load.duration=2s"});
    CHECK(shorter.code == 2);
    CHECK_THAT(shorter.err, Catch::StartsWith("poolbench: --set phase.load.duration=2s: the lost_replies fault ends at"));
    const auto later = run_in(dir.path(), {"run", "--check", "lost-replies", "--set", "phase.load.fault.1.at=7s"});
    CHECK(later.code == 2);
    CHECK_THAT(later.err, Catch::StartsWith("poolbench: --set phase.load.fault.1.at=7s: the lost_replies fault starts at"));
}

TEST_CASE("run --check: two in-process faults of one kind that overlap are refused", "[cli][run]") {
    TempDir dir;
    const std::string phase = "[[phase]]\nname = \"load\"\nthreads = 2\nduration = \"3s\"\n";
    const std::string lost = "[[phase.fault]]\nkind = \"lost_replies\"\n";
    // The second ends first: it would end the first too (a user test saw that).
    write_file(dir.path() / "two.toml", phase + lost + "at = \"300ms\"\nfor = \"1500ms\"\n" + lost +
                                            "at = \"500ms\"\nfor = \"500ms\"\n");
    const auto r = run_in(dir.path(), {"run", "--check", "./two.toml"});
    CHECK(r.code == 2);
    CHECK(count_lines(r.err) == 1);
    CHECK_THAT(r.err, Catch::Contains("two.toml:11:6: lost_replies faults 1 and 2 of phase 'load' overlap "
                                      "(300-1800 ms and 500-1000 ms)"));
    // Back to back, or of different kinds at once: valid.
    write_file(dir.path() / "apart.toml", phase + lost + "at = \"300ms\"\nfor = \"500ms\"\n" + lost +
                                              "at = \"800ms\"\nfor = \"500ms\"\n");
    CHECK(run_in(dir.path(), {"run", "--check", "./apart.toml"}).code == 0);
    write_file(dir.path() / "mixed.toml", phase + lost + "at = \"300ms\"\nfor = \"1500ms\"\n" +
                                              "[[phase.fault]]\nkind = \"latency\"\nlatency = \"1ms\"\nat = \"500ms\"\nfor = \"500ms\"\n");
    CHECK(run_in(dir.path(), {"run", "--check", "./mixed.toml"}).code == 0);
}

TEST_CASE("run --check: a URL parameter the backend rejects exits 2 as the run would", "[cli][run]") {
    TempDir dir;
    struct Case {
        const char* scenario;
        std::string url;
        const char* says;
    };
    const std::vector<Case> cases{
        {"lost-replies", "sqlite://" + (dir.path() / "x.db").string() + "?busy_timeout=abc", "busy_timeout"},
        {"lost-replies", "postgresql://u:secretpw@127.0.0.1:1/db?statement_timeout=abc", "invalid statement_timeout 'abc'"},
        {"lost-replies", "mariadb://u:secretpw@127.0.0.1:1/db?ssl_mode=bogus", "ssl_mode"},
        {"lost-replies", "mariadb://u:secretpw@127.0.0.1:1/db?bogus=1", "bogus"},
    };
    for (const auto& c : cases) {
        INFO(c.url);
        const auto check = run_in(dir.path(), {"run", "--check", c.scenario, "--db", c.url});
        CHECK(check.code == 2);
        CHECK(count_lines(check.err) == 1);
        CHECK_THAT(check.err, Catch::Contains(c.says));
        CHECK(check.err.find("secretpw") == std::string::npos);
        // The file's [database] url is checked the same way, and not called --db.
        write_file(dir.path() / "own.toml", "[database]\nurl = \"" + c.url +
                                                "\"\n[[phase]]\nname = \"load\"\nthreads = 1\nduration = \"1s\"\n");
        const auto file = run_in(dir.path(), {"run", "--check", "./own.toml"});
        CHECK(file.code == 2);
        CHECK_THAT(file.err, Catch::Contains(c.says));
        CHECK(file.err.find("--db") == std::string::npos);
        CHECK(file.err.find("secretpw") == std::string::npos);
    }
    CHECK_FALSE(fs::exists(dir.path() / "x.db"));
}

TEST_CASE("run --check: a phase name longer than 40 characters is refused", "[cli][run]") {
    // Its rows' key (RUN_ID-NAME) would overflow MariaDB's 64-character column, failing
    // every write of the phase there (a user test).
    TempDir dir;
    const std::string body = "\"\nthreads = 1\nduration = \"1s\"\nworkload = \"write\"\n";
    write_file(dir.path() / "long.toml", "[[phase]]\nname = \"" + std::string(41, 'p') + body);
    const auto r = run_in(dir.path(), {"run", "--check", "./long.toml"});
    CHECK(r.code == 2);
    CHECK(count_lines(r.err) == 1);
    CHECK_THAT(r.err, Catch::Contains("long.toml:2:8: phase name '" + std::string(41, 'p') +
                                      "' is 41 characters long; use at most 40"));
    write_file(dir.path() / "forty.toml", "[[phase]]\nname = \"" + std::string(40, 'p') + body);
    CHECK(run_in(dir.path(), {"run", "--check", "./forty.toml"}).code == 0);
}

TEST_CASE("run --check: a fault above its phase, or at its phase's end, says what to move", "[cli][run]") {
    TempDir dir;
    write_file(dir.path() / "above.toml", "[[phase.fault]]\nkind = \"latency\"\nlatency = \"1ms\"\nfor = \"1s\"\n"
                                          "[[phase]]\nname = \"load\"\nthreads = 1\nduration = \"2s\"\n");
    const auto above = run_in(dir.path(), {"run", "--check", "./above.toml"});
    CHECK(above.code == 2);
    CHECK(count_lines(above.err) == 1);
    CHECK_THAT(above.err, Catch::Contains("above.toml:5:1: ") &&
                              Catch::Contains("a [[phase.fault]] belongs to the [[phase]] above it"));
    const auto at_end = run_in(dir.path(), {"run", "--check", "lost-replies", "--set", "phase.load.fault.1.at=6s"});
    CHECK(at_end.code == 2);
    CHECK_THAT(at_end.err, Catch::Contains("starts at 6000 ms, as phase 'load' ends (6000 ms); move 'at' into the phase"));
}

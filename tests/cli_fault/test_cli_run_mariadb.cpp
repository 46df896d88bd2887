// test_cli_run_mariadb.cpp — the MariaDB scenarios end to end against the throwaway
// server: a table WRITE lock, this run's connections killed, the server restarted by the
// command scripts/mariadb_sandbox.sh restart-command prints. They lock a shared table or
// restart the shared server, so CTest runs them alone (RUN_SERIAL). They need
// POOLBENCH_MARIADB_URL and POOLBENCH_MARIADB_DIR (scripts/mariadb_sandbox.sh) and FAIL
// without them.
#include "../cli/mariadb_cli_support.hpp"

#include <cstdio>

using namespace clitest;  // NOLINT(google-build-using-namespace): test file
using nlohmann::json;

namespace {

const json& only_fault(const json& j) {
    REQUIRE(j.at("faults").size() == 1);
    return j.at("faults").at(0);
}

/// The sandbox's own restart command, as `mariadb_sandbox.sh restart-command DIR` prints it.
std::string sandbox_restart_command() {
    std::string script = __FILE__;
    script = script.substr(0, script.rfind("/tests/")) + "/scripts/mariadb_sandbox.sh";
    const std::string ask = "'" + script + "' restart-command '" + mariadb_dir() + "'";
    std::FILE* p = ::popen(ask.c_str(), "r");
    REQUIRE(p != nullptr);
    std::string out;
    char buffer[512];
    while (std::fgets(buffer, sizeof buffer, p) != nullptr) out += buffer;
    REQUIRE(::pclose(p) == 0);
    while (!out.empty() && out.back() == '\n') out.pop_back();
    REQUIRE_FALSE(out.empty());
    return out;
}

void check_no_lost_writes(const json& j) {
    check_writes_settled(j.at("writes"));
    CHECK(j.at("writes").at("acknowledged").get<int>() > 0);
}

}  // namespace

TEST_CASE("run mariadb: lock-recovery-mariadb holds a table WRITE lock, writers wait it out, then recover",
          "[cli][mariadb][run]") {
    const std::string url = mariadb_url();
    TempDir dir;
    const auto r = run_in(dir.path(), {"run", "lock-recovery-mariadb", "--db", url, "--no-progress", "--json", "-",
                                       "--set", "phase.load.duration=3s", "--set", "phase.load.fault.1.at=1s",
                                       "--set", "phase.load.fault.1.for=1s"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    CHECK(j.at("database").at("backend") == "mariadb");
    const json& f = only_fault(j);
    CHECK(f.at("kind") == "mariadb.lock_table");
    CHECK(f.at("reverted") == true);
    CHECK(f.at("error") == "");
    CHECK(f.at("detail").get<std::string>().find("LOCK TABLES") != std::string::npos);
    CHECK(f.at("detail").get<std::string>().find("poolbench_writes") != std::string::npos);
    CHECK(f.at("ended_s").get<double>() - f.at("started_s").get<double>() >= 0.9);
    // Writers were blocked by the lock, not failed: the stall shows it, and the slowest
    // operation waited about as long as the lock lasted, not longer.
    CHECK(f.at("stalled_ms").get<double>() >= 500);
    CHECK(f.at("failed") == 0);
    CHECK(j.at("latency_us").at("op").at("max").get<double>() >= 500'000);
    CHECK(j.at("latency_us").at("op").at("max").get<double>() < 3'000'000);
    REQUIRE(f.at("recovery_ms").is_number());
    CHECK(f.at("recovery_ms").get<double>() < 1500);
    check_no_lost_writes(j);
}

TEST_CASE("run mariadb: under the table lock, a URL's statement_timeout stops the waiting writers at the timeout",
          "[cli][mariadb][run]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"run", "lock-recovery-mariadb", "--db", mariadb_url() + "?statement_timeout=500ms",
                                       "--no-progress", "--json", "-", "--set", "phase.load.duration=3500ms", "--set",
                                       "phase.load.fault.1.at=1s", "--set", "phase.load.fault.1.for=1500ms"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    const json& f = only_fault(j);
    // The server stopped them (max_statement_time, error 1969), classified as such.
    CHECK(f.at("errors_by_class").at("statement_timeout").get<int>() > 0);
    CHECK(f.at("failed") == f.at("errors_by_class").at("statement_timeout"));
    CHECK(j.at("ops").at("statement_timeouts").get<int>() > 0);
    // No statement waited much past its timeout (the lock lasted three times as long).
    CHECK(j.at("latency_us").at("query").at("max").get<double>() < 500'000 + 400'000);
    REQUIRE(f.at("recovery_ms").is_number());
    CHECK(f.at("recovery_ms").get<double>() < 1500);
    check_no_lost_writes(j);
}

TEST_CASE("run mariadb: backend-kill-mariadb kills this run's connections and no one else's", "[cli][mariadb][run]") {
    const std::string url = mariadb_url();
    TempDir dir;
    // A session of the same account on the same server, not this run's: untouched.
    MariaSession bystander(url);
    REQUIRE(bystander.alive());
    const auto r = run_in(dir.path(), {"run", "backend-kill-mariadb", "--db", url, "--no-progress", "--json", "-",
                                       "--set", "phase.load.duration=3s", "--set", "phase.load.fault.1.at=1s",
                                       "--set", "phase.load.fault.1.for=600ms"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    const json& f = only_fault(j);
    CHECK(f.at("kind") == "mariadb.kill_connections");
    CHECK(f.at("detail").get<std::string>().find("killed") != std::string::npos);
    CHECK(f.at("detail").get<std::string>().find("in 2 rounds") != std::string::npos);  // at 0 and 500 ms
    CHECK(f.at("failed").get<int>() > 0);
    CHECK(f.at("errors_by_class").at("connection_lost").get<int>() > 0);
    REQUIRE(f.at("recovery_ms").is_number());
    CHECK(f.at("recovery_ms").get<double>() < 1500);
    CHECK(j.at("pool").at("reconnects").get<int>() > 0);
    CHECK(j.at("ops").at("timed_out") == 0);
    check_no_lost_writes(j);
    CHECK(bystander.alive());
}

TEST_CASE("run mariadb: server-restart-mariadb restarts the server with the sandbox's restart command and is served "
          "again",
          "[cli][mariadb][run]") {
    const std::string url = mariadb_url();
    const std::string command = sandbox_restart_command();
    TempDir dir;
    // No --restart-command: exit 2 before anything runs.
    const auto missing = run_in(dir.path(), {"run", "server-restart-mariadb", "--db", url});
    CHECK(missing.code == 2);
    CHECK(missing.err.find("--restart-command") != std::string::npos);

    const auto r = run_in(dir.path(), {"run", "server-restart-mariadb", "--db", url, "--no-progress", "--json", "-",
                                       "--restart-command", command, "--set", "phase.load.duration=5s", "--set",
                                       "phase.load.fault.1.at=1s"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    const json& f = only_fault(j);
    CHECK(f.at("kind") == "mariadb.restart");
    CHECK(f.at("detail").get<std::string>().find("exit 0") != std::string::npos);
    CHECK(f.at("ended_s").get<double>() > f.at("started_s").get<double>());
    // The server went away: operations failed, connections were opened again.
    CHECK(f.at("failed").get<int>() > 0);
    CHECK(j.at("pool").at("reconnects").get<int>() > 0);
    REQUIRE(f.at("recovery_ms").is_number());
    CHECK(f.at("recovery_ms").get<double>() < 1500);
    REQUIRE(f.at("outage_ms").is_number());
    CHECK(f.at("outage_ms").get<double>() > 0);
    check_no_lost_writes(j);
    CHECK(MariaSession(url).alive());  // the restart command waited for the server

    // The generic name runs the same way; a restart command that fails is the fault's
    // error, and the run fails.
    const auto bad = run_in(dir.path(), {"run", "server-restart-mariadb", "--db", url, "--no-progress", "--json", "-",
                                         "--restart-command", "echo no such server >&2; exit 7", "--set",
                                         "phase.load.fault.1.kind=server.restart", "--set", "phase.load.duration=2s",
                                         "--set", "phase.load.fault.1.at=500ms"});
    CHECK(bad.code == 1);
    const json b = parse_json(bad.out);
    CHECK(only_fault(b).at("kind") == "server.restart");
    CHECK(only_fault(b).at("error").get<std::string>().find("exit 7") != std::string::npos);
    CHECK(only_fault(b).at("error").get<std::string>().find("no such server") != std::string::npos);
}

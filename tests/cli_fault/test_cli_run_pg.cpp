// test_cli_run_pg.cpp — the PostgreSQL scenarios end to end against the throwaway server:
// a table lock, this run's backends terminated, the server restarted by
// --restart-command. They lock a shared table or restart the shared server, so CTest runs
// them alone (RUN_SERIAL). They need POOLBENCH_PG_URL and POOLBENCH_PG_DIR
// (scripts/pg_sandbox.sh) and FAIL without them.
#include "../cli/cli_support.hpp"

#include <libpq-fe.h>

using namespace clitest;  // NOLINT(google-build-using-namespace): test file
using nlohmann::json;

namespace {

std::string sandbox_dir() {
    const char* dir = std::getenv("POOLBENCH_PG_DIR");
    if (dir == nullptr || *dir == '\0') {
        FAIL("POOLBENCH_PG_DIR is not set: start the server with eval \"$(scripts/pg_sandbox.sh start)\"");
    }
    return dir;
}

/// A connection of "someone else's" on the same server, with poolbench's own
/// application_name: a fault aimed at this run must not touch it.
class Bystander {
public:
    explicit Bystander(const std::string& url) {
        const std::string conninfo = url + (url.find('?') == std::string::npos ? "?" : "&") + "application_name=poolbench";
        conn_ = PQconnectdb(conninfo.c_str());
        REQUIRE(PQstatus(conn_) == CONNECTION_OK);
    }
    Bystander(const Bystander&) = delete;
    Bystander& operator=(const Bystander&) = delete;
    ~Bystander() { PQfinish(conn_); }
    [[nodiscard]] bool alive() {
        PGresult* r = PQexec(conn_, "SELECT 1");
        const bool ok = PQresultStatus(r) == PGRES_TUPLES_OK;
        PQclear(r);
        return ok;
    }

private:
    PGconn* conn_ = nullptr;
};

const json& only_fault(const json& j) {
    REQUIRE(j.at("faults").size() == 1);
    return j.at("faults").at(0);
}

}  // namespace

TEST_CASE("run pg: lock-recovery-postgres holds an exclusive table lock, then recovers", "[cli][pg][run]") {
    const std::string url = pg_url();
    TempDir dir;
    const auto r = run_in(dir.path(), {"run", "lock-recovery-postgres", "--db", url, "--no-progress", "--json", "-",
                                       "--set", "phase.load.duration=3s", "--set", "phase.load.fault.1.at=1s",
                                       "--set", "phase.load.fault.1.for=1s"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    const json& f = only_fault(j);
    CHECK(f.at("kind") == "pg.lock_table");
    CHECK(f.at("reverted") == true);
    CHECK(f.at("detail").get<std::string>().find("poolbench_writes") != std::string::npos);
    // Writers were blocked by the lock, not failed: the stall shows it.
    CHECK(f.at("stalled_ms").get<double>() >= 500);
    CHECK(f.at("recovery_ms").is_number());
    CHECK(j.at("writes").at("lost") == 0);
    CHECK(j.at("writes").at("in_doubt") == 0);  // a lock breaks no connection
    CHECK(j.at("writes").at("verified") == j.at("writes").at("acknowledged"));
}

TEST_CASE("run pg: backend-kill-postgres terminates this run's backends and no one else's", "[cli][pg][run]") {
    const std::string url = pg_url();
    TempDir dir;
    Bystander bystander(url);
    const auto r = run_in(dir.path(), {"run", "backend-kill-postgres", "--db", url, "--no-progress", "--json", "-",
                                       "--set", "phase.load.duration=3s", "--set", "phase.load.fault.1.at=1s",
                                       "--set", "phase.load.fault.1.for=600ms"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    const json& f = only_fault(j);
    CHECK(f.at("detail").get<std::string>().find("terminated") != std::string::npos);
    CHECK(f.at("failed").get<int>() > 0);
    CHECK(f.at("errors_by_class").at("connection_lost").get<int>() > 0);
    CHECK(f.at("recovery_ms").is_number());
    CHECK(j.at("pool").at("reconnects").get<int>() > 0);
    check_writes_settled(j.at("writes"));
    // Same server, same application_name, not ours: untouched.
    CHECK(bystander.alive());
}

TEST_CASE("run pg: server-restart-postgres restarts the server with --restart-command and is served again",
          "[cli][pg][run]") {
    const std::string url = pg_url();
    const std::string dir_of_server = sandbox_dir();
    std::string script = __FILE__;
    script = script.substr(0, script.rfind("/tests/")) + "/scripts/pg_sandbox.sh";
    TempDir dir;
    // No --restart-command: exit 2 before anything runs.
    const auto missing = run_in(dir.path(), {"run", "server-restart-postgres", "--db", url});
    CHECK(missing.code == 2);
    CHECK(missing.err.find("--restart-command") != std::string::npos);

    const auto r = run_in(dir.path(), {"run", "server-restart-postgres", "--db", url, "--no-progress", "--json", "-",
                                       "--restart-command", script + " restart " + dir_of_server, "--set",
                                       "phase.load.duration=5s", "--set", "phase.load.fault.1.at=1s"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    const json& f = only_fault(j);
    CHECK(f.at("kind") == "pg.restart");
    CHECK(f.at("detail").get<std::string>().find("exit 0") != std::string::npos);
    CHECK(f.at("ended_s").get<double>() > f.at("started_s").get<double>());
    CHECK(f.at("recovery_ms").is_number());
    check_writes_settled(j.at("writes"));

    // A restart command that fails is the fault's error, and the run fails.
    const auto bad = run_in(dir.path(), {"run", "server-restart-postgres", "--db", url, "--no-progress", "--json", "-",
                                         "--restart-command", "echo no such server >&2; exit 7", "--set",
                                         "phase.load.duration=2s", "--set", "phase.load.fault.1.at=500ms"});
    CHECK(bad.code == 1);
    const json b = parse_json(bad.out);
    CHECK(only_fault(b).at("error").get<std::string>().find("exit 7") != std::string::npos);
    CHECK(only_fault(b).at("error").get<std::string>().find("no such server") != std::string::npos);
}

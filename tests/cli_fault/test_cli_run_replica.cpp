// test_cli_run_replica.cpp — the replica faults end to end on a primary/replica run: the
// shared standby stopped and started again by the user's commands (replica.stop), and a
// standby of the test's own promoted (replica.promote). They stop or promote servers, so
// CTest runs them alone (RUN_SERIAL). They need POOLBENCH_PG_URL, POOLBENCH_PG_DIR,
// POOLBENCH_PG_STANDBY_URL and POOLBENCH_PG_STANDBY_DIR (scripts/pg_sandbox.sh start and
// start-standby; test.sh does both) and FAIL without them.
#include "../cli/cli_support.hpp"
#include "support/pg_standby.hpp"


using namespace clitest;  // NOLINT(google-build-using-namespace): test file
using nlohmann::json;

namespace {

std::string env_or_fail(const char* name) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') FAIL(std::string(name) + " is not set: start the standby with scripts/pg_sandbox.sh start-standby");
    return v;
}

std::string sandbox_script() { return pbtest::pg_sandbox_script(); }

const json& only_fault(const json& j) {
    REQUIRE(j.at("faults").size() == 1);
    return j.at("faults").at(0);
}

}  // namespace

TEST_CASE("run replica: replica-failover-postgres stops the standby under load, reads fail over and return",
          "[cli][pg][replica][run]") {
    const std::string primary = pg_url();
    const std::string standby = env_or_fail("POOLBENCH_PG_STANDBY_URL");
    const std::string dir = env_or_fail("POOLBENCH_PG_STANDBY_DIR");
    TempDir tmp;
    // The commands see which node they act on: the stop command records it.
    const std::string seen = (tmp.path() / "node.txt").string();
    const auto r = run_in(tmp.path(), {"run", "replica-failover-postgres", "--primary", primary, "--replica", standby,
                                       "--replica-stop-command",
                                       "echo \"$POOLBENCH_NODE $POOLBENCH_NODE_HOST $POOLBENCH_NODE_PORT\" > " + seen +
                                           " && " + sandbox_script() + " halt " + dir,
                                       "--replica-start-command", sandbox_script() + " resume " + dir,
                                       "--no-progress", "--json", "-"});
    INFO(r.err);
    INFO(r.out.substr(0, 4000));
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    const json& f = only_fault(j);
    CHECK(f.at("kind") == "replica.stop");
    CHECK(f.at("error") == "");
    CHECK(f.at("reverted") == true);
    CHECK_THAT(f.at("detail").get<std::string>(), Catch::Contains("--replica-stop-command exit 0"));
    CHECK_THAT(f.at("detail").get<std::string>(), Catch::Contains("--replica-start-command exit 0"));
    // The router noticed: out while stopped, back after (the file's bounds are expectations too).
    REQUIRE(f.at("failover_ms").is_number());
    REQUIRE(f.at("rejoin_ms").is_number());
    CHECK(f.at("failover_ms").get<double>() < 3000);
    CHECK(f.at("rejoin_ms").get<double>() < 6000);
    const json& replica = j.at("pools").at("replica-1");
    CHECK(replica.at("left_rotation").get<int>() >= 1);
    CHECK(replica.at("reads").get<long>() > 0);
    CHECK(j.at("pools").at("primary").at("reads").get<long>() > 0);  // the fallback served them meanwhile
    CHECK(j.at("ops").at("failed") == 0);
    check_writes_settled(j.at("writes"));  // writes go to the primary, which stays up
    CHECK(j.at("writes").at("in_doubt") == 0);
    CHECK_THAT(slurp(seen), Catch::StartsWith("replica-1 127.0.0.1 "));
}

TEST_CASE("run replica: replica.promote promotes a standby with pg_promote and the router drops it for good",
          "[cli][pg][replica][run]") {
    const std::string primary = pg_url();
    const std::string shared = env_or_fail("POOLBENCH_PG_STANDBY_URL");
    pbtest::OwnStandby own;
    TempDir tmp;
    write_file(tmp.path() / "promote.toml", R"(
[scenario]
description = "promote the second standby under a read load"
backends = ["postgresql"]
expect = ["ops.failed == 0"]
[[phase]]
name = "load"
threads = 4
duration = "6s"
rate = 400
mix = { read = 9, write = 1 }
[[phase.fault]]
kind = "replica.promote"
node = "replica-2"
at = "2s"
expect = ["failover_ms < 3000"]
)");
    const auto r = run_in(tmp.path(), {"run", (tmp.path() / "promote.toml").string(), "--primary", primary,
                                       "--replica", shared, "--replica", own.url, "--no-progress", "--json", "-"});
    INFO(r.err);
    INFO(r.out.substr(0, 4000));
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    const json& f = only_fault(j);
    CHECK(f.at("kind") == "replica.promote");
    CHECK(f.at("node") == "replica-2");
    CHECK(f.at("error") == "");
    CHECK_THAT(f.at("detail").get<std::string>(), Catch::Contains("pg_promote() returned"));
    REQUIRE(f.at("failover_ms").is_number());
    CHECK(f.at("rejoin_ms").is_null());
    CHECK(j.at("pools").at("replica-2").at("state") == "not_standby");
    CHECK(j.at("pools").at("replica-1").at("state") == "healthy");
    CHECK(j.at("pools").at("replica-1").at("reads").get<long>() > 0);
    // A promotion is not undone: its check says it ended, not that it was reverted.
    bool named = false;
    for (const auto& e : j.at("expectations")) {
        if (e.value("scope", std::string()).find("replica.promote") == std::string::npos) continue;
        if (e.at("name") == "fault ran and ended") named = e.at("passed") == true;
        CHECK(e.at("name") != "fault ran and was reverted");
    }
    CHECK(named);
}

TEST_CASE("run replica: a stop command that fails after stopping the replica still has it started again",
          "[cli][pg][replica][run]") {
    const std::string primary = pg_url();
    const std::string standby = env_or_fail("POOLBENCH_PG_STANDBY_URL");
    const std::string dir = env_or_fail("POOLBENCH_PG_STANDBY_DIR");
    TempDir tmp;
    const auto r = run_in(tmp.path(), {"run", "replica-failover-postgres", "--primary", primary, "--replica", standby,
                                       "--replica-stop-command",
                                       sandbox_script() + " halt " + dir + " && echo stopping replica-1 && echo boom && exit 7",
                                       "--replica-start-command", sandbox_script() + " resume " + dir,
                                       "--set", "phase.load.duration=4s", "--set", "phase.load.fault.1.at=1s",
                                       "--no-progress", "--json", "-"});
    INFO(r.err);
    CHECK(r.code == 1);  // the fault did not run: its expectations fail
    const json j = parse_json(r.out);
    const std::string error = only_fault(j).at("error").get<std::string>();
    CHECK_THAT(error, Catch::Contains("--replica-stop-command for replica-1: exit 7: stopping replica-1 boom"));
    CHECK_THAT(error, Catch::Contains("started again: --replica-start-command exit 0"));
    CHECK(error.find('\n') == std::string::npos);
    // The standby is up again: the next run's replica answers.
    const auto after = run_in(tmp.path(), {"stress", "--primary", primary, "--replica", standby, "--workload", "read",
                                           "--ops", "200", "--no-progress", "--json", "-"});
    INFO(after.err);
    REQUIRE(after.code == 0);
    CHECK(parse_json(after.out).at("pools").at("replica-1").at("state") == "healthy");
}

TEST_CASE("run replica: replica faults without what they need exit 2 before anything runs", "[cli][pg][replica][run]") {
    const std::string primary = pg_url();
    const std::string standby = env_or_fail("POOLBENCH_PG_STANDBY_URL");
    TempDir tmp;
    // No commands given.
    auto r = run_in(tmp.path(), {"run", "replica-failover-postgres", "--primary", primary, "--replica", standby,
                                 "--no-progress"});
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Catch::Contains("--replica-stop-command CMD and --replica-start-command CMD"));
    CHECK(count_lines(r.err) == 1);
    // No replica in the run.
    r = run_in(tmp.path(), {"run", "replica-failover-postgres", "--db", primary, "--replica-stop-command", "true",
                            "--replica-start-command", "true", "--no-progress"});
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Catch::Contains("needs a run with replicas"));
    CHECK(count_lines(r.err) == 1);
    // --check with a database given checks the invocation as the run would: a node that is
    // not one of the replicas, missing commands, no replicas at all. Without a database, the
    // file alone is valid (replicas and commands come at run time).
    auto check = [&](std::vector<std::string> args) {
        args.insert(args.begin(), {"run", "--check", "replica-failover-postgres"});
        return run_in(tmp.path(), args);
    };
    r = check({"--primary", primary, "--replica", standby, "--replica-stop-command", "true", "--replica-start-command",
               "true", "--set", "phase.load.fault.1.node=replica-3"});
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Catch::Contains("names node 'replica-3', but this run's replicas are replica-1"));
    r = check({"--primary", primary, "--replica", standby});
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Catch::Contains("--replica-stop-command CMD and --replica-start-command CMD"));
    r = check({"--db", primary, "--replica-stop-command", "true", "--replica-start-command", "true"});
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Catch::Contains("needs a run with replicas"));
    r = check({"--primary", primary, "--replica", standby, "--replica-stop-command", "true", "--replica-start-command",
               "true"});
    CHECK(r.code == 0);
    r = check({});
    CHECK(r.code == 0);
}

TEST_CASE("run replica: a standby of another cluster is refused before the load, by its system identifier",
          "[cli][pg][replica][run]") {
    const std::string standby = env_or_fail("POOLBENCH_PG_STANDBY_URL");  // streams from the shared primary
    pbtest::OwnPrimary other;  // its own initdb: another system identifier, an unrelated WAL position
    TempDir tmp;
    const auto r = run_in(tmp.path(), {"stress", "--primary", other.url, "--replica", standby, "--workload", "read",
                                       "--threads", "2", "--duration", "1s", "--no-progress", "--json", "r.json"});
    INFO(r.out << r.err);
    CHECK(r.code == 3);
    CHECK_THAT(r.err, Catch::Contains("replica-1 is a standby of another cluster (its system identifier is "));
    CHECK_THAT(r.err, Catch::Contains("give the URL of a streaming replica of this primary"));
    CHECK(count_lines(r.err) == 1);
    CHECK(r.err.find(url_password(other.url)) == std::string::npos);
    CHECK(parse_json(slurp(tmp.path() / "r.json")).at("verdict") == "error");
}

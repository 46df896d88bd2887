// test_cli_topology_pg.cpp — a run over a PostgreSQL primary and its streaming standby
// (POOLBENCH_PG_URL and POOLBENCH_PG_STANDBY_URL: scripts/pg_sandbox.sh start, then
// start-standby; test.sh starts both). Without them every test here FAILS. Serial: the
// pg_replica tier halts the standby and pauses its replay.
#include "../cli/cli_support.hpp"

#include <cstdint>
#include <string>

using namespace clitest;  // NOLINT(google-build-using-namespace): test file
using nlohmann::json;

namespace {

std::string standby_url() {
    const char* url = std::getenv("POOLBENCH_PG_STANDBY_URL");
    if (url == nullptr || *url == '\0') {
        FAIL("POOLBENCH_PG_STANDBY_URL is not set: the replica CLI tests need a streaming standby of "
             "POOLBENCH_PG_URL. Start one with e=$(scripts/pg_sandbox.sh start-standby); eval \"$e\"");
    }
    return url;
}

std::uint64_t u64(const json& j, const char* key) { return j.at(key).get<std::uint64_t>(); }

}  // namespace

TEST_CASE("topology: stress mixed over a primary and a replica routes reads to it, writes to the primary",
          "[cli][pg][replica][topology]") {
    const std::string primary = pg_url();
    const std::string replica = standby_url();
    TempDir dir;
    const auto r = run_in(dir.path(), {"stress", "--workload", "mixed", "--primary", primary, "--replica", replica,
                                       "--threads", "8", "--ops", "4000", "--rows", "1000", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    const json& pools = j.at("pools");
    REQUIRE(pools.size() == 2);
    const json& p = pools.at("primary");
    const json& rep = pools.at("replica-1");
    CHECK(p.at("role") == "primary");
    CHECK(rep.at("role") == "replica");
    CHECK(u64(rep, "reads") > 0);
    CHECK(u64(rep, "writes") == 0);
    CHECK(rep.at("state") == "healthy");
    const json& w = j.at("writes");
    CHECK(u64(w, "acknowledged") > 0);
    CHECK(u64(p, "writes") == u64(w, "acknowledged"));
    CHECK(u64(w, "verified") == u64(w, "acknowledged"));
    CHECK(u64(p, "rows_verified") == u64(w, "verified"));
    CHECK(u64(p, "reads") + u64(p, "writes") + u64(rep, "reads") + u64(rep, "writes") == u64(j.at("ops"), "ok"));
    CHECK(u64(j.at("ops"), "ok") == 4000);
    // The run's pool section is the sum of the pools'.
    for (const char* key : {"created", "destroyed", "hits", "misses", "waits", "timeouts", "max_size"}) {
        INFO(key);
        CHECK(u64(j.at("pool"), key) == u64(p.at("pool"), key) + u64(rep.at("pool"), key));
    }
    CHECK(j.at("router").at("strategy") == "round_robin");
    CHECK(j.at("router").at("no_replica_errors") == 0);
    // The URLs are redacted, per pool too.
    const std::string password = url_password(primary);
    if (password.size() >= 3) {
        CHECK(r.out.find(password) == std::string::npos);
        CHECK(r.err.find(password) == std::string::npos);
    }
}

TEST_CASE("topology: expectations address a replica's figures by name", "[cli][pg][replica][topology]") {
    const std::string primary = pg_url();
    const std::string replica = standby_url();
    TempDir dir;
    auto scenario = [&](const std::string& expect) {
        const auto path = dir.path() / "replica.toml";
        write_file(path, "[scenario]\nexpect = [\"" + expect +
                             "\"]\n[database]\nread_strategy = \"least_active\"\n[[phase]]\nname = \"load\"\nthreads = "
                             "4\nops = 1500\nworkload = \"mixed\"\nrows = 500\n");
        return run_in(dir.path(), {"run", path.string(), "--primary", primary, "--replica", replica, "--json", "-"});
    };
    const auto pass = scenario("pools.replica-1.reads > 0");
    INFO(pass.err);
    REQUIRE(pass.code == 0);
    CHECK(parse_json(pass.out).at("router").at("strategy") == "least_active");
    const auto fail = scenario("pools.replica-1.writes > 0");
    INFO(fail.err);
    REQUIRE(fail.code == 1);
    const json j = parse_json(fail.out);
    bool seen = false;
    for (const auto& e : j.at("expectations")) {
        if (e.at("name") == "pools.replica-1.writes > 0") {
            seen = true;
            CHECK(e.at("passed") == false);
            CHECK(e.at("actual") == 0);
        }
    }
    CHECK(seen);
}

TEST_CASE("topology: a hot standby given as a shard of a writing workload is refused before the load",
          "[cli][pg][replica][topology]") {
    const std::string standby = standby_url();
    TempDir dir;
    const auto r = run_in(dir.path(), {"stress", "--db", pg_url(), "--db", standby, "--workload", "mixed",
                                       "--duration", "1s", "--no-progress"});
    INFO(r.out << r.err);
    CHECK(r.code == 3);
    CHECK_THAT(r.err, Catch::Contains("shard-1: the server is read-only for this session (it is a hot standby"));
    CHECK(count_lines(r.err) == 1);
    // Reads only: a standby serves them as a shard.
    const auto reads = run_in(dir.path(), {"stress", "--db", pg_url(), "--db", standby, "--workload", "read",
                                           "--duration", "500ms", "--no-progress", "--json", "-"});
    INFO(reads.err);
    CHECK(reads.code == 0);
}

// test_cli_in_doubt.cpp — writes whose COMMIT got no reply: the lost_replies fault makes a
// share of statements run and then lose their reply with their connection, so some
// COMMITs are in doubt. The report must count them apart from the acknowledged writes,
// look each up, and never call one lost or count it as acknowledged.
#include "cli_support.hpp"

#include <sqlite3.h>

// The runs drop the shipped scenario's recovery_ms expectation (--set ...fault.1.expect):
// what is checked here is the write accounting, and recovery within a short phase is a
// timing figure ThreadSanitizer's slowdown can miss (seen once in CI).

using namespace clitest;  // NOLINT(google-build-using-namespace): test file
using nlohmann::json;

namespace {

/// The one integer `sql` returns from the SQLite file at `path`, read by this process.
std::int64_t sqlite_count(const fs::path& path, const char* sql) {
    sqlite3* h = nullptr;
    REQUIRE(sqlite3_open_v2(path.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(h, sql, -1, &st, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_step(st) == SQLITE_ROW);
    const std::int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(h);
    return n;
}

}  // namespace

TEST_CASE("run: lost_replies puts COMMITs in doubt, each is looked up, none is lost or acknowledged",
          "[cli][run][sqlite]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"run", "lost-replies", "--db", "sqlite://lr.db", "--no-progress", "--json",
                                       "r.json", "--set", "phase.load.duration=2500ms", "--set",
                                       "phase.load.fault.1.expect=[\"errors_by_class.connection_lost > 0\"]", "--set",
                                       "phase.load.fault.1.at=500ms", "--set", "phase.load.fault.1.for=1s"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(slurp(dir.path() / "r.json"));
    const json& w = j.at("writes");
    check_writes_settled(w);
    // Every in-doubt write's COMMIT ran before its reply was lost: each one is in the file.
    CHECK(w.at("in_doubt").get<std::uint64_t>() > 0);
    CHECK(w.at("in_doubt_committed") == w.at("in_doubt"));
    CHECK(w.at("verified").get<std::uint64_t>() > w.at("acknowledged").get<std::uint64_t>());
    // Counted from outside the run: the rows are the acknowledged writes plus the in-doubt ones.
    const auto rows = sqlite_count(dir.path() / "lr.db", "SELECT count(*) FROM poolbench_writes");
    CHECK(rows == w.at("verified").get<std::int64_t>());
    // The report's run_id finds its rows: RUN_ID-PHASE.
    const std::string tagged = "SELECT count(*) FROM poolbench_writes WHERE run_id = '" +
                               j.at("run_id").get<std::string>() + "-load'";
    CHECK(sqlite_count(dir.path() / "lr.db", tagged.c_str()) == rows);
    // In doubt only while the fault ran, and each one is also a failed operation.
    CHECK(j.at("phases").at(0).at("writes_in_doubt") == w.at("in_doubt"));
    const json& f = j.at("faults").at(0);
    CHECK(f.at("kind") == "lost_replies");
    CHECK(f.at("node").is_null());  // one database
    CHECK(f.at("errors_by_class").at("connection_lost").get<std::uint64_t>() >= w.at("in_doubt").get<std::uint64_t>());
    CHECK(f.at("detail").get<std::string>().find("10% of statements") != std::string::npos);
    // The text report says it in words.
    CHECK(r.out.find("in doubt") != std::string::npos);
    CHECK(r.out.find("(the connection broke during COMMIT)") != std::string::npos);
}

TEST_CASE("run: without broken connections nothing is in doubt", "[cli][run][sqlite]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"stress", "--db", "sqlite://w.db", "--threads", "4", "--duration", "300ms",
                                       "--workload", "write", "--no-progress", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json w = parse_json(r.out).at("writes");
    CHECK(w.at("in_doubt") == 0);
    CHECK(w.at("in_doubt_committed") == 0);
    CHECK(w.at("verified") == w.at("acknowledged"));
    CHECK(w.at("acknowledged").get<std::uint64_t>() > 0);
}

TEST_CASE("merge: the agents' writes in doubt are summed, in the run and in its phase", "[cli][merge][sqlite]") {
    TempDir dir;
    std::vector<json> agents;
    for (int i = 0; i < 2; ++i) {
        const std::string report = "r" + std::to_string(i) + ".json";
        const auto r = run_in(dir.path(), {"run", "lost-replies", "--db", "sqlite://a" + std::to_string(i) + ".db",
                                           "--no-progress", "--json", report, "--set", "phase.load.duration=1700ms",
                                           "--set", "phase.load.fault.1.expect=[\"errors_by_class.connection_lost > 0\"]", "--set", "phase.load.fault.1.at=200ms", "--set",
                                           "phase.load.fault.1.for=500ms"});
        INFO(r.out << r.err);
        REQUIRE(r.code == 0);
        agents.push_back(parse_json(slurp(dir.path() / report)));
    }
    const auto m = run_in(dir.path(), {"merge", "r0.json", "r1.json", "-o", "all.json"});
    INFO(m.out << m.err);
    REQUIRE(m.code == 0);
    const json merged = parse_json(slurp(dir.path() / "all.json"));
    for (const char* key : {"acknowledged", "verified", "lost", "in_doubt", "in_doubt_committed"}) {
        INFO(key);
        CHECK(merged.at("writes").at(key).get<std::uint64_t>() ==
              agents[0].at("writes").at(key).get<std::uint64_t>() + agents[1].at("writes").at(key).get<std::uint64_t>());
    }
    CHECK(merged.at("writes").at("in_doubt").get<std::uint64_t>() > 0);
    CHECK(merged.at("phases").at(0).at("writes_in_doubt") == merged.at("writes").at("in_doubt"));
    check_writes_settled(merged.at("writes"));
}

TEST_CASE("run: in-doubt writes on shards are looked up on every shard, and the fault names its node", "[cli][run][sqlite][shards]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"run", "lost-replies", "--shards", "2", "--db",
                                       "sqlite://" + (dir.path() / "sh").string(), "--no-progress", "--json", "r.json",
                                       "--set", "phase.load.duration=2s", "--set", "phase.load.fault.1.expect=[\"errors_by_class.connection_lost > 0\"]", "--set", "phase.load.fault.1.at=300ms",
                                       "--set", "phase.load.fault.1.for=700ms"});
    INFO(r.out << r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(slurp(dir.path() / "r.json"));
    check_writes_settled(j.at("writes"));
    CHECK(j.at("writes").at("in_doubt_committed").get<std::uint64_t>() > 0);
    // The in-process fault acts on the first node only, and says so.
    CHECK(j.at("faults").at(0).at("node") == "shard-0");
    CHECK_THAT(r.out, Catch::Contains("lost_replies on shard-0 in phase load:"));
    // Each shard's rows, counted from outside, are what the report verified there.
    std::int64_t rows = 0;
    for (const char* shard : {"shard-0", "shard-1"}) {
        const auto n = sqlite_count(dir.path() / "sh" / (std::string(shard) + ".db"), "SELECT count(*) FROM poolbench_writes");
        CHECK(n == j.at("pools").at(shard).at("rows_verified").get<std::int64_t>());
        rows += n;
    }
    CHECK(rows == j.at("writes").at("verified").get<std::int64_t>());
}

// test_cli_topology.cpp — shards (SQLite files in a temporary directory) and the topology
// flags' bad input. The replica runs are in cli_fault/test_cli_topology_pg.cpp.
#include "cli_support.hpp"

#include <poolbench/shard_map.hpp>

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <set>
#include <string>

using namespace clitest;  // NOLINT(google-build-using-namespace): test file
using nlohmann::json;

namespace {

/// (worker, seq) of every row in a shard file's poolbench_writes.
std::vector<std::pair<std::int64_t, std::int64_t>> rows_of(const fs::path& file) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "SELECT worker, seq FROM poolbench_writes", -1, &st, nullptr) == SQLITE_OK);
    std::vector<std::pair<std::int64_t, std::int64_t>> out;
    while (sqlite3_step(st) == SQLITE_ROW) out.emplace_back(sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

/// The account ids seeded in a shard file's poolbench_accounts.
std::vector<std::int64_t> accounts_of(const fs::path& file) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(file.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    sqlite3_stmt* st = nullptr;
    REQUIRE(sqlite3_prepare_v2(db, "SELECT id FROM poolbench_accounts", -1, &st, nullptr) == SQLITE_OK);
    std::vector<std::int64_t> out;
    while (sqlite3_step(st) == SQLITE_ROW) out.push_back(sqlite3_column_int64(st, 0));
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

std::set<std::string> entries(const fs::path& dir) {
    std::set<std::string> out;
    for (const auto& e : fs::directory_iterator(dir)) out.insert(e.path().filename().string());
    return out;
}

std::uint64_t u64(const json& j, const char* key) { return j.at(key).get<std::uint64_t>(); }

}  // namespace

TEST_CASE("topology: 4 SQLite shards under 100 threads lose no write and route each by its row key",
          "[cli][sqlite][shards][topology]") {
    for (const char* workload : {"write", "mixed"}) {
        INFO("workload " << workload);
        TempDir tmp;
        const fs::path dir = tmp.path() / "data";
        fs::create_directories(dir);
        write_file(dir / "notes.txt", "a user's file\n");  // never touched
        const auto r = run_in(tmp.path(), {"stress", "--shards", "4", "--db", "sqlite://" + dir.string(), "--threads",
                                           "100", "--ops", "8000", "--workload", workload, "--rows", "2000", "--json", "-"});
        INFO(r.err);
        REQUIRE(r.code == 0);
        const json j = parse_json(r.out);
        CHECK(entries(dir) == std::set<std::string>{"notes.txt", "shard-0.db", "shard-1.db", "shard-2.db", "shard-3.db"});
        CHECK(slurp(dir / "notes.txt") == "a user's file\n");
        const json& w = j.at("writes");
        const std::uint64_t acknowledged = u64(w, "acknowledged");
        REQUIRE(acknowledged > 0);
        CHECK(u64(w, "lost") == 0);
        CHECK(u64(w, "verified") == acknowledged);
        std::uint64_t verified = 0, ops = 0;
        for (std::size_t i = 0; i < 4; ++i) {
            const std::string name = "shard-" + std::to_string(i);
            INFO(name);
            const json& s = j.at("pools").at(name);
            CHECK(s.at("role") == "shard");
            const auto rows = rows_of(dir / (name + ".db"));
            // Each row is on the shard its key (worker << 32 | seq) maps to, and the shard
            // holds exactly the writes routed to it.
            for (const auto& [worker, seq] : rows) {
                const auto key = static_cast<std::int64_t>((static_cast<std::uint64_t>(worker) << 32) |
                                                           static_cast<std::uint64_t>(seq));
                REQUIRE(poolbench::shard_for_key(key, 4) == i);
            }
            CHECK(u64(s, "rows_verified") == rows.size());
            CHECK(u64(s, "writes") == rows.size());
            const double share = static_cast<double>(rows.size()) / static_cast<double>(acknowledged);
            CHECK(share >= 0.15);
            CHECK(share <= 0.35);
            verified += u64(s, "rows_verified");
            ops += u64(s, "reads") + u64(s, "writes");
            CHECK(u64(j.at("pool"), "max_size") == 4 * u64(s.at("pool"), "max_size"));
        }
        if (std::string(workload) == "mixed") {
            // Reads route by account id: each shard holds exactly the accounts that map to it.
            std::set<std::int64_t> all;
            for (std::size_t i = 0; i < 4; ++i) {
                for (const auto id : accounts_of(dir / ("shard-" + std::to_string(i) + ".db"))) {
                    REQUIRE(poolbench::shard_for_key(id, 4) == i);
                    all.insert(id);
                }
            }
            CHECK(all.size() == 2000);
            CHECK(*all.begin() == 1);
            CHECK(*all.rbegin() == 2000);
        }
        CHECK(verified == acknowledged);
        CHECK(ops == u64(j.at("ops"), "ok"));
        CHECK(u64(j.at("ops"), "ok") == 8000);
    }
}

TEST_CASE("topology: bad replica and shard combinations exit 2 with one line saying what works",
          "[cli][topology]") {
    TempDir tmp;
    const std::string sqlite_dir = "sqlite://" + (tmp.path() / "d").string();
    struct Case {
        std::vector<std::string> args;
        std::vector<std::string> says;
    };
    const std::vector<Case> cases{
        {{"--primary", "sqlite://" + (tmp.path() / "p.db").string(), "--replica", "sqlite://" + (tmp.path() / "r.db").string()},
         {"PostgreSQL only", "--primary postgresql://", "--shards N"}},
        {{"--replica", "postgresql://u:secretpw@127.0.0.1:1/db"}, {"--replica needs a primary", "--primary postgresql://"}},
        {{"--shards", "0", "--db", sqlite_dir}, {"--shards 0", "1 to 256"}},
        // Not wrapped to a huge count (that ran the machine out of memory).
        {{"--shards", "-3", "--db", sqlite_dir}, {"--shards -3", "1 to 256"}},
        {{"--shards", "257", "--db", sqlite_dir}, {"--shards 257", "1 to 256"}},
        {{"--shards", "4", "--db", "postgresql://u:secretpw@127.0.0.1:1/db"},
         {"SQLite files", "--db sqlite:///DIR", "one --db URL per shard"}},
        {{"--shards", "2", "--db", sqlite_dir, "--replica", "postgresql://u:secretpw@127.0.0.1:1/db"},
         {"cannot be combined", "give one of them"}},
    };
    for (const auto& c : cases) {
        std::vector<std::string> args{"stress", "--ops", "10"};
        args.insert(args.end(), c.args.begin(), c.args.end());
        std::string shown;
        for (const auto& a : c.args) shown += a + " ";
        INFO(shown);
        const auto r = run_in(tmp.path(), args);
        INFO(r.err);
        CHECK(r.code == 2);
        CHECK(count_lines(r.err) == 1);
        CHECK(r.out.empty());
        for (const auto& s : c.says) CHECK(r.err.find(s) != std::string::npos);
        CHECK(r.err.find("secretpw") == std::string::npos);
    }
    CHECK_FALSE(fs::exists(tmp.path() / "d"));  // refused before anything was made
}

TEST_CASE("topology: a report written over a shard's file is refused and the file kept", "[cli][sqlite][shards][topology]") {
    TempDir tmp;
    const fs::path dir = tmp.path() / "data";
    fs::create_directories(dir);
    write_file(dir / "shard-1.db", "precious");
    const auto r = run_in(tmp.path(), {"stress", "--shards", "2", "--db", "sqlite://" + dir.string(), "--ops", "10",
                                       "--json", (dir / "shard-1.db").string()});
    INFO(r.err);
    CHECK(r.code == 2);
    CHECK(count_lines(r.err) == 1);
    CHECK(r.err.find("shard-1.db") != std::string::npos);
    CHECK(slurp(dir / "shard-1.db") == "precious");
    CHECK_FALSE(fs::exists(dir / "shard-0.db"));
}

TEST_CASE("topology: the text and HTML headers say the database is one of several shards, the peaks are sums", "[cli][sqlite][shards][topology]") {
    TempDir tmp;
    const fs::path dir = tmp.path() / "data";
    const auto r = run_in(tmp.path(), {"stress", "--shards", "3", "--db", "sqlite://" + dir.string(), "--ops", "30",
                                       "--no-progress", "--html", "r.html"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    CHECK_THAT(r.out, Catch::Contains("shard-0.db (backend sqlite; shard-0 of 3 shards; each node under pools)\n"));
    CHECK_THAT(slurp(tmp.path() / "r.html"), Catch::Contains("(sqlite; shard-0 of 3 shards; each node under pools)"));
    CHECK_THAT(r.out, Catch::Contains("(each the sum of the 3 pools' own peaks)\n"));
    CHECK_THAT(r.out, Catch::Contains("data/shard-2.db\n"));  // every node's URL, in the pools table
    CHECK_THAT(slurp(tmp.path() / "r.html"), Catch::Contains("data/shard-1.db"));
    // One database: the header is as it was.
    const auto one = run_in(tmp.path(), {"stress", "--db", "sqlite://one.db", "--ops", "10", "--no-progress"});
    REQUIRE(one.code == 0);
    CHECK_THAT(one.out, Catch::Contains("one.db (backend sqlite)\n"));
}

TEST_CASE("topology: SQLite shards gate their writers each at its own WriterGate: no busy error", "[cli][sqlite][shards][topology]") {
    TempDir tmp;
    const auto r = run_in(tmp.path(), {"run", "writer-contention-sqlite", "--shards", "2", "--db",
                                       "sqlite://" + (tmp.path() / "data").string(), "--no-progress", "--json", "-",
                                       "--set", "phase.ungated.duration=1500ms", "--set", "phase.gated.duration=1500ms"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    // The control phase shows the problem on each shard's file; the gated phase has none.
    CHECK(j.at("phases").at(0).at("errors_by_class").at("busy").get<int>() > 0);
    CHECK(j.at("phases").at(1).at("errors_by_class").at("busy") == 0);
    CHECK(j.at("phases").at(1).at("ops").at("failed") == 0);
    CHECK(u64(j.at("pools").at("shard-0"), "writes") > 0);
    CHECK(u64(j.at("pools").at("shard-1"), "writes") > 0);
    CHECK(j.at("writes").at("lost") == 0);
    CHECK(j.at("pool").at("active_at_end") == 0);
}

TEST_CASE("topology: merge sums each pool's figures by node name", "[cli][sqlite][shards][topology][merge]") {
    TempDir tmp;
    for (const char* agent : {"a", "b"}) {
        const fs::path dir = tmp.path() / agent;
        const auto r = run_in(tmp.path(), {"stress", "--shards", "2", "--db", "sqlite://" + dir.string(), "--threads", "4",
                                           "--ops", "600", "--workload", "mixed", "--rows", "200", "--json",
                                           std::string(agent) + ".json"});
        INFO(r.err);
        REQUIRE(r.code == 0);
    }
    const auto m = run_in(tmp.path(), {"merge", "a.json", "b.json", "-o", "all.json", "--expect",
                                       "pools.shard-1.reads > 0"});
    INFO(m.err);
    REQUIRE(m.code == 0);
    const json a = parse_json(slurp(tmp.path() / "a.json"));
    const json b = parse_json(slurp(tmp.path() / "b.json"));
    const json all = parse_json(slurp(tmp.path() / "all.json"));
    for (const char* node : {"shard-0", "shard-1"}) {
        INFO(node);
        const json& x = all.at("pools").at(node);
        CHECK(x.at("role") == "shard");
        for (const char* key : {"reads", "writes", "rows_verified"}) {
            INFO(key);
            CHECK(u64(x, key) == u64(a.at("pools").at(node), key) + u64(b.at("pools").at(node), key));
        }
        CHECK(u64(x.at("pool"), "created") ==
              u64(a.at("pools").at(node).at("pool"), "created") + u64(b.at("pools").at(node).at("pool"), "created"));
    }
    CHECK(u64(all.at("pools").at("shard-0"), "writes") + u64(all.at("pools").at("shard-1"), "writes") ==
          u64(all.at("writes"), "acknowledged"));
}

// test_cli_diagnose.cpp — `poolbench diagnose`: timings, settings and findings, on
// SQLite (embedded and configured), null:// and an unusable database. The PostgreSQL
// case is in test_cli_pg.cpp.
#include "cli_support.hpp"

#include <sqlite3.h>

using namespace clitest;  // NOLINT(google-build-using-namespace): test file
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::vector<std::string> levels(const json& j, const std::string& level) {
    std::vector<std::string> out;
    for (const auto& f : j.at("findings")) {
        if (f.at("level") == level) out.push_back(f.at("what").get<std::string>());
    }
    return out;
}

}  // namespace

TEST_CASE("diagnose on the embedded SQLite default passes and reports its settings", "[cli][diagnose]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"diagnose", "--samples", "5", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    CHECK(j.at("schema") == "poolbench/diagnose@1");
    CHECK(j.at("database").at("backend") == "sqlite");
    CHECK(j.at("connect_ms").at("samples") == 5);
    CHECK(j.at("connect_ms").at("p50").get<double>() > 0);
    CHECK(j.at("round_trip_us").at("p50").get<double>() > 0);
    CHECK(j.at("settings").at("journal_mode") == "wal");
    CHECK(j.at("settings").at("query_only") == "off");
    CHECK(levels(j, "problem").empty());
    CHECK(levels(j, "warn").empty());
    CHECK(j.at("verdict") == "pass");
    CHECK(r.err.find("verdict: PASS (0 warnings)") != std::string::npos);
}

TEST_CASE("diagnose warns about a rollback journal and busy_timeout 0, and fails on query_only", "[cli][diagnose]") {
    TempDir dir;
    const std::string base = "sqlite://" + (dir.path() / "d.db").string();
    REQUIRE(run_in(dir.path(), {"stress", "--db", base, "--ops", "10", "--threads", "1"}).code == 0);  // creates it
    const auto warned = run_in(dir.path(), {"diagnose", "--db", base + "?journal_mode=DELETE&busy_timeout=0",
                                            "--samples", "3", "--json", "w.json"});
    CHECK(warned.code == 0);
    const json w = parse_json(slurp(dir.path() / "w.json"));
    const auto warnings = levels(w, "warn");
    REQUIRE(warnings.size() == 3);
    CHECK(warnings[0].find("journal_mode is delete") != std::string::npos);
    CHECK(warnings[1].find("switched it from a wal journal to journal_mode delete") != std::string::npos);  // stress left WAL
    CHECK(warnings[2].find("busy_timeout is 0") != std::string::npos);

    const auto failed = run_in(dir.path(), {"diagnose", "--db", base + "?query_only=1", "--samples", "3"});
    CHECK(failed.code == 1);
    CHECK(failed.out.find("[problem] query_only is on") != std::string::npos);
    CHECK(failed.out.find("verdict: FAIL (1 problem)") != std::string::npos);
}

TEST_CASE("diagnose never creates a database, keeps a file's journal mode, and says what it costs",
          "[cli][diagnose]") {
    TempDir dir;
    const auto missing = run_in(dir.path(), {"diagnose", "--db", "sqlite://" + (dir.path() / "typo.db").string()});
    CHECK(missing.code == 3);
    CHECK(count_lines(missing.err) == 1);
    CHECK(missing.err.find("never creates one") != std::string::npos);
    CHECK_FALSE(fs::exists(dir.path() / "typo.db"));

    // A file in a rollback journal, as another program would leave it.
    const fs::path file = dir.path() / "delete.db";
    sqlite3* h = nullptr;
    REQUIRE(sqlite3_open(file.c_str(), &h) == SQLITE_OK);
    REQUIRE(sqlite3_exec(h, "PRAGMA journal_mode=DELETE; CREATE TABLE t(x)", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(h);
    const auto r = run_in(dir.path(), {"diagnose", "--db", "sqlite://" + file.string(), "--samples", "2", "--json", "-"});
    CHECK(r.code == 0);
    const json j = parse_json(r.out);
    CHECK(j.at("settings").at("journal_mode stored in the file before poolbench connected") == "rollback");
    CHECK(j.at("settings").at("journal_mode") == "delete");  // kept: not converted
    const auto warnings = levels(j, "warn");
    REQUIRE(warnings.size() == 1);
    CHECK(warnings[0].find("journal_mode is delete: readers wait behind a writer") != std::string::npos);
    CHECK_FALSE(fs::exists(dir.path() / "delete.db-wal"));

    // Asked for in the URL, the conversion is done and said.
    const auto wal = run_in(dir.path(), {"diagnose", "--db", "sqlite://" + file.string() + "?journal_mode=wal",
                                         "--samples", "2", "--json", "-"});
    CHECK(wal.code == 0);
    const auto asked = levels(parse_json(wal.out), "warn");
    REQUIRE(asked.size() == 1);
    CHECK(asked[0].find("switched it from a rollback journal to journal_mode wal") != std::string::npos);
}

TEST_CASE("stress on a user's rollback-journal file keeps its mode and says what it costs", "[cli][sqlite]") {
    TempDir dir;
    const fs::path file = dir.path() / "app.db";
    sqlite3* h = nullptr;
    REQUIRE(sqlite3_open(file.c_str(), &h) == SQLITE_OK);
    REQUIRE(sqlite3_exec(h, "PRAGMA journal_mode=DELETE; CREATE TABLE t(x)", nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(h);
    const auto r = run_in(dir.path(), {"stress", "--db", "sqlite://" + file.string(), "--workload", "write", "--ops",
                                       "200", "--threads", "2", "--no-progress", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    REQUIRE(j.contains("notes"));
    CHECK(j.at("notes").at(0).get<std::string>().find("rollback journal (poolbench kept the file's mode)") !=
          std::string::npos);
    CHECK(j.at("writes").at("lost") == 0);
    // Still a rollback-journal file: header byte 18 is 1 (2 would be WAL).
    const std::string header = slurp(file).substr(0, 20);
    CHECK(header[18] == 1);
    // Asked for in the URL, it is converted, and the report says so.
    const auto conv = run_in(dir.path(), {"stress", "--db", "sqlite://" + file.string() + "?journal_mode=wal", "--ops",
                                          "10", "--no-progress", "--json", "-"});
    REQUIRE(conv.code == 0);
    CHECK(parse_json(conv.out).at("notes").at(0).get<std::string>().find("converted from a rollback journal to wal") !=
          std::string::npos);
    CHECK(slurp(file).substr(0, 20)[18] == 2);
}

TEST_CASE("diagnose on null:// and on an unusable database", "[cli][diagnose]") {
    TempDir dir;
    const auto null = run_in(dir.path(), {"diagnose", "--db", "null://", "--samples", "2"});
    CHECK(null.code == 0);
    CHECK(null.out.find("server: none") != std::string::npos);

    const auto bad = run_in(dir.path(), {"diagnose", "--db", "sqlite:///nonexistent-dir/x.db"});
    CHECK(bad.code == 3);
    CHECK(count_lines(bad.err) == 1);
    CHECK(bad.err.find("/nonexistent-dir/x.db") != std::string::npos);

    const auto usage = run_in(dir.path(), {"diagnose", "--samples", "0"});
    CHECK(usage.code == 2);
    CHECK(count_lines(usage.err) == 1);
}

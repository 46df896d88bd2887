// test_cli_diagnose.cpp — `poolbench diagnose`: timings, settings and findings, on
// SQLite (embedded and configured), null:// and an unusable database. The PostgreSQL
// case is in test_cli_pg.cpp.
#include "cli_support.hpp"

using namespace clitest;  // NOLINT(google-build-using-namespace): test file
using nlohmann::json;

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
    const auto warned = run_in(dir.path(), {"diagnose", "--db", base + "?journal_mode=DELETE&busy_timeout=0",
                                            "--samples", "3", "--json", "w.json"});
    CHECK(warned.code == 0);
    const json w = parse_json(slurp(dir.path() / "w.json"));
    const auto warnings = levels(w, "warn");
    REQUIRE(warnings.size() == 2);
    CHECK(warnings[0].find("journal_mode is delete") != std::string::npos);
    CHECK(warnings[1].find("busy_timeout is 0") != std::string::npos);

    const auto failed = run_in(dir.path(), {"diagnose", "--db", base + "?query_only=1", "--samples", "3"});
    CHECK(failed.code == 1);
    CHECK(failed.out.find("[problem] query_only is on") != std::string::npos);
    CHECK(failed.out.find("verdict: FAIL (1 problem)") != std::string::npos);
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

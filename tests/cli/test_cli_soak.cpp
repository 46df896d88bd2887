// test_cli_soak.cpp — `poolbench soak`: a paced run that fails when it falls behind its
// rate or stalls, on top of stress's expectations.
#include "cli_support.hpp"

#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <thread>

using namespace clitest;  // NOLINT(google-build-using-namespace): test file
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const json* expectation(const json& report, const std::string& prefix) {
    for (const auto& e : report.at("expectations")) {
        if (e.at("name").get<std::string>().rfind(prefix, 0) == 0) return &e;
    }
    return nullptr;
}

}  // namespace

TEST_CASE("soak keeps its rate: paced, not faster, and passes", "[cli][soak]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"soak", "--db", "null://", "--rate", "2000", "--duration", "2s", "--threads",
                                       "4", "--sample-interval", "250ms", "--no-progress", "--json", "-"});
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    CHECK(j.at("command") == "soak");
    CHECK(j.at("config").at("rate_ops_s") == 2000);
    CHECK(j.at("config").at("leak_threshold_ms") == 10000);  // leak tracking is on in a soak
    const double ops_s = j.at("throughput_ops_s").get<double>();
    CHECK(ops_s >= 1900);
    CHECK(ops_s <= 2100);  // paced: null:// alone would do millions per second
    const json* rate = expectation(j, "throughput_ops_s >= 95% of the target rate");
    REQUIRE(rate != nullptr);
    CHECK(rate->at("passed") == true);
    const json* stalls = expectation(j, "timeline intervals without a completed operation");
    REQUIRE(stalls != nullptr);
    CHECK(stalls->at("actual") == 0);
    CHECK(j.at("timeline").size() >= 7);
    CHECK(r.err.find("target rate: 2000 ops/s") != std::string::npos);
}

TEST_CASE("soak fails (exit 1) when it cannot keep up with --rate", "[cli][soak]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"soak", "--db", "null://", "--rate", "100000000", "--duration", "1s",
                                       "--threads", "1", "--no-progress", "--json", "r.json"});
    CHECK(r.code == 1);
    const json j = parse_json(slurp(dir.path() / "r.json"));
    const json* rate = expectation(j, "throughput_ops_s >= 95% of the target rate");
    REQUIRE(rate != nullptr);
    CHECK(rate->at("passed") == false);
    CHECK(j.at("verdict") == "fail");
}

TEST_CASE("soak reports a stall: sample intervals in which no operation completed", "[cli][soak]") {
    // Paced, and unpaced (--rate 0: judged against the run's own average rate).
    const std::string rate = GENERATE(std::string("400"), std::string("0"));
    INFO("--rate " << rate);
    TempDir dir;
    const fs::path db = dir.path() / "soak.db";
    // Once the soak's writes reach the file, another connection takes SQLite's exclusive
    // lock and holds it for 1.5 s (the fault under test), so every writer waits.
    std::atomic<bool> locked{false};
    std::thread holder([&] {
        sqlite3* h = nullptr;
        const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
        while (std::chrono::steady_clock::now() < give_up) {
            if (h == nullptr && fs::exists(db)) {
                if (sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
                    sqlite3_close(h);
                    h = nullptr;
                } else {
                    sqlite3_busy_timeout(h, 5000);
                }
            }
            sqlite3_stmt* count = nullptr;
            if (h != nullptr &&
                sqlite3_prepare_v2(h, "SELECT count(*) FROM poolbench_writes", -1, &count, nullptr) == SQLITE_OK &&
                sqlite3_step(count) == SQLITE_ROW && sqlite3_column_int(count, 0) > 0) {
                sqlite3_finalize(count);
                if (sqlite3_exec(h, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK) {
                    locked = true;
                    std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the held lock is the fault
                    sqlite3_exec(h, "COMMIT", nullptr, nullptr, nullptr);
                }
                break;
            }
            sqlite3_finalize(count);
            std::this_thread::yield();
        }
        sqlite3_close(h);
    });
    const auto r = run_in(dir.path(), {"soak", "--db", "sqlite://" + db.string() + "?busy_timeout=10000", "--workload",
                                       "write", "--rate", rate, "--duration", "4s", "--threads", "4",
                                       "--sample-interval", "250ms", "--no-progress", "--json", "r.json"});
    holder.join();
    REQUIRE(locked);
    CHECK(r.code == 1);
    const json j = parse_json(slurp(dir.path() / "r.json"));
    const json* stalls = expectation(j, "timeline intervals without a completed operation");
    REQUIRE(stalls != nullptr);
    CHECK(stalls->at("passed") == false);
    CHECK(stalls->at("actual").get<double>() >= 3);  // 1.5 s of 250 ms intervals, less the edges
    // When, not only how many: each stalled interval's end, inside the run.
    const json& at = j.at("phases").at(0).at("stalled_at_s");
    CHECK(at.size() == static_cast<std::size_t>(stalls->at("actual").get<double>()));
    for (const auto& t : at) CHECK((t.get<double>() > 0 && t.get<double>() <= 4.5));
    CHECK(slurp(dir.path() / "stdout.txt").find("(stalled: intervals ending at ") != std::string::npos);
    CHECK(j.at("writes").at("lost") == 0);           // waiting is not losing
    CHECK(j.at("ops").at("failed") == 0);
}

TEST_CASE("a short soak samples by the one rule: at least 20 points", "[cli][soak]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"soak", "--db", "null://", "--duration", "500ms", "--rate", "1000", "--threads",
                                       "2", "--no-progress", "--json", "-"});
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    CHECK(j.at("config").at("sample_interval_s") == 0.025);
    CHECK(j.at("timeline").size() >= 19);
}

TEST_CASE("soak usage errors exit 2 with one line", "[cli][soak]") {
    TempDir dir;
    for (const auto& args : std::vector<std::vector<std::string>>{
             {"soak", "--db", "null://", "--ops", "10"},
             {"soak", "--db", "null://", "--rate", "-5"},
             {"soak", "--db", "null://", "--duration", "soon"},
             {"soak", "--db", "null://", "--rate", "nan"},
             {"soak", "--db", "null://", "--duration", "1s", "--sample-interval", "2s"}}) {
        INFO(args[3]);
        const auto r = run_in(dir.path(), args);
        CHECK(r.code == 2);
        CHECK(count_lines(r.err) == 1);
        CHECK(r.out.empty());
    }
}

TEST_CASE("stress reports its outage as time beside the counts: first failure to steady success", "[cli][sqlite]") {
    TempDir dir;
    const fs::path db = dir.path() / "o.db";
    REQUIRE(run_in(dir.path(), {"stress", "--db", "sqlite://" + db.string(), "--workload", "write", "--ops", "10",
                                "--no-progress"})
                .code == 0);
    // Another connection holds the write lock for the first second of the run (the fault
    // itself, as in the stall test); with busy_timeout=0 the writers fail until it is gone.
    sqlite3* h = nullptr;
    REQUIRE(sqlite3_open(db.c_str(), &h) == SQLITE_OK);
    REQUIRE(sqlite3_exec(h, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
    const pid_t pid = spawn_in(dir.path(), {"stress", "--db", "sqlite://" + db.string() + "?busy_timeout=0",
                                            "--workload", "write", "--duration", "3s", "--threads", "2",
                                            "--json", "r.json"});
    std::this_thread::sleep_for(std::chrono::milliseconds(1000));
    sqlite3_exec(h, "ROLLBACK", nullptr, nullptr, nullptr);
    sqlite3_close(h);
    const Result r = finish(dir.path(), pid);
    CHECK(r.code == 1);  // it failed operations
    const json j = parse_json(slurp(dir.path() / "r.json"));
    REQUIRE(j.at("ops").at("failed").get<int>() > 0);
    const json& outage = j.at("phases").at(0).at("outage_ms");
    REQUIRE(outage.is_number());
    CHECK(outage.get<double>() > 0);
    CHECK(outage.get<double>() < 3000);
    CHECK(r.out.find("outage: ") != std::string::npos);
}

// test_cli_diagnose.cpp — `poolbench diagnose` on SQLite, null:// and an unusable
// database: findings by code, the write lock held by another process, nothing written
// (file bytes, mtime, journal mode, no -wal/-shm created), the outputs (JSON, JUnit, HTML)
// and the --measure ladder. PostgreSQL is in test_cli_diagnose_pg.cpp; the pool-size
// arithmetic in test_diagnose_sizing.cpp.
#include "cli_support.hpp"

#include <sqlite3.h>
#include <sys/stat.h>

using namespace clitest;  // NOLINT(google-build-using-namespace): test file
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const json* finding(const json& j, const std::string& code) { return diagnose_finding(j, code); }

std::vector<std::string> codes(const json& j, const std::string& level) {
    std::vector<std::string> out;
    for (const auto& f : j.at("findings")) {
        if (f.at("level") == level) out.push_back(f.at("code").get<std::string>());
    }
    return out;
}

/// A database file as another program would leave it, closed.
void make_db(const fs::path& file, const char* journal) {
    sqlite3* h = nullptr;
    REQUIRE(sqlite3_open(file.c_str(), &h) == SQLITE_OK);
    const std::string sql = std::string("PRAGMA journal_mode=") + journal +
                            "; CREATE TABLE t(x); INSERT INTO t VALUES (1), (2), (3)";
    REQUIRE(sqlite3_exec(h, sql.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
    REQUIRE(sqlite3_close(h) == SQLITE_OK);
}

/// What must not change: every byte, the modification time, and which companion files exist.
struct FileState {
    std::string bytes;
    timespec mtime{};
    bool wal = false, shm = false, journal = false;
    explicit FileState(const fs::path& file) : bytes(slurp(file)) {
        struct stat st {};
        REQUIRE(::stat(file.c_str(), &st) == 0);
        mtime = st.st_mtim;
        wal = fs::exists(file.string() + "-wal");
        shm = fs::exists(file.string() + "-shm");
        journal = fs::exists(file.string() + "-journal");
    }
    bool operator==(const FileState& o) const {
        return bytes == o.bytes && mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec && wal == o.wal &&
               shm == o.shm && journal == o.journal;
    }
};

/// Another process's connection holding the write lock (BEGIN IMMEDIATE) until destroyed.
/// The test process is that other process: poolbench runs as a child.
class WriteLockHolder {
public:
    explicit WriteLockHolder(const fs::path& file) {
        REQUIRE(sqlite3_open_v2(file.c_str(), &h_, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
        REQUIRE(sqlite3_exec(h_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK);
    }
    WriteLockHolder(const WriteLockHolder&) = delete;
    WriteLockHolder& operator=(const WriteLockHolder&) = delete;
    ~WriteLockHolder() {
        sqlite3_exec(h_, "ROLLBACK", nullptr, nullptr, nullptr);
        sqlite3_close(h_);
    }

private:
    sqlite3* h_ = nullptr;
};

}  // namespace

TEST_CASE("diagnose without --db or POOLBENCH_DB asks what to diagnose (exit 2)", "[cli][diagnose]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"diagnose", "--samples", "2"});
    CHECK(r.code == 2);
    CHECK(count_lines(r.err) == 1);
    CHECK(r.err.find("what should I diagnose?") != std::string::npos);
    CHECK(r.out.empty());
    // No temporary database was made to diagnose instead.
    for (const auto& e : fs::directory_iterator(dir.path())) {
        CHECK(e.path().filename().string().rfind("std", 0) == 0);  // only stdout.txt / stderr.txt
    }
    const auto with_env = run_in_env(dir.path(), {"diagnose", "--samples", "2"}, {"POOLBENCH_DB=null://"});
    CHECK(with_env.code == 0);
}

TEST_CASE("diagnose on a rollback-journal file: facts, findings, and not a byte changed", "[cli][diagnose]") {
    TempDir dir;
    const fs::path file = dir.path() / "app.db";
    make_db(file, "DELETE");
    const FileState before(file);
    const auto r = run_in(dir.path(), {"diagnose", "--db", "sqlite://" + file.string(), "--samples", "3", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    CHECK(j.at("schema") == "poolbench/diagnose@2");
    const json& f = j.at("facts");
    CHECK(f.at("journal_mode") == "delete");  // SQLite's default rollback mode: truncate/persist are per connection
    CHECK(f.at("write_lock") == "free");
    CHECK(f.at("page_size").get<int>() == 4096);
    CHECK(f.at("page_count").get<int>() >= 2);
    CHECK(f.at("table_count") == 1);
    CHECK(f.at("busy_timeout_ms") == 5000);
    CHECK(finding(j, "write_lock_free") != nullptr);
    CHECK(codes(j, "warn") == std::vector<std::string>{"rollback_journal"});
    CHECK(codes(j, "problem").empty());
    CHECK_FALSE(finding(j, "rollback_journal")->at("action").get<std::string>().empty());
    // What the pool would change, and that diagnose changed none of it.
    bool sync = false;
    for (const auto& row : j.at("tables").at("pool_would_change").at("rows")) {
        if (row.at("setting") == "synchronous") sync = row.at("pool_sets") == "normal" && row.at("stored_in_file") == false;
    }
    CHECK(sync);
    CHECK(FileState(file) == before);
}

TEST_CASE("diagnose on a WAL file nothing has open creates no -wal or -shm and changes nothing", "[cli][diagnose]") {
    TempDir dir;
    const fs::path file = dir.path() / "wal.db";
    make_db(file, "WAL");
    REQUIRE_FALSE(fs::exists(file.string() + "-wal"));  // the last close checkpointed and removed it
    const FileState before(file);
    const auto r = run_in(dir.path(), {"diagnose", "--db", "sqlite://" + file.string(), "--samples", "3", "--measure",
                                       "--measure-step", "100ms", "--json", "-"});
    INFO(r.err);
    REQUIRE(r.code == 0);
    const json j = parse_json(r.out);
    CHECK(j.at("facts").at("journal_mode") == "wal");
    CHECK(j.at("facts").at("wal_bytes") == 0);
    CHECK(j.at("facts").at("table_count") == 1);
    CHECK(finding(j, "wal") != nullptr);
    CHECK(codes(j, "problem").empty());
    // The ladder ran: 1, 2, 4, ... read-only connections.
    const json& steps = j.at("ladder").at("steps");
    REQUIRE(steps.size() >= 2);
    CHECK(steps.at(0).at("connections") == 1);
    CHECK(steps.at(1).at("connections") == 2);
    CHECK(steps.at(0).at("ops_s").get<double>() > 0);
    CHECK(r.err.find("SELECT 1 ladder") != std::string::npos);
    // A local database: the recommendation uses this machine's cores.
    CHECK(j.at("pool_size").at("recommended_max_size").get<int>() >= 3);
    CHECK(j.at("pool_size").at("server_cores_source").get<std::string>().find("this machine") != std::string::npos);
    CHECK(FileState(file) == before);
}

TEST_CASE("diagnose finds the write lock held by another process, at once, and changes nothing", "[cli][diagnose]") {
    for (const char* journal : {"DELETE", "WAL"}) {
        INFO("journal_mode " << journal);
        TempDir dir;
        const fs::path file = dir.path() / "locked.db";
        make_db(file, journal);
        // Read before the lock is taken: closing a descriptor to the file drops this
        // process's POSIX locks on it, the holder's included.
        const FileState before(file);
        {
            const WriteLockHolder holder(file);
            const auto t0 = std::chrono::steady_clock::now();
            const auto r = run_in(dir.path(), {"diagnose", "--db", "sqlite://" + file.string() + "?busy_timeout=30000",
                                               "--samples", "2", "--json", "-"});
            const auto took = std::chrono::steady_clock::now() - t0;
            INFO(r.err);
            REQUIRE(r.code == 1);  // a problem found, not exit 3 after the busy timeout
            CHECK(took < std::chrono::seconds(20));
            const json j = parse_json(r.out);
            const json* held = finding(j, "write_lock_held");
            REQUIRE(held != nullptr);
            CHECK(held->at("level") == "problem");
            CHECK(held->at("text").get<std::string>().find("another process holds the write lock: pid " +
                                                           std::to_string(::getpid())) != std::string::npos);
            CHECK(j.at("facts").at("write_lock") == "held");
            CHECK(j.at("facts").at("write_lock_holder_pid") == ::getpid());
            CHECK(j.at("facts").at("journal_mode") == (std::string(journal) == "WAL" ? "wal" : "delete"));
            CHECK(j.at("verdict") == "fail");
            CHECK(r.err.find("[problem] write_lock_held: another process holds the write lock") != std::string::npos);
        }
        // The holder wrote nothing and is gone: the file is as it was, companions included.
        CHECK(FileState(file) == before);
    }
}

TEST_CASE("diagnose says what the URL would change: conversion, busy_timeout 0, and a read-only URL is a note",
          "[cli][diagnose]") {
    TempDir dir;
    const fs::path file = dir.path() / "d.db";
    make_db(file, "WAL");
    const FileState before(file);
    const std::string base = "sqlite://" + file.string();
    const auto warned = run_in(dir.path(), {"diagnose", "--db", base + "?journal_mode=DELETE&busy_timeout=0",
                                            "--samples", "2", "--json", "w.json"});
    CHECK(warned.code == 0);
    const json w = parse_json(slurp(dir.path() / "w.json"));
    CHECK(codes(w, "warn") == std::vector<std::string>{"journal_mode_would_convert", "busy_timeout_zero"});
    CHECK(finding(w, "journal_mode_would_convert")->at("text").get<std::string>().find("from wal to delete") !=
          std::string::npos);
    CHECK(w.at("facts").at("journal_mode") == "wal");  // said, not done
    CHECK(warned.out.find("what to do: add ?busy_timeout=5000") != std::string::npos);

    // The user asked for read-only: a note, not a problem.
    const auto ro = run_in(dir.path(), {"diagnose", "--db", base + "?query_only=1", "--samples", "2"});
    CHECK(ro.code == 0);
    CHECK(ro.out.find("[ok] read_only_url: query_only is on in the URL") != std::string::npos);
    CHECK(ro.out.find("verdict: PASS (0 warnings)") != std::string::npos);
    CHECK(FileState(file) == before);

    // A rollback file: no advice to convert when the URL only reads, and never both "add
    // journal_mode=WAL" and "drop journal_mode" for one URL.
    const fs::path rollback = dir.path() / "r.db";
    make_db(rollback, "DELETE");
    const std::string rb = "sqlite://" + rollback.string();
    const auto mode_ro = run_in(dir.path(), {"diagnose", "--db", rb + "?mode=ro", "--samples", "2", "--json", "-"});
    CHECK(mode_ro.code == 0);
    const json m = parse_json(mode_ro.out);
    CHECK(codes(m, "warn").empty());
    CHECK(codes(m, "problem").empty());
    CHECK(finding(m, "read_only_url")->at("level") == "ok");
    CHECK(finding(m, "rollback_journal")->at("level") == "ok");
    CHECK(mode_ro.err.find("journal_mode=WAL") == std::string::npos);
    const auto to_wal = run_in(dir.path(), {"diagnose", "--db", rb + "?journal_mode=WAL", "--samples", "2", "--json", "-"});
    CHECK(to_wal.code == 0);
    const json t = parse_json(to_wal.out);
    CHECK(codes(t, "warn") == std::vector<std::string>{"journal_mode_would_convert"});
    CHECK(finding(t, "rollback_journal")->at("level") == "ok");
}

TEST_CASE("diagnose writes JUnit (a problem fails its test case) and HTML, by rename", "[cli][diagnose]") {
    TempDir dir;
    const fs::path file = dir.path() / "j.db";
    make_db(file, "DELETE");
    const WriteLockHolder holder(file);
    const auto r = run_in(dir.path(), {"diagnose", "--db", "sqlite://" + file.string(), "--samples", "2", "--junit",
                                       "d.xml", "--html", "d.html"});
    REQUIRE(r.code == 1);
    const std::string xml = slurp(dir.path() / "d.xml");
    CHECK(xml.find("<testsuites name=\"poolbench\"") != std::string::npos);
    CHECK(xml.find("failures=\"1\"") != std::string::npos);
    CHECK(xml.find("name=\"write_lock_held\"") != std::string::npos);  // stable: the figures are in the message
    CHECK(xml.find("<failure type=\"write_lock_held\"") != std::string::npos);
    CHECK(xml.find("name=\"rollback_journal\"") != std::string::npos);
    CHECK(xml.find("message=\"another process holds the write lock") != std::string::npos);
    const std::string html = slurp(dir.path() / "d.html");
    CHECK(html.rfind("<!DOCTYPE html>", 0) == 0);
    CHECK(html.find("FAIL: 1 problem") != std::string::npos);
    CHECK(html.find("<code>write_lock_held</code>") != std::string::npos);
    CHECK(html.find("<script") == std::string::npos);
    CHECK(html.find("</html>") != std::string::npos);
    // A report may not name the database.
    const auto clash = run_in(dir.path(), {"diagnose", "--db", "sqlite://" + file.string(), "--html", file.string()});
    CHECK(clash.code == 2);
}

TEST_CASE("diagnose on null:// and on an unusable database", "[cli][diagnose]") {
    TempDir dir;
    const auto null = run_in(dir.path(), {"diagnose", "--db", "null://", "--samples", "2", "--json", "-"});
    CHECK(null.code == 0);
    const json n = parse_json(null.out);
    CHECK(n.at("server").get<std::string>().rfind("none", 0) == 0);
    CHECK(n.at("pool_size").at("recommended_max_size").is_null());

    const auto bad = run_in(dir.path(), {"diagnose", "--db", "sqlite:///nonexistent-dir/x.db"});
    CHECK(bad.code == 3);
    CHECK(count_lines(bad.err) == 1);
    CHECK(bad.err.find("/nonexistent-dir/x.db") != std::string::npos);

    const auto missing = run_in(dir.path(), {"diagnose", "--db", "sqlite://" + (dir.path() / "typo.db").string(),
                                             "--junit", "e.xml", "--html", "e.html"});
    CHECK(missing.code == 3);
    // CI never reads a stale green file: the reports say the diagnosis did not run.
    CHECK(slurp(dir.path() / "e.xml").find("<error type=\"exit 3\"") != std::string::npos);
    CHECK(slurp(dir.path() / "e.html").find("ERROR") != std::string::npos);
    CHECK(count_lines(missing.err) == 1);
    CHECK(missing.err.find("never creates one") != std::string::npos);
    CHECK_FALSE(fs::exists(dir.path() / "typo.db"));

    write_file(dir.path() / "text.db", "this is not a database, just some text that is long enough to have a header");
    const auto notdb = run_in(dir.path(), {"diagnose", "--db", "sqlite://" + (dir.path() / "text.db").string()});
    CHECK(notdb.code == 3);
    CHECK(notdb.err.find("not an SQLite database") != std::string::npos);

    const auto usage = run_in(dir.path(), {"diagnose", "--db", "null://", "--samples", "0"});
    CHECK(usage.code == 2);
    CHECK(count_lines(usage.err) == 1);
}

TEST_CASE("stress on a user's rollback-journal file keeps its mode and says what it costs", "[cli][sqlite]") {
    TempDir dir;
    const fs::path file = dir.path() / "app.db";
    make_db(file, "DELETE");
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

// test_cli_diagnose_sqlite_fixes.cpp — `poolbench diagnose` on SQLite, for what a
// user-test round found: a WAL database whose writer was killed (-wal and -shm left, no
// process has it open) is read without changing a byte or an mtime of any of its files.
#include "cli_support.hpp"

#include <signal.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <thread>

using namespace clitest;  // NOLINT(google-build-using-namespace): test file
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const json* finding(const json& j, const std::string& code) { return diagnose_finding(j, code); }

/// One file's bytes and modification time ("absent" when it does not exist).
struct Snapshot {
    std::string bytes = "absent";
    timespec mtime{};
    explicit Snapshot(const fs::path& file) {
        struct stat st {};
        if (::stat(file.c_str(), &st) != 0) return;
        bytes = slurp(file);
        mtime = st.st_mtim;
    }
    bool operator==(const Snapshot& o) const {
        return bytes == o.bytes && mtime.tv_sec == o.mtime.tv_sec && mtime.tv_nsec == o.mtime.tv_nsec;
    }
};

/// A child process writes to `file` in WAL mode and is killed with SIGKILL while its
/// connection is open: the -wal (with the committed rows) and the -shm stay behind.
void killed_writer(const fs::path& file) {
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        sqlite3* h = nullptr;
        if (sqlite3_open(file.c_str(), &h) != SQLITE_OK) ::_exit(2);
        if (sqlite3_exec(h, "PRAGMA journal_mode=WAL; CREATE TABLE t(x); INSERT INTO t VALUES (1); CREATE TABLE u(y)",
                         nullptr, nullptr, nullptr) != SQLITE_OK) {
            ::_exit(3);
        }
        ::raise(SIGKILL);
        ::_exit(4);
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFSIGNALED(status));
    REQUIRE(WTERMSIG(status) == SIGKILL);
}

}  // namespace

TEST_CASE("diagnose on a WAL file whose writer was killed changes no byte or mtime of the file, -wal or -shm",
          "[cli][diagnose]") {
    TempDir dir;
    const fs::path file = dir.path() / "crashed.db";
    killed_writer(file);
    const std::string wal = file.string() + "-wal";
    const std::string shm = file.string() + "-shm";
    REQUIRE(fs::exists(wal));
    REQUIRE(fs::exists(shm));
    REQUIRE(fs::file_size(wal) > 0);
    const Snapshot db_before(file), wal_before(wal), shm_before(shm);
    const auto r = run_in(dir.path(), {"diagnose", "--db", "sqlite://" + file.string(), "--samples", "3", "--measure",
                                       "--measure-step", "100ms", "--json", "-"});
    INFO(r.err);
    CHECK((r.code == 0 || r.code == 1));
    CHECK(Snapshot(file) == db_before);
    CHECK(Snapshot(wal) == wal_before);
    CHECK(Snapshot(shm) == shm_before);
    const json j = parse_json(r.out);
    CHECK(j.at("facts").at("journal_mode") == "wal");
    CHECK(j.at("facts").at("open_by_other_process") == false);
    const json* left = finding(j, "wal_left_by_stopped_writer");
    REQUIRE(left != nullptr);
    CHECK(left->at("text").get<std::string>().find("not reflected") != std::string::npos);
}

namespace {

/// True once `pid` runs the --measure ladder: a thread of its own takes SIGINT/SIGTERM, and
/// the ladder's workers are more threads (SQLite starts none). A bounded poll of
/// /proc/<pid>/task for that state, not a sleep.
bool in_ladder(pid_t pid) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(15);
    const fs::path tasks = "/proc/" + std::to_string(pid) + "/task";
    while (std::chrono::steady_clock::now() < until) {
        std::error_code ec;
        std::size_t threads = 0;
        for (fs::directory_iterator it(tasks, ec), end; !ec && it != end; it.increment(ec)) ++threads;
        if (threads >= 3) return true;  // main, the signal thread, a ladder worker
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return false;
}

}  // namespace

TEST_CASE("diagnose interrupted during --measure writes its error reports in the diagnose schema (exit 130)",
          "[cli][diagnose]") {
    for (const int sig : {SIGINT, SIGTERM}) {
        INFO("signal " << sig);
        TempDir dir;
        const fs::path file = dir.path() / "d.db";
        {
            sqlite3* h = nullptr;
            REQUIRE(sqlite3_open(file.c_str(), &h) == SQLITE_OK);
            REQUIRE(sqlite3_exec(h, "PRAGMA journal_mode=WAL; CREATE TABLE t(x)", nullptr, nullptr, nullptr) == SQLITE_OK);
            REQUIRE(sqlite3_close(h) == SQLITE_OK);
        }
        // 1 s per step up to 64 connections: the ladder lasts several seconds.
        const pid_t pid = spawn_in(dir.path(), {"diagnose", "--db", "sqlite://" + file.string(), "--samples", "2",
                                                "--measure", "--measure-step", "1s", "--json", "d.json", "--junit",
                                                "d.xml", "--html", "d.html"});
        const bool measuring = in_ladder(pid);
        REQUIRE(::kill(pid, sig) == 0);
        const Result r = finish(dir.path(), pid);
        INFO(r.err);
        REQUIRE(measuring);
        CHECK(r.code == 130);
        const json j = parse_json(slurp(dir.path() / "d.json"));
        CHECK(j.at("schema") == "poolbench/diagnose@2");
        CHECK(j.at("verdict") == "error");
        CHECK(j.at("interrupted") == true);
        CHECK(j.at("error").at("exit_code") == 130);
        CHECK(j.at("database").at("backend") == "sqlite");
        CHECK(slurp(dir.path() / "d.xml").find("<error type=\"exit 130\"") != std::string::npos);
        CHECK(slurp(dir.path() / "d.html").find("ERROR (exit 130)") != std::string::npos);
    }
}

TEST_CASE("diagnose at exit 3 with --json - prints its error report on stdout", "[cli][diagnose]") {
    TempDir dir;
    const auto r = run_in(dir.path(), {"diagnose", "--db", "sqlite://" + (dir.path() / "typo.db").string(), "--json", "-"});
    CHECK(r.code == 3);
    CHECK(count_lines(r.err) == 1);
    const json j = parse_json(r.out);
    CHECK(j.at("schema") == "poolbench/diagnose@2");
    CHECK(j.at("verdict") == "error");
    CHECK(j.at("interrupted") == false);
    CHECK(j.at("error").at("exit_code") == 3);
    CHECK(j.at("error").at("message").get<std::string>().find("never creates one") != std::string::npos);
}

TEST_CASE("no command's report replaces an SQLite database or its -wal, -shm or -journal, diagnosed or not",
          "[cli][diagnose][report_files]") {
    TempDir dir;
    const fs::path other = dir.path() / "app.db";
    {
        sqlite3* h = nullptr;
        REQUIRE(sqlite3_open(other.c_str(), &h) == SQLITE_OK);
        REQUIRE(sqlite3_exec(h, "CREATE TABLE t(x)", nullptr, nullptr, nullptr) == SQLITE_OK);
        REQUIRE(sqlite3_close(h) == SQLITE_OK);
    }
    const Snapshot before(other);
    for (const std::vector<std::string>& args :
         {std::vector<std::string>{"diagnose", "--db", "null://", "--samples", "1", "--json", other.string()},
          std::vector<std::string>{"diagnose", "--db", "null://", "--samples", "1", "--junit", other.string() + "-journal"},
          std::vector<std::string>{"stress", "--db", "null://", "--duration", "100ms", "--html", other.string() + "-wal"}}) {
        const auto r = run_in(dir.path(), args);
        INFO(r.err);
        CHECK(r.code == 2);
        CHECK(count_lines(r.err) == 1);
        CHECK(r.err.find("a report must not replace it") != std::string::npos);
    }
    CHECK(Snapshot(other) == before);
    CHECK_FALSE(fs::exists(other.string() + "-journal"));
    CHECK_FALSE(fs::exists(other.string() + "-wal"));
}

TEST_CASE("diagnose never prints an SQLCipher key from the URL", "[cli][diagnose]") {
    TempDir dir;
    const fs::path file = dir.path() / "k.db";
    {
        sqlite3* h = nullptr;
        REQUIRE(sqlite3_open(file.c_str(), &h) == SQLITE_OK);
        REQUIRE(sqlite3_close(h) == SQLITE_OK);
    }
    for (const std::string query : {"?key=SuperKey1", "?busy_timeout=100&hexkey=SuperKey1"}) {
        const auto r = run_in(dir.path(), {"diagnose", "--db", "sqlite://" + file.string() + query, "--json", "-"});
        INFO(r.err);
        CHECK(r.code != 0);
        CHECK(r.err.find("SuperKey1") == std::string::npos);
        CHECK(r.out.find("SuperKey1") == std::string::npos);
    }
}

TEST_CASE("diagnose on sqlite::memory: assumes no spindle, and shows a rollback file's real journal mode",
          "[cli][diagnose]") {
    TempDir dir;
    const auto mem = run_in(dir.path(), {"diagnose", "--db", "sqlite::memory:", "--samples", "2", "--json", "-"});
    INFO(mem.err);
    REQUIRE(mem.code == 0);
    CHECK(parse_json(mem.out).at("pool_size").at("spindles_assumed") == 0);
    const fs::path file = dir.path() / "r.db";
    {
        sqlite3* h = nullptr;
        REQUIRE(sqlite3_open(file.c_str(), &h) == SQLITE_OK);
        REQUIRE(sqlite3_exec(h, "CREATE TABLE t(x)", nullptr, nullptr, nullptr) == SQLITE_OK);
        REQUIRE(sqlite3_close(h) == SQLITE_OK);
    }
    const auto r = run_in(dir.path(), {"diagnose", "--db", "sqlite://" + file.string(), "--samples", "2", "--json", "-"});
    INFO(r.err);
    const json j = parse_json(r.out);
    CHECK(j.at("facts").at("journal_mode") == "delete");
    // pool_would_change: one type per column (text, text, text, boolean).
    for (const auto& row : j.at("tables").at("pool_would_change").at("rows")) {
        INFO(row.dump());
        CHECK(row.at("setting").is_string());
        CHECK((row.at("without_pool").is_string() || row.at("without_pool").is_null()));
        CHECK(row.at("pool_sets").is_string());
        CHECK(row.at("stored_in_file").is_boolean());
    }
}

TEST_CASE("diagnose's help and usage errors say what they mean", "[cli][diagnose]") {
    TempDir dir;
    const auto help = run_in(dir.path(), {"diagnose", "--help"});
    CHECK(help.code == 0);
    CHECK(help.out.find("temporary directory") == std::string::npos);  // diagnose never makes up a database
    CHECK(help.out.find("never makes up a database") != std::string::npos);
    const auto top = run_in(dir.path(), {"--help"});
    CHECK(top.out.find("diagnose: a finding is a problem") != std::string::npos);
    const auto abc = run_in(dir.path(), {"diagnose", "--db", "null://", "--server-cores", "abc"});
    CHECK(abc.code == 2);
    CHECK(count_lines(abc.err) == 1);
    CHECK(abc.err.find("'abc' is not a number") != std::string::npos);
    const auto zero = run_in(dir.path(), {"diagnose", "--db", "null://", "--app-instances", "0"});
    CHECK(zero.code == 2);
    CHECK(zero.err.find("0 is out of range") != std::string::npos);
}

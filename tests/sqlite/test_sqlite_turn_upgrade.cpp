// A write turn's lock upgrade on a real SQLite file: a DEFERRED transaction that read first
// and then writes takes the WAL write lock at its first write, and SQLite calls no busy
// handler for that upgrade, so it fails at once with SQLITE_BUSY if another connection
// holds the lock at that instant. Under a WriterGate turn no other writer of the process
// exists, but a connection that read the WAL index header while a commit was writing it
// takes the write lock for a moment to read it again (SQLite's walIndexReadHdr) — the
// gate's checkpoint thread, or any reader — and the gated writer failed with SQLITE_BUSY
// (writer-contention-sqlite: 1 busy error in ~46,000 gated writes). Here a second
// connection holds the write lock (BEGIN IMMEDIATE) in place of that moment, and lets go
// when the writer's statement starts a second time (an SQLITE_TRACE_STMT callback on the
// writer's handle): the exact interleaving, without threads or sleeps.
#include <catch2/catch.hpp>

#include "support/sqlite_support.hpp"

#include "sqlite_connection.hpp"  // lib/src: the connection over a handle the test opened

#include <cstring>
#include <memory>
#include <string>

using namespace sqltest;

namespace {

constexpr const char* insert_sql = "INSERT INTO t(v) VALUES ('gated')";

// Counts the starts of the writer's INSERT; at the `release_at`-th, runs `then` on the
// holder's handle (ROLLBACK: the lock goes; COMMIT after a write: the snapshot moves on).
struct Starts {
    sqlite3* holder = nullptr;
    int release_at = 0;  // 0: never
    const char* then = "ROLLBACK";
    int inserts = 0;
    int then_rc = -1;  // what `then` returned (checked by the test: no throwing through SQLite)
};

int on_stmt(unsigned type, void* ctx, void* /*stmt*/, void* sql) {
    auto* s = static_cast<Starts*>(ctx);
    if (type == SQLITE_TRACE_STMT && std::strstr(static_cast<const char*>(sql), "INSERT") != nullptr) {
        if (++s->inserts == s->release_at) s->then_rc = sqlite3_exec(s->holder, s->then, nullptr, nullptr, nullptr);
    }
    return 0;
}

sqlite3* open_wal(const std::string& path, int busy_timeout_ms) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                            nullptr) == SQLITE_OK);
    sqlite3_busy_timeout(db, busy_timeout_ms);
    REQUIRE(sqlite3_exec(db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr) == SQLITE_OK);
    return db;
}

struct Setup {
    TempDir dir;
    Starts starts;
    std::unique_ptr<sqlite3, internal::sqlite::DbCloser> holder;
    std::unique_ptr<Connection> writer;

    explicit Setup(int writer_busy_timeout_ms) {
        const std::string path = dir.file("u.db");
        holder.reset(open_wal(path, 0));
        REQUIRE(sqlite3_exec(holder.get(), "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL); "
                                           "INSERT INTO t(v) VALUES ('first')",
                             nullptr, nullptr, nullptr) == SQLITE_OK);
        sqlite3* raw = open_wal(path, writer_busy_timeout_ms);
        starts.holder = holder.get();
        sqlite3_trace_v2(raw, SQLITE_TRACE_STMT, &on_stmt, &starts);
        writer = internal::sqlite::make_sqlite_connection(internal::sqlite::DbPtr(raw));
    }
    // The writer's read snapshot, as the workload's read_write takes it.
    void begin_and_read() {
        writer->execute("BEGIN DEFERRED");
        CHECK(scalar(*writer, "SELECT count(*) FROM t") == 1);
    }
    void hold_write_lock() { REQUIRE(sqlite3_exec(holder.get(), "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK); }
    std::int64_t rows() { return scalar(*writer, "SELECT count(*) FROM t"); }
};

}  // namespace

TEST_CASE("SQLite: under a write turn, a read-then-write transaction waits out a connection that holds the WAL write lock for a moment",
          "[sqlite][tx][gate]") {
    Setup s(10'000);
    s.writer->begin_write_turn();
    s.begin_and_read();
    s.hold_write_lock();
    s.starts.release_at = 2;  // the holder lets go when the INSERT runs again
    s.writer->execute(insert_sql);  // failed with SQLITE_BUSY at once before the fix
    CHECK(s.starts.inserts == 2);
    CHECK(s.starts.then_rc == SQLITE_OK);
    s.writer->execute("COMMIT");
    CHECK(s.writer->end_write_turn() == Connection::TurnWork::none);
    CHECK(s.rows() == 2);  // the same transaction went on: its row is committed
}

TEST_CASE("SQLite: under a write turn, several statements in one execute() wait out the holder too",
          "[sqlite][tx][gate]") {
    Setup s(10'000);
    s.writer->begin_write_turn();
    s.begin_and_read();
    s.hold_write_lock();
    s.starts.release_at = 2;
    s.writer->execute("INSERT INTO t(v) VALUES ('one'); INSERT INTO t(v) VALUES ('two')");
    CHECK(s.starts.inserts == 3);  // the first twice, then the second
    CHECK(s.starts.then_rc == SQLITE_OK);
    s.writer->execute("COMMIT");
    (void)s.writer->end_write_turn();
    CHECK(s.rows() == 3);
}

TEST_CASE("SQLite: a write turn waits for the write lock no longer than busy_timeout, then fails with SQLITE_BUSY in its open transaction",
          "[sqlite][tx][gate]") {
    Setup s(60);
    s.writer->begin_write_turn();
    s.begin_and_read();
    s.hold_write_lock();  // and keeps it
    const QueryError e = query_error(*s.writer, insert_sql);
    CHECK(e.native_code() == SQLITE_BUSY);
    CHECK(std::string(e.what()).find("(SQLITE_BUSY) in: INSERT") != std::string::npos);
    CHECK(s.starts.inserts > 2);  // it ran again, and waited, before giving up
    CHECK(s.writer->in_transaction());  // the caller's to roll back, as after any failure
    s.writer->execute("ROLLBACK");
    (void)s.writer->end_write_turn();
    REQUIRE(sqlite3_exec(s.holder.get(), "ROLLBACK", nullptr, nullptr, nullptr) == SQLITE_OK);
    CHECK(s.rows() == 1);
}

TEST_CASE("SQLite: out of a write turn, or after another commit, a failed upgrade fails at once as SQLite's does",
          "[sqlite][tx][gate]") {
    SECTION("no turn: SQLITE_BUSY at the first try") {
        Setup s(10'000);
        s.begin_and_read();
        s.hold_write_lock();
        const QueryError e = query_error(*s.writer, insert_sql);
        CHECK(e.native_code() == SQLITE_BUSY);
        CHECK(s.starts.inserts == 1);
        s.writer->execute("ROLLBACK");
        REQUIRE(sqlite3_exec(s.holder.get(), "ROLLBACK", nullptr, nullptr, nullptr) == SQLITE_OK);
    }
    SECTION("a turn, but another connection committed since the read: SQLITE_BUSY_SNAPSHOT, not run again") {
        Setup s(10'000);
        s.writer->begin_write_turn();
        s.begin_and_read();
        REQUIRE(sqlite3_exec(s.holder.get(), "INSERT INTO t(v) VALUES ('other')", nullptr, nullptr, nullptr) == SQLITE_OK);
        const QueryError e = query_error(*s.writer, insert_sql);
        CHECK(e.native_code() == SQLITE_BUSY_SNAPSHOT);
        CHECK(s.starts.inserts == 1);
        s.writer->execute("ROLLBACK");
        (void)s.writer->end_write_turn();
        CHECK(s.rows() == 2);
    }
}

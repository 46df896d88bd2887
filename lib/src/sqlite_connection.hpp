// sqlite_connection.hpp — one SQLite connection (SqliteConnection, in
// sqlite_connection.cpp) and the handle types the driver shares with it (not installed).
//
// Thread-safety: a connection is used by one thread at a time (the pool's contract; handles
// are opened SQLITE_OPEN_NOMUTEX), except interrupt(), which any thread may call
// (sqlite3_interrupt is safe to call from another thread). open_db is reentrant.
#pragma once

#include "poolbench/connection.hpp"

#include <sqlite3.h>

#include <memory>
#include <string>

namespace poolbench::internal::sqlite {

struct DbCloser {
    void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

struct StmtFinalizer {
    void operator()(sqlite3_stmt* stmt) const noexcept { sqlite3_finalize(stmt); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

/// Opens `name` with `flags`; returns the handle and SQLite's result code.
[[nodiscard]] DbPtr open_db(const std::string& name, int flags, int& rc, std::string& message);

/// The Connection over `db`, which the driver has opened and set up.
[[nodiscard]] std::unique_ptr<Connection> make_sqlite_connection(DbPtr db);

}  // namespace poolbench::internal::sqlite

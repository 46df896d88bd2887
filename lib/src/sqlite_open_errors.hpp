// sqlite_open_errors.hpp — what to tell the user when an SQLite database cannot be opened
// or set up (not installed): what to check, and the file that is not a database.
//
// Thread-safety: reentrant; run_setup uses `db` from one thread at a time.
#pragma once

#include <sqlite3.h>

#include <string>

namespace poolbench::internal::sqlite {

/// What to check when a file cannot be opened. `display` is the database as messages show
/// it (absolute path or sqlite::memory:), `memory` whether it is in memory, `read_only` mode=ro.
[[nodiscard]] std::string open_hint(const std::string& display, bool memory, bool read_only);

/// Runs one setup statement on `db`; a failure is a ConnectError naming the database
/// (`display`), which says so when the file is not an SQLite database.
void run_setup(sqlite3* db, const std::string& sql, const std::string& display);

}  // namespace poolbench::internal::sqlite

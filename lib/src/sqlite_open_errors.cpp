// sqlite_open_errors.cpp — explanations of SQLite open and setup failures (see
// sqlite_open_errors.hpp).
#include "sqlite_open_errors.hpp"

#include "sqlite_codes.hpp"
#include "poolbench/error.hpp"

#include <unistd.h>

#include <filesystem>
#include <system_error>

namespace poolbench::internal::sqlite {

std::string open_hint(const std::string& display, bool memory, bool read_only) {
    if (memory) return "check available memory";
    const std::filesystem::path file(display);
    const std::string dir = file.parent_path().empty() ? std::string(".") : file.parent_path().string();
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) return "directory " + dir + " does not exist";
    if (::access(display.c_str(), F_OK) == 0 && ::access(display.c_str(), W_OK) != 0 && !read_only) {
        return "the file is read-only: open it with ?mode=ro for read workloads, or make it writable";
    }
    if (::access(dir.c_str(), W_OK) != 0) {
        return "directory " + dir + " is read-only, and SQLite creates its -wal, -shm or -journal files beside "
               "the database: make it writable, or open an existing file with ?mode=ro (a WAL file also needs "
               "its -shm) or ?immutable=1";
    }
    return "check that the directory exists and is writable";
}

void run_setup(sqlite3* db, const std::string& sql, const std::string& display) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    if (rc == SQLITE_OK) return;
    const std::string message = err != nullptr ? err : sqlite3_errmsg(db);
    sqlite3_free(err);
    const int code = sqlite3_extended_errcode(db) != SQLITE_OK ? sqlite3_extended_errcode(db) : rc;
    if ((code & 0xff) == SQLITE_NOTADB) {
        throw ConnectError("cannot open SQLite database '" + display + "': " + message +
                           " (SQLITE_NOTADB; the file exists but is not an SQLite database)");
    }
    throw ConnectError("cannot set up SQLite database '" + display + "': " + sql + " failed: " + message + " (" +
                       code_string(code) + ")");
}

}  // namespace poolbench::internal::sqlite

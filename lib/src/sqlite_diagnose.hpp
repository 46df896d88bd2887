// sqlite_diagnose.hpp — the SQLite driver's diagnose(), apart from the driver (not installed).
#pragma once

#include "poolbench/connection.hpp"
#include "poolbench/diagnostics.hpp"

#include <string>
#include <vector>

namespace poolbench::internal {

/// What the SQLite driver does to a connection, from its URL: what diagnose reports the
/// pool *would* change.
struct SqliteSetup {
    std::string path;          ///< absolute file path; "" in memory
    bool memory = false;
    bool read_only = false;    ///< mode=ro
    bool immutable = false;    ///< immutable=1
    int busy_timeout_ms = 0;
    std::string journal_asked;          ///< the URL's journal_mode, lower case; "" when not set
    std::vector<std::string> pragmas;   ///< "PRAGMA name=value" from the URL, in order
};

/// The diagnosis of the database `setup` describes. Opens it only through
/// driver.connect_read_only(); probes its lock bytes with fcntl(F_GETLK) while this
/// process has no SQLite connection to it open (closing a descriptor drops a process's
/// POSIX locks on the file, SQLite's included).
[[nodiscard]] Diagnosis sqlite_diagnose(Driver& driver, const SqliteSetup& setup, const DiagnoseOptions& options);

/// True when `path` is a WAL database that no process has open: no -wal beside it, or a
/// -wal (and -shm) left by a writer that was killed, with no other process holding the
/// -shm's dead-man-switch lock (F_GETLK). A read-only connection must then open it
/// immutable, or SQLite would create -wal and -shm, or rebuild the -shm (which writes it).
/// Probes through descriptors it keeps open: closing one would drop this process's POSIX
/// locks on the file. Thread-safe.
[[nodiscard]] bool sqlite_quiet_wal_file(const std::string& path);

}  // namespace poolbench::internal

// sqlite_diagnose.cpp — SQLite's diagnose(): the file, its header, its locks and what the
// pool would change, without writing a byte.
//
// What is read, and how, so that nothing changes:
//   - the header (first 100 bytes, plain read()): journal mode (byte 18: 1 rollback, 2
//     WAL), page size, page count, free pages;
//   - the -wal file's size (stat) and, from the -shm (plain read()), the WAL index header
//     (mxFrame: frames in the WAL) and the checkpoint info (nBackfill: frames copied back);
//   - who holds which lock, with fcntl(F_GETLK) on SQLite's lock bytes (os_unix.c):
//     the database file's PENDING byte 0x40000000, RESERVED 0x40000001 and SHARED range
//     0x40000002 + 510 (a rollback-journal writer holds RESERVED from its first write or
//     BEGIN IMMEDIATE; PENDING and the whole SHARED range while it commits), and in WAL
//     mode the -shm's lock bytes from 120 (wal.c: WAL_WRITE_LOCK 0, CKPT 1, RECOVER 2,
//     READ 3..7) and the dead-man switch at 128 (a shared lock held by every process that
//     has the database open). F_GETLK takes no lock; it names one process that holds a
//     conflicting one. It is probed a few times over ~200 ms, so a writer that holds the
//     lock for an instant is told from one that keeps it;
//   - page count, free pages and the schema through driver.connect_read_only(): read-only,
//     no checkpoint on close, and a WAL file with no -wal opened immutable (else SQLite
//     would create -wal and -shm beside it).
// The probe opens and closes its own descriptors before any SQLite connection of this
// process is open: closing a descriptor drops every POSIX lock this process holds on that
// file, SQLite's included.
#include "sqlite_diagnose.hpp"

#include "poolbench/drivers.hpp"
#include "poolbench/error.hpp"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <array>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <thread>

namespace poolbench::internal {

namespace {

constexpr off_t pending_byte = 0x40000000;
constexpr off_t reserved_byte = pending_byte + 1;
constexpr off_t shared_first = pending_byte + 2;
constexpr off_t shared_size = 510;
constexpr off_t shm_lock_base = 120;  // UNIX_SHM_BASE = (22 + SQLITE_SHM_NLOCK) * 4
constexpr off_t shm_write_lock = shm_lock_base + 0;
constexpr off_t shm_ckpt_lock = shm_lock_base + 1;
constexpr off_t shm_read_locks = shm_lock_base + 3;  // 5 read marks
constexpr off_t shm_dms = shm_lock_base + 8;         // UNIX_SHM_DMS

/// The process holding a lock that conflicts with a write lock on [start, start+len), or
/// nullopt when none does (or the probe cannot tell).
std::optional<pid_t> holder(int fd, off_t start, off_t len) {
    if (fd < 0) return std::nullopt;
    struct flock f {};
    f.l_type = F_WRLCK;
    f.l_whence = SEEK_SET;
    f.l_start = start;
    f.l_len = len;
    if (::fcntl(fd, F_GETLK, &f) != 0 || f.l_type == F_UNLCK) return std::nullopt;
    return f.l_pid;
}

std::optional<std::int64_t> file_size(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return std::nullopt;
    return static_cast<std::int64_t>(st.st_size);
}

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

/// Reads up to `n` bytes from the start of `path`; fewer when it is shorter or absent.
std::string head(const std::string& path, std::size_t n) {
    std::string out(n, '\0');
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return {};
    std::size_t got = 0;
    while (got < n) {
        const ssize_t r = ::pread(fd, out.data() + got, n - got, static_cast<off_t>(got));
        if (r <= 0) break;
        got += static_cast<std::size_t>(r);
    }
    ::close(fd);
    out.resize(got);
    return out;
}

std::uint32_t native32(const std::string& s, std::size_t at) {
    std::uint32_t v = 0;
    std::memcpy(&v, s.data() + at, sizeof v);
    return v;
}

/// "pid 4242 (python3)": the command name when /proc has it.
std::string process_name(pid_t pid) {
    if (pid <= 0) return "a process this one cannot see (another PID namespace or host)";
    std::string out = "pid " + std::to_string(pid);
    std::string comm = head("/proc/" + std::to_string(pid) + "/comm", 64);
    while (!comm.empty() && (comm.back() == '\n' || comm.back() == '\0')) comm.pop_back();
    if (!comm.empty()) out += " (" + comm + ")";
    return out;
}

/// What the lock probes saw.
struct Locks {
    int probes = 0;
    int write_held = 0;            ///< probes that found the write lock held
    std::optional<pid_t> writer;   ///< the last holder seen
    std::optional<pid_t> exclusive;  ///< a process holding the whole database (commit, or locking_mode=EXCLUSIVE)
    std::optional<pid_t> reader;   ///< a process with a read transaction open
    std::optional<pid_t> open_by;  ///< WAL: a process that has the database open (dead-man switch)
    bool checkpointing = false;
};

void probe_once(const std::string& path, bool wal, Locks& locks) {
    const int db = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    const int shm = wal ? ::open((path + "-shm").c_str(), O_RDONLY | O_CLOEXEC) : -1;
    ++locks.probes;
    std::optional<pid_t> writer;
    if (wal) {
        writer = holder(shm, shm_write_lock, 1);
        if (!writer) writer = holder(db, reserved_byte, 1);  // locking_mode=EXCLUSIVE has no -shm locks
        if (auto r = holder(shm, shm_read_locks, 5)) locks.reader = r;
        if (auto o = holder(shm, shm_dms, 1)) locks.open_by = o;
        if (holder(shm, shm_ckpt_lock, 1)) locks.checkpointing = true;
    } else {
        writer = holder(db, reserved_byte, 1);
        if (!writer) writer = holder(db, pending_byte, 1);
        if (auto r = holder(db, shared_first, shared_size)) locks.reader = r;
    }
    if (auto x = holder(db, shared_first, shared_size)) {
        // A write lock over the SHARED range is EXCLUSIVE; a read lock there is a reader.
        struct flock f {};
        f.l_type = F_RDLCK;
        f.l_whence = SEEK_SET;
        f.l_start = shared_first;
        f.l_len = shared_size;
        if (::fcntl(db, F_GETLK, &f) == 0 && f.l_type != F_UNLCK) locks.exclusive = x;
    }
    if (writer) {
        ++locks.write_held;
        locks.writer = writer;
    }
    if (shm >= 0) ::close(shm);
    if (db >= 0) ::close(db);
}

std::string text_of(const Value& v) {
    if (const auto* s = std::get_if<std::string>(&v)) return *s;
    if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
    if (const auto* d = std::get_if<double>(&v)) return std::to_string(*d);
    return "";
}

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return s;
}

std::string bytes_text(std::int64_t b) {
    char buf[32];
    if (b >= 1 << 20) {
        std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(b) / (1 << 20));
    } else if (b >= 1 << 10) {
        std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(b) / (1 << 10));
    } else {
        std::snprintf(buf, sizeof buf, "%lld bytes", static_cast<long long>(b));
    }
    return buf;
}

/// PRAGMAs whose value SQLite keeps in the file (the rest last for the connection).
bool stored_in_file(const std::string& pragma) {
    static const std::array<const char*, 6> names{"journal_mode", "page_size", "auto_vacuum", "user_version",
                                                  "application_id", "encoding"};
    return std::any_of(names.begin(), names.end(), [&](const char* n) { return pragma == n; });
}

void would_change(const SqliteSetup& setup, const std::string& journal, Diagnosis& d) {
    FactTable t{"pool_would_change", "what the pool would set on each connection (diagnose set none of it)",
                {"setting", "without_pool", "pool_sets", "stored_in_file"}, {}};
    t.rows.push_back({std::string("busy_timeout_ms"), std::string("0"), std::to_string(setup.busy_timeout_ms), false});
    bool sync_from_url = false;
    for (const auto& sql : setup.pragmas) {
        // "PRAGMA name=value"
        const auto eq = sql.find('=');
        const std::string name = lower(sql.substr(7, eq - 7));
        const std::string value = sql.substr(eq + 1);
        if (name == "synchronous") sync_from_url = true;
        if (name == "journal_mode") {
            const bool converts = (lower(value) == "wal") != (journal == "wal");
            t.rows.push_back({name, journal, lower(value), converts});
            continue;
        }
        t.rows.push_back({name, FactValue{}, value, stored_in_file(name)});
    }
    if (!setup.read_only && !setup.immutable && !sync_from_url) {
        t.rows.push_back({std::string("synchronous"), std::string("full"), std::string("normal"), false});
    }
    t.rows.push_back({std::string("foreign_keys"), std::string("off"), std::string("on"), false});
    d.tables.push_back(std::move(t));
}

Diagnosis memory_diagnosis(Driver& driver, const DiagnoseOptions& options) {
    Diagnosis d;
    d.local = true;
    d.single_writer = true;
    d.server = std::string("SQLite ") + sqlite3_libversion();
    d.add("sqlite_version", std::string(sqlite3_libversion()));
    d.add("file", std::string(":memory:"));
    auto c = driver.connect_read_only(options.deadline);
    d.add("journal_mode", text_of(c->query("PRAGMA journal_mode").rows.at(0).at(0)));
    d.add("page_size", c->query("PRAGMA page_size").int_at(0));
    d.add("page_count", c->query("PRAGMA page_count").int_at(0));
    d.add(FindingLevel::ok, "in_memory", "an in-memory database: one per process, gone when the pool closes");
    return d;
}

}  // namespace

namespace {

/// A read-only descriptor to `path`, opened once and never closed: closing any descriptor
/// to a file drops every POSIX lock this process holds on it (a connection of this
/// process may hold SQLite's), so the lock probes below keep theirs. One per file.
int probe_fd(const std::string& path) {
    static std::mutex mutex;
    static std::map<std::string, int> fds;
    const std::lock_guard lock(mutex);
    auto it = fds.find(path);
    struct stat now {}, kept {};
    const bool stale = it != fds.end() && it->second >= 0 && ::stat(path.c_str(), &now) == 0 &&
                       (::fstat(it->second, &kept) != 0 || kept.st_ino != now.st_ino || kept.st_dev != now.st_dev);
    if (it == fds.end() || it->second < 0 || stale) {
        // A file replaced since (a new -shm): a new descriptor; the old one stays open.
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0) return -1;
        it = fds.insert_or_assign(path, fd).first;
    }
    return it->second;
}

}  // namespace

bool sqlite_quiet_wal_file(const std::string& path) {
    if (!exists(path + "-wal")) return sqlite_file_journal_mode(path).value_or("") == "wal";
    // A -wal is there. When no other process holds the -shm's dead-man switch, nothing has
    // the database open (a writer that was killed leaves -wal and -shm behind): a
    // read-only connection would then rebuild the -shm (recovery writes it), so it must be
    // opened immutable. The header is read through a kept descriptor (see probe_fd).
    const int db = probe_fd(path);
    char header[19] = {};
    if (db < 0 || ::pread(db, header, sizeof header, 0) != static_cast<ssize_t>(sizeof header) || header[18] != 2) {
        return false;
    }
    if (!exists(path + "-shm")) return true;
    const int shm = probe_fd(path + "-shm");
    return shm >= 0 && !holder(shm, shm_dms, 1).has_value();
}

Diagnosis sqlite_diagnose(Driver& driver, const SqliteSetup& setup, const DiagnoseOptions& options) {
    if (setup.memory) return memory_diagnosis(driver, options);
    const std::string& path = setup.path;
    if (!exists(path)) {
        throw ConnectError("cannot diagnose SQLite database '" + path + "': no such file (diagnose inspects an "
                           "existing database and never creates one)");
    }
    const std::string header = head(path, 100);
    if (header.size() < 100 || std::memcmp(header.data(), "SQLite format 3", 16) != 0) {
        throw ConnectError("cannot diagnose SQLite database '" + path + "': " +
                           (header.empty() ? std::string("the file is empty or unreadable")
                                           : std::string("the file is not an SQLite database (its header says otherwise)")));
    }
    Diagnosis d;
    d.local = true;
    d.single_writer = true;
    d.server = std::string("SQLite ") + sqlite3_libversion();
    d.add("sqlite_version", std::string(sqlite3_libversion()));
    d.add("file", path);
    d.add("file_bytes", file_size(path).value_or(0));
    const bool wal = static_cast<unsigned char>(header[18]) == 2;
    // The file says WAL or rollback; a rollback journal's mode (delete, truncate, persist) is
    // each connection's, and SQLite's default is delete.
    const std::string journal = wal ? "wal" : "delete";
    d.add("journal_mode", journal);
    std::int64_t page_size = (static_cast<unsigned char>(header[16]) << 8) | static_cast<unsigned char>(header[17]);
    if (page_size == 1) page_size = 65536;
    d.add("page_size", page_size);

    // Locks first: no SQLite connection of this process is open yet.
    Locks locks;
    const auto probe_until = std::min(options.deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(200));
    do {
        probe_once(path, wal, locks);
        if (locks.write_held == 0 && locks.probes >= 2) break;  // free, twice: enough
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    } while (std::chrono::steady_clock::now() < probe_until && locks.probes < 10);
    const bool write_always_held = locks.write_held == locks.probes;
    d.add("write_lock", std::string(locks.write_held == 0 ? "free" : write_always_held ? "held" : "contended"));
    d.add("write_lock_holder_pid", locks.writer ? FactValue{std::int64_t{*locks.writer}} : FactValue{});
    d.add("write_lock_probes", std::int64_t{locks.probes});
    d.add("write_lock_held_probes", std::int64_t{locks.write_held});
    d.add("reader_pid", locks.reader ? FactValue{std::int64_t{*locks.reader}} : FactValue{});
    if (wal) d.add("open_by_other_process", locks.open_by.has_value());

    // The WAL: its size from the file, its frames from the -shm index.
    if (wal) {
        const auto wal_bytes = file_size(path + "-wal");
        d.add("wal_bytes", wal_bytes ? FactValue{*wal_bytes} : FactValue{std::int64_t{0}});
        const std::string shm = head(path + "-shm", 136);
        if (shm.size() >= 136 && shm[12] != 0) {
            const std::uint32_t frames = native32(shm, 16);
            const std::uint32_t backfilled = native32(shm, 96);
            d.add("wal_frames", std::int64_t{frames});
            d.add("wal_frames_checkpointed", std::int64_t{std::min(backfilled, frames)});
        }
        if (wal_bytes && !locks.open_by && exists(path + "-wal")) {
            d.add("read_immutable", true);
            d.add(FindingLevel::warn, "wal_left_by_stopped_writer",
                  "a -wal file of " + bytes_text(*wal_bytes) + " is left beside the database and no process has it "
                  "open: a writer stopped without closing (killed or crashed). diagnose read the database file "
                  "immutable, so as not to rebuild the -shm: the transactions in the WAL are not reflected in "
                  "page_count and table_count",
                  "nothing is lost: the next read-write connection recovers the WAL into the database; keep the -wal "
                  "and -shm files beside it (deleting them loses those transactions)");
        }
        // SQLite checkpoints at 1000 pages by default; far beyond that, checkpoints are not
        // keeping up (a reader that never ends its transaction stops them).
        const std::int64_t large = std::max<std::int64_t>(64LL << 20, 4000 * page_size);
        if (wal_bytes && *wal_bytes > large) {
            d.add(FindingLevel::warn, "wal_large",
                  "the WAL file is " + bytes_text(*wal_bytes) + ": checkpoints are not keeping up, so reads get slower",
                  "look for a connection that keeps a read transaction open (it stops checkpoints from finishing); "
                  "a checkpoint runs when no reader holds an old snapshot");
        }
    } else {
        const bool journal_file = exists(path + "-journal");
        d.add("journal_file_present", journal_file);
        if (journal_file && locks.write_held == 0) {
            d.add(FindingLevel::warn, "hot_journal",
                  "a -journal file exists and no process holds the write lock: a writer stopped mid-transaction "
                  "(or the journal mode is persist)",
                  "the next read-write connection rolls it back; keep the -journal file beside the database");
        }
    }

    // Through a read-only connection (closed before returning): the page counts.
    try {
        auto c = driver.connect_read_only(options.deadline);
        d.add("page_count", c->query("PRAGMA page_count").int_at(0));
        d.add("freelist_count", c->query("PRAGMA freelist_count").int_at(0));
        d.add("table_count", c->query("SELECT count(*) FROM sqlite_schema WHERE type = 'table'").int_at(0));
    } catch (const QueryError& e) {
        if (e.kind() != ErrorKind::busy) throw;
        d.add(FindingLevel::problem, "reads_blocked",
              "reading the file failed: " + std::string(e.what()) +
                  (locks.exclusive ? " (" + process_name(*locks.exclusive) + " holds the whole database)" : ""),
              "a process holds an exclusive lock (a long commit, or locking_mode=EXCLUSIVE): readers and writers "
              "of a pool wait until it ends");
    }
    const std::int64_t size = file_size(path).value_or(0);
    d.add("database_bytes", size);

    // What the pool would do to each connection.
    d.add("busy_timeout_ms", std::int64_t{setup.busy_timeout_ms});
    would_change(setup, journal, d);

    // Findings.
    if (locks.write_held > 0 && locks.writer) {
        const std::string who = process_name(*locks.writer);
        if (write_always_held) {
            d.add(FindingLevel::problem, "write_lock_held",
                  "another process holds the write lock: " + who + " held it in all " + std::to_string(locks.probes) +
                      " probes over the last ~200 ms; every writer of a pool waits busy_timeout (" +
                      std::to_string(setup.busy_timeout_ms) + " ms) and then fails with SQLITE_BUSY",
                  "find what " + who + " is doing: a transaction left open holds the lock until it commits or "
                  "rolls back; keep write transactions short");
        } else {
            d.add(FindingLevel::warn, "write_lock_contended",
                  "another process writes now: " + who + " held the write lock in " +
                      std::to_string(locks.write_held) + " of " + std::to_string(locks.probes) + " probes",
                  "writers of a pool take turns with it: keep busy_timeout well above its write transactions");
        }
    } else {
        d.add(FindingLevel::ok, "write_lock_free", "no other process holds the write lock");
    }
    const bool query_only = std::any_of(setup.pragmas.begin(), setup.pragmas.end(), [](const std::string& p) {
        const std::string l = lower(p);
        return l == "pragma query_only=1" || l == "pragma query_only=on" || l == "pragma query_only=true";
    });
    const bool read_only_url = query_only || setup.read_only || setup.immutable;
    const std::string dir = path.substr(0, path.find_last_of('/') + 1);
    const bool dir_writable = ::access(dir.empty() ? "." : dir.c_str(), W_OK) == 0;
    if (!wal) {
        // Advice to convert only when the pool could (a writable URL and directory) and the
        // URL does not choose a journal mode itself (journal_mode_would_convert covers that).
        if (read_only_url || !dir_writable || !setup.journal_asked.empty()) {
            d.add(FindingLevel::ok, "rollback_journal",
                  "journal_mode " + journal + " (a rollback journal): readers wait while a writer commits" +
                      (read_only_url ? std::string("; the URL only reads, so nothing to change")
                                     : !setup.journal_asked.empty() ? "; the URL sets journal_mode=" + setup.journal_asked
                                                                    : std::string("; the directory is not writable")));
        } else {
            d.add(FindingLevel::warn, "rollback_journal",
                  "journal_mode " + journal + " (a rollback journal): readers wait while a writer commits, and a "
                  "long reader stops writers from committing",
                  "add ?journal_mode=WAL to the URL (SQLite keeps WAL in the file: every program that opens it then "
                  "uses WAL)");
        }
    } else {
        d.add(FindingLevel::ok, "wal", "journal_mode wal: readers do not block the writer, nor it them");
    }
    if (!setup.journal_asked.empty() && (setup.journal_asked == "wal") != wal && !read_only_url) {
        d.add(FindingLevel::warn, "journal_mode_would_convert",
              "the URL's journal_mode=" + setup.journal_asked + " would convert the file from " + journal +
                  " to " + setup.journal_asked + " when the pool connects, and SQLite keeps that in the file",
              "drop journal_mode from the URL to keep the file as it is");
    }
    if (setup.busy_timeout_ms == 0 && !setup.immutable) {
        d.add(FindingLevel::warn, "busy_timeout_zero",
              "busy_timeout is 0: a writer that finds the file locked fails at once with SQLITE_BUSY",
              "add ?busy_timeout=5000 to the URL (or drop busy_timeout=0: 5000 is the default)");
    }
    const bool exclusive_locking = std::any_of(setup.pragmas.begin(), setup.pragmas.end(), [](const std::string& p) {
        return lower(p) == "pragma locking_mode=exclusive";
    });
    if (exclusive_locking) {
        d.add(FindingLevel::warn, "locking_mode_exclusive",
              "the URL sets locking_mode=EXCLUSIVE: the first connection that reads or writes keeps its lock until "
              "it closes, so the pool's other connections and every other process wait and fail with SQLITE_BUSY",
              "drop locking_mode from the URL (or use a pool of max_size 1 and no other process on the file)",
              "locking_mode");
    }
    if (read_only_url) {
        // The user asked for read-only: a note, not a problem.
        const std::string why = query_only ? "query_only is on" : setup.read_only ? "mode=ro" : "immutable=1";
        d.add(FindingLevel::ok, "read_only_url",
              why + " in the URL: the pool only reads (a write fails with SQLITE_READONLY, as asked)");
    } else if (::access(path.c_str(), W_OK) != 0) {
        d.add(FindingLevel::problem, "file_not_writable", "the file is not writable by this user: writes fail",
              "make it writable, or add ?mode=ro to the URL if the pool only reads");
    }
    if (!dir_writable && !setup.immutable) {
        const bool reads_fail = wal && !(exists(path + "-wal") && exists(path + "-shm"));
        d.add(read_only_url && !reads_fail ? FindingLevel::ok : FindingLevel::problem, "directory_not_writable",
              "the directory " + dir + " is not writable: SQLite cannot create the " +
                  (wal ? std::string("-wal and -shm files") : std::string("-journal file")) + " it needs" +
                  (reads_fail ? ": in WAL mode reads fail too (a reader must create the -shm)"
                              : read_only_url ? ": fine for reads" : ": writes fail"),
              reads_fail ? "make the directory writable, or add ?immutable=1 to the URL if nothing writes the file "
                           "while the pool reads"
                         : "make the directory writable");
    }
    return d;
}

}  // namespace poolbench::internal

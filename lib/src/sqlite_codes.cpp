// sqlite_codes.cpp — SQLite result codes by name, and which of them break a connection.
#include "sqlite_codes.hpp"

#include "driver_text.hpp"
#include "drivers_internal.hpp"
#include "error_kind.hpp"

#include <sqlite3.h>

#include <charconv>
#include <functional>
#include <optional>
#include <string_view>
#include <unordered_map>

namespace poolbench::internal {

namespace sqlite {
namespace {

/// The name of an SQLite (extended) result code, "" when unknown.
std::string_view code_name(int code) noexcept {
#define PB_CODE(name) \
    case SQLITE_##name: return "SQLITE_" #name;
    switch (code) {
        PB_CODE(OK) PB_CODE(ERROR) PB_CODE(INTERNAL) PB_CODE(PERM) PB_CODE(ABORT) PB_CODE(BUSY) PB_CODE(LOCKED)
        PB_CODE(NOMEM) PB_CODE(READONLY) PB_CODE(INTERRUPT) PB_CODE(IOERR) PB_CODE(CORRUPT) PB_CODE(NOTFOUND)
        PB_CODE(FULL) PB_CODE(CANTOPEN) PB_CODE(PROTOCOL) PB_CODE(EMPTY) PB_CODE(SCHEMA) PB_CODE(TOOBIG)
        PB_CODE(CONSTRAINT) PB_CODE(MISMATCH) PB_CODE(MISUSE) PB_CODE(NOLFS) PB_CODE(AUTH) PB_CODE(FORMAT)
        PB_CODE(RANGE) PB_CODE(NOTADB) PB_CODE(NOTICE) PB_CODE(WARNING) PB_CODE(ROW) PB_CODE(DONE)
        // Extended codes.
        PB_CODE(ERROR_MISSING_COLLSEQ) PB_CODE(ERROR_RETRY) PB_CODE(ERROR_SNAPSHOT)
        PB_CODE(IOERR_READ) PB_CODE(IOERR_SHORT_READ) PB_CODE(IOERR_WRITE) PB_CODE(IOERR_FSYNC)
        PB_CODE(IOERR_DIR_FSYNC) PB_CODE(IOERR_TRUNCATE) PB_CODE(IOERR_FSTAT) PB_CODE(IOERR_UNLOCK)
        PB_CODE(IOERR_RDLOCK) PB_CODE(IOERR_DELETE) PB_CODE(IOERR_BLOCKED) PB_CODE(IOERR_NOMEM)
        PB_CODE(IOERR_ACCESS) PB_CODE(IOERR_CHECKRESERVEDLOCK) PB_CODE(IOERR_LOCK) PB_CODE(IOERR_CLOSE)
        PB_CODE(IOERR_DIR_CLOSE) PB_CODE(IOERR_SHMOPEN) PB_CODE(IOERR_SHMSIZE) PB_CODE(IOERR_SHMLOCK)
        PB_CODE(IOERR_SHMMAP) PB_CODE(IOERR_SEEK) PB_CODE(IOERR_DELETE_NOENT) PB_CODE(IOERR_MMAP)
        PB_CODE(IOERR_GETTEMPPATH) PB_CODE(IOERR_CONVPATH) PB_CODE(IOERR_VNODE) PB_CODE(IOERR_AUTH)
        PB_CODE(IOERR_BEGIN_ATOMIC) PB_CODE(IOERR_COMMIT_ATOMIC) PB_CODE(IOERR_ROLLBACK_ATOMIC)
        PB_CODE(IOERR_DATA) PB_CODE(IOERR_CORRUPTFS)
        PB_CODE(LOCKED_SHAREDCACHE) PB_CODE(LOCKED_VTAB)
        PB_CODE(BUSY_RECOVERY) PB_CODE(BUSY_SNAPSHOT) PB_CODE(BUSY_TIMEOUT)
        PB_CODE(CANTOPEN_NOTEMPDIR) PB_CODE(CANTOPEN_ISDIR) PB_CODE(CANTOPEN_FULLPATH)
        PB_CODE(CANTOPEN_CONVPATH) PB_CODE(CANTOPEN_DIRTYWAL) PB_CODE(CANTOPEN_SYMLINK)
        PB_CODE(CORRUPT_VTAB) PB_CODE(CORRUPT_SEQUENCE) PB_CODE(CORRUPT_INDEX)
        PB_CODE(READONLY_RECOVERY) PB_CODE(READONLY_CANTLOCK) PB_CODE(READONLY_ROLLBACK)
        PB_CODE(READONLY_DBMOVED) PB_CODE(READONLY_CANTINIT) PB_CODE(READONLY_DIRECTORY)
        PB_CODE(ABORT_ROLLBACK)
        PB_CODE(CONSTRAINT_CHECK) PB_CODE(CONSTRAINT_COMMITHOOK) PB_CODE(CONSTRAINT_FOREIGNKEY)
        PB_CODE(CONSTRAINT_FUNCTION) PB_CODE(CONSTRAINT_NOTNULL) PB_CODE(CONSTRAINT_PRIMARYKEY)
        PB_CODE(CONSTRAINT_TRIGGER) PB_CODE(CONSTRAINT_UNIQUE) PB_CODE(CONSTRAINT_VTAB)
        PB_CODE(CONSTRAINT_ROWID) PB_CODE(CONSTRAINT_PINNED) PB_CODE(CONSTRAINT_DATATYPE)
        PB_CODE(NOTICE_RECOVER_WAL) PB_CODE(NOTICE_RECOVER_ROLLBACK)
        PB_CODE(WARNING_AUTOINDEX) PB_CODE(AUTH_USER) PB_CODE(OK_LOAD_PERMANENTLY) PB_CODE(OK_SYMLINK)
        default: return {};
    }
#undef PB_CODE
}

}  // namespace

std::string code_string(int code) {
    if (auto name = code_name(code); !name.empty()) return std::string(name);
    if (auto name = code_name(code & 0xff); !name.empty()) return std::string(name);
    return "SQLITE_" + std::to_string(code);
}

}  // namespace sqlite

namespace {

/// Which failures leave a connection unusable, so the pool must close it: those whose
/// kind is connection_lost (IOERR*, CORRUPT*, NOTADB, CANTOPEN*, READONLY_DBMOVED; the
/// table and the reasons are in error_kind.cpp, sqlite_error_kind).
bool is_broken_code(int code) noexcept { return sqlite_error_kind(code, false) == ErrorKind::connection_lost; }

}  // namespace

std::string sqlite_code_string(int code) { return sqlite::code_string(code); }

bool sqlite_is_broken_code(int code) noexcept { return is_broken_code(code); }

std::optional<int> sqlite_code_from_name(std::string_view name) {
    // Every name code_name knows, gathered once (thread-safe static initialisation).
    static const auto by_name = [] {
        std::unordered_map<std::string_view, int, StringHash, std::equal_to<>> out;
        for (int code = 0; code < (1 << 16); ++code) {
            if (const auto n = sqlite::code_name(code); !n.empty()) out.emplace(n, code);
        }
        return out;
    }();
    if (const auto it = by_name.find(name); it != by_name.end()) return it->second;
    constexpr std::string_view prefix = "SQLITE_";
    if (name.substr(0, prefix.size()) != prefix) return std::nullopt;
    const std::string_view digits = name.substr(prefix.size());
    int code = 0;
    const auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), code);
    if (digits.empty() || ec != std::errc() || ptr != digits.data() + digits.size()) return std::nullopt;
    return code;
}

}  // namespace poolbench::internal

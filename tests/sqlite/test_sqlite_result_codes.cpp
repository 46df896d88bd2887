// SQLite result codes: the name of every primary and extended code, the fallback for
// codes the table does not know, and which codes break a connection.
#include <catch2/catch.hpp>

#include "../../lib/src/drivers_internal.hpp"
#include "poolbench/error.hpp"

#include <sqlite3.h>

#include <set>
#include <string>
#include <utility>
#include <vector>

using namespace poolbench;
using internal::sqlite_code_string;
using internal::sqlite_is_broken_code;

namespace {

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

// Every primary and extended result code this SQLite defines (sqlite3.h), with its name.
#define PB_NAMED(name) {SQLITE_##name, "SQLITE_" #name}
const std::vector<std::pair<int, std::string>> all_codes = {
    PB_NAMED(OK), PB_NAMED(ERROR), PB_NAMED(INTERNAL), PB_NAMED(PERM), PB_NAMED(ABORT), PB_NAMED(BUSY),
    PB_NAMED(LOCKED), PB_NAMED(NOMEM), PB_NAMED(READONLY), PB_NAMED(INTERRUPT), PB_NAMED(IOERR),
    PB_NAMED(CORRUPT), PB_NAMED(NOTFOUND), PB_NAMED(FULL), PB_NAMED(CANTOPEN), PB_NAMED(PROTOCOL),
    PB_NAMED(EMPTY), PB_NAMED(SCHEMA), PB_NAMED(TOOBIG), PB_NAMED(CONSTRAINT), PB_NAMED(MISMATCH),
    PB_NAMED(MISUSE), PB_NAMED(NOLFS), PB_NAMED(AUTH), PB_NAMED(FORMAT), PB_NAMED(RANGE), PB_NAMED(NOTADB),
    PB_NAMED(NOTICE), PB_NAMED(WARNING), PB_NAMED(ROW), PB_NAMED(DONE),
    PB_NAMED(ERROR_MISSING_COLLSEQ), PB_NAMED(ERROR_RETRY), PB_NAMED(ERROR_SNAPSHOT),
    PB_NAMED(IOERR_READ), PB_NAMED(IOERR_SHORT_READ), PB_NAMED(IOERR_WRITE), PB_NAMED(IOERR_FSYNC),
    PB_NAMED(IOERR_DIR_FSYNC), PB_NAMED(IOERR_TRUNCATE), PB_NAMED(IOERR_FSTAT), PB_NAMED(IOERR_UNLOCK),
    PB_NAMED(IOERR_RDLOCK), PB_NAMED(IOERR_DELETE), PB_NAMED(IOERR_BLOCKED), PB_NAMED(IOERR_NOMEM),
    PB_NAMED(IOERR_ACCESS), PB_NAMED(IOERR_CHECKRESERVEDLOCK), PB_NAMED(IOERR_LOCK), PB_NAMED(IOERR_CLOSE),
    PB_NAMED(IOERR_DIR_CLOSE), PB_NAMED(IOERR_SHMOPEN), PB_NAMED(IOERR_SHMSIZE), PB_NAMED(IOERR_SHMLOCK),
    PB_NAMED(IOERR_SHMMAP), PB_NAMED(IOERR_SEEK), PB_NAMED(IOERR_DELETE_NOENT), PB_NAMED(IOERR_MMAP),
    PB_NAMED(IOERR_GETTEMPPATH), PB_NAMED(IOERR_CONVPATH), PB_NAMED(IOERR_VNODE), PB_NAMED(IOERR_AUTH),
    PB_NAMED(IOERR_BEGIN_ATOMIC), PB_NAMED(IOERR_COMMIT_ATOMIC), PB_NAMED(IOERR_ROLLBACK_ATOMIC),
    PB_NAMED(IOERR_DATA), PB_NAMED(IOERR_CORRUPTFS),
    PB_NAMED(LOCKED_SHAREDCACHE), PB_NAMED(LOCKED_VTAB),
    PB_NAMED(BUSY_RECOVERY), PB_NAMED(BUSY_SNAPSHOT), PB_NAMED(BUSY_TIMEOUT),
    PB_NAMED(CANTOPEN_NOTEMPDIR), PB_NAMED(CANTOPEN_ISDIR), PB_NAMED(CANTOPEN_FULLPATH),
    PB_NAMED(CANTOPEN_CONVPATH), PB_NAMED(CANTOPEN_DIRTYWAL), PB_NAMED(CANTOPEN_SYMLINK),
    PB_NAMED(CORRUPT_VTAB), PB_NAMED(CORRUPT_SEQUENCE), PB_NAMED(CORRUPT_INDEX),
    PB_NAMED(READONLY_RECOVERY), PB_NAMED(READONLY_CANTLOCK), PB_NAMED(READONLY_ROLLBACK),
    PB_NAMED(READONLY_DBMOVED), PB_NAMED(READONLY_CANTINIT), PB_NAMED(READONLY_DIRECTORY),
    PB_NAMED(ABORT_ROLLBACK),
    PB_NAMED(CONSTRAINT_CHECK), PB_NAMED(CONSTRAINT_COMMITHOOK), PB_NAMED(CONSTRAINT_FOREIGNKEY),
    PB_NAMED(CONSTRAINT_FUNCTION), PB_NAMED(CONSTRAINT_NOTNULL), PB_NAMED(CONSTRAINT_PRIMARYKEY),
    PB_NAMED(CONSTRAINT_TRIGGER), PB_NAMED(CONSTRAINT_UNIQUE), PB_NAMED(CONSTRAINT_VTAB),
    PB_NAMED(CONSTRAINT_ROWID), PB_NAMED(CONSTRAINT_PINNED), PB_NAMED(CONSTRAINT_DATATYPE),
    PB_NAMED(NOTICE_RECOVER_WAL), PB_NAMED(NOTICE_RECOVER_ROLLBACK),
    PB_NAMED(WARNING_AUTOINDEX), PB_NAMED(AUTH_USER), PB_NAMED(OK_LOAD_PERMANENTLY), PB_NAMED(OK_SYMLINK),
};
#undef PB_NAMED

}  // namespace

TEST_CASE("every SQLite result code has its own name", "[sqlite][codes]") {
    std::set<std::string> seen;
    for (const auto& [code, name] : all_codes) {
        INFO("code " << code);
        CHECK(sqlite_code_string(code) == name);
        seen.insert(name);
    }
    CHECK(seen.size() == all_codes.size());  // no two codes share a name
}

TEST_CASE("unknown SQLite codes fall back to the primary name, then to the number", "[sqlite][codes]") {
    // An extended code this table does not know keeps its primary name, so prefix checks
    // such as QueryError::is_busy() still work.
    CHECK(sqlite_code_string(SQLITE_BUSY | (99 << 8)) == "SQLITE_BUSY");
    CHECK(sqlite_code_string(SQLITE_IOERR | (200 << 8)) == "SQLITE_IOERR");
    CHECK(sqlite_code_string(SQLITE_CONSTRAINT | (77 << 8)) == "SQLITE_CONSTRAINT");
    CHECK(sqlite_code_string(99) == "SQLITE_99");
    CHECK(sqlite_code_string(99 | (3 << 8)) == "SQLITE_867");
    CHECK(sqlite_code_string(-1) == "SQLITE_-1");
    CHECK(QueryError("x", sqlite_code_string(SQLITE_BUSY | (99 << 8)), 0, false).is_busy());
    // Whatever the code, an extended name starts with its primary code's name.
    for (int code = 0; code < (1 << 16); ++code) {
        const std::string name = sqlite_code_string(code);
        if (name == "SQLITE_" + std::to_string(code)) continue;
        if (!starts_with(name, sqlite_code_string(code & 0xff))) FAIL("code " << code << " is named " << name);
    }
}

TEST_CASE("which SQLite failures break a connection", "[sqlite][codes]") {
    for (int broken : {SQLITE_IOERR, SQLITE_IOERR_READ, SQLITE_IOERR_SHORT_READ, SQLITE_IOERR_WRITE,
                       SQLITE_IOERR_FSYNC, SQLITE_IOERR_LOCK, SQLITE_CORRUPT, SQLITE_CORRUPT_INDEX, SQLITE_NOTADB,
                       SQLITE_CANTOPEN, SQLITE_CANTOPEN_ISDIR, SQLITE_READONLY_DBMOVED}) {
        INFO(sqlite_code_string(broken));
        CHECK(sqlite_is_broken_code(broken));
    }
    for (int fine : {SQLITE_OK, SQLITE_ERROR, SQLITE_BUSY, SQLITE_BUSY_TIMEOUT, SQLITE_LOCKED, SQLITE_FULL,
                     SQLITE_READONLY, SQLITE_READONLY_RECOVERY, SQLITE_INTERRUPT, SQLITE_CONSTRAINT_UNIQUE,
                     SQLITE_SCHEMA, SQLITE_NOMEM, SQLITE_RANGE, SQLITE_MISUSE}) {
        INFO(sqlite_code_string(fine));
        CHECK_FALSE(sqlite_is_broken_code(fine));
    }
}

// sqlite_codes.hpp — SQLite result codes by name, for QueryError::code() and messages
// (not installed). sqlite_code_string, sqlite_is_broken_code (drivers_internal.hpp) and
// sqlite_code_from_name (error_kind.hpp) are defined beside these, in sqlite_codes.cpp.
//
// Thread-safety: pure functions; reentrant.
#pragma once

#include <string>

namespace poolbench::internal::sqlite {

/// The name for QueryError::code(): the extended name when known, else the primary
/// code's name (so a prefix check on the name still finds the primary code), else "SQLITE_<number>".
[[nodiscard]] std::string code_string(int code);

}  // namespace poolbench::internal::sqlite

// pg_values.hpp — poolbench Values to and from libpq's text format (not installed):
// parameters go as text, result columns are converted by their type OID.
//
// Thread-safety: pure functions; reentrant (a PGresult is read, never changed).
#pragma once

#include "poolbench/connection.hpp"

#include <libpq-fe.h>

#include <string>
#include <string_view>

namespace poolbench::internal::pg {

/// The statement text for a libpq call (null-terminated).
[[nodiscard]] std::string c_string(std::string_view sql);

/// `v` as a text parameter; is_null is set for a NULL (and "" returned).
[[nodiscard]] std::string format_value(const Value& v, bool& is_null);

/// The value at (`row`, `col`) of `res`, by the column's type OID: integers and oid as
/// int64, float4/float8/numeric as double, bool as 0/1, anything else (or a number that
/// does not parse) as its text.
[[nodiscard]] Value convert(const PGresult* res, int row, int col);

}  // namespace poolbench::internal::pg

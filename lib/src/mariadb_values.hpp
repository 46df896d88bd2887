// mariadb_values.hpp — poolbench Values to and from MariaDB's binary protocol (not
// installed): statement parameters are bound by their Value type, result columns are read
// by their field type.
//
// Thread-safety: a ParamBinds or ResultReader belongs to one statement execution on one
// thread; the functions are reentrant.
#pragma once

#include "poolbench/connection.hpp"

#include <mysql.h>

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace poolbench::internal::mariadb {

/// The MYSQL_BINDs for `params`, pointing into `params` itself (strings) and into this
/// object (numbers): keep both alive until the statement has executed.
class ParamBinds {
public:
    explicit ParamBinds(std::span<const Value> params);
    [[nodiscard]] MYSQL_BIND* data() noexcept { return binds_.empty() ? nullptr : binds_.data(); }

private:
    std::vector<MYSQL_BIND> binds_;
    std::vector<std::int64_t> ints_;
    std::vector<double> reals_;
    std::vector<unsigned long> lengths_;
};

/// How one result column is read: integers as int64 (a BIGINT UNSIGNED past INT64_MAX as
/// its decimal text), FLOAT/DOUBLE as double, DECIMAL as its text parsed to double, anything
/// else as text.
enum class ColumnAs : std::uint8_t { integer, unsigned_integer, real, decimal, text };

/// The column kinds of a prepared statement's result (empty: it returns no rows).
[[nodiscard]] std::vector<ColumnAs> result_columns(MYSQL_STMT* stmt);

/// Fetches every row of the statement just executed. Returns false when a fetch failed
/// (mysql_stmt_errno says why); the rows read so far are in `out`.
[[nodiscard]] bool fetch_rows(MYSQL_STMT* stmt, const std::vector<ColumnAs>& columns, Rows& out);

}  // namespace poolbench::internal::mariadb

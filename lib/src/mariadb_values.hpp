// mariadb_values.hpp — poolbench Values to and from MariaDB's binary protocol (not
// installed): statement parameters are bound by their Value type, result columns are read
// by their field type.
//
// Thread-safety: a ParamBinds or ResultReader belongs to one statement execution on one
// thread; the functions are reentrant.
#pragma once

#include "poolbench/connection.hpp"

#include <mysql.h>

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace poolbench::internal::mariadb {

/// The MYSQL_BINDs for `params`, pointing into `params` itself (strings) and into this
/// object (numbers): keep both alive until the statement has executed. Up to
/// inline_params parameters need no heap allocation.
class ParamBinds {
public:
    static constexpr std::size_t inline_params = 8;
    explicit ParamBinds(std::span<const Value> params);
    ParamBinds(const ParamBinds&) = delete;
    ParamBinds& operator=(const ParamBinds&) = delete;
    [[nodiscard]] MYSQL_BIND* data() noexcept { return binds_; }

private:
    struct Slot {
        std::int64_t integer = 0;
        double real = 0;
        unsigned long length = 0;
    };
    std::array<MYSQL_BIND, inline_params> inline_binds_{};
    std::array<Slot, inline_params> inline_slots_{};
    std::vector<MYSQL_BIND> more_binds_;
    std::vector<Slot> more_slots_;
    MYSQL_BIND* binds_ = nullptr;
};

/// How one result column is read: integers as int64 (a BIGINT UNSIGNED past INT64_MAX as
/// its decimal text), FLOAT/DOUBLE as double, DECIMAL as its text parsed to double, anything
/// else as text.
enum class ColumnAs : std::uint8_t { integer, unsigned_integer, real, decimal, text };

/// Room for one row of a statement's result, kept with the prepared statement and reused by
/// every execution (no allocation per row or per execution for numbers and short texts).
class ResultBuffers {
public:
    /// For `stmt`'s result columns (none: the statement returns no rows).
    explicit ResultBuffers(MYSQL_STMT* stmt);
    ResultBuffers(ResultBuffers&&) noexcept = default;
    ResultBuffers& operator=(ResultBuffers&&) noexcept = default;
    [[nodiscard]] bool empty() const noexcept { return columns_.empty(); }

    /// Fetches every row of `stmt`'s execution just made. Returns false when a fetch failed
    /// (mysql_stmt_errno says why); the rows read so far are in `out`.
    [[nodiscard]] bool fetch_all(MYSQL_STMT* stmt, Rows& out);

private:
    struct Cell {
        std::int64_t integer = 0;
        std::uint64_t unsigned_integer = 0;
        double real = 0;
        std::string text;
        unsigned long length = 0;
        my_bool is_null = 0;
        my_bool error = 0;
    };
    [[nodiscard]] Value value(std::size_t column) const;
    void point_binds();

    std::vector<ColumnAs> columns_;
    std::vector<Cell> cells_;
    std::vector<MYSQL_BIND> binds_;
};

}  // namespace poolbench::internal::mariadb

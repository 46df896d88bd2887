// mariadb_values.cpp — Values to and from MariaDB's binary protocol (mariadb_values.hpp).
#include "mariadb_values.hpp"

#include <charconv>
#include <cstring>
#include <limits>
#include <string>
#include <memory>
#include <type_traits>
#include <variant>

namespace poolbench::internal::mariadb {

ParamBinds::ParamBinds(std::span<const Value> params)
    : binds_(params.size()), ints_(params.size()), reals_(params.size()), lengths_(params.size()) {
    for (std::size_t i = 0; i < params.size(); ++i) {
        MYSQL_BIND& b = binds_[i];
        std::memset(&b, 0, sizeof b);
        std::visit(
            [&](const auto& v) {
                using T = std::decay_t<decltype(v)>;
                if constexpr (std::is_same_v<T, std::monostate>) {
                    b.buffer_type = MYSQL_TYPE_NULL;
                } else if constexpr (std::is_same_v<T, std::int64_t>) {
                    ints_[i] = v;
                    b.buffer_type = MYSQL_TYPE_LONGLONG;
                    b.buffer = &ints_[i];
                } else if constexpr (std::is_same_v<T, double>) {
                    reals_[i] = v;
                    b.buffer_type = MYSQL_TYPE_DOUBLE;
                    b.buffer = &reals_[i];
                } else {
                    b.buffer_type = MYSQL_TYPE_STRING;
                    // The library only reads a parameter's buffer.
                    b.buffer = const_cast<char*>(v.data());  // NOLINT(cppcoreguidelines-pro-type-const-cast)
                    b.buffer_length = v.size();
                    lengths_[i] = v.size();
                    b.length = &lengths_[i];
                }
            },
            params[i]);
    }
}

std::vector<ColumnAs> result_columns(MYSQL_STMT* stmt) {
    std::vector<ColumnAs> out;
    MYSQL_RES* meta = mysql_stmt_result_metadata(stmt);
    if (meta == nullptr) return out;
    const unsigned n = mysql_num_fields(meta);
    const MYSQL_FIELD* fields = mysql_fetch_fields(meta);
    out.reserve(n);
    for (unsigned i = 0; i < n; ++i) {
        switch (fields[i].type) {
            case MYSQL_TYPE_TINY:
            case MYSQL_TYPE_SHORT:
            case MYSQL_TYPE_LONG:
            case MYSQL_TYPE_INT24:
            case MYSQL_TYPE_YEAR: out.push_back(ColumnAs::integer); break;
            case MYSQL_TYPE_LONGLONG:
                // The smaller unsigned types fit an int64; an unsigned BIGINT may not.
                out.push_back((fields[i].flags & UNSIGNED_FLAG) != 0 ? ColumnAs::unsigned_integer : ColumnAs::integer);
                break;
            case MYSQL_TYPE_FLOAT:
            case MYSQL_TYPE_DOUBLE: out.push_back(ColumnAs::real); break;
            case MYSQL_TYPE_DECIMAL:
            case MYSQL_TYPE_NEWDECIMAL: out.push_back(ColumnAs::decimal); break;
            default: out.push_back(ColumnAs::text); break;
        }
    }
    mysql_free_result(meta);
    return out;
}

namespace {

/// Room for one column of one row.
struct Cell {
    std::int64_t integer = 0;
    std::uint64_t unsigned_integer = 0;
    double real = 0;
    std::string text = std::string(64, '\0');
    unsigned long length = 0;
    my_bool is_null = 0;
    my_bool error = 0;
};

Value to_value(ColumnAs as, const Cell& c) {
    if (c.is_null != 0) return Value{};
    switch (as) {
        case ColumnAs::integer: return Value{c.integer};
        case ColumnAs::unsigned_integer:
            if (c.unsigned_integer <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
                return Value{static_cast<std::int64_t>(c.unsigned_integer)};
            }
            return Value{std::to_string(c.unsigned_integer)};
        case ColumnAs::real: return Value{c.real};
        case ColumnAs::decimal: {
            double d = 0;
            const char* end = c.text.data() + c.length;
            const auto [ptr, ec] = std::from_chars(c.text.data(), end, d);
            if (ec == std::errc() && ptr == end) return Value{d};
            return Value{c.text.substr(0, c.length)};
        }
        case ColumnAs::text: break;
    }
    return Value{c.text.substr(0, c.length)};
}

}  // namespace

bool fetch_rows(MYSQL_STMT* stmt, const std::vector<ColumnAs>& columns, Rows& out) {
    if (columns.empty()) return true;
    std::vector<Cell> cells(columns.size());
    std::vector<MYSQL_BIND> binds(columns.size());
    for (std::size_t i = 0; i < columns.size(); ++i) {
        MYSQL_BIND& b = binds[i];
        std::memset(&b, 0, sizeof b);
        Cell& c = cells[i];
        b.is_null = &c.is_null;
        b.error = &c.error;
        b.length = &c.length;
        switch (columns[i]) {
            case ColumnAs::integer:
                b.buffer_type = MYSQL_TYPE_LONGLONG;
                b.buffer = &c.integer;
                break;
            case ColumnAs::unsigned_integer:
                b.buffer_type = MYSQL_TYPE_LONGLONG;
                b.buffer = &c.unsigned_integer;
                b.is_unsigned = 1;
                break;
            case ColumnAs::real:
                b.buffer_type = MYSQL_TYPE_DOUBLE;
                b.buffer = &c.real;
                break;
            case ColumnAs::decimal:
            case ColumnAs::text:
                b.buffer_type = MYSQL_TYPE_STRING;
                b.buffer = c.text.data();
                b.buffer_length = c.text.size();
                break;
        }
    }
    if (mysql_stmt_bind_result(stmt, binds.data()) != 0) return false;
    while (true) {
        const int r = mysql_stmt_fetch(stmt);
        if (r == MYSQL_NO_DATA) return true;
        if (r == 1) return false;
        if (r == MYSQL_DATA_TRUNCATED) {
            // A text longer than its buffer: read it again whole.
            for (std::size_t i = 0; i < columns.size(); ++i) {
                Cell& c = cells[i];
                if (c.is_null != 0 || (columns[i] != ColumnAs::text && columns[i] != ColumnAs::decimal) ||
                    c.length <= c.text.size()) {
                    continue;
                }
                std::string whole(c.length, '\0');
                MYSQL_BIND b{};
                std::memset(&b, 0, sizeof b);
                b.buffer_type = MYSQL_TYPE_STRING;
                b.buffer = whole.data();
                b.buffer_length = whole.size();
                unsigned long len = 0;
                b.length = &len;
                if (mysql_stmt_fetch_column(stmt, &b, static_cast<unsigned>(i), 0) != 0) return false;
                c.text = std::move(whole);
                c.length = len;
            }
        }
        auto& row = out.rows.emplace_back();
        row.reserve(columns.size());
        for (std::size_t i = 0; i < columns.size(); ++i) row.push_back(to_value(columns[i], cells[i]));
        // A re-read text replaced its buffer: bind the (possibly moved) buffers again.
        for (std::size_t i = 0; i < columns.size(); ++i) {
            if (columns[i] == ColumnAs::text || columns[i] == ColumnAs::decimal) {
                if (binds[i].buffer != cells[i].text.data()) {
                    binds[i].buffer = cells[i].text.data();
                    binds[i].buffer_length = cells[i].text.size();
                    if (mysql_stmt_bind_result(stmt, binds.data()) != 0) return false;
                }
            }
        }
    }
}

}  // namespace poolbench::internal::mariadb

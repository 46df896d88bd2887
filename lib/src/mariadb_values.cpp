// mariadb_values.cpp — Values to and from MariaDB's binary protocol (mariadb_values.hpp).
#include "mariadb_values.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <limits>
#include <string>
#include <memory>
#include <type_traits>
#include <variant>

namespace poolbench::internal::mariadb {

namespace {

constexpr std::size_t text_buffer = 64;  ///< bytes kept per text column; longer texts are read again whole

}  // namespace

ParamBinds::ParamBinds(std::span<const Value> params) {
    Slot* slots = inline_slots_.data();
    binds_ = inline_binds_.data();
    if (params.size() > inline_params) {
        more_binds_.resize(params.size());
        more_slots_.resize(params.size());
        binds_ = more_binds_.data();
        slots = more_slots_.data();
    }
    for (std::size_t i = 0; i < params.size(); ++i) {
        MYSQL_BIND& b = binds_[i];
        std::memset(&b, 0, sizeof b);
        Slot& slot = slots[i];
        std::visit(
            [&](const auto& v) {
                using T = std::decay_t<decltype(v)>;
                if constexpr (std::is_same_v<T, std::monostate>) {
                    b.buffer_type = MYSQL_TYPE_NULL;
                } else if constexpr (std::is_same_v<T, std::int64_t>) {
                    slot.integer = v;
                    b.buffer_type = MYSQL_TYPE_LONGLONG;
                    b.buffer = &slot.integer;
                } else if constexpr (std::is_same_v<T, double>) {
                    slot.real = v;
                    b.buffer_type = MYSQL_TYPE_DOUBLE;
                    b.buffer = &slot.real;
                } else {
                    b.buffer_type = MYSQL_TYPE_STRING;
                    // The library only reads a parameter's buffer.
                    b.buffer = const_cast<char*>(v.data());  // NOLINT(cppcoreguidelines-pro-type-const-cast)
                    b.buffer_length = v.size();
                    slot.length = v.size();
                    b.length = &slot.length;
                }
            },
            params[i]);
    }
}

ResultBuffers::ResultBuffers(MYSQL_STMT* stmt) {
    MYSQL_RES* meta = mysql_stmt_result_metadata(stmt);
    if (meta == nullptr) return;
    const unsigned n = mysql_num_fields(meta);
    const MYSQL_FIELD* fields = mysql_fetch_fields(meta);
    columns_.reserve(n);
    for (unsigned i = 0; i < n; ++i) {
        switch (fields[i].type) {
            case MYSQL_TYPE_TINY:
            case MYSQL_TYPE_SHORT:
            case MYSQL_TYPE_LONG:
            case MYSQL_TYPE_INT24:
            case MYSQL_TYPE_YEAR: columns_.push_back(ColumnAs::integer); break;
            case MYSQL_TYPE_LONGLONG:
                // The smaller unsigned types fit an int64; an unsigned BIGINT may not.
                columns_.push_back((fields[i].flags & UNSIGNED_FLAG) != 0 ? ColumnAs::unsigned_integer
                                                                           : ColumnAs::integer);
                break;
            case MYSQL_TYPE_FLOAT:
            case MYSQL_TYPE_DOUBLE: columns_.push_back(ColumnAs::real); break;
            case MYSQL_TYPE_DECIMAL:
            case MYSQL_TYPE_NEWDECIMAL: columns_.push_back(ColumnAs::decimal); break;
            default: columns_.push_back(ColumnAs::text); break;
        }
    }
    mysql_free_result(meta);
    cells_.resize(n);
    binds_.resize(n);
    for (auto& c : cells_) c.text.assign(text_buffer, '\0');
    point_binds();
}

void ResultBuffers::point_binds() {
    for (std::size_t i = 0; i < columns_.size(); ++i) {
        MYSQL_BIND& b = binds_[i];
        std::memset(&b, 0, sizeof b);
        Cell& c = cells_[i];
        b.is_null = &c.is_null;
        b.error = &c.error;
        b.length = &c.length;
        switch (columns_[i]) {
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
}

Value ResultBuffers::value(std::size_t column) const {
    const Cell& c = cells_[column];
    if (c.is_null != 0) return Value{};
    const std::size_t len = std::min<std::size_t>(c.length, c.text.size());
    switch (columns_[column]) {
        case ColumnAs::integer: return Value{c.integer};
        case ColumnAs::unsigned_integer:
            if (c.unsigned_integer <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
                return Value{static_cast<std::int64_t>(c.unsigned_integer)};
            }
            return Value{std::to_string(c.unsigned_integer)};
        case ColumnAs::real: return Value{c.real};
        case ColumnAs::decimal: {
            double d = 0;
            const char* end = c.text.data() + len;
            const auto [ptr, ec] = std::from_chars(c.text.data(), end, d);
            if (ec == std::errc() && ptr == end) return Value{d};
            return Value{c.text.substr(0, len)};
        }
        case ColumnAs::text: break;
    }
    return Value{c.text.substr(0, len)};
}

bool ResultBuffers::fetch_all(MYSQL_STMT* stmt, Rows& out) {
    if (columns_.empty()) return true;
    if (mysql_stmt_bind_result(stmt, binds_.data()) != 0) return false;
    while (true) {
        const int r = mysql_stmt_fetch(stmt);
        if (r == MYSQL_NO_DATA) return true;
        if (r == 1) return false;
        if (r == MYSQL_DATA_TRUNCATED) {
            // A text longer than its buffer: read that column again, whole, into a buffer of
            // its own, then give the cell its usual size back for the next row.
            for (std::size_t i = 0; i < columns_.size(); ++i) {
                Cell& c = cells_[i];
                if (c.is_null != 0 || (columns_[i] != ColumnAs::text && columns_[i] != ColumnAs::decimal) ||
                    c.length <= c.text.size()) {
                    continue;
                }
                std::string whole(c.length, '\0');
                MYSQL_BIND b;
                std::memset(&b, 0, sizeof b);
                b.buffer_type = MYSQL_TYPE_STRING;
                b.buffer = whole.data();
                b.buffer_length = whole.size();
                unsigned long len = 0;
                b.length = &len;
                if (mysql_stmt_fetch_column(stmt, &b, static_cast<unsigned>(i), 0) != 0) return false;
                whole.resize(std::min<std::size_t>(len, whole.size()));
                std::swap(c.text, whole);
                c.length = static_cast<unsigned long>(c.text.size());
            }
        }
        auto& row = out.rows.emplace_back();
        row.reserve(columns_.size());
        for (std::size_t i = 0; i < columns_.size(); ++i) row.push_back(value(i));
        // A long text took its cell's buffer: restore the usual one (the binds point at it).
        bool rebind = false;
        for (auto& c : cells_) {
            if (c.text.size() != text_buffer) {
                c.text.assign(text_buffer, '\0');
                rebind = true;
            }
        }
        if (rebind) {
            point_binds();
            if (mysql_stmt_bind_result(stmt, binds_.data()) != 0) return false;
        }
    }
}

}  // namespace poolbench::internal::mariadb

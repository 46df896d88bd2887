// pg_values.cpp — poolbench Values to and from libpq's text format (see pg_values.hpp).
#include "pg_values.hpp"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <variant>

namespace poolbench::internal::pg {

namespace {

// Type OIDs from pg_type.h (stable across server versions).
constexpr Oid bool_oid = 16;
constexpr Oid int8_oid = 20;
constexpr Oid int2_oid = 21;
constexpr Oid int4_oid = 23;
constexpr Oid oid_oid = 26;
constexpr Oid float4_oid = 700;
constexpr Oid float8_oid = 701;
constexpr Oid numeric_oid = 1700;

}  // namespace

std::string c_string(std::string_view sql) { return std::string(sql); }

std::string format_value(const Value& v, bool& is_null) {
    is_null = false;
    if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
    if (const auto* d = std::get_if<double>(&v)) {
        if (std::isnan(*d)) return "NaN";
        if (std::isinf(*d)) return *d > 0 ? "Infinity" : "-Infinity";
        char buf[64];
        const auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, *d);
        return ec == std::errc() ? std::string(buf, ptr) : std::to_string(*d);
    }
    if (const auto* s = std::get_if<std::string>(&v)) return *s;
    is_null = true;
    return {};
}

Value convert(const PGresult* res, int row, int col) {
    if (PQgetisnull(res, row, col) != 0) return std::monostate{};
    const char* text = PQgetvalue(res, row, col);
    const auto length = static_cast<std::size_t>(PQgetlength(res, row, col));
    const char* end = text + length;
    switch (PQftype(res, col)) {
        case int2_oid:
        case int4_oid:
        case int8_oid:
        case oid_oid: {
            std::int64_t n = 0;
            const auto [ptr, ec] = std::from_chars(text, end, n);
            if (ec == std::errc() && ptr == end) return n;
            break;
        }
        case float4_oid:
        case float8_oid:
        case numeric_oid: {
            double d = 0;
            const auto [ptr, ec] = std::from_chars(text, end, d);
            if (ec == std::errc() && ptr == end) return d;
            break;
        }
        case bool_oid: return std::int64_t{length > 0 && text[0] == 't' ? 1 : 0};
        default: break;
    }
    return std::string(text, length);
}

}  // namespace poolbench::internal::pg

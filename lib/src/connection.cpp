// connection.cpp — the out-of-line parts of connection.hpp: Rows::int_at and the names
// of Backend values.
#include "poolbench/connection.hpp"
#include "poolbench/error.hpp"

#include <string>
#include <type_traits>
#include <variant>

namespace poolbench {

std::string_view to_string(Backend b) noexcept {
    switch (b) {
        case Backend::sqlite: return "sqlite";
        case Backend::postgresql: return "postgresql";
        case Backend::null: return "null";
        case Backend::mariadb: return "mariadb";
    }
    return "unknown";
}

namespace {

std::string_view type_name(const Value& v) noexcept {
    return std::visit(
        [](const auto& x) -> std::string_view {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, std::monostate>) {
                return "NULL";
            } else if constexpr (std::is_same_v<T, std::int64_t>) {
                return "an integer";
            } else if constexpr (std::is_same_v<T, double>) {
                return "a real number";
            } else {
                return "text";
            }
        },
        v);
}

}  // namespace

std::int64_t Rows::int_at(std::size_t r, std::size_t c) const {
    if (r >= rows.size()) {
        throw UsageError("Rows::int_at(" + std::to_string(r) + ", " + std::to_string(c) + "): row " +
                         std::to_string(r) + " is absent: the query returned " + std::to_string(rows.size()) +
                         (rows.size() == 1 ? " row" : " rows"));
    }
    const auto& row = rows[r];
    if (c >= row.size()) {
        throw UsageError("Rows::int_at(" + std::to_string(r) + ", " + std::to_string(c) + "): column " +
                         std::to_string(c) + " is absent: row " + std::to_string(r) + " has " +
                         std::to_string(row.size()) + (row.size() == 1 ? " column" : " columns"));
    }
    if (const auto* i = std::get_if<std::int64_t>(&row[c])) return *i;
    throw UsageError("Rows::int_at(" + std::to_string(r) + ", " + std::to_string(c) + "): the value is " +
                     std::string(type_name(row[c])) + ", not an integer");
}

}  // namespace poolbench

// Rows::int_at and the names of destroy reasons.
#include <catch2/catch.hpp>

#include "poolbench/connection.hpp"
#include "poolbench/error.hpp"
#include "poolbench/stats.hpp"

#include <string>

using namespace poolbench;

namespace {

std::string usage_error(const Rows& rows, std::size_t r, std::size_t c) {
    try {
        (void)rows.int_at(r, c);
    } catch (const UsageError& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("Rows::int_at returns integers and explains what is missing", "[unit][rows]") {
    Rows rows;
    rows.rows.push_back({Value{std::int64_t{42}}, Value{std::string("text")}, Value{2.5}, Value{}});
    rows.rows.push_back({Value{std::int64_t{-7}}});

    CHECK(rows.int_at(0) == 42);
    CHECK(rows.int_at(0, 0) == 42);
    CHECK(rows.int_at(1, 0) == -7);

    CHECK(usage_error(rows, 2, 0) == "Rows::int_at(2, 0): row 2 is absent: the query returned 2 rows");
    CHECK(usage_error(rows, 1, 1) == "Rows::int_at(1, 1): column 1 is absent: row 1 has 1 column");
    CHECK(usage_error(rows, 0, 1) == "Rows::int_at(0, 1): the value is text, not an integer");
    CHECK(usage_error(rows, 0, 2) == "Rows::int_at(0, 2): the value is a real number, not an integer");
    CHECK(usage_error(rows, 0, 3) == "Rows::int_at(0, 3): the value is NULL, not an integer");
    CHECK(usage_error(Rows{}, 0, 0) == "Rows::int_at(0, 0): row 0 is absent: the query returned 0 rows");
}

TEST_CASE("DestroyReason names", "[unit][rows]") {
    CHECK(to_string(DestroyReason::broken) == "broken");
    CHECK(to_string(DestroyReason::validation) == "validation");
    CHECK(to_string(DestroyReason::reset) == "reset");
    CHECK(to_string(DestroyReason::idle) == "idle");
    CHECK(to_string(DestroyReason::lifetime) == "lifetime");
    CHECK(to_string(DestroyReason::shutdown) == "shutdown");
}

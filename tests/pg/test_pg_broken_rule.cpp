// The broken rule: which SQLSTATEs make the pool close a connection.
#include "pg_support.hpp"

#include <poolbench/poolbench.hpp>

using namespace std::chrono_literals;
using pgtest::url_with;

TEST_CASE("pg: 25006 (read-only transaction) breaks the connection by default, and the rule is configurable",
          "[pg]") {
    {
        auto d = poolbench::make_driver(url_with(""));
        auto c = d->connect(std::chrono::steady_clock::now() + 5s);
        c->execute("SET default_transaction_read_only = on");
        try {
            c->execute("CREATE TEMP TABLE pb_rule_t (x int)");
            FAIL("a write succeeded in a read-only session");
        } catch (const poolbench::QueryError& e) {
            CHECK(e.code() == "25006");
            CHECK(e.broken());  // a pool that writes must reconnect (to the new primary)
        }
        CHECK(c->is_broken());
    }
    {
        // A pool meant for a read-only standby keeps its connections on 25006.
        auto d = poolbench::make_driver(url_with("broken_sqlstates=08,57P01,57P02,57P03"));
        auto c = d->connect(std::chrono::steady_clock::now() + 5s);
        c->execute("SET default_transaction_read_only = on");
        try {
            c->execute("CREATE TEMP TABLE pb_rule_t (x int)");
            FAIL("a write succeeded in a read-only session");
        } catch (const poolbench::QueryError& e) {
            CHECK(e.code() == "25006");
            CHECK_FALSE(e.broken());
        }
        CHECK_FALSE(c->is_broken());
        CHECK(c->query("SELECT 1").int_at(0) == 1);
    }
    {
        // Codes can be named one by one too: here a division by zero "breaks" the connection.
        auto d = poolbench::make_driver(url_with("broken_sqlstates=22012"));
        auto c = d->connect(std::chrono::steady_clock::now() + 5s);
        CHECK_THROWS_AS(c->query("SELECT 1/0"), poolbench::QueryError);
        CHECK(c->is_broken());
    }
    CHECK_THROWS_WITH(poolbench::make_driver(url_with("broken_sqlstates=08,xyz")),
                      Catch::Contains("invalid broken_sqlstates entry 'xyz'"));
}

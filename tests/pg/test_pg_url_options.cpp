// PostgreSQL URL options the driver reads itself: statement_timeout's units, and URLs
// libpq cannot read, refused without showing the password.
#include "pg_support.hpp"

#include <string>

using namespace poolbench;
using namespace pgtest;

TEST_CASE("pg more: statement_timeout takes ms, s, m, min and h, and nothing else", "[pg]") {
    for (const char* ok : {"250", "250ms", "5s", "2m", "2min", "1h", "1H", "0"}) {
        INFO(ok);
        auto d = driver(std::string("statement_timeout=") + ok);
        CHECK(d->backend() == poolbench::Backend::postgresql);
    }
    for (const char* bad : {"5x", "ms", "1d", "-1s", "99999999999999h"}) {
        INFO(bad);
        CHECK_THROWS_WITH(driver(std::string("statement_timeout=") + bad),
                          Catch::Contains(std::string("invalid statement_timeout '") + bad + "'"));
    }
    // A long timeout does not cut a short statement; "1h" is an hour, not a millisecond.
    auto c = connect("statement_timeout=1h");
    CHECK(c->query("SELECT pg_sleep(0.05), 3").int_at(0, 1) == 3);
}

TEST_CASE("pg more: URLs libpq cannot read are ConfigErrors that never show the password", "[pg]") {
    CHECK_THROWS_WITH(driver_for("sqlite::memory:"),
                      "'sqlite::memory:' is not a PostgreSQL URL (postgresql://user@host:port/db)");
    CHECK_THROWS_WITH(driver_for("postgresql://u@h/d%zzb"),
                      Catch::Contains("invalid PostgreSQL URL 'postgresql://u@h/d%zzb': ") &&
                          Catch::Contains("invalid percent-encoded token: \"d%zzb\""));
    try {
        (void)driver_for("postgresql://u:s3cr%zzet@h/db");
        FAIL("expected a ConfigError");
    } catch (const ConfigError& e) {
        const std::string message = e.what();
        INFO(message);
        CHECK(message.find("s3cr") == std::string::npos);
        CHECK(contains(message, "invalid PostgreSQL URL 'postgresql://u:***@h/db'"));
        CHECK(contains(message, "invalid percent-encoded token: \"***\""));
    }
}

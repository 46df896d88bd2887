// poolbench::Pool over the PostgreSQL driver against a real server.
#include "pg_support.hpp"

#include "poolbench/pool.hpp"
#include "support/pool_stats.hpp"

#include <mutex>
#include <vector>

using namespace poolbench;
using namespace pgtest;
using pbtest::destroyed;

namespace {

std::uint64_t destroyed_by(const PoolStats& s, DestroyReason r) {
    return s.destroyed_by_reason[static_cast<std::size_t>(r)];
}

PoolConfig config(const std::string& name, std::size_t max_size) {
    PoolConfig c;
    c.name = name;
    c.max_size = max_size;
    c.acquire_timeout = std::chrono::milliseconds(60'000);
    return c;
}

}  // namespace

TEST_CASE("pg pool: 100 threads x 200 ops never open more than max_size connections", "[pg][stress]") {
    const std::string app = unique_name("pb_pool_cap");
    Pool pool(driver("application_name=" + app), config(app, 10));
    auto monitor = connect();  // a separate connection, not counted under `app`

    constexpr int threads = 100;
    constexpr int ops = 200;
    std::atomic<int> errors{0};
    std::atomic<int> wrong{0};
    std::atomic<int> done_threads{0};
    std::int64_t max_seen = 0;
    std::string first_error;
    std::mutex first_error_mu;

    std::vector<std::thread> workers;
    workers.reserve(threads);
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            for (int i = 0; i < ops; ++i) {
                try {
                    Lease lease = pool.acquire();
                    const std::int64_t v = std::int64_t{t} * 1000 + i;
                    if (lease->query("SELECT $1::int8", {I(v)}).int_at(0) != v) ++wrong;
                } catch (const std::exception& e) {
                    if (errors++ == 0) {
                        const std::lock_guard lock(first_error_mu);
                        first_error = e.what();
                    }
                }
            }
            ++done_threads;
        });
    }
    // Sample the server's view while the load runs.
    while (done_threads.load() < threads) {
        const auto n = monitor
                           ->query("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                                   {Value{app}})
                           .int_at(0);
        max_seen = std::max(max_seen, n);
    }
    for (auto& w : workers) w.join();

    INFO("first error: " << first_error);
    CHECK(errors == 0);
    CHECK(wrong == 0);
    CHECK(max_seen >= 1);
    CHECK(max_seen <= 10);
    const PoolStats s = pool.stats();
    CHECK(s.acquires == std::uint64_t{threads} * ops);
    CHECK(s.timeouts == 0);
    CHECK(s.peak_total <= 10);
    CHECK(s.active == 0);  // every lease came back
    CHECK(s.idle == s.total);
    CHECK(s.total <= 10);
    CHECK(s.created - s.destroyed == s.total);
    // And the server agrees once the load is over.
    CHECK(monitor->query("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1", {Value{app}})
              .int_at(0) == static_cast<std::int64_t>(s.total));
}

TEST_CASE("pg pool: a terminated backend is replaced", "[pg]") {
    const std::string app = unique_name("pb_pool_term");
    Pool pool(driver("application_name=" + app), config(app, 2));
    auto admin = connect();
    std::int64_t pid = 0;
    {
        Lease lease = pool.acquire();
        pid = lease->query("SELECT pg_backend_pid()").int_at(0);
        REQUIRE(admin->query("SELECT pg_terminate_backend($1::int)", {I(pid)}).int_at(0) == 1);
        REQUIRE(eventually([&] {
            return admin->query("SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int", {I(pid)}).int_at(0) ==
                   0;
        }));
        try {
            (void)lease->query("SELECT 1");
            FAIL("a statement on a terminated backend succeeded");
        } catch (const QueryError& e) {
            CHECK(e.broken());
        }
        CHECK(lease->is_broken());
    }
    const PoolStats after = pool.stats();
    CHECK(destroyed_by(after, DestroyReason::broken) == 1);
    CHECK(after.total == 0);
    Lease next = pool.acquire();
    const auto new_pid = next->query("SELECT pg_backend_pid()").int_at(0);
    CHECK(new_pid != pid);
    CHECK(pool.stats().created == 2);
}

TEST_CASE("pg pool: a returned lease's transaction is rolled back", "[pg]") {
    const std::string app = unique_name("pb_pool_reset");
    Pool pool(driver("application_name=" + app), config(app, 1));
    auto admin = connect();
    const std::string table = unique_name("pb_pool_reset");
    admin->execute("CREATE TABLE " + table + " (x int)");
    std::int64_t pid = 0;
    {
        Lease lease = pool.acquire();
        pid = lease->query("SELECT pg_backend_pid()").int_at(0);
        lease->execute("BEGIN");
        lease->execute("INSERT INTO " + table + " VALUES (1)");
        CHECK(lease->in_transaction());
    }
    CHECK(admin->query("SELECT count(*) FROM " + table).int_at(0) == 0);
    {
        Lease lease = pool.acquire();
        CHECK(lease->query("SELECT pg_backend_pid()").int_at(0) == pid);  // same connection, reused
        CHECK_FALSE(lease->in_transaction());
        lease->execute("BEGIN");
        CHECK_THROWS_AS(lease->execute("SELECT 1/0"), QueryError);  // aborted transaction
    }
    {
        Lease lease = pool.acquire();
        CHECK(lease->query("SELECT pg_backend_pid()").int_at(0) == pid);
        CHECK_FALSE(lease->in_transaction());
        CHECK(lease->query("SELECT 1").int_at(0) == 1);
    }
    CHECK(pool.stats().destroyed == 0);
    admin->execute("DROP TABLE " + table);
}

// Hidden (restarts the shared server, so it must not run next to other tests): run it
// alone with `pg_tests "[.pg-restart]"` inside a sandbox; it needs POOLBENCH_PG_DIR.
TEST_CASE("pg pool: a server restart breaks every connection and the pool recovers", "[.pg-restart]") {
    const char* dir = std::getenv("POOLBENCH_PG_DIR");
    if (dir == nullptr || *dir == '\0') FAIL("POOLBENCH_PG_DIR is not set: start the server with scripts/pg_sandbox.sh");
    std::string script = __FILE__;
    script = script.substr(0, script.rfind("/tests/")) + "/scripts/pg_sandbox.sh";
    const std::string app = unique_name("pb_pool_restart");
    Pool pool(driver("application_name=" + app), config(app, 4));
    {
        std::vector<Lease> leases;
        for (int i = 0; i < 4; ++i) leases.push_back(pool.acquire());
        for (auto& l : leases) CHECK(l->query("SELECT 1").int_at(0) == 1);
        REQUIRE(std::system((script + " restart " + dir).c_str()) == 0);
        for (auto& l : leases) {
            try {
                (void)l->query("SELECT 1");
                FAIL("a statement survived a server restart");
            } catch (const QueryError& e) {
                INFO(e.what());
                CHECK(e.broken());
            }
        }
    }
    CHECK(destroyed_by(pool.stats(), DestroyReason::broken) == 4);
    Lease lease = pool.acquire();
    CHECK(lease->query("SELECT 1").int_at(0) == 1);
}

TEST_CASE("pg more: a reset_query that starts failing destroys the connection on return", "[pg]") {
    PoolConfig config;
    config.name = "pg-reset";
    config.max_size = 2;
    config.acquire_timeout = 10s;
    // 1/1 when the driver tries it on connect; 1/0 once the session sets pb.fail = 1.
    Pool pool(driver("reset_query=SELECT%201%2F(1%20-%20coalesce(current_setting('pb.fail'%2C%20true)%2C%20'0')%3A%3Aint)"),
              config);
    std::int64_t first_pid = 0;
    {
        Lease l = pool.acquire();
        first_pid = backend_pid(*l);
        CHECK(l->needs_reset());
        l->execute("SET pb.fail = 1");
    }
    auto s = pool.stats();
    CHECK(destroyed(s, DestroyReason::reset) == 1);
    CHECK(s.total == 0);
    Lease again = pool.acquire();
    CHECK(backend_pid(*again) != first_pid);
}

TEST_CASE("pg more: a reset_query the server refuses fails connect, naming it and the server's error", "[pg]") {
    auto d = driver("reset_query=SELECT%20pb_no_such_fn()");
    for (int attempt = 0; attempt < 2; ++attempt) {  // tried again: never passed once failed
        INFO(attempt);
        try {
            (void)d->connect(std::chrono::steady_clock::now() + 10s);
            FAIL("connect succeeded");
        } catch (const ConnectError& e) {
            const std::string what = e.what();
            INFO(what);
            CHECK(what.find("the URL's reset_query fails on ") != std::string::npos);
            CHECK(what.find("function pb_no_such_fn() does not exist") != std::string::npos);
            CHECK(what.find('\n') == std::string::npos);
        }
    }
    PoolConfig config;
    config.name = "pg-refused-reset";
    config.max_size = 2;
    config.acquire_timeout = 2s;
    Pool pool(d, config);
    CHECK_THROWS_AS(pool.acquire(), ConnectError);
    CHECK(destroyed(pool.stats(), DestroyReason::reset) == 0);
}

TEST_CASE("pg more: keepalive finds a terminated idle connection and replaces it", "[pg]") {
    PoolConfig config;
    config.name = "pg-keepalive";
    config.max_size = 2;
    config.min_idle = 1;
    config.keepalive_interval = 50ms;
    config.housekeeping_interval = 10ms;
    config.validation_interval = 60'000ms;  // only keepalive pings
    config.acquire_timeout = 10s;
    Pool pool(driver(), config);
    REQUIRE(eventually([&] { return pool.stats().idle == 1; }));
    std::int64_t pid = 0;
    {
        Lease l = pool.acquire();
        pid = backend_pid(*l);
    }
    auto admin = connect();
    REQUIRE(admin->query("SELECT pg_terminate_backend($1::int)", {I(pid)}).int_at(0) == 1);
    REQUIRE(eventually([&] { return destroyed(pool.stats(), DestroyReason::validation) == 1; }));
    REQUIRE(eventually([&] { return pool.stats().idle == 1; }));
    CHECK(pool.stats().reconnects == 1);
    CHECK(pool.stats().keepalives >= 1);
    Lease l = pool.acquire();
    CHECK(backend_pid(*l) != pid);
    CHECK(pool.stats().validation_failures == 0);  // no caller ever met the dead one
}

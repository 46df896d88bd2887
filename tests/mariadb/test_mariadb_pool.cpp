// poolbench::Pool over the MariaDB driver against a real server. Each test's pool connects
// as an account of its own (TestUser), so the server's process list tells its sessions
// from everyone else's.
#include "mariadb_support.hpp"

#include "poolbench/pool.hpp"
#include "support/pool_stats.hpp"

#include <algorithm>
#include <array>
#include <mutex>
#include <vector>

using namespace poolbench;
using namespace mtest;
using pbtest::destroyed;

namespace {

PoolConfig config(const std::string& name, std::size_t max_size) {
    PoolConfig c;
    c.name = name;
    c.max_size = max_size;
    c.acquire_timeout = std::chrono::milliseconds(60'000);
    return c;
}

/// Failures seen by worker threads, by kind, plus the first message.
struct Failures {
    std::array<std::atomic<std::uint64_t>, error_kind_count> by_kind{};
    std::atomic<std::uint64_t> total{0};
    std::atomic<std::uint64_t> not_query_errors{0};
    std::mutex mu;
    std::string first;

    void note(const std::exception& e) {
        by_kind[static_cast<std::size_t>(error_kind(e))].fetch_add(1);
        if (dynamic_cast<const QueryError*>(&e) == nullptr) not_query_errors.fetch_add(1);
        if (total.fetch_add(1) == 0) {
            const std::lock_guard lock(mu);
            first = e.what();
        }
    }
    [[nodiscard]] std::uint64_t of(ErrorKind k) const { return by_kind[static_cast<std::size_t>(k)].load(); }
    [[nodiscard]] std::string first_message() {
        const std::lock_guard lock(mu);
        return first;
    }
};

}  // namespace

TEST_CASE("mariadb pool: 64 threads x 100 ops over 6 connections never open more than 6", "[mariadb][stress]") {
    TestUser user("pb_mp_cap");
    Pool pool(driver_for(user.url()), config("mariadb-cap", 6));
    auto monitor = connect();

    constexpr int threads = 64;
    constexpr int ops = 100;
    std::atomic<int> wrong{0};
    std::atomic<int> done_threads{0};
    Failures failures;
    std::int64_t max_seen = 0;

    std::vector<std::thread> workers;
    workers.reserve(threads);
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            for (int i = 0; i < ops; ++i) {
                try {
                    Lease lease = pool.acquire();
                    const std::int64_t v = std::int64_t{t} * 1000 + i;
                    if (lease->query("SELECT CAST(? AS SIGNED)", {I(v)}).int_at(0) != v) ++wrong;
                } catch (const std::exception& e) {
                    failures.note(e);
                }
            }
            ++done_threads;
        });
    }
    // Sample the server's view while the load runs (bounded: the workers end, or 120 s pass).
    const auto until = Clock::now() + 120s;
    while (done_threads.load() < threads && Clock::now() < until) {
        max_seen = std::max(max_seen, user.sessions(*monitor));
    }
    for (auto& w : workers) w.join();

    INFO("first error: " << failures.first_message());
    CHECK(failures.total == 0);
    CHECK(wrong == 0);
    CHECK(max_seen >= 1);
    CHECK(max_seen <= 6);
    const PoolStats s = pool.stats();
    CHECK(s.acquires == std::uint64_t{threads} * ops);
    CHECK(s.timeouts == 0);
    CHECK(s.peak_total <= 6);
    CHECK(s.active == 0);  // every lease came back
    CHECK(s.idle == s.total);
    CHECK(s.created - s.destroyed == s.total);
    CHECK(s.destroyed == 0);
    // And the server agrees once the load is over.
    CHECK(user.sessions(*monitor) == static_cast<std::int64_t>(s.total));
}

TEST_CASE("mariadb pool: every pool connection KILLed mid-run is replaced, failures are connection_lost",
          "[mariadb][stress]") {
    TestUser user("pb_mp_kill");
    PoolConfig c = config("mariadb-kill", 6);
    c.min_idle = 6;
    c.acquire_timeout = 10'000ms;
    c.housekeeping_interval = 50ms;
    Pool pool(driver_for(user.url()), c);
    auto admin = connect();
    REQUIRE(eventually([&] { return pool.stats().total == 6 && user.sessions(*admin) == 6; }, 10s));

    constexpr int threads = 8;
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> ok{0};
    std::atomic<std::uint64_t> wrong{0};
    Failures failures;
    std::vector<std::thread> workers;
    for (int t = 0; t < threads; ++t) {
        workers.emplace_back([&, t] {
            const auto until = Clock::now() + 90s;
            for (std::int64_t i = 0; !stop.load() && Clock::now() < until; ++i) {
                try {
                    Lease lease = pool.acquire();
                    const std::int64_t v = std::int64_t{t} * 1'000'000 + i;
                    if (lease->query("SELECT CAST(? AS SIGNED)", {I(v)}).int_at(0) != v) ++wrong;
                    ok.fetch_add(1);
                } catch (const std::exception& e) {
                    failures.note(e);
                }
            }
        });
    }
    const auto finish = [&] {
        stop = true;
        for (auto& w : workers)
            if (w.joinable()) w.join();
    };
    struct FinishOnExit {  // also when a REQUIRE or an exception leaves early
        const decltype(finish)& f;
        ~FinishOnExit() { f(); }
    } finish_on_exit{finish};
    if (!eventually([&] { return ok.load() > 2000; }, 30s)) {
        finish();
        FAIL("the load did not get going: " << ok.load() << " ops; first error: " << failures.first_message());
    }
    // KILL CONNECTION every session of the pool's account, from another session.
    const auto ids = user.session_ids(*admin);
    std::int64_t killed = 0;
    for (const auto id : ids) {
        try {
            admin->execute("KILL CONNECTION " + std::to_string(id));
            ++killed;
        } catch (const QueryError& e) {
            INFO("KILL " << id << ": " << e.what());  // 1094: it ended on its own meanwhile
            CHECK(e.code() == "1094");
        }
    }
    const bool all_gone = eventually([&] {
        const auto now = user.session_ids(*admin);
        return std::none_of(ids.begin(), ids.end(),
                            [&](std::int64_t id) { return std::find(now.begin(), now.end(), id) != now.end(); });
    }, 10s);
    const auto ok_at_kill = ok.load();
    const bool recovered = eventually([&] { return ok.load() > ok_at_kill + 3000; }, 30s);
    const auto failed_after_recovery = failures.total.load();
    const bool went_on = eventually([&] { return ok.load() > ok_at_kill + 6000; }, 30s);
    finish();

    const PoolStats s = pool.stats();
    INFO("killed " << killed << " of " << ids.size() << "; failed " << failures.total << " (first: "
                   << failures.first_message() << "); broken " << destroyed(s, DestroyReason::broken)
                   << ", validation " << destroyed(s, DestroyReason::validation) << ", reconnects " << s.reconnects);
    CHECK(ids.size() == 6);
    CHECK(killed == 6);
    CHECK(all_gone);
    CHECK(recovered);
    CHECK(went_on);
    CHECK(wrong == 0);
    // At most one failure per killed connection, every one of them connection_lost.
    CHECK(failures.total.load() <= static_cast<std::uint64_t>(killed));
    CHECK(failures.of(ErrorKind::connection_lost) == failures.total.load());
    CHECK(failures.not_query_errors == 0);
    CHECK(failures.total.load() == failed_after_recovery);  // none once recovered
    CHECK(s.timeouts == 0);
    CHECK(destroyed(s, DestroyReason::broken) + destroyed(s, DestroyReason::validation) ==
          static_cast<std::uint64_t>(killed));
    CHECK(s.reconnects >= 1);
    // No lease leaked: all back, and the counts add up.
    CHECK(s.active == 0);
    CHECK(s.idle == s.total);
    CHECK(s.created - s.destroyed == s.total);
    CHECK(s.peak_total <= 6);
    // The server agrees: the pool's sessions are new ones, as many as the pool holds.
    CHECK(eventually([&] {
        const auto st = pool.stats();
        return st.pending == 0 && user.sessions(*admin) == static_cast<std::int64_t>(st.total);
    }));
    for (const auto id : user.session_ids(*admin)) CHECK(std::find(ids.begin(), ids.end(), id) == ids.end());
}

TEST_CASE("mariadb pool: a killed connection is replaced", "[mariadb]") {
    TestUser user("pb_mp_term");
    Pool pool(driver_for(user.url()), config("mariadb-term", 2));
    auto admin = connect();
    std::int64_t id = 0;
    {
        Lease lease = pool.acquire();
        id = thread_id(*lease);
        admin->execute("KILL CONNECTION " + std::to_string(id));
        REQUIRE(eventually([&] { return !session_exists(*admin, id); }));
        const auto e = thrown<QueryError>([&] { (void)lease->query("SELECT 1"); });
        CHECK(e.broken());
        CHECK(e.kind() == ErrorKind::connection_lost);
        CHECK(lease->is_broken());
    }
    const PoolStats after = pool.stats();
    CHECK(destroyed(after, DestroyReason::broken) == 1);
    CHECK(after.total == 0);
    Lease next = pool.acquire();
    CHECK(thread_id(*next) != id);
    CHECK(pool.stats().created == 2);
}

TEST_CASE("mariadb pool: a returned lease's transaction is rolled back and the connection reused", "[mariadb]") {
    Table t("pb_mp_reset", "x INT");
    Pool pool(driver(), config("mariadb-reset", 1));
    auto admin = connect();
    std::int64_t id = 0;
    {
        Lease lease = pool.acquire();
        id = thread_id(*lease);
        lease->execute("START TRANSACTION");
        lease->execute("INSERT INTO " + t.name() + " VALUES (1)");
        CHECK(lease->in_transaction());
    }
    CHECK(admin->query("SELECT COUNT(*) FROM " + t.name()).int_at(0) == 0);
    {
        Lease lease = pool.acquire();
        CHECK(thread_id(*lease) == id);  // same connection, reused
        CHECK_FALSE(lease->in_transaction());
        CHECK(lease->query("SELECT 1").int_at(0) == 1);
    }
    CHECK(pool.stats().destroyed == 0);
}

TEST_CASE("mariadb pool: reset_connection=1 gives every lease a clean session on the same connection",
          "[mariadb]") {
    Pool pool(driver("reset_connection=1"), config("mariadb-rc", 1));
    std::int64_t id = 0;
    {
        Lease lease = pool.acquire();
        id = thread_id(*lease);
        lease->execute("SET @leftover = 1");
        lease->execute("CREATE TEMPORARY TABLE t_leftover (x INT)");
        CHECK(lease->query("SELECT @leftover").int_at(0) == 1);
    }
    {
        Lease lease = pool.acquire();
        CHECK(thread_id(*lease) == id);
        CHECK(std::holds_alternative<std::monostate>(lease->query("SELECT @leftover").rows.at(0).at(0)));
        lease->execute("CREATE TEMPORARY TABLE t_leftover (x INT)");  // the old one went with the reset
    }
    CHECK(pool.stats().destroyed == 0);
}

TEST_CASE("mariadb pool: a reset_query that starts failing destroys the connection on return", "[mariadb]") {
    // It works when the pool connects (the driver checks it once then), and fails later:
    // its table is gone by the time the lease returns.
    auto table = std::make_unique<Table>("pb_reset_probe", "x INT");
    PoolConfig c = config("mariadb-bad-reset", 2);
    c.acquire_timeout = 10s;
    Pool pool(driver("reset_query=SELECT%20*%20FROM%20" + table->name()), c);
    std::int64_t first = 0;
    {
        Lease l = pool.acquire();
        first = thread_id(*l);
        CHECK(l->needs_reset());
        table.reset();  // dropped
    }
    const auto s = pool.stats();
    CHECK(destroyed(s, DestroyReason::reset) == 1);
    CHECK(s.total == 0);
    Lease again = pool.acquire();
    CHECK(thread_id(*again) != first);
}

TEST_CASE("mariadb pool: a reset_query the server refuses fails the pool's connects, not its releases", "[mariadb]") {
    PoolConfig c = config("mariadb-refused-reset", 2);
    c.acquire_timeout = 2s;
    Pool pool(driver("reset_query=SELECT%20pb_no_such_fn()"), c);
    const auto e = thrown<ConnectError>([&] { (void)pool.acquire(); });
    INFO(e.what());
    CHECK(contains(e.what(), "reset_query"));
    CHECK(contains(e.what(), "pb_no_such_fn does not exist"));
    const auto s = pool.stats();
    CHECK(destroyed(s, DestroyReason::reset) == 0);
    CHECK(s.total == 0);
}

TEST_CASE("mariadb pool: keepalive finds a killed idle connection and replaces it", "[mariadb]") {
    TestUser user("pb_mp_ka");
    PoolConfig c = config("mariadb-keepalive", 2);
    c.min_idle = 1;
    c.keepalive_interval = 50ms;
    c.housekeeping_interval = 10ms;
    c.validation_interval = 60'000ms;  // only keepalive pings
    c.acquire_timeout = 10s;
    Pool pool(driver_for(user.url()), c);
    REQUIRE(eventually([&] { return pool.stats().idle == 1; }));
    std::int64_t id = 0;
    {
        Lease l = pool.acquire();
        id = thread_id(*l);
    }
    auto admin = connect();
    admin->execute("KILL CONNECTION " + std::to_string(id));
    REQUIRE(eventually([&] { return destroyed(pool.stats(), DestroyReason::validation) == 1; }));
    REQUIRE(eventually([&] { return pool.stats().idle == 1; }));
    CHECK(pool.stats().reconnects == 1);
    CHECK(pool.stats().keepalives >= 1);
    Lease l = pool.acquire();
    CHECK(thread_id(*l) != id);
    CHECK(pool.stats().validation_failures == 0);  // no caller ever met the dead one
}

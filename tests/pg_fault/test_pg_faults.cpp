// PostgreSQL outages against the real throwaway server: restart under load, every backend
// terminated at once, the server stopped for 5 s (circuit breaker), and lifecycle
// housekeeping. These restart or stop the shared server, so CTest runs them alone
// (RUN_SERIAL); they need POOLBENCH_PG_URL and POOLBENCH_PG_DIR (scripts/pg_sandbox.sh).
#include "../pg/pg_support.hpp"

#include <poolbench/poolbench.hpp>

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using poolbench::BreakerState;
using poolbench::DestroyReason;
using poolbench::Lease;
using poolbench::Pool;
using poolbench::PoolConfig;
using pgtest::unique_name;
using pgtest::url_with;

namespace {

using Clock = std::chrono::steady_clock;

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

/// Runs scripts/pg_sandbox.sh VERB on the sandbox the tests use.
void sandbox(const std::string& verb) {
    const char* dir = std::getenv("POOLBENCH_PG_DIR");
    if (dir == nullptr || *dir == '\0')
        FAIL("POOLBENCH_PG_DIR is not set: start the server with eval \"$(scripts/pg_sandbox.sh start)\"");
    std::string script = __FILE__;
    script = script.substr(0, script.rfind("/tests/")) + "/scripts/pg_sandbox.sh";
    REQUIRE(std::system((script + " " + verb + " " + dir).c_str()) == 0);
}

std::uint64_t destroyed(const poolbench::PoolStats& s, DestroyReason r) {
    return s.destroyed_by_reason[static_cast<std::size_t>(r)];
}

/// Worker threads looping acquire + SELECT 1 until stopped (or 60 s, whatever happens).
struct Load {
    Pool& pool;
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> ok{0};
    std::atomic<std::uint64_t> failed{0};
    std::atomic<std::uint64_t> timeouts{0};
    std::atomic<std::int64_t> worst_acquire_ns{0};
    std::atomic<std::int64_t> up_since_ns{0};          // set when the server is back
    std::atomic<std::int64_t> first_ok_after_up_ns{0};
    std::vector<std::thread> threads;

    Load(Pool& p, int n) : pool(p) {
        for (int i = 0; i < n; ++i) threads.emplace_back([this] { loop(); });
    }
    ~Load() { finish(); }
    void finish() {
        stop = true;
        for (auto& t : threads)
            if (t.joinable()) t.join();
    }
    void loop() {
        const auto until = Clock::now() + 60s;
        while (!stop.load() && Clock::now() < until) {
            const std::int64_t t0 = now_ns();
            try {
                Lease l = pool.acquire();
                note_acquire(now_ns() - t0);
                if (l->query("SELECT 1").int_at(0) != 1) throw std::runtime_error("bad result");
                ok.fetch_add(1);
                const std::int64_t up = up_since_ns.load();
                std::int64_t none = 0;
                if (up != 0 && now_ns() > up) first_ok_after_up_ns.compare_exchange_strong(none, now_ns());
            } catch (const poolbench::PoolTimeout&) {
                note_acquire(now_ns() - t0);
                timeouts.fetch_add(1);
            } catch (const std::exception&) {
                note_acquire(now_ns() - t0);
                failed.fetch_add(1);
                // A client backs off after an error. Retrying at once, 32 threads failing
                // in microseconds (circuit open) starve the restarting server of the two
                // cores, and its startup, not the pool, then decides the recovery time
                // (one CI run: 3.8 s after 1.7 M failed acquires). Not a wait for a result.
                std::this_thread::sleep_for(1ms);
            }
        }
    }
    void note_acquire(std::int64_t ns) {
        std::int64_t seen = worst_acquire_ns.load();
        while (ns > seen && !worst_acquire_ns.compare_exchange_weak(seen, ns)) {
        }
    }
};

PoolConfig fault_config(const std::string& name, std::size_t max_size) {
    PoolConfig c;
    c.name = name;
    c.max_size = max_size;
    c.acquire_timeout = 2000ms;
    return c;
}

}  // namespace

TEST_CASE("pg faults: the pool serves again within 1 s of a restarted server accepting", "[pg][fault]") {
    const std::string app = unique_name("pb_fault_restart");
    PoolConfig c = fault_config(app, 10);
    Pool pool(poolbench::make_driver(url_with("application_name=" + app)), c);
    Load load(pool, 32);
    REQUIRE(pgtest::eventually([&] { return load.ok.load() > 2000; }, 20s));
    const auto failed_before = load.failed.load() + load.timeouts.load();
    sandbox("restart");  // returns once the server accepts connections again
    load.up_since_ns = now_ns();
    const std::int64_t up = load.up_since_ns.load();
    REQUIRE(pgtest::eventually([&] { return load.first_ok_after_up_ns.load() != 0; }, 10s));
    const auto recovery = std::chrono::nanoseconds(load.first_ok_after_up_ns.load() - up);
    const auto ok_at_recovery = load.ok.load();
    REQUIRE(pgtest::eventually([&] { return load.ok.load() > ok_at_recovery + 2000; }, 20s));
    load.finish();
    const auto s = pool.stats();
    INFO("recovery " << std::chrono::duration_cast<std::chrono::milliseconds>(recovery).count()
                     << " ms; failed " << load.failed << ", timed out " << load.timeouts << ", worst acquire "
                     << load.worst_acquire_ns / 1000000 << " ms, broken " << destroyed(s, DestroyReason::broken)
                     << ", validation " << destroyed(s, DestroyReason::validation) << ", reconnects " << s.reconnects);
    CHECK(recovery < 1s);
    CHECK(failed_before == 0);
    // The operations the restart broke are counted, not hidden.
    CHECK(load.failed.load() > 0);
    CHECK(destroyed(s, DestroyReason::broken) + destroyed(s, DestroyReason::validation) >= 1);
    CHECK(s.reconnects >= 1);
    // Nobody waited past the acquire timeout.
    CHECK(load.worst_acquire_ns.load() < std::chrono::nanoseconds(c.acquire_timeout + 250ms).count());
    CHECK(s.peak_total <= 10);
}

TEST_CASE("pg faults: every backend terminated at once costs at most one failure per connection", "[pg][fault]") {
    const std::string app = unique_name("pb_fault_term");
    PoolConfig c = fault_config(app, 6);
    c.min_idle = 6;
    Pool pool(poolbench::make_driver(url_with("application_name=" + app)), c);
    REQUIRE(pgtest::eventually([&] { return pool.stats().total == 6; }, 10s));
    Load load(pool, 8);
    REQUIRE(pgtest::eventually([&] { return load.ok.load() > 2000; }, 20s));
    auto admin = pgtest::driver()->connect(Clock::now() + 5s);
    const auto killed = admin->query(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) AS t FROM pg_stat_activity "
        "WHERE application_name = $1) x WHERE t", {poolbench::Value{app}});
    const auto terminated = killed.int_at(0);
    const auto ok_at_kill = load.ok.load();
    REQUIRE(pgtest::eventually([&] { return load.ok.load() > ok_at_kill + 3000; }, 20s));
    const auto failed_after = load.failed.load();
    REQUIRE(pgtest::eventually([&] { return load.ok.load() > ok_at_kill + 6000; }, 20s));
    load.finish();
    const auto s = pool.stats();
    INFO("terminated " << terminated << ", failed " << load.failed << ", broken " << destroyed(s, DestroyReason::broken)
                       << ", validation " << destroyed(s, DestroyReason::validation));
    CHECK(terminated == 6);
    CHECK(load.failed.load() <= static_cast<std::uint64_t>(terminated));
    CHECK(load.failed.load() == failed_after);  // no failures once recovered
    CHECK(load.timeouts.load() == 0);
    CHECK(destroyed(s, DestroyReason::broken) + destroyed(s, DestroyReason::validation) == static_cast<std::uint64_t>(terminated));
}

TEST_CASE("pg faults: while the server is down for 5 s acquires fail fast, then the pool recovers", "[pg][fault]") {
    const std::string app = unique_name("pb_fault_down");
    PoolConfig c = fault_config(app, 4);
    c.breaker_failures = 3;
    c.breaker_cooldown = 500ms;
    c.validation_interval = 0ms;  // find the dead connection before handing it out
    Pool pool(poolbench::make_driver(url_with("application_name=" + app)), c);
    {
        Lease l = pool.acquire();
        CHECK(l->query("SELECT 1").int_at(0) == 1);
    }
    sandbox("halt");
    std::vector<std::int64_t> fast;  // durations of acquires refused by the open breaker
    std::uint64_t connect_errors = 0;
    std::uint64_t successes = 0;
    const auto outage_end = Clock::now() + 5s;  // the outage itself is the scenario
    while (Clock::now() < outage_end) {
        const std::int64_t t0 = now_ns();
        try {
            Lease l = pool.acquire();
            ++successes;
        } catch (const poolbench::CircuitOpen&) {
            fast.push_back(now_ns() - t0);
        } catch (const poolbench::ConnectError&) {
            ++connect_errors;
        }
        std::this_thread::yield();
    }
    sandbox("resume");
    const std::int64_t up = now_ns();
    std::int64_t back = 0;
    REQUIRE(pgtest::eventually([&] {
        try {
            Lease l = pool.acquire();
            if (l->query("SELECT 1").int_at(0) != 1) return false;
            back = now_ns();
            return true;
        } catch (const poolbench::Error&) {
            return false;
        }
    }, 10s));
    REQUIRE_FALSE(fast.empty());
    std::sort(fast.begin(), fast.end());
    const auto median = fast[fast.size() / 2];
    const auto p99 = fast[fast.size() * 99 / 100];
    const auto s = pool.stats();
    INFO("fail-fast acquires " << fast.size() << ": median " << median << " ns, p99 " << p99 << " ns; connect errors "
                               << connect_errors << "; recovered " << (back - up) / 1000000 << " ms after restart; "
                               << "breaker transitions " << s.breaker_transitions);
    CHECK(successes == 0);
    CHECK(median < 1'000'000);  // well under a millisecond
    CHECK(fast.size() > 100 * connect_errors);  // nearly every acquire was refused at once
    CHECK(back - up < 1'500'000'000);           // cooldown (0.5 s) + one connect
    CHECK(s.breaker == BreakerState::closed);
    CHECK(s.breaker_transitions >= 3);  // open, half-open ..., closed
    CHECK(s.circuit_rejections >= fast.size());
}

TEST_CASE("pg faults: lifetime rotation, idle eviction and keepalive on a real server", "[pg][fault]") {
    const std::string app = unique_name("pb_fault_life");
    PoolConfig c = fault_config(app, 4);
    c.min_idle = 2;
    c.idle_timeout = 300ms;
    c.max_lifetime = 600ms;
    c.keepalive_interval = 100ms;
    c.housekeeping_interval = 50ms;
    Pool pool(poolbench::make_driver(url_with("application_name=" + app)), c);
    {
        std::vector<Lease> all;
        for (int i = 0; i < 4; ++i) all.push_back(pool.acquire());
    }
    REQUIRE(pgtest::eventually([&] {
        const auto s = pool.stats();
        return destroyed(s, DestroyReason::idle) >= 2 && destroyed(s, DestroyReason::lifetime) >= 2 &&
               s.keepalives >= 4 && s.total == 2;
    }, 20s));
    // min_idle kept open on the server, the rest really closed. Rotation goes on (a
    // connection closes and its replacement opens every ~600 ms), so compare when quiet.
    auto admin = pgtest::driver()->connect(Clock::now() + 5s);
    std::int64_t live = -1;
    CHECK(pgtest::eventually([&] {
        const auto before = pool.stats();
        live = admin->query("SELECT count(*) FROM pg_stat_activity WHERE application_name = $1",
                            {poolbench::Value{app}})
                   .int_at(0);
        const auto after = pool.stats();
        return before.created == after.created && after.pending == 0 && after.total == 2 && live == 2;
    }, 10s));
    INFO("server-side connections: " << live);
    CHECK(live == 2);
}

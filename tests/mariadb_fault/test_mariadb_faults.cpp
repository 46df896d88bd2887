// MariaDB outages against the real throwaway server: a restart under load, the server
// halted for a while (circuit breaker) then resumed, and a server at max_connections. These restart or stop the shared
// server, so CTest runs them alone (RUN_SERIAL); they need POOLBENCH_MARIADB_URL and
// POOLBENCH_MARIADB_DIR (scripts/mariadb_sandbox.sh).
#include "../mariadb/mariadb_support.hpp"

#include <poolbench/poolbench.hpp>

#include "support/pool_stats.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <memory>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using poolbench::BreakerState;
using poolbench::DestroyReason;
using poolbench::ErrorKind;
using poolbench::Lease;
using poolbench::Pool;
using poolbench::PoolConfig;
using pbtest::destroyed;

namespace {

using Clock = std::chrono::steady_clock;

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

std::string sandbox_script() {
    std::string script = __FILE__;
    return script.substr(0, script.rfind("/tests/")) + "/scripts/mariadb_sandbox.sh";
}

/// Runs scripts/mariadb_sandbox.sh VERB on the sandbox the tests use.
void sandbox(const std::string& verb) {
    const std::string dir = mtest::required_env("POOLBENCH_MARIADB_DIR");
    REQUIRE(std::system((sandbox_script() + " " + verb + " " + dir).c_str()) == 0);
}

/// The command that restarts the sandbox (what `poolbench run --restart-command` is given).
std::string restart_command() {
    const std::string dir = mtest::required_env("POOLBENCH_MARIADB_DIR");
    const std::string ask = sandbox_script() + " restart-command " + dir;
    FILE* p = ::popen(ask.c_str(), "r");
    REQUIRE(p != nullptr);
    std::string out;
    std::array<char, 512> buf{};
    while (std::fgets(buf.data(), static_cast<int>(buf.size()), p) != nullptr) out += buf.data();
    REQUIRE(::pclose(p) == 0);
    while (!out.empty() && out.back() == '\n') out.pop_back();
    REQUIRE_FALSE(out.empty());
    return out;
}

/// Worker threads looping acquire + a query until stopped (or 90 s, whatever happens),
/// counting outcomes by kind.
struct Load {
    Pool& pool;
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> ok{0};
    std::atomic<std::uint64_t> failed{0};
    std::atomic<std::uint64_t> query_failures{0};  ///< QueryErrors (a statement on a lost connection)
    std::atomic<std::uint64_t> query_failures_not_lost{0};
    std::atomic<std::uint64_t> timeouts{0};
    std::array<std::atomic<std::uint64_t>, poolbench::error_kind_count> by_kind{};
    std::atomic<std::int64_t> worst_acquire_ns{0};
    std::atomic<std::int64_t> up_since_ns{0};  // set when the server is back
    std::atomic<std::int64_t> first_ok_after_up_ns{0};
    std::vector<std::thread> threads;

    Load(Pool& p, int n) : pool(p) {
        for (int i = 0; i < n; ++i) threads.emplace_back([this] { loop(); });
    }
    Load(const Load&) = delete;
    Load& operator=(const Load&) = delete;
    ~Load() { finish(); }
    void finish() {
        stop = true;
        for (auto& t : threads)
            if (t.joinable()) t.join();
    }
    void loop() {
        const auto until = Clock::now() + 90s;
        while (!stop.load() && Clock::now() < until) {
            const std::int64_t t0 = now_ns();
            try {
                Lease l = pool.acquire();
                note_acquire(now_ns() - t0);
                if (l->query("SELECT CAST(? AS SIGNED)", {poolbench::Value{std::int64_t{1}}}).int_at(0) != 1) {
                    throw std::runtime_error("bad result");
                }
                ok.fetch_add(1);
                const std::int64_t up = up_since_ns.load();
                std::int64_t none = 0;
                if (up != 0 && now_ns() > up) first_ok_after_up_ns.compare_exchange_strong(none, now_ns());
            } catch (const poolbench::PoolTimeout&) {
                note_acquire(now_ns() - t0);
                timeouts.fetch_add(1);
            } catch (const std::exception& e) {
                note_acquire(now_ns() - t0);
                failed.fetch_add(1);
                by_kind[static_cast<std::size_t>(poolbench::error_kind(e))].fetch_add(1);
                if (const auto* q = dynamic_cast<const poolbench::QueryError*>(&e)) {
                    query_failures.fetch_add(1);
                    if (q->kind() != ErrorKind::connection_lost) query_failures_not_lost.fetch_add(1);
                }
                // A client backs off after an error (see tests/pg_fault/test_pg_faults.cpp: 32
                // threads failing in microseconds starve the restarting server of the cores).
                // Not a wait for a result.
                std::this_thread::sleep_for(1ms);
            }
        }
    }
    void note_acquire(std::int64_t ns) {
        std::int64_t seen = worst_acquire_ns.load();
        while (ns > seen && !worst_acquire_ns.compare_exchange_weak(seen, ns)) {
        }
    }
    [[nodiscard]] std::uint64_t of(ErrorKind k) const { return by_kind[static_cast<std::size_t>(k)].load(); }
};

PoolConfig fault_config(const std::string& name, std::size_t max_size) {
    PoolConfig c;
    c.name = name;
    c.max_size = max_size;
    c.acquire_timeout = 2000ms;
    return c;
}

}  // namespace

TEST_CASE("mariadb faults: a server restarted under load, the pool recovers with bounded errors",
          "[mariadb][fault]") {
    const std::string restart = restart_command();
    PoolConfig c = fault_config("mariadb-fault-restart", 10);
    Pool pool(mtest::driver(), c);
    Load load(pool, 32);
    REQUIRE(mtest::eventually([&] { return load.ok.load() > 2000; }, 20s));
    const auto failed_before = load.failed.load() + load.timeouts.load();
    const auto restart_start = now_ns();
    REQUIRE(std::system(restart.c_str()) == 0);  // returns once the server answers again
    load.up_since_ns = now_ns();
    const std::int64_t up = load.up_since_ns.load();
    REQUIRE(mtest::eventually([&] { return load.first_ok_after_up_ns.load() != 0; }, 10s));
    const auto recovery = std::chrono::nanoseconds(load.first_ok_after_up_ns.load() - up);
    const auto ok_at_recovery = load.ok.load();
    REQUIRE(mtest::eventually([&] { return load.ok.load() > ok_at_recovery + 2000; }, 20s));
    const auto failed_settled = load.failed.load() + load.timeouts.load();
    const auto ok_settled = load.ok.load();
    REQUIRE(mtest::eventually([&] { return load.ok.load() > ok_settled + 2000; }, 20s));
    load.finish();
    const auto s = pool.stats();
    const auto broken = destroyed(s, DestroyReason::broken);
    const auto validation = destroyed(s, DestroyReason::validation);
    INFO("restart took " << (up - restart_start) / 1000000 << " ms; recovery "
                         << std::chrono::duration_cast<std::chrono::milliseconds>(recovery).count() << " ms; failed "
                         << load.failed << " (statements " << load.query_failures << ", connection_refused "
                         << load.of(ErrorKind::connection_refused) << ", circuit_open "
                         << load.of(ErrorKind::circuit_open) << "), timed out " << load.timeouts
                         << ", worst acquire " << load.worst_acquire_ns / 1000000 << " ms, broken " << broken
                         << ", validation " << validation << ", reconnects " << s.reconnects);
    CHECK(failed_before == 0);
    CHECK(recovery < 1s);
    // The operations the restart broke are counted, not hidden, and each is what it seems:
    // a statement on a lost connection, or no connection to be had while the server was down.
    CHECK(load.failed.load() > 0);
    CHECK(load.query_failures.load() >= 1);
    CHECK(load.query_failures_not_lost.load() == 0);
    CHECK(load.failed.load() == load.query_failures.load() + load.of(ErrorKind::connection_refused) +
                                    load.of(ErrorKind::circuit_open));
    // Bounded: a statement fails at most once per pooled connection the restart broke ...
    CHECK(load.query_failures.load() <= c.max_size);
    CHECK(load.query_failures.load() <= broken);
    CHECK(broken + validation >= 1);
    CHECK(broken + validation <= c.max_size);
    // ... connecting fails breaker_failures times, then once per cooldown (up to
    // max_connecting attempts at a time) while the server is down; the rest is refused at
    // once by the open breaker ...
    const auto down_ms = (up - restart_start) / 1'000'000;
    const auto cooldown_ms = static_cast<std::int64_t>(c.breaker_cooldown.count());
    CHECK(load.of(ErrorKind::connection_refused) <=
          static_cast<std::uint64_t>(c.breaker_failures) + c.max_connecting * static_cast<std::uint64_t>(down_ms / cooldown_ms + 2));
    // ... and once the pool has recovered, nothing fails any more.
    CHECK(load.failed.load() + load.timeouts.load() == failed_settled);
    CHECK(s.reconnects >= 1);
    // Nobody waited past the acquire timeout.
    CHECK(load.worst_acquire_ns.load() < std::chrono::nanoseconds(c.acquire_timeout + 250ms).count());
    CHECK(s.peak_total <= 10);
    CHECK(s.active == 0);
    CHECK(s.created - s.destroyed == s.total);
}

TEST_CASE("mariadb faults: while the server is halted acquires fail fast, then the pool recovers",
          "[mariadb][fault]") {
    PoolConfig c = fault_config("mariadb-fault-down", 4);
    c.breaker_failures = 3;
    c.breaker_cooldown = 500ms;
    c.validation_interval = 0ms;  // find the dead connection before handing it out
    Pool pool(mtest::driver("connect_timeout=2s"), c);
    {
        Lease l = pool.acquire();
        CHECK(l->query("SELECT 1").int_at(0) == 1);
    }
    sandbox("halt");
    std::vector<std::int64_t> fast;  // durations of acquires refused by the open breaker
    std::uint64_t connect_errors = 0;
    std::uint64_t successes = 0;
    std::string first_connect_error;
    const auto outage_end = Clock::now() + 4s;  // the outage itself is the scenario
    while (Clock::now() < outage_end) {
        const std::int64_t t0 = now_ns();
        try {
            Lease l = pool.acquire();
            ++successes;
        } catch (const poolbench::CircuitOpen&) {
            fast.push_back(now_ns() - t0);
        } catch (const poolbench::ConnectError& e) {
            if (connect_errors++ == 0) first_connect_error = e.what();
        }
        std::this_thread::yield();
    }
    sandbox("resume");
    const std::int64_t up = now_ns();
    std::int64_t back = 0;
    REQUIRE(mtest::eventually([&] {
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
    const auto s = pool.stats();
    INFO("fail-fast acquires " << fast.size() << ": median " << median << " ns; connect errors " << connect_errors
                               << " (first: " << first_connect_error << "); recovered " << (back - up) / 1000000
                               << " ms after the server answered; breaker transitions " << s.breaker_transitions);
    CHECK(successes == 0);
    CHECK(connect_errors >= 1);
    CHECK(mtest::contains(first_connect_error, "connection refused: is MariaDB running on 127.0.0.1:"));
    CHECK_FALSE(mtest::contains(first_connect_error, mtest::server_password()));
    CHECK(median < 1'000'000);                   // well under a millisecond
    CHECK(fast.size() > 100 * connect_errors);  // nearly every acquire was refused at once
    CHECK(back - up < 1'500'000'000);            // cooldown (0.5 s) + one connect
    CHECK(s.breaker == BreakerState::closed);
    CHECK(s.breaker_transitions >= 3);  // open, half-open ..., closed
    CHECK(s.circuit_rejections >= fast.size());
    CHECK(destroyed(s, DestroyReason::validation) >= 1);  // the connection from before the halt
}

TEST_CASE("mariadb faults: a server at max_connections is named in the ConnectError", "[mariadb][fault]") {
    auto admin = mtest::admin_connect();
    const auto before = admin->query("SELECT @@GLOBAL.max_connections").int_at(0);
    struct Restore {
        poolbench::Connection& admin;
        std::int64_t value;
        ~Restore() {
            try {
                admin.execute("SET GLOBAL max_connections = " + std::to_string(value));
            } catch (...) {  // NOLINT(bugprone-empty-catch): nothing more to do in a destructor
            }
        }
    } restore{*admin, before};
    const auto connected = [&] {
        return std::stoll(mtest::text_at(admin->query(
            "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'THREADS_CONNECTED'")));
    };
    // max_connections is at least 10: hold that many sessions, then lower it to what is open.
    std::vector<std::unique_ptr<poolbench::Connection>> held;
    while (connected() < 10 && held.size() < 20) held.push_back(mtest::connect());
    admin->execute("SET GLOBAL max_connections = " + std::to_string(std::max<long long>(10, connected())));
    // An account without CONNECTION ADMIN (which may take one more) is refused once the
    // server is full; sessions still closing from earlier tests may leave room for a few.
    const auto limited = mtest::driver_for(mtest::required_env("POOLBENCH_MARIADB_LIMITED_URL"));
    std::string refusal;
    for (int i = 0; i < 50 && refusal.empty(); ++i) {
        try {
            held.push_back(limited->connect(Clock::now() + 10s));
        } catch (const poolbench::ConnectError& e) {
            refusal = e.what();
        }
    }
    INFO(refusal);
    CHECK(mtest::contains(refusal, "the server has too many connections (max_connections is reached)"));
    CHECK_FALSE(mtest::contains(refusal, mtest::server_password()));
    held.clear();
}

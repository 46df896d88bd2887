// ReplicaRouter against real PostgreSQL streaming replication: the throwaway primary
// (POOLBENCH_PG_URL, POOLBENCH_PG_DIR) and its hot standby (POOLBENCH_PG_STANDBY_URL,
// POOLBENCH_PG_STANDBY_DIR), both started by scripts/pg_sandbox.sh (test.sh does it).
// Missing variables FAIL the tests. The standby is halted, resumed and has its replay
// paused here, so CTest runs this tier alone (RUN_SERIAL); the promotion test promotes a
// second standby of its own, never the shared one.
#include "support/pg_standby.hpp"
#include "../pg/pg_support.hpp"

#include <poolbench/poolbench.hpp>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using poolbench::Connection;
using poolbench::NodeState;
using poolbench::Pool;
using poolbench::PoolConfig;
using poolbench::ReplicaRouter;
using poolbench::RouterConfig;
using pgtest::unique_name;

namespace {

using Clock = std::chrono::steady_clock;

std::string env_or_fail(const char* name) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') {
        FAIL(name << " is not set: the [replica] tests need a PostgreSQL standby. Start one with "
                     "eval \"$(scripts/pg_sandbox.sh start-standby \"$POOLBENCH_PG_DIR\")\" (scripts/test.sh does)");
    }
    return v;
}

std::string sandbox_script() { return pbtest::pg_sandbox_script(); }

/// Runs scripts/pg_sandbox.sh VERB DIR.
void sandbox(const std::string& verb, const std::string& dir) {
    REQUIRE(std::system((sandbox_script() + " " + verb + " " + dir).c_str()) == 0);
}

/// A pool over `url` for the router: quick to give up on a dead server.
std::shared_ptr<Pool> pool_for(const std::string& name, const std::string& url) {
    PoolConfig c;
    c.name = name;
    c.max_size = 8;
    c.acquire_timeout = 5s;
    c.breaker_cooldown = 250ms;
    return std::make_shared<Pool>(poolbench::make_driver(url), c);
}

std::string with_params(const std::string& url, const std::string& params) {
    return url + (url.find('?') == std::string::npos ? "?" : "&") + params;
}

RouterConfig fast_checks() {
    RouterConfig c;
    c.health_interval = 200ms;
    c.health_timeout = 1000ms;
    return c;
}

/// A superuser session on a sandbox server over its Unix socket (trusted locally).
std::unique_ptr<Connection> superuser(const std::string& dir) {
    std::ifstream port_file(dir + "/port");
    std::string port;
    port_file >> port;
    REQUIRE_FALSE(port.empty());
    return poolbench::make_driver("postgresql://postgres@/postgres?host=" + dir + "&port=" + port)
        ->connect(Clock::now() + 10s);
}

std::int64_t ms_since(Clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

/// A table of the primary, dropped at the end.
struct Table {
    std::string name = unique_name("pb_replica");
    std::shared_ptr<Pool> primary;
    explicit Table(std::shared_ptr<Pool> p) : primary(std::move(p)) {
        auto l = primary->acquire();
        l->execute("CREATE TABLE " + name + " (id bigserial PRIMARY KEY, v bigint NOT NULL)");
    }
    ~Table() {
        try {
            auto l = primary->acquire();
            l->execute("DROP TABLE IF EXISTS " + name);
        } catch (...) {
        }
    }
};

/// Reads and writes through the router until stopped. A read reports whether a standby
/// served it (pg_is_in_recovery()) with the row count it saw.
struct Load {
    ReplicaRouter& router;
    const std::string table;
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> standby_reads{0};
    std::atomic<std::uint64_t> primary_reads{0};
    std::atomic<std::uint64_t> read_errors{0};
    std::atomic<std::uint64_t> writes_ok{0};
    std::atomic<std::uint64_t> write_errors{0};
    std::mutex mu;
    std::vector<std::string> errors;  // the first few
    std::vector<std::thread> threads;

    Load(ReplicaRouter& r, std::string t, int readers, int writers) : router(r), table(std::move(t)) {
        for (int i = 0; i < readers; ++i) threads.emplace_back([this] { read_loop(); });
        for (int i = 0; i < writers; ++i) threads.emplace_back([this] { write_loop(); });
    }
    ~Load() { finish(); }
    void finish() {
        stop = true;
        for (auto& t : threads)
            if (t.joinable()) t.join();
    }
    void note(const std::exception& e) {
        std::lock_guard lk(mu);
        if (errors.size() < 5) errors.emplace_back(e.what());
    }
    void read_loop() {
        const auto until = Clock::now() + 60s;
        while (!stop.load() && Clock::now() < until) {
            try {
                const bool standby = router.read([&](Connection& c) {
                    return c.query("SELECT pg_is_in_recovery()::int, count(*) FROM " + table).int_at(0, 0) == 1;
                });
                (standby ? standby_reads : primary_reads).fetch_add(1);
            } catch (const std::exception& e) {
                read_errors.fetch_add(1);
                note(e);
            }
        }
    }
    void write_loop() {
        const auto until = Clock::now() + 60s;
        std::int64_t v = 0;
        while (!stop.load() && Clock::now() < until) {
            try {
                router.write([&](Connection& c) {
                    (void)c.query("INSERT INTO " + table + " (v) VALUES ($1)", {poolbench::Value{++v}});
                });
                writes_ok.fetch_add(1);
            } catch (const std::exception& e) {
                write_errors.fetch_add(1);
                note(e);
            }
        }
    }
    std::string error_text() {
        std::lock_guard lk(mu);
        std::string out;
        for (const auto& e : errors) out += e + "\n";
        return out;
    }
};

std::int64_t count_rows(ReplicaRouter& router, const std::string& table, bool on_primary) {
    auto body = [&](Connection& c) { return c.query("SELECT count(*) FROM " + table).int_at(0); };
    return on_primary ? router.write(body) : router.read(body);
}

/// True once a read through the router finds `rows` rows of `table` on a standby; false
/// while the standby has not replayed them yet (or not even the table: replication is
/// asynchronous, and the sandbox's synchronous_commit=off lets the primary hold its WAL up
/// to wal_writer_delay before sending it).
bool standby_has(ReplicaRouter& router, const std::string& table, std::int64_t rows) {
    try {
        const auto r = router.read(
            [&](Connection& c) { return c.query("SELECT pg_is_in_recovery()::int, count(*) FROM " + table); });
        return r.int_at(0, 0) == 1 && r.int_at(0, 1) == rows;
    } catch (const poolbench::QueryError& e) {
        if (e.code() == "42P01") return false;  // undefined_table: its CREATE is not replayed yet
        throw;
    }
}

}  // namespace

TEST_CASE("replica: writes go to the primary, reads are served by the standby", "[pg][replica]") {
    auto primary = pool_for("primary", pgtest::server_url());
    auto standby = pool_for("standby", env_or_fail("POOLBENCH_PG_STANDBY_URL"));
    ReplicaRouter router(primary, {standby}, fast_checks());
    REQUIRE(router.wait_for_health_checks(10s));
    REQUIRE(router.stats().nodes[1].state == NodeState::healthy);
    CHECK(router.stats().nodes[1].lag_bytes.has_value());

    Table t(primary);
    for (int i = 0; i < 50; ++i) {
        router.write([&](Connection& c) { c.execute("INSERT INTO " + t.name + " (v) VALUES (" + std::to_string(i) + ")"); });
    }
    // The standby replays them shortly (asynchronous replication).
    REQUIRE(pgtest::eventually([&] { return standby_has(router, t.name, 50); }, 10s));
    for (int i = 0; i < 20; ++i) {
        CHECK(router.read([](Connection& c) { return c.query("SELECT pg_is_in_recovery()::int").int_at(0); }) == 1);
    }
    const auto s = router.stats();
    CHECK(s.nodes[0].writes == 50);
    CHECK(s.nodes[0].reads == 0);
    CHECK(s.nodes[1].reads >= 21);
    CHECK(s.nodes[1].writes == 0);
    CHECK(s.primary_fallbacks == 0);
    // The primary's own pool served every write; the standby's only reads and checks.
    CHECK(standby->stats().acquires >= s.nodes[1].reads);
}

TEST_CASE("replica: a session reads its own write at once, from the primary", "[pg][replica]") {
    auto primary = pool_for("primary", pgtest::server_url());
    auto standby = pool_for("standby", env_or_fail("POOLBENCH_PG_STANDBY_URL"));
    ReplicaRouter router(primary, {standby}, fast_checks());
    REQUIRE(router.wait_for_health_checks(10s));
    Table t(primary);
    poolbench::RouterSession session = router.session();
    for (int i = 0; i < 20; ++i) {
        session.write([&](Connection& c) {
            (void)c.query("INSERT INTO " + t.name + " (v) VALUES ($1)", {poolbench::Value{std::int64_t{i}}});
        });
        // Read straight after the write: the session is pinned to the primary, which has it.
        const auto found = session.read([&](Connection& c) {
            return c.query("SELECT pg_is_in_recovery()::int, count(*) FROM " + t.name + " WHERE v = $1",
                           {poolbench::Value{std::int64_t{i}}});
        });
        CHECK(found.int_at(0, 0) == 0);
        CHECK(found.int_at(0, 1) == 1);
    }
    const auto s = router.stats();
    CHECK(s.pinned_reads == 20);
    CHECK(s.nodes[0].reads == 20);
    // Reads of the router itself still go to the standby.
    CHECK(router.read([](Connection& c) { return c.query("SELECT pg_is_in_recovery()::int").int_at(0); }) == 1);
}

TEST_CASE("replica: the standby halted under load: reads fail over to the primary and come back", "[pg][replica]") {
    const std::string dir = env_or_fail("POOLBENCH_PG_STANDBY_DIR");
    auto primary = pool_for("primary", pgtest::server_url());
    auto standby = pool_for("standby", with_params(env_or_fail("POOLBENCH_PG_STANDBY_URL"), "connect_timeout=2"));
    const RouterConfig cfg = fast_checks();
    ReplicaRouter router(primary, {standby}, cfg);
    REQUIRE(router.wait_for_health_checks(10s));
    REQUIRE(router.stats().nodes[1].in_rotation);
    Table t(primary);
    REQUIRE(pgtest::eventually([&] { return standby_has(router, t.name, 0); }, 10s));
    const auto reads_before = router.stats().nodes[1].reads + router.stats().nodes[0].reads;

    Load load(router, t.name, 4, 2);
    REQUIRE(pgtest::eventually([&] { return load.standby_reads.load() > 200 && load.writes_ok.load() > 50; }, 20s));

    // The stated bounds (router.hpp): out within H + T of the server going away; back
    // within H + C + one check (T at most) of it accepting again, plus the standby's WAL
    // receiver starting to stream (wal_retrieve_retry_interval=200ms in the sandbox).
    const auto H = cfg.health_interval;
    const auto T = cfg.health_timeout;
    const auto C = standby->config().breaker_cooldown;
    const std::int64_t out_bound_ms = (H + T).count();
    const std::int64_t back_bound_ms = (H + C + T + 500ms).count();

    sandbox("halt", dir);  // pg_ctl stop -m fast: its backends are terminated, then it is gone
    const auto halted = Clock::now();
    REQUIRE(pgtest::eventually([&] { return !router.stats().nodes[1].in_rotation; }, 10s));
    const std::int64_t out_ms = ms_since(halted);
    const auto primary_at_out = load.primary_reads.load();
    // Reads go on, on the primary.
    REQUIRE(pgtest::eventually([&] { return load.primary_reads.load() > primary_at_out + 200; }, 20s));
    const auto standby_during = load.standby_reads.load();

    sandbox("resume", dir);  // returns once the standby accepts connections
    const auto resumed = Clock::now();
    REQUIRE(pgtest::eventually([&] { return router.stats().nodes[1].in_rotation; }, 20s));
    const std::int64_t back_ms = ms_since(resumed);
    REQUIRE(pgtest::eventually([&] { return load.standby_reads.load() > standby_during + 200; }, 20s));
    load.finish();

    const auto s = router.stats();
    INFO("out of rotation " << out_ms << " ms after the halt (bound " << out_bound_ms << " ms); back " << back_ms
                            << " ms after the resume (bound " << back_bound_ms << " ms); standby reads "
                            << load.standby_reads << ", primary reads " << load.primary_reads << ", retried "
                            << s.reads_retried << ", rerouted " << s.reads_rerouted << ", left rotation "
                            << s.nodes[1].left_rotation << "; errors:\n"
                            << load.error_text());
    CHECK(out_ms <= out_bound_ms);
    CHECK(back_ms <= back_bound_ms);
    // No read failed: those the halt broke ran again on the primary.
    CHECK(load.read_errors.load() == 0);
    CHECK(load.write_errors.load() == 0);
    CHECK(s.nodes[1].left_rotation >= 1);
    CHECK(s.primary_fallbacks > 0);
    CHECK(s.nodes[0].reads + s.nodes[1].reads - reads_before == load.standby_reads.load() + load.primary_reads.load());
    // Nothing acknowledged was lost: the primary has every row, and the standby catches up.
    const auto acknowledged = static_cast<std::int64_t>(load.writes_ok.load());
    CHECK(count_rows(router, t.name, true) == acknowledged);
    CHECK(pgtest::eventually([&] { return standby_has(router, t.name, acknowledged); }, 10s));
}

TEST_CASE("replica: with no reads the checks alone take a halted standby out and bring it back", "[pg][replica]") {
    const std::string dir = env_or_fail("POOLBENCH_PG_STANDBY_DIR");
    auto primary = pool_for("primary", pgtest::server_url());
    auto standby = pool_for("standby", with_params(env_or_fail("POOLBENCH_PG_STANDBY_URL"), "connect_timeout=2"));
    const RouterConfig cfg = fast_checks();
    ReplicaRouter router(primary, {standby}, cfg);
    REQUIRE(router.wait_for_health_checks(10s));
    REQUIRE(pgtest::eventually([&] { return router.stats().nodes[1].in_rotation; }, 10s));
    const std::int64_t out_bound_ms = (cfg.health_interval + cfg.health_timeout).count();
    const std::int64_t back_bound_ms =
        (cfg.health_interval + standby->config().breaker_cooldown + cfg.health_timeout + 500ms).count();

    sandbox("halt", dir);
    const auto halted = Clock::now();
    REQUIRE(pgtest::eventually([&] { return !router.stats().nodes[1].in_rotation; }, 10s));
    const std::int64_t out_ms = ms_since(halted);
    const auto down = router.stats().nodes[1];
    sandbox("resume", dir);
    const auto resumed = Clock::now();
    REQUIRE(pgtest::eventually([&] { return router.stats().nodes[1].in_rotation; }, 20s));
    const std::int64_t back_ms = ms_since(resumed);
    INFO("out " << out_ms << " ms after the halt (bound " << out_bound_ms << "), back " << back_ms
                << " ms after the resume (bound " << back_bound_ms << "); reason: " << down.reason);
    CHECK(out_ms <= out_bound_ms);
    CHECK(back_ms <= back_bound_ms);
    CHECK(down.state == NodeState::down);
    CHECK_THAT(down.reason, Catch::Contains("health check failed"));
    const auto s = router.stats();
    CHECK(s.nodes[1].reads == 0);
    CHECK(s.nodes[1].left_rotation == 1);
    CHECK(s.nodes[1].check_failures >= 1);
}

TEST_CASE("replica: a standby whose replay lags too far leaves the rotation until it catches up", "[pg][replica]") {
    const std::string dir = env_or_fail("POOLBENCH_PG_STANDBY_DIR");
    auto primary = pool_for("primary", pgtest::server_url());
    auto standby = pool_for("standby", env_or_fail("POOLBENCH_PG_STANDBY_URL"));
    RouterConfig cfg = fast_checks();
    cfg.max_lag_bytes = 64 * 1024;
    ReplicaRouter router(primary, {standby}, cfg);
    REQUIRE(router.wait_for_health_checks(10s));
    REQUIRE(pgtest::eventually([&] { return router.stats().nodes[1].in_rotation; }, 10s));
    Table t(primary);
    REQUIRE(pgtest::eventually([&] { return standby_has(router, t.name, 0); }, 10s));

    auto admin = superuser(dir);
    admin->execute("SELECT pg_wal_replay_pause()");
    struct Resume {
        Connection& c;
        ~Resume() {
            try {
                c.execute("SELECT pg_wal_replay_resume()");
            } catch (...) {
            }
        }
    } resume{*admin};
    // About 1 MB of WAL the standby receives but does not replay.
    router.write([&](Connection& c) {
        c.execute("INSERT INTO " + t.name + " (v) SELECT g FROM generate_series(1, 20000) g");
    });
    REQUIRE(pgtest::eventually([&] { return router.stats().nodes[1].state == NodeState::lagging; }, 10s));
    auto s = router.stats();
    INFO(s.nodes[1].reason);
    CHECK(s.nodes[1].lag_bytes.value_or(0) > cfg.max_lag_bytes);
    CHECK_THAT(s.nodes[1].reason, Catch::Contains("above max_lag_bytes 65536"));
    // Reads meanwhile come from the primary, which has the rows.
    CHECK(count_rows(router, t.name, false) == 20000);

    admin->execute("SELECT pg_wal_replay_resume()");
    REQUIRE(pgtest::eventually([&] { return router.stats().nodes[1].in_rotation; }, 10s));
    // Back in rotation once what it received is replayed; the rows follow (the byte lag
    // cannot see WAL the primary has not sent yet: see standby_has).
    CHECK(pgtest::eventually([&] { return standby_has(router, t.name, 20000); }, 10s));
    CHECK(router.stats().nodes[1].left_rotation == 1);
}

TEST_CASE("replica: a promoted standby leaves the rotation", "[pg][replica]") {
    // A second standby of its own, promoted here, so the shared one stays a standby.
    pbtest::OwnStandby own;
    const std::string& url = own.url;
    const std::string& dir = own.dir;

    auto primary = pool_for("primary", pgtest::server_url());
    auto shared = pool_for("standby", env_or_fail("POOLBENCH_PG_STANDBY_URL"));
    auto second = pool_for("second", url);
    ReplicaRouter router(primary, {shared, second}, fast_checks());
    REQUIRE(router.wait_for_health_checks(10s));
    REQUIRE(pgtest::eventually([&] { return router.stats().nodes[2].in_rotation; }, 10s));
    sandbox("promote", dir);
    REQUIRE(pgtest::eventually([&] { return router.stats().nodes[2].state == NodeState::not_standby; }, 10s));
    const auto s = router.stats();
    CHECK_THAT(s.nodes[2].reason, Catch::Contains("pg_is_in_recovery() is false"));
    CHECK(s.nodes[1].in_rotation);
    // Every read now goes to the remaining standby.
    const auto before = s.nodes[2].reads;
    for (int i = 0; i < 20; ++i) {
        CHECK(router.read([](Connection& c) { return c.query("SELECT pg_is_in_recovery()::int").int_at(0); }) == 1);
    }
    CHECK(router.stats().nodes[2].reads == before);
}

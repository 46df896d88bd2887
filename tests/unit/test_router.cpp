// ReplicaRouter's routing policy over pools of the test driver: strategies, leaving and
// returning to the rotation, fallback, the one re-run of a broken read, writes never
// re-run, read-your-writes, the checker threads (never blocking readers, bounded, stopped
// by the destructor) and the per-node counts. What each replica's health check reports is
// set by the test (Health below); the real check against a PostgreSQL standby is tested in
// tests/pg_replica.
#include <catch2/catch.hpp>

#include "support/test_driver.hpp"

#include <poolbench/router.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using poolbench::Connection;
using poolbench::NodeState;
using poolbench::Pool;
using poolbench::ReadStrategy;
using poolbench::ReplicaHealth;
using poolbench::ReplicaRouter;
using poolbench::RouterConfig;
using pbtest::eventually;

namespace {

/// What one replica's health check reports; the test flips it.
struct Health {
    std::atomic<bool> primary{false};        // report pg_is_in_recovery() false
    std::atomic<std::int64_t> lag{0};        // bytes; -1: unknown
    std::atomic<bool> fail{false};           // throw
    std::atomic<bool> hold{false};           // block (bounded) until cleared, released or interrupted
    std::atomic<int> releases{0};            // +1 lets the check holding now go on (hold stays)
    std::atomic<int> calls{0};
    std::atomic<int> holding{0};             // checks blocked now
};

/// A primary and `replicas` replicas, each a pool of its own test driver.
struct Cluster {
    std::vector<std::shared_ptr<pbtest::TestDriver>> drivers;  // [0] primary
    std::vector<std::shared_ptr<Pool>> pools;
    std::map<std::string, std::unique_ptr<Health>> health;

    explicit Cluster(int replicas, std::size_t max_size = 8) {
        for (int i = 0; i <= replicas; ++i) {
            const std::string name = i == 0 ? "primary" : "r" + std::to_string(i);
            drivers.push_back(std::make_shared<pbtest::TestDriver>());
            auto cfg = pbtest::config(name, max_size, 2000ms);
            cfg.breaker_cooldown = 20ms;
            pools.push_back(std::make_shared<Pool>(drivers.back(), cfg));
            health.emplace(name, std::make_unique<Health>());
        }
    }
    std::vector<std::shared_ptr<Pool>> replicas() const { return {pools.begin() + 1, pools.end()}; }
    Health& h(int replica) { return *health.at("r" + std::to_string(replica)); }

    /// A check that reports what Health says for the replica it is given.
    poolbench::HealthCheck check() {
        return [this](Connection& c, const Pool& replica) {
            Health& h = *health.at(replica.config().name);
            h.calls.fetch_add(1);
            if (h.hold.load()) {
                h.holding.fetch_add(1);
                auto& st = *drivers[static_cast<std::size_t>(std::stoi(replica.config().name.substr(1)))]->shared_state();
                const int interrupts = st.interrupts.load();
                const int releases = h.releases.load();
                const auto until = std::chrono::steady_clock::now() + 20s;
                while (h.hold.load() && h.releases.load() == releases && st.interrupts.load() == interrupts &&
                       std::chrono::steady_clock::now() < until)
                    std::this_thread::yield();
                h.holding.fetch_sub(1);
                if (st.interrupts.load() != interrupts) throw poolbench::QueryError("interrupted (test)", "57014", 0, false);
            }
            if (h.fail.load()) throw poolbench::QueryError("check failed (test)", "08006", 0, true);
            if (!c.ping()) throw poolbench::QueryError("ping failed (test)", "08006", 0, true);
            ReplicaHealth out;
            out.in_recovery = !h.primary.load();
            if (h.lag.load() >= 0) out.lag_bytes = h.lag.load();
            return out;
        };
    }

    RouterConfig config(ReadStrategy strategy = ReadStrategy::round_robin) {
        RouterConfig c;
        c.strategy = strategy;
        c.health_interval = 20ms;
        c.health_timeout = 500ms;
        c.max_lag_bytes = 1000;
        c.health_check = check();
        return c;
    }
};

/// Which node (0 primary, 1.. replicas) served a read: the one whose driver made the connection.
int node_of(ReplicaRouter& router) {
    auto lease = router.acquire_read();
    return static_cast<int>(lease.node());
}

NodeState state_of(ReplicaRouter& r, std::size_t replica) { return r.stats().nodes.at(replica).state; }

bool all_healthy(ReplicaRouter& r) {
    const auto s = r.stats();
    for (std::size_t i = 1; i < s.nodes.size(); ++i)
        if (!s.nodes[i].in_rotation) return false;
    return true;
}

}  // namespace

TEST_CASE("router: round robin spreads reads evenly over the replicas", "[router]") {
    Cluster cl(3);
    ReplicaRouter router(cl.pools[0], cl.replicas(), cl.config());
    REQUIRE(router.wait_for_health_checks(5s));
    REQUIRE(all_healthy(router));
    for (int i = 0; i < 300; ++i) router.read([](Connection& c) { (void)c.query("SELECT 1"); });
    const auto s = router.stats();
    REQUIRE(s.nodes.size() == 4);
    CHECK(s.nodes[0].name == "primary");
    CHECK(s.nodes[0].role == poolbench::NodeRole::primary);
    CHECK(s.nodes[0].reads == 0);
    for (int i = 1; i <= 3; ++i) {
        CHECK(s.nodes[static_cast<std::size_t>(i)].reads == 100);
        CHECK(s.nodes[static_cast<std::size_t>(i)].role == poolbench::NodeRole::replica);
        CHECK(s.nodes[static_cast<std::size_t>(i)].state == NodeState::healthy);
    }
    CHECK(s.primary_fallbacks == 0);
    // The body's result comes back.
    CHECK(router.read([](Connection&) { return 42; }) == 42);
}

TEST_CASE("router: random picks only replicas in rotation", "[router]") {
    Cluster cl(3);
    cl.h(2).primary = true;  // r2 is found to be a primary
    ReplicaRouter router(cl.pools[0], cl.replicas(), cl.config(ReadStrategy::random));
    REQUIRE(router.wait_for_health_checks(5s));
    CHECK(state_of(router, 2) == NodeState::not_standby);
    for (int i = 0; i < 400; ++i) router.read([](Connection&) {});
    const auto s = router.stats();
    CHECK(s.nodes[2].reads == 0);
    CHECK(s.nodes[1].reads > 100);  // about 200 each; far from either bound by chance
    CHECK(s.nodes[3].reads > 100);
    CHECK(s.nodes[1].reads + s.nodes[3].reads == 400);
    CHECK(s.nodes[2].in_rotation == false);
    CHECK_THAT(s.nodes[2].reason, Catch::Contains("pg_is_in_recovery() is false"));
}

TEST_CASE("router: least_active sends a read to the replica with fewest leases", "[router]") {
    Cluster cl(3);
    ReplicaRouter router(cl.pools[0], cl.replicas(), cl.config(ReadStrategy::least_active));
    REQUIRE(router.wait_for_health_checks(5s));
    auto a = router.acquire_read();
    auto b = router.acquire_read();
    auto c = router.acquire_read();
    CHECK(a.node() != b.node());
    CHECK(c.node() != a.node());
    CHECK(c.node() != b.node());
    const std::size_t freed = b.node();
    b.release();
    CHECK(router.stats().nodes[freed].active == 0);
    auto d = router.acquire_read();
    CHECK(d.node() == freed);  // the only replica with no lease out
    CHECK(router.stats().nodes[a.node()].active == 1);
    poolbench::RoutedLease moved = std::move(d);
    CHECK_FALSE(d);
    CHECK(moved);
    CHECK(moved->query("SELECT id").size() == 1);
    moved.release();
    moved.release();  // idempotent
    CHECK(router.stats().nodes[freed].active == 0);
}

TEST_CASE("router: a replica that is a primary or lags leaves the rotation and returns when healthy", "[router]") {
    Cluster cl(2);
    ReplicaRouter router(cl.pools[0], cl.replicas(), cl.config());
    REQUIRE(router.wait_for_health_checks(5s));

    cl.h(1).lag = 5000;  // max_lag_bytes is 1000
    REQUIRE(eventually([&] { return state_of(router, 1) == NodeState::lagging; }));
    auto s = router.stats();
    CHECK_THAT(s.nodes[1].reason, Catch::Contains("replay lag 5000 bytes is above max_lag_bytes 1000"));
    CHECK(s.nodes[1].lag_bytes == std::optional<std::int64_t>{5000});
    CHECK(s.nodes[1].left_rotation == 1);
    for (int i = 0; i < 10; ++i) CHECK(node_of(router) == 2);

    cl.h(1).lag = -1;  // unknown: not streaming
    REQUIRE(eventually([&] { return router.stats().nodes[1].reason.find("unknown") != std::string::npos; }));
    CHECK(state_of(router, 1) == NodeState::lagging);

    cl.h(1).lag = 10;
    REQUIRE(eventually([&] { return state_of(router, 1) == NodeState::healthy; }));
    CHECK(router.stats().nodes[1].reason.empty());

    cl.h(2).primary = true;
    REQUIRE(eventually([&] { return state_of(router, 2) == NodeState::not_standby; }));
    for (int i = 0; i < 10; ++i) CHECK(node_of(router) == 1);
    cl.h(2).primary = false;
    REQUIRE(eventually([&] { return state_of(router, 2) == NodeState::healthy; }));

    cl.h(2).fail = true;
    REQUIRE(eventually([&] { return state_of(router, 2) == NodeState::down; }));
    CHECK_THAT(router.stats().nodes[2].reason, Catch::Contains("health check failed: check failed (test)"));
    cl.h(2).fail = false;
    REQUIRE(eventually([&] { return state_of(router, 2) == NodeState::healthy; }));
    s = router.stats();
    CHECK(s.nodes[2].left_rotation == 2);
    CHECK(s.nodes[2].check_failures >= 2);
    CHECK(s.nodes[2].checks > s.nodes[2].check_failures);

    // Every change is in the node's history, in order, with its reason and both clocks.
    using Step = std::pair<NodeState, NodeState>;
    auto steps = [](const poolbench::NodeStats& n) {
        std::vector<Step> out;
        for (const auto& e : n.history) out.emplace_back(e.from, e.to);
        return out;
    };
    CHECK(steps(s.nodes[1]) == std::vector<Step>{{NodeState::unchecked, NodeState::healthy},
                                                 {NodeState::healthy, NodeState::lagging},
                                                 {NodeState::lagging, NodeState::healthy}});
    CHECK(steps(s.nodes[2]) == std::vector<Step>{{NodeState::unchecked, NodeState::healthy},
                                                 {NodeState::healthy, NodeState::not_standby},
                                                 {NodeState::not_standby, NodeState::healthy},
                                                 {NodeState::healthy, NodeState::down},
                                                 {NodeState::down, NodeState::healthy}});
    CHECK_THAT(s.nodes[2].history[3].reason, Catch::Contains("check failed (test)"));
    CHECK(s.nodes[2].history[4].reason.empty());
    for (std::size_t i = 1; i < s.nodes[2].history.size(); ++i) {
        CHECK(s.nodes[2].history[i].at_steady >= s.nodes[2].history[i - 1].at_steady);
        CHECK(s.nodes[2].history[i].at >= s.nodes[2].history[i - 1].at);
    }
    CHECK(s.nodes[2].history.back().at == s.nodes[2].since);
    CHECK(s.nodes[0].history.empty());  // the primary is not checked
}

TEST_CASE("router: a node keeps only its most recent state changes", "[router]") {
    Cluster cl(1);
    ReplicaRouter router(cl.pools[0], cl.replicas(), cl.config());
    REQUIRE(router.wait_for_health_checks(5s));
    const std::size_t flips = poolbench::rotation_history_size;  // down and back: 2 changes each
    for (std::size_t i = 0; i < flips; ++i) {
        cl.h(1).fail = true;
        REQUIRE(eventually([&] { return state_of(router, 1) == NodeState::down; }));
        cl.h(1).fail = false;
        REQUIRE(eventually([&] { return state_of(router, 1) == NodeState::healthy; }));
    }
    const auto n = router.stats().nodes[1];
    CHECK(n.left_rotation == flips);
    REQUIRE(n.history.size() == poolbench::rotation_history_size);
    // The oldest kept is a leave: 1 + 2*flips changes, the first 1 + flips dropped.
    CHECK(n.history.front().from == NodeState::healthy);
    CHECK(n.history.front().to == NodeState::down);
    CHECK(n.history.back().to == NodeState::healthy);
}

TEST_CASE("router: a negative max_lag_bytes ignores lag", "[router]") {
    Cluster cl(1);
    cl.h(1).lag = -1;
    auto cfg = cl.config();
    cfg.max_lag_bytes = -1;
    ReplicaRouter router(cl.pools[0], cl.replicas(), cfg);
    REQUIRE(router.wait_for_health_checks(5s));
    CHECK(state_of(router, 1) == NodeState::healthy);
}

TEST_CASE("router: with no replica in rotation reads use the primary, or throw when told to", "[router]") {
    Cluster cl(2);
    cl.h(1).primary = true;
    cl.h(2).fail = true;
    {
        ReplicaRouter router(cl.pools[0], cl.replicas(), cl.config());
        REQUIRE(router.wait_for_health_checks(5s));
        for (int i = 0; i < 5; ++i) CHECK(node_of(router) == 0);
        router.read([](Connection&) {});
        const auto s = router.stats();
        CHECK(s.nodes[0].reads == 1);
        CHECK(s.primary_fallbacks == 6);
    }
    {
        auto cfg = cl.config();
        cfg.no_replica = poolbench::NoReplicaPolicy::fail;
        ReplicaRouter router(cl.pools[0], cl.replicas(), cfg);
        REQUIRE(router.wait_for_health_checks(5s));
        try {
            router.read([](Connection&) {});
            FAIL("expected NoHealthyReplica");
        } catch (const poolbench::NoHealthyReplica& e) {
            CHECK(poolbench::error_kind(e) == poolbench::ErrorKind::connection_refused);
            CHECK_THAT(e.what(), Catch::Contains("r1: not_standby") && Catch::Contains("r2: down"));
        }
        CHECK_THROWS_AS(router.acquire_read(), poolbench::NoHealthyReplica);
        CHECK(router.stats().no_replica_errors == 2);
        // Writes are not affected.
        router.write([](Connection&) {});
        CHECK(router.stats().nodes[0].writes == 1);
    }
    {
        ReplicaRouter router(cl.pools[0], {}, cl.config());  // a primary only
        CHECK(router.wait_for_health_checks(1s));
        CHECK(router.replica_count() == 0);
        CHECK(node_of(router) == 0);
    }
}

TEST_CASE("router: before its first check a replica gets no reads", "[router]") {
    Cluster cl(1);
    cl.h(1).hold = true;
    ReplicaRouter router(cl.pools[0], cl.replicas(), cl.config());
    REQUIRE(eventually([&] { return cl.h(1).holding.load() == 1; }));
    CHECK_FALSE(router.wait_for_health_checks(10ms));
    CHECK(state_of(router, 1) == NodeState::unchecked);
    CHECK(node_of(router) == 0);
    cl.h(1).hold = false;
    CHECK(router.wait_for_health_checks(5s));
    CHECK(node_of(router) == 1);
}

TEST_CASE("router: a read whose connection broke runs once more on another node", "[router]") {
    Cluster cl(2);
    ReplicaRouter router(cl.pools[0], cl.replicas(), cl.config());
    REQUIRE(router.wait_for_health_checks(5s));

    std::vector<std::size_t> ran_on;
    auto breaks_first = [&](Connection& c) {
        const int run = static_cast<int>(ran_on.size());
        ran_on.push_back(0);
        if (run == 0) c.execute("BREAK");  // QueryError 08006, broken: connection_lost
        return run;
    };
    CHECK(router.read(breaks_first) == 1);
    REQUIRE(ran_on.size() == 2);
    auto s = router.stats();
    CHECK(s.reads_retried == 1);
    CHECK(s.nodes[1].read_failures + s.nodes[2].read_failures == 1);
    CHECK(s.nodes[1].reads + s.nodes[2].reads == 1);
    // The broken one was taken out (suspect) and, its check passing, comes back.
    CHECK(s.nodes[1].left_rotation + s.nodes[2].left_rotation == 1);
    REQUIRE(eventually([&] { return all_healthy(router); }));

    // Breaking twice: the second error is thrown, after exactly two runs.
    int runs = 0;
    CHECK_THROWS_AS(router.read([&](Connection& c) {
        ++runs;
        c.execute("BREAK");
    }),
                    poolbench::QueryError);
    CHECK(runs == 2);

    // Other errors are not re-run: a constraint error, a read that wrote on a standby.
    for (const char* code : {"23505", "25006", "57014"}) {
        runs = 0;
        CHECK_THROWS_AS(router.read([&](Connection&) {
            ++runs;
            throw poolbench::QueryError("not a broken connection (test)", code, 0, std::string(code) == "25006");
        }),
                        poolbench::QueryError);
        CHECK(runs == 1);
    }
    runs = 0;
    CHECK_THROWS_AS(router.read([&](Connection&) {
        ++runs;
        throw std::runtime_error("the caller's own error");
    }),
                    std::runtime_error);
    CHECK(runs == 1);

    // retry_broken_reads = false: never re-run.
    auto cfg = cl.config();
    cfg.retry_broken_reads = false;
    ReplicaRouter strict(cl.pools[0], cl.replicas(), cfg);
    REQUIRE(strict.wait_for_health_checks(5s));
    runs = 0;
    CHECK_THROWS_AS(strict.read([&](Connection& c) {
        ++runs;
        c.execute("BREAK");
    }),
                    poolbench::QueryError);
    CHECK(runs == 1);
}

TEST_CASE("router: a broken read with one replica re-runs on the primary, or fails under no_replica = fail",
          "[router]") {
    Cluster cl(1);
    {
        ReplicaRouter router(cl.pools[0], cl.replicas(), cl.config());
        REQUIRE(router.wait_for_health_checks(5s));
        std::vector<std::size_t> nodes;
        router.read([&](Connection& c) {
            nodes.push_back(nodes.size());
            if (nodes.size() == 1) c.execute("BREAK");
        });
        const auto s = router.stats();
        CHECK(nodes.size() == 2);
        CHECK(s.nodes[0].reads == 1);  // the re-run went to the primary
        CHECK(s.nodes[1].read_failures == 1);
        CHECK(s.primary_fallbacks == 1);
    }
    {
        auto cfg = cl.config();
        cfg.no_replica = poolbench::NoReplicaPolicy::fail;
        ReplicaRouter router(cl.pools[0], cl.replicas(), cfg);
        REQUIRE(router.wait_for_health_checks(5s));
        REQUIRE(eventually([&] { return all_healthy(router); }));
        int runs = 0;
        try {
            router.read([&](Connection& c) {
                ++runs;
                c.execute("BREAK");
            });
            FAIL("expected the broken read's error");
        } catch (const poolbench::QueryError& e) {
            CHECK(e.kind() == poolbench::ErrorKind::connection_lost);  // the original error, not NoHealthyReplica
        }
        CHECK(runs == 1);
        CHECK(router.stats().nodes[0].reads == 0);
    }
}

TEST_CASE("router: writes and transactions go to the primary and are never re-run", "[router]") {
    Cluster cl(2);
    ReplicaRouter router(cl.pools[0], cl.replicas(), cl.config());
    REQUIRE(router.wait_for_health_checks(5s));
    int runs = 0;
    CHECK_THROWS_AS(router.write([&](Connection& c) {
        ++runs;
        c.execute("BREAK");
    }),
                    poolbench::QueryError);
    CHECK(runs == 1);
    CHECK(router.write([](Connection& c) { return c.query("SELECT id").int_at(0); }) >= 0);
    const int v = router.transaction({}, [](poolbench::Transaction& tx) {
        tx.execute("UPDATE t SET x = 1");
        return 7;
    });
    CHECK(v == 7);
    router.transaction({}, [](poolbench::Transaction&) {});
    {
        auto w = router.acquire_write();
        CHECK(w.node() == 0);
        CHECK(router.stats().nodes[0].active == 1);
    }
    const auto s = router.stats();
    CHECK(s.nodes[0].writes == 5);
    CHECK(s.nodes[0].active == 0);
    CHECK(s.nodes[1].writes == 0);
    CHECK(s.nodes[2].writes == 0);
}

TEST_CASE("router: a replica that refuses connections leaves the rotation without failing the read", "[router]") {
    Cluster cl(2);
    auto cfg = cl.config();
    cfg.health_interval = 600s;  // checks only when woken: the readers find the failures
    ReplicaRouter router(cl.pools[0], cl.replicas(), cfg);
    REQUIRE(router.wait_for_health_checks(5s));
    // Replica 1 goes away: its idle connection fails validation, new ones are refused.
    cl.pools[1]->evict_all();
    cl.drivers[1]->state().fail_connect = true;
    cl.drivers[1]->state().fail_ping = true;
    for (int i = 0; i < 20; ++i) router.read([](Connection&) {});
    auto s = router.stats();
    CHECK(s.nodes[0].reads + s.nodes[1].reads + s.nodes[2].reads == 20);
    CHECK(s.nodes[1].reads == 0);
    CHECK(s.nodes[2].reads == 20);
    CHECK(s.reads_rerouted == 1);  // the first read met r1, and went to r2 before running
    CHECK(s.nodes[1].state == NodeState::down);
    CHECK_THAT(s.nodes[1].reason, Catch::Contains("connection refused (test)") || Catch::Contains("circuit breaker"));
    // It comes back once it accepts connections again (within interval + breaker cooldown + a check).
    cl.drivers[1]->state().fail_connect = false;
    cl.drivers[1]->state().fail_ping = false;
    REQUIRE(eventually([&] {
        router.check_now();
        return state_of(router, 1) == NodeState::healthy;
    }));
    s = router.stats();
    CHECK(s.nodes[1].left_rotation == 1);

    // A replica pool shut down under the router counts as down too. Who finds it first is
    // a race: a reader (rerouted to r1) or r2's checker, still woken by the check_now()
    // calls above (then no read meets r2). Either way every read runs, on r1.
    const std::uint64_t r1_reads = s.nodes[1].reads;
    cl.pools[2]->shutdown();
    for (int i = 0; i < 5; ++i) router.read([](Connection&) {});
    s = router.stats();
    CHECK(s.nodes[2].state == NodeState::down);
    CHECK_THAT(s.nodes[2].reason, Catch::Contains("shut down") || Catch::Contains("closed"));
    CHECK(s.nodes[1].reads == r1_reads + 5);
    CHECK(s.reads_rerouted >= 1);
    CHECK(s.reads_rerouted <= 2);
}

TEST_CASE("router: a hung check takes its replica out after health_timeout, readers never wait", "[router]") {
    Cluster cl(2);
    auto cfg = cl.config();
    cfg.health_timeout = 100ms;
    ReplicaRouter router(cl.pools[0], cl.replicas(), cfg);
    REQUIRE(router.wait_for_health_checks(5s));
    cl.h(1).hold = true;
    router.check_now();
    REQUIRE(eventually([&] { return cl.h(1).holding.load() == 1; }));
    // While r1's check hangs, reads go on (this would hang otherwise)...
    for (int i = 0; i < 50; ++i) router.read([](Connection&) {});
    // ...and once it has run past health_timeout, r1 is out though its state is still healthy.
    REQUIRE(eventually([&] { return router.stats().nodes[1].check_overdue; }));
    const auto s = router.stats();
    CHECK(s.nodes[1].state == NodeState::healthy);
    CHECK_FALSE(s.nodes[1].in_rotation);
    CHECK_THAT(s.nodes[1].reason, Catch::Contains("longer than health_timeout"));
    for (int i = 0; i < 10; ++i) CHECK(node_of(router) == 2);
    cl.h(1).hold = false;
    REQUIRE(eventually([&] { return all_healthy(router); }));
}

TEST_CASE("router: a check finding the pool busy is inconclusive and keeps the replica's state", "[router]") {
    Cluster cl(1, /*max_size=*/1);
    auto cfg = cl.config();
    cfg.health_timeout = 30ms;
    ReplicaRouter router(cl.pools[0], cl.replicas(), cfg);
    REQUIRE(router.wait_for_health_checks(5s));
    {
        auto held = cl.pools[1]->acquire();  // the replica's only connection, busy
        const auto before = router.stats().nodes[1].checks_inconclusive;
        router.check_now();
        REQUIRE(eventually([&] { return router.stats().nodes[1].checks_inconclusive > before; }));
        CHECK(router.stats().nodes[1].in_rotation);
    }
}

TEST_CASE("router: a failure reported during a check is not undone by that check's pass", "[router]") {
    Cluster cl(1);
    ReplicaRouter router(cl.pools[0], cl.replicas(), cl.config());
    REQUIRE(router.wait_for_health_checks(5s));
    Health& h = cl.h(1);
    h.hold = true;
    router.check_now();
    REQUIRE(eventually([&] { return h.holding.load() == 1; }));
    const int calls = h.calls.load();
    // While that check hangs, a read's connection on r1 breaks (re-run on the primary).
    int runs = 0;
    router.read([&](Connection& c) {
        if (++runs == 1) c.execute("BREAK");
    });
    CHECK(state_of(router, 1) == NodeState::suspect);
    // Let the hung check pass; the next one (woken by the failure report) holds in turn,
    // so the state between the two can be looked at.
    h.releases.fetch_add(1);
    REQUIRE(eventually([&] { return h.calls.load() == calls + 1 && h.holding.load() == 1; }));
    CHECK(state_of(router, 1) == NodeState::suspect);  // the first check's pass was not applied
    h.hold = false;
    REQUIRE(eventually([&] { return state_of(router, 1) == NodeState::healthy; }));
}

TEST_CASE("router: the destructor interrupts a running check and joins the checkers", "[router]") {
    Cluster cl(1);
    cl.h(1).hold = true;
    {
        ReplicaRouter router(cl.pools[0], cl.replicas(), cl.config());
        REQUIRE(eventually([&] { return cl.h(1).holding.load() == 1; }));
    }  // hangs here if the check were not interrupted
    CHECK(cl.drivers[1]->state().interrupts.load() == 1);
    CHECK(cl.h(1).holding.load() == 0);
    // The pools outlive the router and still work.
    CHECK_NOTHROW(cl.pools[1]->acquire());
}

TEST_CASE("router: a session reads its own writes from the primary for read_your_writes", "[router]") {
    Cluster cl(2);
    auto cfg = cl.config();
    cfg.read_your_writes = 60s;
    ReplicaRouter router(cl.pools[0], cl.replicas(), cfg);
    REQUIRE(router.wait_for_health_checks(5s));
    poolbench::RouterSession me = router.session();
    poolbench::RouterSession other = router.session();
    CHECK_FALSE(me.pinned());
    CHECK(me.acquire_read().node() != 0);

    me.write([](Connection& c) { c.execute("INSERT"); });
    CHECK(me.pinned());
    for (int i = 0; i < 5; ++i) {
        CHECK(me.acquire_read().node() == 0);
        me.read([](Connection&) {});
    }
    CHECK_FALSE(other.pinned());
    CHECK(other.acquire_read().node() != 0);
    CHECK(router.acquire_read().node() != 0);
    auto s = router.stats();
    CHECK(s.pinned_reads == 10);
    CHECK(s.nodes[0].reads == 5);

    // A failed write pins too (its COMMIT may have happened); so do transactions and
    // acquire_write; a moved session keeps its pin.
    CHECK_THROWS(other.write([](Connection& c) { c.execute("BREAK"); }));
    CHECK(other.pinned());
    poolbench::RouterSession third = router.session();
    third.transaction({}, [](poolbench::Transaction&) {});
    CHECK(third.pinned());
    poolbench::RouterSession fourth = router.session();
    { auto w = fourth.acquire_write(); }
    CHECK(fourth.pinned());
    poolbench::RouterSession moved(std::move(fourth));
    CHECK(moved.pinned());

    // A pinned read whose connection breaks is re-run on the primary.
    int runs = 0;
    me.read([&](Connection& c) {
        if (++runs == 1) c.execute("BREAK");
    });
    CHECK(runs == 2);
    CHECK(router.stats().nodes[0].reads == 6);
}

TEST_CASE("router: the read-your-writes pin ends after its time, and 0 turns it off", "[router]") {
    Cluster cl(1);
    auto cfg = cl.config();
    cfg.read_your_writes = 30ms;
    ReplicaRouter router(cl.pools[0], cl.replicas(), cfg);
    REQUIRE(router.wait_for_health_checks(5s));
    poolbench::RouterSession me = router.session();
    me.note_write();
    CHECK(me.pinned());
    REQUIRE(eventually([&] { return !me.pinned(); }));
    CHECK(me.acquire_read().node() == 1);

    cfg.read_your_writes = 0ms;
    ReplicaRouter off(cl.pools[0], cl.replicas(), cfg);
    REQUIRE(off.wait_for_health_checks(5s));
    poolbench::RouterSession s = off.session();
    s.write([](Connection&) {});
    CHECK_FALSE(s.pinned());
}

TEST_CASE("router: bad settings and pools are refused", "[router]") {
    Cluster cl(2);
    auto cfg = cl.config();
    CHECK_THROWS_WITH(ReplicaRouter(nullptr, cl.replicas(), cfg), Catch::Contains("no primary pool"));
    CHECK_THROWS_WITH(ReplicaRouter(cl.pools[0], {cl.pools[1], nullptr}, cfg), Catch::Contains("replica 1 has no pool"));
    CHECK_THROWS_WITH(ReplicaRouter(cl.pools[0], {cl.pools[1], cl.pools[1]}, cfg), Catch::Contains("'r1' is given twice"));
    CHECK_THROWS_WITH(ReplicaRouter(cl.pools[0], {cl.pools[0]}, cfg), Catch::Contains("'primary' is given twice"));
    cfg.health_interval = 0ms;
    CHECK_THROWS_WITH(ReplicaRouter(cl.pools[0], cl.replicas(), cfg), Catch::Contains("health_interval = 0 ms"));
    cfg = cl.config();
    cfg.health_timeout = -1ms;
    CHECK_THROWS_WITH(ReplicaRouter(cl.pools[0], cl.replicas(), cfg), Catch::Contains("health_timeout"));
    cfg = cl.config();
    cfg.read_your_writes = -1ms;
    CHECK_THROWS_WITH(ReplicaRouter(cl.pools[0], cl.replicas(), cfg), Catch::Contains("read_your_writes"));

    ReplicaRouter ok(cl.pools[0], cl.replicas(), cl.config());
    CHECK(&ok.primary() == cl.pools[0].get());
    CHECK(&ok.replica(1) == cl.pools[2].get());
    CHECK_THROWS_AS(ok.replica(2), poolbench::UsageError);
    CHECK(ok.config().health_interval == 20ms);
    CHECK(poolbench::to_string(ReadStrategy::round_robin) == "round_robin");
    CHECK(poolbench::to_string(ReadStrategy::random) == "random");
    CHECK(poolbench::to_string(ReadStrategy::least_active) == "least_active");
    CHECK(poolbench::to_string(poolbench::NoReplicaPolicy::use_primary) == "use_primary");
    CHECK(poolbench::to_string(poolbench::NoReplicaPolicy::fail) == "fail");
    CHECK(poolbench::to_string(NodeState::unchecked) == "unchecked");
    CHECK(poolbench::to_string(NodeState::healthy) == "healthy");
    CHECK(poolbench::to_string(NodeState::down) == "down");
    CHECK(poolbench::to_string(NodeState::suspect) == "suspect");
    CHECK(poolbench::to_string(NodeState::not_standby) == "not_standby");
    CHECK(poolbench::to_string(NodeState::lagging) == "lagging");
    CHECK(poolbench::to_string(poolbench::NodeRole::primary) == "primary");
    CHECK(poolbench::to_string(poolbench::NodeRole::replica) == "replica");
}

TEST_CASE("router: a check that throws something other than a std::exception fails", "[router]") {
    Cluster cl(1);
    auto cfg = cl.config();
    cfg.health_check = [](Connection&, const Pool&) -> ReplicaHealth { throw 42; };
    ReplicaRouter router(cl.pools[0], cl.replicas(), cfg);
    REQUIRE(router.wait_for_health_checks(5s));
    CHECK(state_of(router, 1) == NodeState::down);
    CHECK_THAT(router.stats().nodes[1].reason, Catch::Contains("not a std::exception"));
}

TEST_CASE("router: the default check pings backends without replicas", "[router]") {
    Cluster cl(1);
    auto cfg = cl.config();
    cfg.health_check = nullptr;  // default_health_check(null backend): ping
    ReplicaRouter router(cl.pools[0], cl.replicas(), cfg);
    REQUIRE(router.wait_for_health_checks(5s));
    CHECK(state_of(router, 1) == NodeState::healthy);
    CHECK(router.stats().nodes[1].lag_bytes == std::optional<std::int64_t>{0});
    cl.pools[1]->evict_all();
    cl.drivers[1]->state().fail_ping = true;
    {
        auto l = cl.pools[1]->acquire();  // a fresh connection, then idle: the check pings it
    }
    router.check_now();
    REQUIRE(eventually([&] { return state_of(router, 1) == NodeState::down; }));
    CHECK_THAT(router.stats().nodes[1].reason, Catch::Contains("ping failed"));
}

TEST_CASE("router: many threads read, write and flip replicas, and the counts add up", "[router]") {
    Cluster cl(3);
    auto cfg = cl.config(ReadStrategy::least_active);
    cfg.health_interval = 5ms;
    cfg.read_your_writes = 1ms;
    ReplicaRouter router(cl.pools[0], cl.replicas(), cfg);
    REQUIRE(router.wait_for_health_checks(5s));
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> reads{0};
    std::atomic<std::uint64_t> writes{0};
    std::thread flipper([&] {
        for (int i = 0; i < 200 && !stop.load(); ++i) {
            Health& h = cl.h(1 + i % 3);
            h.primary = !h.primary.load();
            router.check_now();
            std::this_thread::yield();
        }
    });
    std::vector<std::thread> ts;
    for (int t = 0; t < 8; ++t) {
        ts.emplace_back([&, t] {
            poolbench::RouterSession session = router.session();
            for (int i = 0; i < 300; ++i) {
                if (i % 10 == 0) {
                    session.write([](Connection&) {});
                    writes.fetch_add(1);
                } else if (t % 2 == 0) {
                    session.read([](Connection& c) { (void)c.query("SELECT 1"); });
                    reads.fetch_add(1);
                } else {
                    router.read([](Connection&) {});
                    reads.fetch_add(1);
                }
                if (i % 50 == 0) (void)router.stats();
            }
        });
    }
    for (auto& th : ts) th.join();
    stop = true;
    flipper.join();
    const auto s = router.stats();
    std::uint64_t served = 0;
    for (const auto& n : s.nodes) {
        served += n.reads;
        CHECK(n.active == 0);
        CHECK(n.read_failures == 0);
    }
    CHECK(served == reads.load());
    CHECK(s.nodes[0].writes == writes.load());
}

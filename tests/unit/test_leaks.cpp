// Leak tracking: detection with the acquiring stack, no false positives, late returns,
// reclaim with LeaseRevoked (also while the connection is being reset), sampling, thread
// names, and an on_leak callback that throws.
#include "support/test_driver.hpp"

#include <catch2/catch.hpp>

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>

using namespace std::chrono_literals;
using poolbench::LeakReport;
using poolbench::Lease;
using poolbench::Pool;
using poolbench::PoolConfig;
using pbtest::eventually;
using pbtest::hold_for;
using pbtest::TestDriver;

namespace {

PoolConfig leak_cfg(std::chrono::milliseconds threshold, std::size_t max_size = 2) {
    PoolConfig c;
    c.name = "leaky";
    c.max_size = max_size;
    c.acquire_timeout = 5000ms;
    c.leak_threshold = threshold;
    return c;
}

std::size_t count(const std::vector<LeakReport>& v, LeakReport::Kind k) {
    std::size_t n = 0;
    for (const auto& r : v) n += r.kind == k ? 1 : 0;
    return n;
}

/// The pool configuration of the tests that need no leak_cfg: leak settings set per test.
PoolConfig cfg(std::size_t max_size, std::chrono::milliseconds timeout = 5000ms) {
    return pbtest::config("leaky", max_size, timeout);
}

/// A connection whose reset() runs a hook first (to let a test act while a release is
/// inside reset), then fails if the hook says so.
struct HookState {
    std::atomic<int> live{0};
    std::function<bool()> on_reset;  // returns false to make reset() throw
};

class HookConnection final : public poolbench::Connection {
public:
    explicit HookConnection(std::shared_ptr<HookState> st) : st_(std::move(st)) { st_->live.fetch_add(1); }
    ~HookConnection() override { st_->live.fetch_sub(1); }
    void execute(std::string_view sql) override {
        if (sql == "BEGIN") in_tx_ = true;
        if (sql == "ROLLBACK" || sql == "COMMIT") in_tx_ = false;
    }
    poolbench::Rows query(std::string_view, std::span<const poolbench::Value>) override { return {}; }
    bool ping() noexcept override { return true; }
    void reset() override {
        const bool ok = !st_->on_reset || st_->on_reset();
        if (!ok) throw poolbench::QueryError("reset failed (hook)", "XX000", 0, false);
        in_tx_ = false;
    }
    void interrupt() noexcept override {}
    [[nodiscard]] bool is_broken() const noexcept override { return false; }
    [[nodiscard]] bool in_transaction() const noexcept override { return in_tx_; }

private:
    std::shared_ptr<HookState> st_;
    bool in_tx_ = false;
};

class HookDriver final : public poolbench::Driver {
public:
    std::unique_ptr<poolbench::Connection> connect(std::chrono::steady_clock::time_point) override {
        return std::make_unique<HookConnection>(st);
    }
    [[nodiscard]] poolbench::Backend backend() const noexcept override { return poolbench::Backend::null; }
    [[nodiscard]] std::string describe() const override { return "hook://"; }
    std::shared_ptr<HookState> st = std::make_shared<HookState>();
};

}  // namespace

// A distinct, non-inlined function so the trace can be checked for it.
__attribute__((noinline)) Lease distinctive_leaking_function(Pool& pool) {
    Lease l = pool.acquire();
    asm volatile("" ::: "memory");  // keep the frame
    return l;
}

TEST_CASE("a lease held past the threshold is reported once, with its stack and thread", "[unit][leak]") {
    auto driver = std::make_shared<TestDriver>();
    std::atomic<int> callbacks{0};
    PoolConfig c = leak_cfg(50ms);
    c.on_leak = [&](const LeakReport&) { callbacks.fetch_add(1); };
    Pool pool(driver, c);
    Lease leaked = distinctive_leaking_function(pool);
    REQUIRE(eventually([&] { return pool.stats().leaks_detected == 1; }));
    auto reports = pool.leaks();
    REQUIRE(reports.size() == 1);
    const auto& r = reports[0];
    CHECK(r.kind == LeakReport::Kind::suspected);
    CHECK(r.pool == "leaky");
    CHECK(r.held >= 50ms);
    CHECK(r.thread_id == static_cast<long>(::syscall(SYS_gettid)));
    REQUIRE_FALSE(r.stack.empty());
    INFO("top frame: " << r.stack[0]);
    bool found = false;
    for (std::size_t i = 0; i < std::min<std::size_t>(3, r.stack.size()); ++i)
        found = found || r.stack[i].find("distinctive_leaking_function") != std::string::npos;
    CHECK(found);
    CHECK(r.stack[0].find("poolbench::internal") == std::string::npos);
    CHECK(r.stack[0].find("test_leaks.cpp:") != std::string::npos);
    // Reported once, however long it stays out.
    hold_for(150ms);
    CHECK(pool.stats().leaks_detected == 1);
    leaked.release();
    reports = pool.leaks();
    CHECK(count(reports, LeakReport::Kind::returned) == 1);
    CHECK(reports.back().held >= 50ms);
    CHECK(pool.stats().leaks_returned_late == 1);
    CHECK(callbacks == 2);
}

TEST_CASE("leases held just under the threshold are never reported", "[unit][leak]") {
    auto driver = std::make_shared<TestDriver>();
    Pool pool(driver, leak_cfg(300ms, 4));
    std::vector<std::thread> holders;
    for (int i = 0; i < 3; ++i) {
        holders.emplace_back([&] {
            Lease l = pool.acquire();
            hold_for(150ms);
        });
    }
    for (auto& h : holders) h.join();
    // A real leak afterwards proves the checker was running all along.
    Lease leaked = distinctive_leaking_function(pool);
    REQUIRE(eventually([&] { return pool.stats().leaks_detected == 1; }));
    CHECK(pool.leaks().size() == 1);
}

TEST_CASE("reclaim revokes a leaked lease and restores capacity", "[unit][leak]") {
    auto driver = std::make_shared<TestDriver>();
    PoolConfig c = leak_cfg(60ms, 1);
    c.leak_reclaim_after = 150ms;
    Pool pool(driver, c);
    Lease leaked = distinctive_leaking_function(pool);
    CHECK(leaked->ping());
    // The pool has one connection and it is leaked: this acquire waits for the reclaim.
    Lease fresh = pool.acquire(5000ms);
    CHECK(fresh);
    const auto s = pool.stats();
    CHECK(s.leaks_reclaimed == 1);
    CHECK(s.revoked_outstanding == 1);
    CHECK(s.total == 1);
    CHECK(driver->state().live == 2);  // the revoked one stays open until its lease returns
    // The housekeeper interrupts the revoked statement after giving the capacity back
    // (outside the pool's lock), so it may come a moment after `fresh` was served.
    CHECK(eventually([&] { return driver->state().interrupts.load() >= 1; }));
    CHECK_THROWS_AS(leaked->ping(), poolbench::LeaseRevoked);
    CHECK_THROWS_WITH(leaked.connection(), Catch::Contains("revoked"));
    leaked.release();  // closes the old connection; never touches the slot it came from
    // Closed by whoever drops it last: this thread, or the housekeeper if it is still
    // inside interrupt() on it.
    CHECK(eventually([&] { return driver->state().live.load() == 1; }));
    CHECK(pool.stats().revoked_outstanding == 0);
    CHECK(fresh->ping());
    fresh.release();
    const auto after = pool.stats();
    CHECK(after.idle == 1);
    CHECK(after.active == 0);
    CHECK(eventually([&] { return count(pool.leaks(), LeakReport::Kind::reclaimed) == 1; }));
    // Reported as suspected before it was reclaimed, and its close is counted. (`fresh`
    // may itself be reported if a loaded machine stalls this thread past the threshold.)
    const auto reports = pool.leaks();
    REQUIRE_FALSE(reports.empty());
    CHECK(reports.front().kind == LeakReport::Kind::suspected);
    CHECK(reports.front().stack.size() > 0);
    CHECK(pool.stats().destroyed_by_reason[static_cast<std::size_t>(poolbench::DestroyReason::revoked)] == 1);
}

TEST_CASE("a slow interrupt of a reclaimed lease does not hold the pool's lock", "[unit][leak]") {
    auto driver = std::make_shared<TestDriver>();
    PoolConfig c = leak_cfg(30ms, 1);
    c.leak_reclaim_after = 60ms;
    Pool pool(driver, c);
    driver->state().hold_interrupts = true;
    Lease leaked = pool.acquire();
    REQUIRE(eventually([&] { return driver->state().interrupting.load() == 1; }));
    // The housekeeper is stuck interrupting the revoked connection: the capacity it freed
    // can still be used, which takes the pool's lock.
    std::atomic<bool> served{false};
    std::thread user([&] {
        Lease fresh = pool.acquire(5000ms);
        served = fresh->ping();
    });
    const bool unblocked = eventually([&] { return served.load(); }, 5000ms);
    driver->state().hold_interrupts = false;
    user.join();
    CHECK(unblocked);
    CHECK(pool.stats().leaks_reclaimed == 1);
    CHECK_THROWS_AS(leaked->ping(), poolbench::LeaseRevoked);
    leaked.release();
    CHECK(eventually([&] { return driver->state().live.load() == 1; }));
}

TEST_CASE("a revoked lease that is invalidated or dropped never double-returns", "[unit][leak]") {
    auto driver = std::make_shared<TestDriver>();
    PoolConfig c = leak_cfg(100ms, 1);
    c.leak_reclaim_after = 200ms;
    Pool pool(driver, c);
    {
        Lease leaked = pool.acquire();
        REQUIRE(eventually([&] { return pool.stats().leaks_reclaimed == 1; }));
        leaked.invalidate();
        // A new holder takes the slot before the old lease goes out of scope.
        Lease other = pool.acquire();
        const int other_id = pbtest::conn_id(other);
        leaked.release();
        CHECK(pbtest::conn_id(other) == other_id);
        CHECK(pool.stats().active == 1);
    }
    const auto s = pool.stats();
    CHECK(s.total == 1);
    CHECK(s.idle == 1);
    CHECK(s.revoked_outstanding == 0);
    // The revoked connection closes when its last holder lets go: the leaked lease, or
    // the housekeeper if it is still inside interrupt() on it.
    CHECK(eventually([&] { return driver->state().live.load() == 1; }));
}

TEST_CASE("sampled capture traces one acquire in N, and 0 detects without traces", "[unit][leak]") {
    auto driver = std::make_shared<TestDriver>();
    PoolConfig c = leak_cfg(30ms, 4);
    c.leak_trace_every = 0;
    Pool pool(driver, c);
    Lease leaked = distinctive_leaking_function(pool);
    REQUIRE(eventually([&] { return pool.stats().leaks_detected == 1; }));
    CHECK(pool.leaks().at(0).stack.empty());

    PoolConfig c2 = leak_cfg(30ms, 4);
    c2.leak_trace_every = 2;
    Pool sampled(driver, c2);
    std::thread t([&] {  // a fresh thread: its sample counter starts at 0
        Lease a = distinctive_leaking_function(sampled);  // 1st acquire: not sampled
        Lease b = distinctive_leaking_function(sampled);  // 2nd: sampled
        REQUIRE(eventually([&] { return sampled.stats().leaks_detected == 2; }));
    });
    t.join();
    auto reports = sampled.leaks();
    std::size_t with_stack = 0;
    for (const auto& r : reports)
        if (r.kind == LeakReport::Kind::suspected && !r.stack.empty()) ++with_stack;
    CHECK(with_stack == 1);
}

TEST_CASE("reports name the acquiring thread", "[unit][leak]") {
    auto driver = std::make_shared<TestDriver>();
    Pool pool(driver, leak_cfg(30ms));
    long tid = 0;
    std::thread t([&] {
        pthread_setname_np(pthread_self(), "leaker-thr");
        tid = static_cast<long>(::syscall(SYS_gettid));
        Lease leaked = distinctive_leaking_function(pool);
        REQUIRE(eventually([&] { return pool.stats().leaks_detected == 1; }));
    });
    t.join();
    const auto r = pool.leaks().at(0);
    CHECK(r.thread_name == "leaker-thr");
    CHECK(r.thread_id == tid);
}

TEST_CASE("leak settings are validated", "[unit][leak]") {
    auto driver = std::make_shared<TestDriver>();
    PoolConfig c = leak_cfg(100ms);
    c.leak_reclaim_after = 50ms;
    CHECK_THROWS_WITH(Pool(driver, c), Catch::Contains("must be above leak_threshold"));
    c = leak_cfg(-1ms);
    CHECK_THROWS_AS(Pool(driver, c), poolbench::ConfigError);
}

TEST_CASE("a lease revoked while its connection is being reset is closed, not put back", "[unit][more]") {
    auto driver = std::make_shared<HookDriver>();
    PoolConfig c = cfg(1);
    c.leak_threshold = 20ms;
    c.leak_reclaim_after = 40ms;
    Pool* pool_ptr = nullptr;
    std::atomic<int> resets{0};
    std::atomic<bool> reclaimed_during_reset{false};
    bool reset_succeeds = true;
    driver->st->on_reset = [&] {
        resets.fetch_add(1);
        // The release is inside reset(): the housekeeper reclaims the lease meanwhile.
        reclaimed_during_reset = eventually([&] { return pool_ptr->stats().leaks_reclaimed == 1; });
        return reset_succeeds;
    };
    Pool pool(driver, c);
    pool_ptr = &pool;

    SECTION("the reset succeeds") { reset_succeeds = true; }
    SECTION("the reset fails") { reset_succeeds = false; }

    {
        Lease l = pool.acquire();
        l->execute("BEGIN");
        CHECK(driver->st->live == 1);
    }  // release -> reset -> revoked meanwhile
    CHECK(resets == 1);
    CHECK(reclaimed_during_reset);
    const auto s = pool.stats();
    CHECK(s.leaks_reclaimed == 1);
    CHECK(s.revoked_outstanding == 0);
    CHECK(s.total == 0);
    CHECK(s.idle == 0);
    CHECK(s.active == 0);
    // The revoked connection closed with its lease (or just after, if the housekeeper
    // was still inside interrupt() on it and so held the last reference).
    CHECK(eventually([&] { return driver->st->live.load() == 0; }));
    CHECK(eventually([&] { return count(pool.leaks(), LeakReport::Kind::returned) == 1; }));
    // The capacity came back: a new connection can be opened.
    Lease again = pool.acquire(1000ms);
    CHECK(again);
    CHECK(driver->st->live == 1);
}

TEST_CASE("a throwing on_leak callback does not hurt the pool", "[unit][more]") {
    auto driver = std::make_shared<TestDriver>();
    PoolConfig c = cfg(2);
    c.leak_threshold = 20ms;
    std::atomic<int> calls{0};
    c.on_leak = [&](const LeakReport&) {
        calls.fetch_add(1);
        throw std::runtime_error("callback failed");
    };
    Pool pool(driver, c);
    {
        Lease leaked = pool.acquire();
        REQUIRE(eventually([&] { return pool.stats().leaks_detected == 1; }));
        REQUIRE(eventually([&] { return calls == 1; }));
        CHECK(pool.leaks().size() == 1);
    }
    // The late return is reported too (the callback throws again, on this thread).
    CHECK(calls == 2);
    CHECK(pool.stats().leaks_returned_late == 1);
    Lease again = pool.acquire();
    CHECK(again);
    CHECK(pool.stats().hits == 1);
}

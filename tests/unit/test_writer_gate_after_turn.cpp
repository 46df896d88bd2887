// WriterGate and the work a turn leaves for after it (Connection::begin_write_turn /
// end_write_turn / after_write_turn; SQLite: the WAL checkpoint): the gate's helper thread
// runs it after the turn is given back, one job at a time, off the writer's path. A
// connection here only records the calls (the SQLite side is tests/sqlite/
// test_sqlite_gate_checkpoint.cpp). Real threads, no sleeps; runs under ThreadSanitizer.
#include <catch2/catch.hpp>

#include "gate_checkpointer.hpp"
#include "support/test_driver.hpp"

#include <poolbench/poolbench.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>

using namespace std::chrono_literals;
using poolbench::Pool;
using poolbench::WriteLease;
using poolbench::WriterGate;

namespace {

struct TurnState {
    std::atomic<int> begun{0};
    std::atomic<int> ended{0};
    std::atomic<int> ran{0};               // after_write_turn() calls finished
    std::atomic<poolbench::Connection::TurnWork> work{poolbench::Connection::TurnWork::after_turn};  // end_write_turn()'s answer
    std::atomic<bool> hold_work{false};    // after_write_turn() blocks while set (bounded: 10 s)
    std::atomic<bool> working{false};      // a thread is inside after_write_turn()
    std::atomic<std::thread::id> worker{}; // the thread that ran it last
};

class TurnConnection final : public poolbench::Connection {
public:
    explicit TurnConnection(std::shared_ptr<TurnState> st) : st_(std::move(st)) {}
    void execute(std::string_view) override {}
    poolbench::Rows query(std::string_view, std::span<const poolbench::Value>) override { return {}; }
    bool ping() noexcept override { return true; }
    void reset() override {}
    void interrupt() noexcept override {}
    [[nodiscard]] bool is_broken() const noexcept override { return false; }
    [[nodiscard]] bool in_transaction() const noexcept override { return false; }
    void begin_write_turn() noexcept override { st_->begun.fetch_add(1); }
    [[nodiscard]] TurnWork end_write_turn() noexcept override {
        st_->ended.fetch_add(1);
        return st_->work.load();
    }
    void after_write_turn() noexcept override {
        st_->worker.store(std::this_thread::get_id());
        st_->working.store(true);
        const auto until = std::chrono::steady_clock::now() + 10s;
        while (st_->hold_work.load() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
        st_->working.store(false);
        st_->ran.fetch_add(1);
    }

private:
    std::shared_ptr<TurnState> st_;
};

class TurnDriver final : public poolbench::Driver {
public:
    std::unique_ptr<poolbench::Connection> connect(std::chrono::steady_clock::time_point) override {
        return std::make_unique<TurnConnection>(st_);
    }
    [[nodiscard]] poolbench::Backend backend() const noexcept override { return poolbench::Backend::null; }
    [[nodiscard]] std::string describe() const override { return "turn-test://"; }
    TurnState& state() { return *st_; }

private:
    std::shared_ptr<TurnState> st_ = std::make_shared<TurnState>();
};

}  // namespace

TEST_CASE("WriterGate: work a turn leaves runs on the gate's thread after the turn is given back, one job at a time",
          "[unit][gate][concurrency]") {
    auto driver = std::make_shared<TurnDriver>();
    TurnState& st = driver->state();
    Pool pool(driver, pbtest::config("gate-pool", 4, 10s));
    WriterGate gate("g", {.starvation_threshold = 1ms});
    st.hold_work = true;

    WriteLease first = gate.acquire(pool, 1s);
    CHECK(st.begun.load() == 1);
    first.release();  // returns although the work it left blocks: the writer does not wait for it
    CHECK(st.ended.load() == 1);
    REQUIRE(pbtest::eventually([&] { return st.working.load(); }));
    CHECK(st.worker.load() != std::this_thread::get_id());
    CHECK(st.ran.load() == 0);
    CHECK(pool.stats().active == 1);  // the helper holds the lease while it works

    // The turn is free while the work runs: another writer takes it at once and commits.
    WriteLease second = gate.acquire(pool, 1s);
    CHECK(second);
    CHECK(pool.stats().active == 2);
    // Its work is skipped while the first job runs: its lease goes straight back.
    second.release();
    CHECK(gate.checkpoints_skipped() == 1);
    CHECK(pool.stats().active == 1);
    CHECK(st.working.load());

    st.hold_work = false;
    REQUIRE(pbtest::eventually([&] { return gate.checkpoints_run() == 1; }));
    CHECK(st.ran.load() == 1);
    CHECK(pbtest::eventually([&] { return pool.stats().active == 0; }));

    // The helper takes the next job once it is free again.
    WriteLease third = gate.acquire(pool, 1s);
    third.release();
    REQUIRE(pbtest::eventually([&] { return gate.checkpoints_run() == 2; }));
    CHECK(st.ran.load() == 2);
    CHECK(gate.checkpoints_skipped() == 1);
    CHECK(st.begun.load() == 3);
    CHECK(st.ended.load() == 3);
    CHECK(gate.turns() == 3);
}

TEST_CASE("WriterGate: no work due means no helper job, and the lease goes back before the turn",
          "[unit][gate][concurrency]") {
    auto driver = std::make_shared<TurnDriver>();
    TurnState& st = driver->state();
    st.work = poolbench::Connection::TurnWork::none;
    // One connection: the next writer can only lease it if it went back to the pool before
    // the turn was given back.
    Pool pool(driver, pbtest::config("gate-pool", 1, 10s));
    WriterGate gate("g");
    for (int i = 0; i < 100; ++i) {
        WriteLease w = gate.acquire(pool, 1s);
        CHECK(pool.stats().active == 1);
    }
    CHECK(st.begun.load() == 100);
    CHECK(st.ended.load() == 100);
    CHECK(st.ran.load() == 0);
    CHECK(gate.checkpoints_run() == 0);
    CHECK(gate.checkpoints_skipped() == 0);
    CHECK(pool.stats().active == 0);
}

TEST_CASE("WriterGate: the destructor runs the job in hand before it returns", "[unit][gate][concurrency]") {
    auto driver = std::make_shared<TurnDriver>();
    TurnState& st = driver->state();
    Pool pool(driver, pbtest::config("gate-pool", 2, 10s));
    {
        WriterGate gate("g");
        WriteLease w = gate.acquire(pool, 1s);
        w.release();  // hands the job over; the gate is destroyed right after
    }
    CHECK(st.ran.load() == 1);
    CHECK(pool.stats().active == 0);
}

TEST_CASE("WriterGate: writers racing with the helper, every turn counted and every lease returned",
          "[unit][gate][concurrency]") {
    auto driver = std::make_shared<TurnDriver>();
    TurnState& st = driver->state();
    Pool pool(driver, pbtest::config("gate-pool", 4, 10s));
    constexpr int threads = 6;
    constexpr int per_thread = 300;
    std::uint64_t run = 0, skipped = 0, turns = 0;
    {
        WriterGate gate("g", {.starvation_threshold = 100us});
        std::vector<std::thread> ts;
        for (int t = 0; t < threads; ++t) {
            ts.emplace_back([&] {
                for (int i = 0; i < per_thread; ++i) WriteLease w = gate.acquire(pool, 10s);
            });
        }
        for (auto& t : ts) t.join();
        turns = gate.turns();
        skipped = gate.checkpoints_skipped();
    }
    run = static_cast<std::uint64_t>(st.ran.load());
    INFO("jobs run " << run << ", skipped " << skipped);
    CHECK(turns == threads * per_thread);
    CHECK(run + skipped == turns);  // every job is run or skipped, none lost or run twice
    CHECK(run >= 1);
    CHECK(pool.stats().active == 0);
}

TEST_CASE("WriterGate: work due in the turn waits for the gate's thread, then runs before the turn is given back",
          "[unit][gate][concurrency]") {
    auto driver = std::make_shared<TurnDriver>();
    TurnState& st = driver->state();
    Pool pool(driver, pbtest::config("gate-pool", 4, 10s));
    WriterGate gate("g", {.starvation_threshold = 1ms});
    st.hold_work = true;
    WriteLease first = gate.acquire(pool, 1s);
    first.release();  // the gate's thread takes this job and blocks in it
    REQUIRE(pbtest::eventually([&] { return st.working.load(); }));

    std::thread::id writer_id{};
    std::thread writer([&] {
        writer_id = std::this_thread::get_id();
        WriteLease w = gate.acquire(pool, 5s);
        st.work = poolbench::Connection::TurnWork::in_turn;
        w.release();  // waits for the blocked job, then does its own, then gives the turn back
    });
    REQUIRE(pbtest::eventually([&] { return st.ended.load() == 2; }));
    // The writer is past end_write_turn() and waits for the job in hand: it still holds
    // the turn, so nobody else can take it.
    CHECK_THROWS_AS(gate.acquire(pool, 0ms), poolbench::PoolTimeout);
    CHECK(st.ran.load() == 0);
    st.hold_work = false;
    writer.join();
    CHECK(st.ran.load() == 2);                   // the job in hand, then the writer's own
    CHECK(st.worker.load() == writer_id);        // the last one ran on the writer's thread
    CHECK(gate.checkpoints_run() == 1);          // only the first went to the gate's thread
    CHECK(gate.checkpoints_skipped() == 0);
    WriteLease again = gate.acquire(pool, 1s);  // the turn was given back
    CHECK(again);
}

namespace {
// A pool whose housekeeper revokes a lease held past 40 ms (leak reclaim).
poolbench::PoolConfig reclaiming_config() {
    poolbench::PoolConfig c = pbtest::config("gate-pool", 2, 10s);
    c.leak_threshold = 20ms;
    c.leak_reclaim_after = 40ms;
    return c;
}
}  // namespace

TEST_CASE("WriterGate: a WriteLease whose lease leak reclaim revoked releases without touching it and gives the turn back",
          "[unit][gate][concurrency]") {
    auto driver = std::make_shared<TurnDriver>();
    TurnState& st = driver->state();
    Pool pool(driver, reclaiming_config());
    WriterGate gate("g");
    WriteLease w = gate.acquire(pool, 1s);
    CHECK(st.begun.load() == 1);
    REQUIRE(pbtest::eventually([&] { return pool.stats().leaks_reclaimed == 1; }));
    CHECK_THROWS_AS(w.connection(), poolbench::LeaseRevoked);
    w.release();  // must not throw LeaseRevoked out of a noexcept function (std::terminate)
    CHECK_FALSE(w);
    CHECK(st.ended.load() == 0);  // the revoked connection is not used; the pool closes it
    CHECK(st.ran.load() == 0);
    CHECK(gate.checkpoints_run() == 0);
    CHECK(pool.stats().revoked_outstanding == 0);
    WriteLease again = gate.acquire(pool, 1s);  // the turn was given back
    CHECK(again);
    CHECK(gate.turns() == 2);
}

TEST_CASE("GateCheckpointer: a job whose lease leak reclaim revoked is returned without its work",
          "[unit][gate][concurrency]") {
    auto driver = std::make_shared<TurnDriver>();
    TurnState& st = driver->state();
    Pool pool(driver, reclaiming_config());
    poolbench::internal::GateCheckpointer helper;
    poolbench::Lease lease = pool.acquire(1s);
    REQUIRE(pbtest::eventually([&] { return pool.stats().leaks_reclaimed == 1; }));
    helper.offer(lease);  // the helper thread must not throw LeaseRevoked (std::terminate)
    CHECK_FALSE(lease);
    helper.wait_idle();
    CHECK(st.ran.load() == 0);
    CHECK(helper.ran() == 1);
    CHECK(pool.stats().revoked_outstanding == 0);
    CHECK(pool.stats().active == 0);
}

TEST_CASE("WriterGate: wait_idle() returns once the gate's thread gave its lease back (pool stats read active 0)",
          "[unit][gate][concurrency]") {
    auto driver = std::make_shared<TurnDriver>();
    TurnState& st = driver->state();
    Pool pool(driver, pbtest::config("gate-pool", 2, 10s));
    WriterGate gate("g");
    gate.wait_idle();  // no job: at once
    st.hold_work = true;
    WriteLease w = gate.acquire(pool, 1s);
    w.release();
    // The job blocks until this thread sees it running and lets it go; wait_idle() must
    // wait for the job and its lease's return, not only for the job to be taken.
    std::thread unblock([&] {
        if (pbtest::eventually([&] { return st.working.load(); })) st.hold_work = false;
    });
    gate.wait_idle();
    CHECK(st.ran.load() == 1);
    CHECK(pool.stats().active == 0);
    CHECK(gate.checkpoints_run() == 1);
    unblock.join();
}

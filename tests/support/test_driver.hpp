// A driver for pool tests: counts live connections (and the most ever open at once) and
// injects faults on demand. Not a stand-in for a database — the pool under test never
// knows what is behind the Driver interface; SQLite and PostgreSQL tests use the real ones.
#pragma once

#include <poolbench/poolbench.hpp>

#include "support/pool_stats.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <functional>
#include <memory>
#include <string>
#include <thread>

namespace pbtest {

struct TestState {
    std::atomic<int> live{0};
    std::atomic<int> peak_live{0};
    std::atomic<int> opened{0};
    std::atomic<int> pings{0};
    std::atomic<int> resets{0};
    std::atomic<int> interrupts{0};
    std::atomic<bool> hold_interrupts{false};  // interrupt() blocks while set (bounded: 30 s)
    std::atomic<int> interrupting{0};          // threads inside interrupt() now
    std::atomic<bool> fail_connect{false};
    std::atomic<int> fail_next_connects{0};  // fail this many connects, then succeed
    std::atomic<bool> hold_connects{false};  // connect() blocks while set (bounded: 10 s)
    std::atomic<int> connecting{0};
    std::atomic<int> peak_connecting{0};
    std::atomic<int> connect_calls{0};
    std::atomic<bool> fail_ping{false};
    std::atomic<bool> fail_reset{false};
};

class TestConnection final : public poolbench::Connection {
public:
    explicit TestConnection(std::shared_ptr<TestState> st) : st_(std::move(st)) {
        const int now = st_->live.fetch_add(1) + 1;
        int peak = st_->peak_live.load();
        while (now > peak && !st_->peak_live.compare_exchange_weak(peak, now)) {
        }
        id_ = st_->opened.fetch_add(1);
    }
    ~TestConnection() override { st_->live.fetch_sub(1); }

    void execute(std::string_view sql) override {
        if (sql == "BEGIN") in_tx_ = true;
        else if (sql == "COMMIT" || sql == "ROLLBACK") in_tx_ = false;
        else if (sql == "BREAK") {
            broken_ = true;
            throw poolbench::QueryError("connection lost (test)", "08006", 0, true);
        }
    }
    poolbench::Rows query(std::string_view, std::span<const poolbench::Value>) override {
        poolbench::Rows r;
        r.rows.push_back({poolbench::Value{std::int64_t{id_}}});
        return r;
    }
    bool ping() noexcept override {
        st_->pings.fetch_add(1);
        return !st_->fail_ping.load();
    }
    void reset() override {
        st_->resets.fetch_add(1);
        if (st_->fail_reset.load()) throw poolbench::QueryError("reset failed (test)", "XX000", 0, false);
        in_tx_ = false;
    }
    void interrupt() noexcept override {
        // Like PQcancel, which opens a connection to the server: it may take a while.
        st_->interrupts.fetch_add(1);
        st_->interrupting.fetch_add(1);
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        while (st_->hold_interrupts.load() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
        st_->interrupting.fetch_sub(1);
    }
    [[nodiscard]] bool is_broken() const noexcept override { return broken_; }
    [[nodiscard]] bool in_transaction() const noexcept override { return in_tx_; }
    [[nodiscard]] int id() const noexcept { return id_; }

private:
    std::shared_ptr<TestState> st_;
    int id_ = 0;
    bool broken_ = false;
    bool in_tx_ = false;
};

class TestDriver final : public poolbench::Driver {
public:
    TestDriver() : st_(std::make_shared<TestState>()) {}
    std::unique_ptr<poolbench::Connection> connect(std::chrono::steady_clock::time_point) override {
        st_->connect_calls.fetch_add(1);
        const int now = st_->connecting.fetch_add(1) + 1;
        int peak = st_->peak_connecting.load();
        while (now > peak && !st_->peak_connecting.compare_exchange_weak(peak, now)) {
        }
        struct Done {
            TestState& st;
            ~Done() { st.connecting.fetch_sub(1); }
        } done{*st_};
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (st_->hold_connects.load() && std::chrono::steady_clock::now() < until) std::this_thread::yield();
        if (st_->fail_connect.load()) throw poolbench::ConnectError("connection refused (test)");
        int left = st_->fail_next_connects.load();
        while (left > 0 && !st_->fail_next_connects.compare_exchange_weak(left, left - 1)) {
        }
        if (left > 0) throw poolbench::ConnectError("connection refused (test, transient)");
        return std::make_unique<TestConnection>(st_);
    }
    [[nodiscard]] poolbench::Backend backend() const noexcept override { return poolbench::Backend::null; }
    [[nodiscard]] std::string describe() const override { return "test://"; }
    TestState& state() { return *st_; }
    std::shared_ptr<TestState> shared_state() { return st_; }

private:
    std::shared_ptr<TestState> st_;
};

/// Spins (yielding) until `pred` holds or `timeout` passes; returns pred's last value.
/// For conditions another thread makes true — never a fixed sleep.
inline bool eventually(const std::function<bool()>& pred,
                       std::chrono::milliseconds timeout = std::chrono::milliseconds{10'000}) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) return pred();
        std::this_thread::yield();
    }
    return true;
}

/// Holding a lease for a set time is sometimes the scenario under test (a legitimate long
/// use, a connection outliving its lifetime) — not a wait for another thread: a timed wait
/// on a condition nobody signals.
inline void hold_for(std::chrono::milliseconds d) {
    std::mutex m;
    std::condition_variable cv;
    std::unique_lock lk(m);
    cv.wait_for(lk, d, [] { return false; });
}

/// A pool configuration for tests: name, max_size and acquire timeout; the rest default.
inline poolbench::PoolConfig config(std::string name, std::size_t max_size, std::chrono::milliseconds timeout) {
    poolbench::PoolConfig c;
    c.name = std::move(name);
    c.max_size = max_size;
    c.acquire_timeout = timeout;
    return c;
}

inline int conn_id(poolbench::Lease& l) {
    return static_cast<int>(l->query("SELECT id").int_at(0));
}

}  // namespace pbtest

// fault_driver.cpp — FaultDriver: injects refused connects, latency, failed pings, broken
// connections (before a statement, or after it ran with its reply lost) and failed resets
// in front of another driver.
//
// The injected latency is the product's own behaviour (what a slow network would do), so
// it honours the same contracts as a real backend: connect latency gives up at the
// connect deadline, and statement latency ends early when the statement is interrupted.
// Injected errors use the wrapped backend's codes (SQLITE_IOERR / 08006 / 2013 for a lost
// connection, SQLITE_INTERRUPT / 57014 / 1317 for a cancelled statement) and the kinds a real
// one gets (connection_lost, statement_timeout), so callers classify them like real ones;
// every message starts with "injected:".
#include "poolbench/drivers.hpp"
#include "poolbench/error.hpp"

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <random>
#include <string>
#include <thread>

namespace poolbench {

namespace {

/// The wrapped backend's own codes for a lost connection and a cancelled statement.
struct InjectedCodes {
    const char* lost;
    int lost_native;
    const char* cancelled;
    int cancelled_native;
};
InjectedCodes codes_for(Backend backend) noexcept {
    switch (backend) {
        case Backend::postgresql: return {"08006", 0, "57014", 0};
        case Backend::mariadb: return {"2013", 2013, "1317", 1317};  // CR_SERVER_LOST, ER_QUERY_INTERRUPTED
        case Backend::sqlite:
        case Backend::null: break;
    }
    return {"SQLITE_IOERR", 10, "SQLITE_INTERRUPT", 9};
}

class FaultConnection final : public Connection {
public:
    FaultConnection(std::unique_ptr<Connection> inner, std::shared_ptr<FaultSettings> settings, Backend backend)
        : inner_(std::move(inner)), settings_(std::move(settings)), codes_(codes_for(backend)) {}

    void execute(std::string_view sql) override {
        before_statement();
        inner_->execute(sql);
        after_statement();
    }

    Rows query(std::string_view sql, std::span<const Value> params) override {
        before_statement();
        Rows rows = inner_->query(sql, params);
        after_statement();
        return rows;
    }

    bool ping() noexcept override {
        if (broken_ || settings_->fail_ping.load(std::memory_order_relaxed)) return false;
        return inner_->ping();
    }

    void reset() override {
        if (settings_->fail_reset.load(std::memory_order_relaxed)) {
            throw QueryError("injected: reset failed (FaultDriver fail_reset)", codes_.lost, codes_.lost_native, false,
                             ErrorKind::connection_lost);
        }
        if (broken_) throw_broken("injected: reset on a connection broken by FaultDriver");
        inner_->reset();
    }

    void interrupt() noexcept override {
        {
            std::lock_guard lock(mutex_);
            interrupted_ = true;
        }
        cv_.notify_all();
        inner_->interrupt();
    }

    [[nodiscard]] bool is_broken() const noexcept override { return broken_ || inner_->is_broken(); }
    [[nodiscard]] bool in_transaction() const noexcept override { return inner_->in_transaction(); }
    [[nodiscard]] bool needs_reset() const noexcept override { return inner_->needs_reset(); }
    void begin_write_turn() noexcept override { inner_->begin_write_turn(); }
    [[nodiscard]] TurnWork end_write_turn() noexcept override { return inner_->end_write_turn(); }
    void after_write_turn() noexcept override { inner_->after_write_turn(); }

private:
    [[noreturn]] void throw_broken(const char* message) const {
        throw QueryError(message, codes_.lost, codes_.lost_native, true,
                         ErrorKind::connection_lost);
    }

    void before_statement() {
        if (broken_) throw_broken("injected: connection lost earlier (FaultDriver break_on_query)");
        std::uint32_t latency_us = settings_->query_latency_us.load(std::memory_order_relaxed);
        if (const auto jitter_us = settings_->query_jitter_us.load(std::memory_order_relaxed); jitter_us > 0) {
            latency_us += std::uniform_int_distribution<std::uint32_t>(0, jitter_us)(rng_);
        }
        if (latency_us > 0) {
            std::unique_lock lock(mutex_);
            // Like SQLite, an interrupt only cancels a statement that is running: a stale
            // one from before this statement started is forgotten.
            interrupted_ = false;
            // In slices of at most 10 ms: when the latency is switched off (a fault reverted),
            // statements already waiting go on at once, as a healed network would let them.
            const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(latency_us);
            bool interrupted = false;
            while (!interrupted && std::chrono::steady_clock::now() < until &&
                   settings_->query_latency_us.load(std::memory_order_relaxed) +
                           settings_->query_jitter_us.load(std::memory_order_relaxed) >
                       0) {
                interrupted = cv_.wait_until(lock, std::min(until, std::chrono::steady_clock::now() + std::chrono::milliseconds(10)),
                                             [this] { return interrupted_; });
            }
            if (interrupted) {
                interrupted_ = false;
                throw QueryError("injected: statement interrupted during FaultDriver query latency",
                                 codes_.cancelled, codes_.cancelled_native, false,
                                 ErrorKind::statement_timeout);
            }
        }
        // Loaded first: an exchange on every statement would bounce the settings' cache line
        // between every thread of a load.
        if (settings_->break_on_query.load(std::memory_order_relaxed) && settings_->break_on_query.exchange(false)) {
            broken_ = true;
            throw_broken("injected: connection lost (FaultDriver break_on_query)");
        }
        const double p = settings_->drop_probability.load(std::memory_order_relaxed);
        if (p > 0.0 && std::uniform_real_distribution<double>(0.0, 1.0)(rng_) < p) {
            broken_ = true;
            throw_broken("injected: connection dropped (FaultDriver drop_probability)");
        }
    }

    // The statement ran; its reply may be lost (lose_reply_probability).
    void after_statement() {
        const double p = settings_->lose_reply_probability.load(std::memory_order_relaxed);
        if (p > 0.0 && std::uniform_real_distribution<double>(0.0, 1.0)(rng_) < p) {
            broken_ = true;
            throw_broken("injected: connection lost after the statement ran, before its reply (FaultDriver "
                         "lose_reply_probability)");
        }
    }

    std::unique_ptr<Connection> inner_;
    std::shared_ptr<FaultSettings> settings_;
    InjectedCodes codes_;
    bool broken_ = false;  // only touched by the thread using the connection
    std::minstd_rand rng_{static_cast<std::minstd_rand::result_type>(
        std::hash<const void*>{}(this) ^ static_cast<std::size_t>(std::chrono::steady_clock::now().time_since_epoch().count()))};
    std::mutex mutex_;     // guards interrupted_ (interrupt() comes from other threads)
    std::condition_variable cv_;
    bool interrupted_ = false;
};

}  // namespace

FaultDriver::FaultDriver(std::shared_ptr<Driver> inner, std::shared_ptr<FaultSettings> settings)
    : inner_(std::move(inner)), settings_(std::move(settings)) {
    if (!inner_) throw UsageError("FaultDriver needs a driver to wrap (got a null pointer)");
    if (!settings_) settings_ = std::make_shared<FaultSettings>();
}

std::unique_ptr<Connection> FaultDriver::connect(std::chrono::steady_clock::time_point deadline) {
    connects_.fetch_add(1, std::memory_order_relaxed);
    const auto latency_us = settings_->connect_latency_us.load(std::memory_order_relaxed);
    if (latency_us > 0) {
        const auto wake = std::chrono::steady_clock::now() + std::chrono::microseconds(latency_us);
        if (wake > deadline) {
            std::this_thread::sleep_until(deadline);
            throw ConnectError("injected: connect timed out at its deadline (FaultDriver connect_latency_us=" +
                               std::to_string(latency_us) + ")");
        }
        std::this_thread::sleep_until(wake);
    }
    if (settings_->refuse_connect.load(std::memory_order_relaxed)) {
        throw ConnectError("injected: connection refused (FaultDriver)");
    }
    const std::int64_t until = settings_->refuse_until_ns.load(std::memory_order_relaxed);
    if (until != 0 && std::chrono::steady_clock::now().time_since_epoch() < std::chrono::nanoseconds(until)) {
        throw ConnectError("injected: connection refused (FaultDriver refuse_for window)");
    }
    return std::make_unique<FaultConnection>(inner_->connect(deadline), settings_, inner_->backend());
}

Backend FaultDriver::backend() const noexcept { return inner_->backend(); }

std::string FaultDriver::describe() const { return inner_->describe(); }

std::string FaultDriver::prepared_statements() const { return inner_->prepared_statements(); }
std::optional<bool> FaultDriver::behind_pooler() const { return inner_->behind_pooler(); }

std::unique_ptr<Connection> FaultDriver::connect_read_only(std::chrono::steady_clock::time_point deadline) {
    return inner_->connect_read_only(deadline);
}

Diagnosis FaultDriver::diagnose(const DiagnoseOptions& options) { return inner_->diagnose(options); }

}  // namespace poolbench

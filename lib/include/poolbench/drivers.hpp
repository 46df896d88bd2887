// poolbench/drivers.hpp — the built-in backends and the fault-injecting decorator.
//
// Thread-safety: every Driver returned here may be used from any number of threads at
// once (see connection.hpp); FaultDriver's settings are atomics and may be changed while
// connections are being opened and used.
#pragma once

#include "poolbench/connection.hpp"
#include "poolbench/diagnostics.hpp"
#include "poolbench/url.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

namespace poolbench {

/// Opens the driver for a parsed URL. SQLite and null drivers are cheap to make; for an
/// in-memory SQLite URL the driver keeps the shared database alive for its own lifetime.
[[nodiscard]] std::shared_ptr<Driver> make_driver(const DbUrl& url);
[[nodiscard]] std::shared_ptr<Driver> make_driver(std::string_view url);

/// The journal mode an existing SQLite file keeps in its header, read without opening it
/// as a database (nothing is created, converted or locked): "wal", or "rollback" (delete,
/// truncate or persist: SQLite does not store which). nullopt when the file does not exist,
/// is empty or is not an SQLite database. Thread-safe.
[[nodiscard]] std::optional<std::string> sqlite_file_journal_mode(const std::string& path);

/// Faults injected in front of another driver; all values can change at run time.
struct FaultSettings {
    std::atomic<bool> refuse_connect{false};          ///< connect() throws ConnectError
    std::atomic<std::uint32_t> connect_latency_us{0};  ///< added before each connect
    /// Added before each execute/query; a statement waiting out its latency goes on as soon
    /// as both are set back to 0.
    std::atomic<std::uint32_t> query_latency_us{0};
    std::atomic<std::uint32_t> query_jitter_us{0};     ///< plus a uniform 0..this, per statement
    std::atomic<bool> fail_ping{false};                ///< ping() returns false
    std::atomic<bool> break_on_query{false};           ///< the next statement breaks its connection
    std::atomic<bool> fail_reset{false};               ///< reset() throws
    /// connect() is refused until this steady_clock time (nanoseconds since its epoch);
    /// refuse_for() sets it: an outage window that ends by itself.
    std::atomic<std::int64_t> refuse_until_ns{0};
    /// Each statement breaks its connection with this probability (0..1): drops a
    /// fraction of connections, as a flaky network or a failover would.
    std::atomic<double> drop_probability{0.0};
    /// Each statement runs, then its connection breaks with this probability (0..1) before
    /// the reply reaches the caller: the statement took effect, the caller gets
    /// connection_lost. A COMMIT's outcome is then in doubt, as when a server or network
    /// dies between committing and answering.
    std::atomic<double> lose_reply_probability{0.0};

    void refuse_for(std::chrono::milliseconds window) noexcept {
        refuse_until_ns.store(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                  (std::chrono::steady_clock::now() + window).time_since_epoch())
                                  .count());
    }
};

/// Wraps a driver and injects the faults in `settings` (shared so tests can flip them).
class FaultDriver final : public Driver {
public:
    FaultDriver(std::shared_ptr<Driver> inner, std::shared_ptr<FaultSettings> settings);
    std::unique_ptr<Connection> connect(std::chrono::steady_clock::time_point deadline) override;
    [[nodiscard]] Backend backend() const noexcept override;
    [[nodiscard]] std::string describe() const override;
    [[nodiscard]] std::string prepared_statements() const override;
    [[nodiscard]] std::optional<bool> behind_pooler() const override;
    /// The wrapped driver's, without faults: looking at the database is not under test.
    std::unique_ptr<Connection> connect_read_only(std::chrono::steady_clock::time_point deadline) override;
    [[nodiscard]] Diagnosis diagnose(const DiagnoseOptions& options) override;
    [[nodiscard]] std::uint64_t connects() const noexcept { return connects_.load(); }

private:
    std::shared_ptr<Driver> inner_;
    std::shared_ptr<FaultSettings> settings_;
    std::atomic<std::uint64_t> connects_{0};
};

}  // namespace poolbench

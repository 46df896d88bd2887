// poolbench/pool.hpp — the connection pool and its RAII lease.
//
// Usage:
//     auto driver = poolbench::make_driver("sqlite:///var/lib/app.db");
//     poolbench::Pool pool(driver, {.name = "app", .max_size = 10});
//     {
//         poolbench::Lease conn = pool.acquire();          // waits up to acquire_timeout
//         conn->execute("UPDATE t SET x = x + 1");
//     }                                                    // returned here
//
// How it works. Each connection lives in a slot whose state (empty, idle, leased,
// reserved) changes by compare-and-set, so the common case — a thread taking back the
// connection it used last — touches no shared lock and no shared counter (HikariCP's
// thread-local list). A thread that finds nothing idle and cannot open a new connection
// queues, first come, first served. Barging is bounded: while threads wait, a running
// thread may still take a connection that another returns (as in HikariCP and Go's
// database/sql), and the release only wakes the longest waiter to compete for it, since
// handing every returned connection to a sleeping thread costs a context switch per
// operation and halves throughput under contention. Once the longest waiter has waited
// starvation_threshold (PoolConfig), the pool turns strict: returned connections are
// handed straight to it and new callers queue behind it, so no waiter starves.
// Connections are opened outside every lock, and the number open plus being opened never
// exceeds max_size.
//
// Thread-safety of Pool: every member function may be called from any number of threads
// at once, including shutdown() concurrently with acquire() and with lease returns.
// The destructor calls shutdown() with no grace period and joins the housekeeper; it must
// not run concurrently with other calls on the same Pool. Leases still out when the Pool
// is destroyed stay valid: their connections are closed when they are returned, and the
// pool's internals are freed with the last of them.
//
// Thread-safety of Lease: a Lease (like the Connection it gives access to) must be used
// by one thread at a time; it may be moved to, and returned from, another thread. A
// moved-from or released Lease is empty: operator bool is false and using it throws
// UsageError. Releasing is idempotent and never throws.
#pragma once

#include "poolbench/config.hpp"
#include "poolbench/connection.hpp"
#include "poolbench/error.hpp"
#include "poolbench/stats.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

namespace poolbench {

namespace internal {
class PoolCore;
}

class Lease {
public:
    Lease() noexcept = default;
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    Lease(Lease&& other) noexcept { steal(other); }
    Lease& operator=(Lease&& other) noexcept {
        if (this != &other) {
            release();
            steal(other);
        }
        return *this;
    }
    ~Lease() { release(); }

    // Accessors work on named leases only: `pool.acquire()->execute(...)` would return the
    // connection before the statement ran, so it does not compile. They throw UsageError on
    // an empty lease and LeaseRevoked once leak reclaim has taken the connection back.
    Connection& operator*() & { return get(); }
    Connection* operator->() & { return &get(); }
    Connection& connection() & { return get(); }
    Connection& operator*() && = delete;
    Connection* operator->() && = delete;
    Connection& connection() && = delete;

    [[nodiscard]] explicit operator bool() const noexcept { return conn_ != nullptr; }

    /// When the pool handed this lease out, on the pool's clock (steady_clock's epoch, read
    /// from the TSC where it can be: within microseconds of steady_clock). A caller timing
    /// its acquires can end the measurement here instead of reading a clock again.
    /// The epoch for an empty lease.
    [[nodiscard]] std::chrono::steady_clock::time_point acquired_at() const noexcept {
        return std::chrono::steady_clock::time_point(
            std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::nanoseconds(acquired_ns_)));
    }

    /// Marks the connection bad: it is closed, not reused, when the lease is returned.
    void invalidate() noexcept { invalid_ = true; }

    /// Returns the connection to the pool now. Idempotent; never throws.
    void release() noexcept;

private:
    friend class internal::PoolCore;
    Lease(internal::PoolCore* core, std::uint32_t slot, Connection* conn, std::int64_t acquired_ns,
          std::uint32_t seq) noexcept
        : core_(core), conn_(conn), acquired_ns_(acquired_ns), slot_(slot), seq_(seq) {}
    Connection& get();
    void steal(Lease& other) noexcept {
        core_ = other.core_;
        conn_ = other.conn_;
        acquired_ns_ = other.acquired_ns_;
        slot_ = other.slot_;
        seq_ = other.seq_;
        invalid_ = other.invalid_;
        other.core_ = nullptr;
        other.conn_ = nullptr;
        other.invalid_ = false;
    }

    internal::PoolCore* core_ = nullptr;
    Connection* conn_ = nullptr;
    std::int64_t acquired_ns_ = 0;
    std::uint32_t slot_ = 0;
    std::uint32_t seq_ = 0;  // the slot's state word this lease was given (lease number + kind)
    bool invalid_ = false;
};

class Pool {
public:
    /// Validates `config` (throws ConfigError) and starts the housekeeper. Opens no
    /// connection itself unless min_idle > 0 (then the housekeeper opens them at once).
    Pool(std::shared_ptr<Driver> driver, PoolConfig config);
    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;
    ~Pool();

    /// Waits up to config().acquire_timeout for a connection.
    /// Throws PoolTimeout, PoolClosed, or ConnectError when opening a new one failed.
    [[nodiscard]] Lease acquire();
    [[nodiscard]] Lease acquire(std::chrono::milliseconds timeout);
    /// Never waits for another lease to come back (it may open a new connection).
    /// Returns an empty optional when the pool is at max_size with nothing idle.
    [[nodiscard]] std::optional<Lease> try_acquire();

    /// Stops handing out leases. Idempotent. Queued acquirers wake with PoolClosed at once;
    /// idle connections close at once; leased ones close when returned. Waits up to `grace`
    /// for leases to come back; at the deadline, statements still running on leased
    /// connections are interrupted (their holders still own them until they return them).
    /// Returns true when every connection was closed within the grace period.
    bool shutdown(std::chrono::milliseconds grace = std::chrono::milliseconds{0});

    /// Waits until min_idle connections are open (as psycopg_pool's wait() does after the
    /// pool is created, or pgbench before its clock starts), so that the first callers do
    /// not queue behind connections being opened one by one. Returns true once they are;
    /// false at the timeout, after shutdown, or as soon as opening one fails (the pool keeps
    /// trying in the background; stats() and the next acquire() say why). Returns true at
    /// once when min_idle is 0.
    bool wait_for_min_idle(std::chrono::milliseconds timeout);

    /// Changes max_size and min_idle at run time. Growing hands capacity to waiters at once;
    /// shrinking closes surplus idle connections now and leased ones when returned.
    /// Throws ConfigError past max_size_limit or for min_idle > max_size.
    void resize(std::size_t max_size, std::size_t min_idle);
    /// While suspended, acquire() queues (up to its timeout) instead of handing out
    /// leases; leases already out are unaffected. resume() serves the queue in order.
    void suspend();
    void resume();
    /// Closes every idle connection now and every leased one when it is returned.
    void evict_all();

    /// Counts one re-run of a transaction body in stats().transaction_retries (called by
    /// run_in_transaction; callers with their own retry loops may call it too).
    void note_transaction_retry() noexcept;

    /// A snapshot, not stopped in time. The gauges are read under the pool lock, active and
    /// idle in one pass over the slots, so active + idle <= total always (the rest are being
    /// opened or pinged); but lock-free acquires and returns go on meanwhile, so under load
    /// the split between active and idle, and the counters and histograms summed from
    /// per-thread shards, may be a moment old and disagree by the operations in flight.
    /// When the pool is quiet (no call running) everything agrees: active + idle == total,
    /// acquires == hits + misses, and created - destroyed == total. peak_active is
    /// the highest count seen by any slow-path acquire, release hand-off or stats() call,
    /// or by the first and then one in 64 of the idle connections handed out (counted per
    /// metrics shard, whose threads share it): a steady load always shows, but a spike served
    /// only by the lock-free fast path may go unrecorded.
    [[nodiscard]] PoolStats stats() const;

    /// The leak reports so far (suspected, returned, reclaimed), oldest first; the most
    /// recent 1000 are kept. Symbolized on the housekeeper thread, not on acquire.
    [[nodiscard]] std::vector<LeakReport> leaks() const;

    [[nodiscard]] const PoolConfig& config() const noexcept;
    [[nodiscard]] const Driver& driver() const noexcept;

private:
    internal::PoolCore* core_;
};

}  // namespace poolbench

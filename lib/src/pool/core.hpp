// pool/core.hpp — the pool's policy: what happens on acquire, on release, on a failure and
// on a housekeeper tick. The mechanisms live in their own units:
//
//   slot_bag.hpp      slots with compare-and-set states, the lock-free fast path
//   waiter_queue.hpp  queued threads, hand-off and the bounded-barging rule
//   connector.hpp     opening a connection, retry backoff
//   breaker.hpp       the circuit breaker, a pure state machine
//   leak_tracker.hpp  lease traces and leak reports
//   metrics.hpp       counters
//
// and the core's own code is split by job: acquire.cpp, release.cpp, housekeeper.cpp,
// core.cpp (construction, lifetime, shutdown, stats, run-time control).
//
// Slot kinds (slot_bag.hpp) and who may change them:
//   empty    -> reserved   under mu_, by a thread that took capacity (total_ += 1) to open one
//   reserved -> leased     under mu_, by that thread once the connection is open
//   reserved -> idle       under mu_, by the housekeeper (min_idle warm-up, keepalive)
//   idle     -> leased     by CAS from any acquiring thread (fast path) or under mu_ (hand-off)
//   leased   -> idle       by the lease holder (a CAS when leases can be reclaimed)
//   idle     -> reserved   by CAS, under mu_, to destroy an idle connection or ping it
//   leased   -> empty      under mu_, by the lease holder, to destroy its connection
//   leased   -> reserved   by CAS, under mu_, by the housekeeper reclaiming a leaked lease
//   reserved -> empty      under mu_, when opening failed or after a reclaim
// ConnSlot::conn is written only by a thread that owns the slot (reserved or leased) and
// only under mu_. It is shared: a thread that must interrupt() a statement (shutdown after
// its grace, leak reclaim) copies it under mu_ and calls interrupt() after unlocking, since
// that can block (PQcancel opens a connection to the server); the copy keeps the
// connection alive if its holder returns and destroys it meanwhile.
//
// The Dekker pairs that keep a returned connection from sitting idle while someone waits:
// a releasing thread stores `idle` then loads signal_ (and the wake-pending flag); a
// thread entering the slow path increments signal_ then scans the slots, and a woken
// waiter clears the wake-pending flag then scans. All are seq_cst, so at least one side
// sees the other.
//
// One word per thing. A connection is "destroyed" (DestroyReason says why), whichever
// path does it: destroy_leased, destroy_idle, destroy_if_stale, destroyed(). Taking a
// leaked lease's connection back is "reclaim" (leak_reclaim_after, leaks_reclaimed,
// LeakReport::Kind::reclaimed); the lease it leaves behind is "revoked", a state its
// holder sees (LeaseRevoked, revoked_outstanding, DestroyReason::revoked when it comes
// back). Public names follow the same rule.
//
// Thread-safety: every public member may be called from any number of threads at once.
// mu_ guards the fields marked POOLBENCH_GUARDED_BY(mu_); `scripts/test.sh` checks that
// with Clang's -Wthread-safety.
#pragma once

#include "breaker.hpp"
#include "connector.hpp"
#include "leak_tracker.hpp"
#include "metrics.hpp"
#include "poolbench/internal/mutex.hpp"
#include "poolbench/pool.hpp"
#include "slot_bag.hpp"
#include "time.hpp"
#include "waiter_queue.hpp"

#include <atomic>
#include <condition_variable>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace poolbench::internal {

/// What a slot carries besides its state word.
struct ConnSlot {
    ConnPtr conn;  // see the ownership rule at the top
    // conn.get(), for the lease holder, which reads it outside mu_ while a reclaim may move
    // `conn` away (atomic, so that read is never a data race). The same goes for
    // expires_ns and epoch, which a reclaimed holder may read while the slot is refilled.
    std::atomic<Connection*> raw{nullptr};
    std::int64_t created_ns = 0;                  // written with conn, under mu_
    std::atomic<std::int64_t> expires_ns{never};  // created + jittered max_lifetime; with conn
    std::atomic<std::uint32_t> epoch{0};          // evict_all() generation it was opened in; with conn
    std::int64_t last_ping_ns = 0;                // housekeeper's keepalive; housekeeper only
    // A connection opened before one found dead: ping it before handing it out again.
    std::atomic<bool> suspect{false};
    LeaseTrace trace;  // leak tracking
};
using Slots = SlotBag<ConnSlot>;
using Slot = Slots::Entry;

/// A connection taken back from a leaked lease, kept alive until that lease is returned
/// (its holder may still be inside a call on it) or the pool is freed.
struct Reclaimed {
    std::uint32_t slot;
    std::uint32_t word;
    ConnPtr conn;
};

class PoolCore {
public:
    PoolCore(std::shared_ptr<Driver> driver, PoolConfig config);
    PoolCore(const PoolCore&) = delete;
    PoolCore& operator=(const PoolCore&) = delete;
    ~PoolCore() = default;

    void start_housekeeper();
    /// ~Pool: shut down, stop the housekeeper, and free now or with the last lease.
    void orphan() noexcept;
    /// Lease::release: counts the release in flight so an orphaned core is never freed
    /// under it, and frees the core if this release was its last.
    void release_entry(std::uint32_t slot, std::uint32_t word, Connection* conn, std::int64_t acquired_ns,
                       bool invalid) noexcept;

    Lease acquire(std::chrono::milliseconds timeout);
    std::optional<Lease> try_acquire();
    bool shutdown(std::chrono::milliseconds grace);
    PoolStats stats() const;
    std::vector<LeakReport> leaks() const { return leaks_.reports(); }
    void resize(std::size_t max_size, std::size_t min_idle);
    bool wait_for_min_idle(std::chrono::milliseconds timeout);
    void suspend();
    void resume();
    void evict_all();
    void note_transaction_retry() noexcept { metrics_.mine().transaction_retries.fetch_add(1, std::memory_order_relaxed); }

    /// True when leak reclaim took this lease back.
    bool reclaimed(std::uint32_t slot, std::uint32_t word) const noexcept {
        return leaks_.reclaims() && slots_[slot].state.load(std::memory_order_acquire) != word;
    }

    const Driver& driver() const noexcept { return connector_.driver(); }

    const PoolConfig config_;

private:
    struct Taken {
        std::uint32_t slot;
        std::uint32_t word;
        bool created;
    };

    // --- acquire (acquire.cpp) ---
    Lease acquire_impl(std::int64_t start, std::int64_t deadline, bool may_wait, bool& got);
    bool take_fast(Taken& out, std::int64_t now) noexcept;
    std::optional<Taken> acquire_slow(std::int64_t start, std::int64_t deadline, bool may_wait) POOLBENCH_EXCLUDES(mu_);
    Taken open_into(std::uint32_t slot, std::int64_t deadline) POOLBENCH_EXCLUDES(mu_);
    Lease make_lease(std::int64_t start, const Taken& t);
    [[noreturn]] void throw_timeout(std::int64_t start, std::int64_t deadline) POOLBENCH_REQUIRES(mu_);

    // --- release (release.cpp). Those returning bool: true if this thread claimed freeing
    // the orphaned core (see core.cpp, lifetime). ---
    [[nodiscard]] bool release(std::uint32_t slot, std::uint32_t word, Connection* conn, std::int64_t acquired_ns,
                               bool invalid) noexcept POOLBENCH_EXCLUDES(mu_);
    void wake_front() noexcept POOLBENCH_EXCLUDES(mu_);
    [[nodiscard]] bool release_slow(std::uint32_t slot, std::uint32_t idle_word, std::int64_t now) noexcept
        POOLBENCH_EXCLUDES(mu_);
    [[nodiscard]] bool release_reclaimed(std::uint32_t slot, std::uint32_t word, std::int64_t now) noexcept
        POOLBENCH_EXCLUDES(mu_);
    [[nodiscard]] bool destroy_leased(std::uint32_t slot, std::uint32_t word, DestroyReason reason) noexcept
        POOLBENCH_EXCLUDES(mu_);
    /// Destroys a returned connection that is too old, evicted or surplus. Sets `destroyed`.
    [[nodiscard]] bool destroy_if_stale(std::uint32_t slot, std::uint32_t word, std::int64_t now,
                                        bool& destroyed) noexcept POOLBENCH_EXCLUDES(mu_);

    // --- housekeeper (housekeeper.cpp) ---
    void housekeep() POOLBENCH_EXCLUDES(mu_);
    void fill_min_idle() POOLBENCH_REQUIRES(mu_);
    std::int64_t lifecycle_pass() POOLBENCH_REQUIRES(mu_);
    void check_leaks() POOLBENCH_REQUIRES(mu_);

    // --- helpers under mu_ (core.cpp) ---
    bool may_open() const noexcept POOLBENCH_REQUIRES(mu_) {
        return total_ < max_ && pending_ < config_.max_connecting && !suspended_;
    }
    /// Takes capacity for one connection about to be opened: an empty slot, reserved.
    std::uint32_t reserve_for_open() noexcept POOLBENCH_REQUIRES(mu_);
    void add_total() noexcept POOLBENCH_REQUIRES(mu_);
    void sub_total() noexcept POOLBENCH_REQUIRES(mu_);
    CircuitBreaker::Now breaker_now() const;
    void admit_open(std::int64_t now) POOLBENCH_REQUIRES(mu_);  // throws CircuitOpen
    void connect_failed(const std::string& error) noexcept POOLBENCH_REQUIRES(mu_);
    /// "pool 'x': circuit breaker open since ..." (without the "pool 'x': " prefix if asked).
    std::string breaker_message(bool with_pool = true) const POOLBENCH_REQUIRES(mu_);
    void opened(Slot& s, Connector::Opened& o) noexcept POOLBENCH_REQUIRES(mu_);
    void destroy_idle(std::uint32_t slot, DestroyReason reason, std::vector<ConnPtr>& victims) noexcept
        POOLBENCH_REQUIRES(mu_);
    /// A connection is gone: count it, and let the queue and the housekeeper know.
    void destroyed(DestroyReason reason) noexcept POOLBENCH_REQUIRES(mu_);
    void make_available(std::uint32_t slot, std::uint32_t word) noexcept POOLBENCH_REQUIRES(mu_);
    void mark_suspects(std::int64_t created_before) noexcept POOLBENCH_REQUIRES(mu_);
    void give_permit(bool probe = false) noexcept POOLBENCH_REQUIRES(mu_);
    /// Capacity or a connection may have come free: wake the front waiter if something is
    /// idle, give queued waiters permits to open connections (a half-open probe once the
    /// breaker's cooldown is over), or fail them fast while the breaker is open and nothing
    /// leased could come back to serve them.
    void serve_queue() noexcept POOLBENCH_REQUIRES(mu_);
    void wake_front_if_idle() noexcept POOLBENCH_REQUIRES(mu_);
    void note_peaks() noexcept POOLBENCH_REQUIRES(mu_);
    void sample_fast_peak() noexcept;
    std::string state_line() const POOLBENCH_REQUIRES(mu_);

    // --- lifetime (core.cpp) ---
    bool drained() const noexcept POOLBENCH_REQUIRES(mu_) { return total_ == 0 && reclaimed_.empty(); }
    /// True for exactly one caller once the core is orphaned and drained: that caller frees
    /// it (free_when_quiet) after leaving its own release.
    [[nodiscard]] bool claim_free() noexcept POOLBENCH_REQUIRES(mu_);
    void free_when_quiet() noexcept;

    /// Idle longer than validation_interval as of `now` (HikariCP's alive-bypass window).
    bool needs_validation(const Slot& s, std::int64_t now) const noexcept {
        return validation_ns_ == 0 || now - s.last_used_ns.load(std::memory_order_relaxed) > validation_ns_;
    }

    const Connector connector_;
    const std::uint64_t id_;
    const std::int64_t validation_ns_;
    Slots slots_;
    LeakTracker leaks_;
    ShardedMetrics metrics_;
    FrontSignals front_;  // lock-free view of the queue's front

    // Threads registered in the slow path, plus closed_bit once shut down and
    // suspended_bit while suspended. Zero means the lock-free fast paths may run without
    // looking further.
    std::atomic<std::uint64_t> signal_{0};
    // The highest leased count seen by sample_fast_peak(): the first and then one in
    // fast_peak_every of each metrics shard's hits count the leased slots (no lock), so a
    // steady load served only by the fast path still shows in peak_active (soak's paced
    // load at min_idle = max_size showed 0 after 4000 operations). stats() folds it into
    // counters_, clamped to max_size.
    static constexpr std::uint32_t fast_peak_every = 64;
    std::atomic<std::size_t> fast_peak_{0};
    // total_ is above core_ or max_: a returned connection may have to be destroyed.
    std::atomic<bool> surplus_{false};
    // Bumped by evict_all(); connections opened in an older epoch are destroyed when returned.
    std::atomic<std::uint32_t> evict_epoch_{0};

    mutable Mutex mu_;
    WaiterQueue queue_ POOLBENCH_GUARDED_BY(mu_);
    CircuitBreaker breaker_ POOLBENCH_GUARDED_BY(mu_);
    mutable CoreCounters counters_ POOLBENCH_GUARDED_BY(mu_);
    std::size_t max_ POOLBENCH_GUARDED_BY(mu_);       // max_size now (resize)
    std::size_t min_idle_ POOLBENCH_GUARDED_BY(mu_);  //
    std::size_t core_ POOLBENCH_GUARDED_BY(mu_);      // core_size now
    bool suspended_ POOLBENCH_GUARDED_BY(mu_) = false;
    std::size_t total_ POOLBENCH_GUARDED_BY(mu_) = 0;    // open + being opened, excluding reclaimed
    std::size_t pending_ POOLBENCH_GUARDED_BY(mu_) = 0;  // being opened
    bool closed_ POOLBENCH_GUARDED_BY(mu_) = false;
    bool orphaned_ POOLBENCH_GUARDED_BY(mu_) = false;
    bool free_claimed_ POOLBENCH_GUARDED_BY(mu_) = false;
    std::string last_connect_error_ POOLBENCH_GUARDED_BY(mu_);
    bool housekeeper_retry_ POOLBENCH_GUARDED_BY(mu_) = false;  // a warm-up open failed: wait an interval
    std::vector<Reclaimed> reclaimed_ POOLBENCH_GUARDED_BY(mu_);
    std::condition_variable closing_cv_;      // backoff waits end early on shutdown
    std::condition_variable drained_cv_;      // total_ reached 0 after shutdown
    std::condition_variable housekeeper_cv_;  // below min_idle, or closed
    std::condition_variable warm_cv_;         // a connection was opened, or opening one failed
    std::thread housekeeper_;
};

constexpr std::uint64_t closed_bit = std::uint64_t{1} << 63;
constexpr std::uint64_t suspended_bit = std::uint64_t{1} << 62;

}  // namespace poolbench::internal

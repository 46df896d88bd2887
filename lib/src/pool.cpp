// The pool: slots with compare-and-set states, a thread-local hint, a FIFO hand-off
// queue behind one mutex, and a housekeeper thread.
//
// Each slot's state is one 32-bit word: the low two bits are its kind (empty, idle,
// leased, reserved), the rest a lease number bumped on every idle->leased and
// reserved->leased transition. A Lease remembers the word it was given; it is valid
// exactly while the slot still holds that word, which makes revocation (leak reclaim)
// and late returns ABA-safe without a lock.
//
// Kinds and who may change them:
//   empty    -> reserved   under mu_, by a thread that took capacity (total_ += 1) to open one
//   reserved -> leased     under mu_, by that thread once the connection is open
//   reserved -> idle       under mu_, by the housekeeper (min_idle warm-up)
//   idle     -> leased     by CAS from any acquiring thread (fast path) or under mu_ (hand-off)
//   leased   -> idle       by the lease holder (a CAS when leases can be revoked)
//   idle     -> reserved   by CAS, under mu_, to close an idle connection (shutdown)
//   leased   -> empty      under mu_, by the lease holder, to destroy its connection
//   leased   -> reserved   by CAS, under mu_, by the housekeeper revoking a leaked lease
//   reserved -> empty      under mu_, when opening failed or after a revoke
// Slot::conn is written only by a thread that owns the slot (reserved or leased) and
// only under mu_. It is shared: a thread that must interrupt() a statement (shutdown
// after its grace, leak reclaim) copies it under mu_ and calls interrupt() after
// unlocking, since that can block (PQcancel opens a connection to the server); the copy
// keeps the connection alive if its holder returns and closes it meanwhile.
//
// The Dekker pairs that keep a released connection from sitting idle while someone waits:
// a releasing thread stores `idle` then loads signal_ (and wake_pending_); a thread
// entering the slow path increments signal_ then scans the slots, and a woken waiter
// clears wake_pending_ then scans. All are seq_cst, so at least one side sees the other.
#include "poolbench/pool.hpp"

#include "poolbench/internal/fast_clock.hpp"
#include "backoff.hpp"
#include "futex.hpp"
#include "leak_trace.hpp"
#include "poolbench/internal/atomic_histogram.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <ctime>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace poolbench {
namespace internal {

namespace {

using Clock = std::chrono::steady_clock;
using ConnPtr = std::shared_ptr<Connection>;  // shared only to outlive an interrupt(); see the top

/// Hot-path time: the TSC scaled to steady_clock nanoseconds where the CPU allows it
/// (see fast_clock.hpp); it agrees with steady_clock to within microseconds, so deadlines
/// computed with it can be handed to condition variables as steady_clock time points.
inline std::int64_t now_ns() noexcept { return fast_clock::now_ns(); }

inline Clock::time_point to_time_point(std::int64_t ns) {
    return Clock::time_point(std::chrono::duration_cast<Clock::duration>(std::chrono::nanoseconds(ns)));
}

inline std::uint64_t elapsed(std::int64_t from, std::int64_t to) noexcept {
    return to > from ? static_cast<std::uint64_t>(to - from) : 0;
}

template <class Rep, class Period>
inline std::int64_t to_ns(std::chrono::duration<Rep, Period> d) noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

// Slot state words.
constexpr std::uint32_t empty = 0;
constexpr std::uint32_t idle = 1;
constexpr std::uint32_t leased = 2;
constexpr std::uint32_t reserved = 3;
constexpr std::uint32_t kind_mask = 3;
constexpr std::uint32_t kind_of(std::uint32_t w) noexcept { return w & kind_mask; }
constexpr std::uint32_t with_kind(std::uint32_t w, std::uint32_t k) noexcept { return (w & ~kind_mask) | k; }
/// The word of the next lease: lease number + 1 (wrapping), kind leased.
constexpr std::uint32_t next_lease(std::uint32_t w) noexcept { return ((w & ~kind_mask) + 4U) | leased; }

constexpr std::uint64_t closed_bit = std::uint64_t{1} << 63;
constexpr std::uint64_t suspended_bit = std::uint64_t{1} << 62;
constexpr std::int64_t never = INT64_MAX;
constexpr std::size_t shard_count = 16;
constexpr std::size_t max_leak_reports = 1000;

std::atomic<std::uint64_t> next_pool_id{1};
std::atomic<std::uint32_t> next_thread_index{0};

/// The connection this thread used last, and from which pool (ids are never reused).
struct ThreadHint {
    std::uint64_t pool_id = 0;
    std::uint32_t slot = 0;
};
thread_local ThreadHint tl_hint;
thread_local std::uint32_t tl_index = next_thread_index.fetch_add(1, std::memory_order_relaxed);
thread_local std::uint32_t tl_acquires = 0;  // for sampled stack capture
// Set when this thread, inside a release, claimed the freeing of an orphaned core.
thread_local bool tl_free_claimed = false;

/// "13:45:01.123 UTC" for messages.
std::string clock_text(std::chrono::system_clock::time_point t) {
    const std::time_t secs = std::chrono::system_clock::to_time_t(t);
    std::tm tm{};
    gmtime_r(&secs, &tm);
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count() % 1000;
    char buf[32];
    std::snprintf(buf, sizeof buf, "%02d:%02d:%02d.%03d UTC", tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
    return buf;
}

}  // namespace

/// Who holds a leased slot and since when; written by each new holder when leak
/// tracking is on, read by the housekeeper. Guarded by Slot::trace_mu.
struct LeaseTrace {
    std::uint32_t word = 0;  // the lease this describes
    std::int64_t leased_ns = 0;
    long thread_id = 0;
    std::string thread_name;
    RawStack stack;
};

struct alignas(64) Slot {
    std::atomic<std::uint32_t> state{empty};
    std::atomic<std::int64_t> last_used_ns{0};  // relaxed; written on release, read by acquirers
    ConnPtr conn;  // see the ownership rule at the top
    // conn.get(), for the lease holder, which reads it outside mu_ while a revoke may
    // move `conn` away (atomic, so that read is never a data race). The same goes for
    // expires_ns and epoch, which a revoked holder may read while the slot is refilled.
    std::atomic<Connection*> raw{nullptr};
    std::int64_t created_ns = 0;                   // written with conn, under mu_
    std::atomic<std::int64_t> expires_ns{never};   // created + jittered max_lifetime; with conn
    std::atomic<std::uint32_t> epoch{0};           // evict_all() generation it was opened in; with conn
    std::int64_t last_ping_ns = 0;              // housekeeper's keepalive; housekeeper only
    // A connection opened before one found dead: ping it before handing it out again.
    std::atomic<bool> suspect{false};
    // Leak tracking only.
    std::atomic<std::uint32_t> reported_word{0};  // the lease the housekeeper reported
    std::mutex trace_mu;
    LeaseTrace trace;
};

/// Per-thread-group counters, so threads running on different cores do not share a line.
struct alignas(64) Shard {
    std::atomic<std::uint64_t> hits{0};
    std::atomic<std::uint64_t> validation_failures{0};
    std::atomic<std::uint64_t> transaction_retries{0};
    // Threads inside release() (their lease's shard, not necessarily their own): an
    // orphaned core is freed only when no release is still running in it.
    std::atomic<std::int64_t> releasing{0};
    AtomicHistogram acquire_wait;
    AtomicHistogram usage;
};

// A thread queued for a connection, on its own stack. Fields other than `outcome` and
// `bell` are read and written under mu_. The final outcome (and slot/word before it) is
// written under mu_ and published with a release store, so the woken thread can act on
// it without taking mu_ again.
struct Waiter {
    enum class Outcome { waiting, handed, permit, closed, circuit_open };
    Bell bell;
    Waiter* next = nullptr;
    Waiter* prev = nullptr;
    std::int64_t since_ns = 0;  // when it queued
    std::atomic<Outcome> outcome{Outcome::waiting};
    std::uint32_t slot = 0;
    std::uint32_t word = 0;     // the lease word, when handed
    bool notified = false;      // woken to look for an idle connection
    bool passed_over = false;   // woke to look and found running threads had taken it all
    bool looked_at_threshold = false;

    /// Under mu_: marks the bell and sets the final outcome. The caller wakes the bell
    /// (Bell::wake) with the address returned, under mu_ or after releasing it.
    /// The outcome store must be the last write to *this: a waiter that wakes early (its
    /// deadline, a stale wake) and sees `handed` returns without mu_, and its stack frame
    /// is reused at once. Marking first loses nothing: a waiter that sees the mark but
    /// not yet the outcome takes mu_, which we hold, and reads the outcome under it.
    std::uint32_t* settle(Outcome o) noexcept {
        std::uint32_t* const address = bell.mark();
        outcome.store(o, std::memory_order_release);
        return address;
    }
};

/// A connection taken back from a leaked lease, kept alive until that lease is returned
/// (its holder may still be inside a call on it) or the pool is freed.
struct Revoked {
    std::uint32_t slot;
    std::uint32_t word;
    ConnPtr conn;
};

class PoolCore {
public:
    PoolCore(std::shared_ptr<Driver> driver, PoolConfig config)
        : config_(std::move(config)),
          driver_(std::move(driver)),
          id_(next_pool_id.fetch_add(1, std::memory_order_relaxed)),
          capacity_(static_cast<std::uint32_t>(std::max(config_.max_size, config_.max_size_limit))),
          slots_(new Slot[capacity_]),
          max_(config_.max_size),
          min_idle_(config_.min_idle),
          core_(config_.core_size ? config_.core_size : config_.max_size) {
        if (!driver_) throw ConfigError("pool '" + config_.name + "': no driver given");
    }

    PoolCore(const PoolCore&) = delete;
    PoolCore& operator=(const PoolCore&) = delete;
    ~PoolCore() = default;

    void start_housekeeper() { housekeeper_ = std::thread([this] { housekeep(); }); }

    /// ~Pool: shut down, stop the housekeeper, and free now or with the last lease.
    void orphan() noexcept {
        shutdown(std::chrono::milliseconds{0});
        if (housekeeper_.joinable()) housekeeper_.join();
        bool free_now = false;
        {
            std::lock_guard lk(mu_);
            orphaned_ = true;
            free_now = claim_free_unlocked();
        }
        if (free_now) free_when_quiet();
    }

    /// The entry for Lease::release: counts the release in flight so that an orphaned
    /// core is never freed under it, and frees the core if this release finished it.
    void release_entry(std::uint32_t slot, std::uint32_t word, Connection* conn, std::int64_t acquired_ns,
                       bool invalid) noexcept {
        Shard& sh = shard();
        sh.releasing.fetch_add(1, std::memory_order_seq_cst);
        tl_free_claimed = false;
        release(slot, word, conn, acquired_ns, invalid);
        const bool free_now = tl_free_claimed;
        tl_free_claimed = false;
        sh.releasing.fetch_sub(1, std::memory_order_seq_cst);
        if (free_now) free_when_quiet();  // the claim makes this thread the only one to free it
    }

    Lease acquire(std::chrono::milliseconds timeout);
    std::optional<Lease> try_acquire();
    void release(std::uint32_t slot, std::uint32_t word, Connection* conn, std::int64_t acquired_ns,
                 bool invalid) noexcept;
    bool shutdown(std::chrono::milliseconds grace);
    PoolStats stats() const;
    std::vector<LeakReport> leaks() const;
    void resize(std::size_t max_size, std::size_t min_idle);
    void suspend();
    void resume();
    void evict_all();

    void note_transaction_retry() noexcept { shard().transaction_retries.fetch_add(1, std::memory_order_relaxed); }

    /// True when leak reclaim took this lease back.
    bool revoked(std::uint32_t slot, std::uint32_t word) const noexcept {
        return may_revoke_ && slots_[slot].state.load(std::memory_order_acquire) != word;
    }

    const PoolConfig config_;
    const std::shared_ptr<Driver> driver_;

private:
    struct Taken {
        std::uint32_t slot;
        std::uint32_t word;
        bool created;
    };
    struct Opened {
        ConnPtr conn;
        std::string failure;
        std::int64_t took_ns;
    };

    Shard& shard() noexcept { return shards_[tl_index % shard_count]; }
    /// Idle longer than validation_interval as of `now` (HikariCP's alive-bypass window).
    bool needs_validation(const Slot& s, std::int64_t now) const noexcept {
        return validation_ns_ == 0 || now - s.last_used_ns.load(std::memory_order_relaxed) > validation_ns_;
    }
    /// The front waiter has waited past starvation_threshold: hand-offs become strict.
    bool starving(std::int64_t now) const noexcept {
        const std::int64_t since = front_since_ns_.load(std::memory_order_relaxed);
        return since != 0 && now - since >= starvation_ns_;
    }
    bool try_lease(Slot& s, std::uint32_t& word) noexcept {
        std::uint32_t w = s.state.load(std::memory_order_relaxed);
        if (kind_of(w) != idle) return false;
        const std::uint32_t next = next_lease(w);
        if (!s.state.compare_exchange_strong(w, next, std::memory_order_acq_rel)) return false;
        word = next;
        return true;
    }

    Lease acquire_impl(std::int64_t start, std::int64_t deadline, bool may_wait, bool& got);
    bool take_fast(Taken& out, std::int64_t now) noexcept;
    bool scan_idle(Taken& out) noexcept;
    std::optional<Taken> acquire_slow(std::int64_t start, std::int64_t deadline, bool may_wait);
    Opened open_connection(std::int64_t deadline) noexcept;
    Taken open_into(std::uint32_t slot, std::int64_t deadline);
    Lease make_lease(std::int64_t start, const Taken& t);
    void note_lease(Slot& s, std::uint32_t word, std::int64_t now) noexcept;
    void release_slow(std::uint32_t slot, std::uint32_t word, std::int64_t now) noexcept;
    void release_revoked(std::uint32_t slot, std::uint32_t word, std::int64_t now) noexcept;
    bool retire_leased(std::uint32_t slot, std::uint32_t word, std::int64_t now) noexcept;
    std::int64_t lifecycle_pass(std::unique_lock<std::mutex>& lk);
    void wake_front() noexcept;
    void destroy_leased(std::uint32_t slot, std::uint32_t word, DestroyReason reason) noexcept;
    void housekeep();
    void check_leaks(std::unique_lock<std::mutex>& lk);
    void publish(LeakReport report) noexcept;

    // --- helpers that must run under mu_ ---
    std::uint32_t claim_empty_unlocked() noexcept;
    void add_total_unlocked() noexcept;
    void sub_total_unlocked() noexcept;
    bool may_open_unlocked() const noexcept {
        return total_ < max_ && pending_ < config_.max_connecting && !suspended_;
    }
    void admit_open_unlocked(std::int64_t now);          // throws CircuitOpen
    bool breaker_allows_unlocked(std::int64_t now) noexcept;
    void breaker_success_unlocked() noexcept;
    void breaker_failure_unlocked(const std::string& error, std::int64_t now) noexcept;
    void breaker_transition_unlocked(BreakerState to, std::string reason) noexcept;
    /// "pool 'x': circuit breaker open since ..." (without the "pool 'x': " prefix if asked).
    std::string breaker_message_unlocked(std::int64_t now, bool with_pool = true) const;
    void opened_unlocked(Slot& s, Opened& o) noexcept;
    void close_idle_unlocked(std::uint32_t slot, DestroyReason reason,
                             std::vector<ConnPtr>& victims) noexcept;
    void make_available_unlocked(std::uint32_t slot, std::uint32_t word) noexcept;
    void mark_suspects_unlocked(std::int64_t created_before) noexcept;
    void give_permit_unlocked(bool probe = false) noexcept;
    /// Capacity or a connection may have come free: wake the front waiter if something is
    /// idle, give queued waiters permits to open connections (a half-open probe once the
    /// breaker's cooldown is over), or fail them fast while the breaker is open and
    /// nothing leased could come back to serve them.
    void serve_queue_unlocked() noexcept;
    void enqueue_unlocked(Waiter& w) noexcept;
    void unlink_unlocked(Waiter& w) noexcept;
    Waiter* pop_front_unlocked() noexcept;
    void wake_front_if_idle_unlocked() noexcept;
    std::size_t count_leased_unlocked() const noexcept;
    void note_peaks_unlocked() const noexcept;
    void connection_gone_unlocked(DestroyReason reason) noexcept;
    bool drained_unlocked() const noexcept { return total_ == 0 && revoked_.empty(); }
    /// True for exactly one caller once the core is orphaned and drained: that caller frees
    /// it (free_when_quiet) after leaving its own release. Sets tl_free_claimed.
    bool claim_free_unlocked() noexcept {
        if (!orphaned_ || free_claimed_ || !drained_unlocked()) return false;
        free_claimed_ = true;
        tl_free_claimed = true;
        return true;
    }
    /// Waits for releases still running in this core (a thread that returned a connection
    /// swept by shutdown may still be on its way out), then frees it.
    void free_when_quiet() noexcept {
        for (;;) {
            std::int64_t running = 0;
            for (const Shard& sh : shards_) running += sh.releasing.load(std::memory_order_seq_cst);
            if (running == 0) break;
            std::this_thread::yield();
        }
        delete this;
    }
    std::string state_line_unlocked() const;

    const std::uint64_t id_;
    const std::uint32_t capacity_;
    const std::unique_ptr<Slot[]> slots_;
    const std::int64_t validation_ns_ = to_ns(config_.validation_interval);
    const std::int64_t starvation_ns_ = std::max<std::int64_t>(1, to_ns(config_.starvation_threshold));
    const bool track_leaks_ = config_.leak_threshold.count() > 0;
    const bool may_revoke_ = track_leaks_ && config_.leak_reclaim_after.count() > 0;
    const bool breaker_on_ = config_.breaker_failures > 0;

    // Threads registered in the slow path, plus closed_bit once shut down. Zero means the
    // lock-free fast paths may run without looking further.
    std::atomic<std::uint64_t> signal_{0};
    // When the front waiter queued (0: nobody queued). Written under mu_, read anywhere.
    std::atomic<std::int64_t> front_since_ns_{0};
    // The front waiter has been woken and not yet looked: further releases need not wake it.
    std::atomic<bool> wake_pending_{false};
    // The front waiter already woke once to look and lost to running threads: waking it
    // on every release would cost a futile context switch per operation, so releases
    // leave it asleep; it looks again when it starts starving, and from then on every
    // release hands it a connection directly. Written under mu_.
    std::atomic<bool> front_passed_over_{false};
    // total_ is above core_ or max_: a returned connection may have to close.
    std::atomic<bool> surplus_{false};
    // Bumped by evict_all(); connections opened in an older epoch close when returned.
    std::atomic<std::uint32_t> evict_epoch_{0};

    mutable std::mutex mu_;
    std::size_t max_;          // max_size now (resize)                       (mu_)
    std::size_t min_idle_;     //                                             (mu_)
    std::size_t core_;         // core_size now                               (mu_)
    bool suspended_ = false;   //                                             (mu_)
    std::size_t total_ = 0;    // open + being opened, excluding revoked      (mu_)
    std::size_t pending_ = 0;  // being opened                                (mu_)
    std::size_t queued_ = 0;   // waiters in the list                         (mu_)
    Waiter* head_ = nullptr;   //                                             (mu_)
    Waiter* tail_ = nullptr;   //                                             (mu_)
    bool closed_ = false;      //                                             (mu_)
    bool orphaned_ = false;    //                                             (mu_)
    bool free_claimed_ = false;  //                                           (mu_)
    mutable std::size_t peak_active_ = 0;  //                                 (mu_)
    std::size_t peak_total_ = 0;           //                                 (mu_)
    std::uint64_t created_ = 0;            //                                 (mu_)
    std::uint64_t misses_ = 0;             //                                 (mu_)
    std::uint64_t waits_ = 0;              //                                 (mu_)
    std::uint64_t timeouts_ = 0;           //                                 (mu_)
    std::uint64_t connect_failures_ = 0;   //                                 (mu_)
    std::array<std::uint64_t, destroy_reason_count> destroyed_{};  //         (mu_)
    std::string last_connect_error_;       //                                 (mu_)
    Histogram connect_hist_;               //                                 (mu_)
    bool housekeeper_retry_ = false;       //                                 (mu_)
    std::vector<Revoked> revoked_;         //                                 (mu_)
    std::uint64_t leaks_detected_ = 0;     //                                 (mu_)
    std::uint64_t leaks_returned_late_ = 0;  //                               (mu_)
    std::uint64_t leaks_reclaimed_ = 0;    //                                 (mu_)
    std::deque<LeakReport> leak_reports_;  //                                 (mu_)
    std::uint64_t reconnect_debt_ = 0;     // broken/invalid ones not yet replaced (mu_)
    std::uint64_t reconnects_ = 0;         //                                 (mu_)
    std::uint64_t keepalives_ = 0;         //                                 (mu_)
    std::uint64_t overloaded_ = 0;         //                                 (mu_)
    std::uint64_t circuit_rejections_ = 0; //                                 (mu_)
    BreakerState breaker_ = BreakerState::closed;  //                         (mu_)
    int consecutive_failures_ = 0;         //                                 (mu_)
    std::int64_t breaker_until_ns_ = 0;    // open until                      (mu_)
    std::chrono::system_clock::time_point breaker_since_{};  //               (mu_)
    std::uint64_t breaker_transitions_ = 0;  //                               (mu_)
    std::deque<BreakerTransition> breaker_history_;  //                       (mu_)
    std::condition_variable closing_cv_;      // backoff waits end early on shutdown
    std::condition_variable drained_cv_;      // total_ reached 0 after shutdown
    std::condition_variable housekeeper_cv_;  // below min_idle, or closed

    std::array<Shard, shard_count> shards_;
    std::thread housekeeper_;
};

// ---------------------------------------------------------------------------------------
// acquire

bool PoolCore::take_fast(Taken& out, std::int64_t now) noexcept {
    // With waiters queued a running thread may still take an idle connection (as in
    // HikariCP and Go's sync.Mutex "normal mode") unless the front waiter is starving.
    const std::uint64_t sig = signal_.load(std::memory_order_seq_cst);
    if (sig != 0 && ((sig & (closed_bit | suspended_bit)) != 0 || starving(now))) return false;
    // The connection this thread returned last is usually still idle: one CAS, no scan.
    if (tl_hint.pool_id == id_ && config_.idle_order == IdleOrder::lifo &&
        try_lease(slots_[tl_hint.slot], out.word)) {
        out.slot = tl_hint.slot;
        return true;
    }
    return scan_idle(out);
}

bool PoolCore::scan_idle(Taken& out) noexcept {
    // Pick the most (LIFO) or least (FIFO) recently used idle slot; retry if it is taken
    // between the look and the CAS. Bounded: each failed CAS means another thread won one.
    for (int attempt = 0; attempt < 64; ++attempt) {
        std::uint32_t best = capacity_;
        std::int64_t best_used = 0;
        for (std::uint32_t i = 0; i < capacity_; ++i) {
            if (kind_of(slots_[i].state.load(std::memory_order_seq_cst)) != idle) continue;
            const std::int64_t used = slots_[i].last_used_ns.load(std::memory_order_relaxed);
            const bool better = config_.idle_order == IdleOrder::lifo ? used > best_used : used < best_used;
            if (best == capacity_ || better) {
                best = i;
                best_used = used;
            }
        }
        if (best == capacity_) return false;
        if (try_lease(slots_[best], out.word)) {
            out.slot = best;
            return true;
        }
    }
    return false;
}

Lease PoolCore::acquire(std::chrono::milliseconds timeout) {
    const std::int64_t start = now_ns();
    // One deadline for the whole call, so retrying after a failed validation cannot
    // restart the timeout.
    bool got = false;
    return acquire_impl(start, start + to_ns(timeout), true, got);
}

std::optional<Lease> PoolCore::try_acquire() {
    const std::int64_t start = now_ns();
    bool got = false;
    Lease l = acquire_impl(start, start, false, got);
    if (!got) return std::nullopt;
    return l;
}

Lease PoolCore::acquire_impl(std::int64_t start, std::int64_t deadline, bool may_wait, bool& got) {
    for (;;) {
        Taken t{0, 0, false};
        if (!take_fast(t, start)) {
            auto slow = acquire_slow(start, deadline, may_wait);
            if (!slow) return Lease{};
            t = *slow;
        }
        Slot& s = slots_[t.slot];
        if (!t.created && (s.suspect.load(std::memory_order_relaxed) || needs_validation(s, start))) {
            if (!s.raw.load(std::memory_order_acquire)->ping()) {
                shard().validation_failures.fetch_add(1, std::memory_order_relaxed);
                destroy_leased(t.slot, t.word, DestroyReason::validation);
                continue;  // the same deadline still holds
            }
            s.suspect.store(false, std::memory_order_relaxed);
        }
        got = true;
        return make_lease(start, t);
    }
}

Lease PoolCore::make_lease(std::int64_t start, const Taken& t) {
    const std::int64_t now = now_ns();
    Shard& sh = shard();
    sh.acquire_wait.record(elapsed(start, now));
    if (!t.created) sh.hits.fetch_add(1, std::memory_order_relaxed);
    tl_hint = ThreadHint{id_, t.slot};
    Slot& s = slots_[t.slot];
    // Before note_lease publishes the trace, after which a revoke and refill could put
    // another connection in the slot (harmless, the Lease would then be revoked, but
    // this way the pointer is always the one this lease was given).
    Connection* const conn = s.raw.load(std::memory_order_acquire);
    if (track_leaks_) note_lease(s, t.word, now);
    return Lease(this, t.slot, conn, now, t.word);
}

void PoolCore::note_lease(Slot& s, std::uint32_t word, std::int64_t now) noexcept {
    // Capture outside the trace lock; symbolize only if this lease is ever reported.
    RawStack stack;
    const std::uint32_t every = config_.leak_trace_every;
    if (every != 0 && ++tl_acquires % every == 0) capture_stack(stack);
    const long tid = current_thread_id();
    std::lock_guard g(s.trace_mu);
    s.trace.word = word;
    s.trace.leased_ns = now;
    s.trace.thread_id = tid;
    try {
        s.trace.thread_name = current_thread_name();  // <= 15 chars: no allocation
    } catch (...) {
        s.trace.thread_name.clear();
    }
    s.trace.stack = stack;
}

std::optional<PoolCore::Taken> PoolCore::acquire_slow(std::int64_t start, std::int64_t deadline, bool may_wait) {
    std::unique_lock lk(mu_);
    if (closed_) throw PoolClosed("pool '" + config_.name + "' is shut down; no new leases are handed out");
    signal_.fetch_add(1, std::memory_order_seq_cst);
    // Deregister before opening a connection, which may take long: while registered,
    // other threads' releases take the lock to look for waiters.
    struct Registration {
        std::atomic<std::uint64_t>& signal;
        bool active = true;
        void end() noexcept {
            if (active) signal.fetch_sub(1, std::memory_order_seq_cst);
            active = false;
        }
        ~Registration() { end(); }
    } registration{signal_};

    // While the front waiter is starving, join the back of the queue rather than take a
    // connection that is on its way to it.
    Taken t{0, 0, false};
    if (!suspended_ && !starving(now_ns()) && scan_idle(t)) {
        note_peaks_unlocked();
        return t;
    }
    if (head_ == nullptr && may_open_unlocked()) {
        admit_open_unlocked(now_ns());  // the circuit breaker may refuse at once
        const std::uint32_t slot = claim_empty_unlocked();
        add_total_unlocked();
        ++pending_;
        lk.unlock();
        registration.end();
        return open_into(slot, deadline);
    }
    if (!may_wait) return std::nullopt;
    if (config_.max_waiting != 0 && queued_ >= config_.max_waiting) {
        ++overloaded_;
        throw PoolOverloaded("pool '" + config_.name + "': too many threads waiting for a connection (" +
                             state_line_unlocked() + ", max_waiting " + std::to_string(config_.max_waiting) +
                             "); shed load or raise max_size");
    }

    Waiter w;
    w.since_ns = now_ns();
    enqueue_unlocked(w);
    ++waits_;
    const auto until = to_time_point(deadline);
    const auto starving_from = to_time_point(w.since_ns + starvation_ns_);
    for (;;) {
        // A passed-over waiter is not woken by releases: it looks once more when it starts
        // starving (after which releases hand it connections directly).
        const bool look_at_threshold = w.passed_over && !w.looked_at_threshold && starving_from < until;
        const std::uint32_t seen = w.bell.seen();
        lk.unlock();
        w.bell.wait_until(seen, look_at_threshold ? starving_from : until);
        // Handed a connection: return without taking mu_ (the releaser may still hold it).
        if (w.outcome.load(std::memory_order_acquire) == Waiter::Outcome::handed) {
            return Taken{w.slot, w.word, false};
        }
        lk.lock();
        if (w.outcome.load(std::memory_order_relaxed) != Waiter::Outcome::waiting) break;
        const auto woke = Clock::now();
        const bool timed_out = woke >= until;
        if (look_at_threshold && woke >= starving_from) {
            // Looking at the threshold: stop being passed over first, so a release after
            // the look below sees the flag clear and wakes us (Dekker pair with release()).
            w.looked_at_threshold = true;
            w.passed_over = false;
            if (head_ == &w) front_passed_over_.store(false, std::memory_order_seq_cst);
        }
        const bool was_notified = w.notified;
        if (w.notified) {
            // A release woke us to look (normal mode). Clear the flag before looking, so a
            // release after our look wakes us again (the Dekker pair with release()).
            w.notified = false;
            wake_pending_.store(false, std::memory_order_seq_cst);
        }
        if (head_ == &w && !suspended_ && scan_idle(t)) {
            unlink_unlocked(w);
            wake_front_if_idle_unlocked();
            note_peaks_unlocked();
            return t;
        }
        if (was_notified && head_ == &w && !w.looked_at_threshold) {
            w.passed_over = true;
            front_passed_over_.store(true, std::memory_order_seq_cst);
        }
        if (timed_out) {
            unlink_unlocked(w);
            serve_queue_unlocked();
            ++timeouts_;
            // The wait ran to the deadline (on steady_clock); the hot-path clock may read a
            // hair less, so report at least the timeout.
            const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::nanoseconds(std::max(elapsed(start, now_ns()), elapsed(start, deadline))));
            std::string msg = "pool '" + config_.name + "': timed out after " + std::to_string(waited.count()) +
                              " ms waiting for a connection (" + state_line_unlocked() + ")";
            if (!last_connect_error_.empty()) msg += "; last connection error: " + last_connect_error_;
            msg += "; raise max_size or acquire_timeout, or return leases sooner";
            throw PoolTimeout(msg, waited, count_leased_unlocked(), max_, queued_);
        }
    }
    switch (w.outcome.load(std::memory_order_relaxed)) {
        case Waiter::Outcome::handed:
            return Taken{w.slot, w.word, false};
        case Waiter::Outcome::permit:
            lk.unlock();
            registration.end();
            return open_into(w.slot, deadline);
        case Waiter::Outcome::circuit_open:
            ++circuit_rejections_;
            throw CircuitOpen(breaker_message_unlocked(now_ns()));
        default:
            throw PoolClosed("pool '" + config_.name + "' was shut down while waiting for a connection");
    }
}

PoolCore::Opened PoolCore::open_connection(std::int64_t deadline) noexcept {
    Opened o;
    const std::int64_t t0 = now_ns();
    try {
        // A connect gets at least a short grace even when called at the deadline.
        o.conn = driver_->connect(to_time_point(std::max(deadline, t0 + 1'000'000'000)));
        if (!o.conn) o.failure = "the driver returned no connection";
    } catch (const std::exception& e) {
        o.failure = e.what();
        if (o.failure.empty()) o.failure = "unknown error";
    } catch (...) {
        o.failure = "unknown error";
    }
    o.took_ns = now_ns() - t0;
    return o;
}

PoolCore::Taken PoolCore::open_into(std::uint32_t slot, std::int64_t deadline) {
    Slot& s = slots_[slot];
    Opened o;
    std::unique_lock lk(mu_, std::defer_lock);
    for (int attempt = 1;; ++attempt) {
        o = open_connection(deadline);
        lk.lock();
        if (o.failure.empty() || closed_) break;
        ++connect_failures_;
        last_connect_error_ = o.failure;
        breaker_failure_unlocked(o.failure, now_ns());
        const std::int64_t now = now_ns();
        if (attempt >= config_.connect_retry.max_attempts || breaker_ != BreakerState::closed || now >= deadline) break;
        // Exponential backoff with full jitter (backoff.hpp), never past the deadline; shutdown ends it.
        const std::int64_t wait = backoff(config_.connect_retry, attempt).count();
        closing_cv_.wait_until(lk, to_time_point(std::min(deadline, now + wait)), [this] { return closed_; });
        if (closed_) break;
        lk.unlock();
    }
    --pending_;
    if (o.failure.empty() && !closed_) {
        opened_unlocked(s, o);
        ++misses_;
        const std::uint32_t word = next_lease(s.state.load(std::memory_order_relaxed));
        s.state.store(word, std::memory_order_release);
        note_peaks_unlocked();
        serve_queue_unlocked();  // max_connecting may have held the next in line back
        return Taken{slot, word, true};
    }
    // Opening failed, or the pool closed meanwhile: give the capacity back.
    s.state.store(with_kind(s.state.load(std::memory_order_relaxed), empty), std::memory_order_release);
    sub_total_unlocked();
    if (!o.failure.empty()) {
        // counted per attempt above
    } else {
        ++created_;
        ++destroyed_[static_cast<std::size_t>(DestroyReason::shutdown)];
    }
    serve_queue_unlocked();
    if (closed_) drained_cv_.notify_all();
    const bool closed_meanwhile = o.failure.empty();
    const bool breaker_open = breaker_ == BreakerState::open;
    const std::string msg = closed_meanwhile ? "pool '" + config_.name + "' was shut down while a connection was being opened"
                            : breaker_open   ? "pool '" + config_.name + "': cannot open a new connection: " + o.failure +
                                                 "; " + breaker_message_unlocked(now_ns(), false)
                                             : "pool '" + config_.name + "': cannot open a new connection: " + o.failure;
    lk.unlock();
    o.conn.reset();
    if (closed_meanwhile) throw PoolClosed(msg);
    // This acquire did try to connect: a ConnectError, whose message says the breaker is
    // now open. CircuitOpen is for acquires refused without trying.
    throw ConnectError(msg);
}

// ---------------------------------------------------------------------------------------
// release

void PoolCore::release(std::uint32_t slot, std::uint32_t word, Connection* conn, std::int64_t acquired_ns,
                       bool invalid) noexcept {
    const std::int64_t now = now_ns();
    shard().usage.record(elapsed(acquired_ns, now));
    Slot& s = slots_[slot];
    if (track_leaks_) {
        if (revoked(slot, word)) {
            release_revoked(slot, word, now);
            return;
        }
        if (s.reported_word.load(std::memory_order_acquire) == word) {
            LeakReport r;
            r.kind = LeakReport::Kind::returned;
            r.pool = config_.name;
            r.held = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::nanoseconds(now - acquired_ns));
            r.thread_id = current_thread_id();
            r.thread_name = current_thread_name();
            publish(std::move(r));
        }
    }
    if (invalid || conn->is_broken()) {
        destroy_leased(slot, word, DestroyReason::broken);
        return;
    }
    if (config_.reset_on_release && conn->needs_reset()) {
        bool ok = true;
        try {
            conn->reset();
        } catch (...) {
            ok = false;
        }
        if (!ok || conn->is_broken() || conn->in_transaction()) {
            destroy_leased(slot, word, DestroyReason::reset);
            return;
        }
    }
    // Too old, evicted, or surplus to core_size/max_size: close it instead of keeping it.
    if ((s.expires_ns.load(std::memory_order_relaxed) <= now ||
         s.epoch.load(std::memory_order_relaxed) != evict_epoch_.load(std::memory_order_relaxed) ||
         surplus_.load(std::memory_order_relaxed)) &&
        retire_leased(slot, word, now))
        return;
    s.last_used_ns.store(now, std::memory_order_relaxed);
    const std::uint32_t idle_word = with_kind(word, idle);
    if (may_revoke_) {
        std::uint32_t expected = word;
        if (!s.state.compare_exchange_strong(expected, idle_word, std::memory_order_seq_cst)) {
            release_revoked(slot, word, now);  // revoked while we were resetting it
            return;
        }
    } else {
        s.state.store(idle_word, std::memory_order_seq_cst);
    }
    const std::uint64_t sig = signal_.load(std::memory_order_seq_cst);
    if (sig == 0) return;
    if ((sig & (closed_bit | suspended_bit)) == suspended_bit) return;  // resume() serves the queue
    const std::int64_t later = now_ns();  // reset() may have taken a while: judge starving now
    if ((sig & closed_bit) != 0 || starving(later)) {
        release_slow(slot, idle_word, later);  // close it, or hand it straight to the front waiter
    } else if (!front_passed_over_.load(std::memory_order_seq_cst) &&
               !wake_pending_.load(std::memory_order_seq_cst) &&
               !wake_pending_.exchange(true, std::memory_order_seq_cst)) {
        wake_front();  // normal mode: let the front waiter compete for it
    }
}

void PoolCore::wake_front() noexcept {
    std::uint32_t* bell = nullptr;
    {
        std::lock_guard lk(mu_);
        if (head_ != nullptr && !head_->notified) {
            head_->notified = true;
            bell = head_->bell.mark();
        } else if (head_ == nullptr) {
            wake_pending_.store(false, std::memory_order_seq_cst);
        }
    }
    if (bell != nullptr) Bell::wake(bell);  // outside the lock: the waiter needs it to look
}

void PoolCore::release_slow(std::uint32_t slot, std::uint32_t idle_word, std::int64_t now) noexcept {
    Slot& s = slots_[slot];
    ConnPtr victim;
    std::uint32_t* bell = nullptr;
    {
        std::lock_guard lk(mu_);
        std::uint32_t expected = idle_word;
        if (closed_) {
            // Shutdown may already have swept it; whoever wins the CAS closes it.
            if (s.state.compare_exchange_strong(expected, with_kind(idle_word, reserved), std::memory_order_acq_rel)) {
                victim = std::move(s.conn);
                s.state.store(with_kind(idle_word, empty), std::memory_order_release);
                connection_gone_unlocked(DestroyReason::shutdown);
                (void)claim_free_unlocked();
            }
        } else if (suspended_) {
            // resume() serves the queue.
        } else if (head_ != nullptr && starving(now) &&
                   s.state.compare_exchange_strong(expected, next_lease(idle_word), std::memory_order_acq_rel)) {
            Waiter* w = pop_front_unlocked();
            w->slot = slot;
            w->word = next_lease(idle_word);
            note_peaks_unlocked();
            bell = w->settle(Waiter::Outcome::handed);
        } else if (head_ != nullptr) {
            wake_front_if_idle_unlocked();
        }
    }
    // Rung after unlocking, so the waiter does not wake into a held lock (it does not
    // need the lock to take a handed connection).
    if (bell != nullptr) Bell::wake(bell);
    victim.reset();
}

void PoolCore::release_revoked(std::uint32_t slot, std::uint32_t word, std::int64_t now) noexcept {
    ConnPtr victim;
    std::int64_t leased_ns = now;
    {
        std::lock_guard lk(mu_);
        for (auto it = revoked_.begin(); it != revoked_.end(); ++it) {
            if (it->slot == slot && it->word == word) {
                victim = std::move(it->conn);
                revoked_.erase(it);
                ++destroyed_[static_cast<std::size_t>(DestroyReason::revoked)];
                break;
            }
        }
        if (closed_) drained_cv_.notify_all();
        (void)claim_free_unlocked();
    }
    {
        std::lock_guard g(slots_[slot].trace_mu);
        if (slots_[slot].trace.word == word) leased_ns = slots_[slot].trace.leased_ns;
    }
    victim.reset();
    {
        LeakReport r;
        r.kind = LeakReport::Kind::returned;
        r.pool = config_.name;
        r.held = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::nanoseconds(now - leased_ns));
        r.thread_id = current_thread_id();
        r.thread_name = current_thread_name();
        publish(std::move(r));
    }
}

void PoolCore::destroy_leased(std::uint32_t slot, std::uint32_t word, DestroyReason reason) noexcept {
    if (revoked(slot, word)) {
        release_revoked(slot, word, now_ns());
        return;
    }
    Slot& s = slots_[slot];
    ConnPtr victim;
    bool was_revoked = false;
    {
        std::lock_guard lk(mu_);
        // Under mu_ a revoke cannot start; check once more for one that just finished.
        if (s.state.load(std::memory_order_acquire) != word) {
            was_revoked = true;
        } else {
            victim = std::move(s.conn);
            s.state.store(with_kind(word, empty), std::memory_order_release);
            connection_gone_unlocked(reason);
            if (reason == DestroyReason::broken || reason == DestroyReason::validation) {
                // A dead connection: the ones opened before it (a server restart kills them
                // all) are pinged before they are handed out again.
                ++reconnect_debt_;
                mark_suspects_unlocked(s.created_ns);
            }
            (void)claim_free_unlocked();
        }
    }
    if (was_revoked) {
        release_revoked(slot, word, now_ns());
        return;
    }
    victim.reset();  // closing may do I/O: never under the lock
}

// ---------------------------------------------------------------------------------------
// shutdown, stats, housekeeping, leaks

bool PoolCore::shutdown(std::chrono::milliseconds grace) {
    const auto deadline = Clock::now() + grace;
    std::vector<ConnPtr> victims;
    {
        std::lock_guard lk(mu_);
        if (!closed_) {
            closed_ = true;
            signal_.fetch_or(closed_bit, std::memory_order_seq_cst);
            while (Waiter* w = pop_front_unlocked()) {
                Bell::wake(w->settle(Waiter::Outcome::closed));
            }
            housekeeper_cv_.notify_all();
            closing_cv_.notify_all();
        }
        for (std::uint32_t i = 0; i < capacity_; ++i) {
            std::uint32_t w = slots_[i].state.load(std::memory_order_seq_cst);
            if (kind_of(w) == idle &&
                slots_[i].state.compare_exchange_strong(w, with_kind(w, reserved), std::memory_order_acq_rel)) {
                victims.push_back(std::move(slots_[i].conn));
                slots_[i].state.store(with_kind(w, empty), std::memory_order_release);
                connection_gone_unlocked(DestroyReason::shutdown);
                closing_cv_.notify_all();
            }
        }
    }
    victims.clear();
    std::vector<ConnPtr> running;
    {
        std::unique_lock lk(mu_);
        if (drained_cv_.wait_until(lk, deadline, [this] { return drained_unlocked(); })) return true;
        // Out of grace: stop what leased connections are running. Their holders still own
        // them; each is closed when it comes back.
        for (std::uint32_t i = 0; i < capacity_; ++i) {
            if (kind_of(slots_[i].state.load(std::memory_order_acquire)) == leased && slots_[i].conn)
                running.push_back(slots_[i].conn);
        }
        for (auto& r : revoked_) running.push_back(r.conn);
    }
    for (auto& c : running) c->interrupt();  // outside the lock: it may block
    return false;
}

void PoolCore::housekeep() {
    const std::int64_t leak_check_ns =
        std::clamp<std::int64_t>(to_ns(config_.leak_threshold) / 4, 5'000'000, 1'000'000'000);
    std::int64_t next_leak_check = now_ns() + leak_check_ns;
    const bool timers = config_.idle_timeout.count() > 0 || config_.max_lifetime.count() > 0 ||
                        config_.keepalive_interval.count() > 0;
    std::unique_lock lk(mu_);
    while (!closed_) {
        fast_clock::refine();
        if (track_leaks_ && now_ns() >= next_leak_check) {
            check_leaks(lk);
            next_leak_check = now_ns() + leak_check_ns;
            continue;
        }
        if (total_ < min_idle_ && !housekeeper_retry_ && may_open_unlocked() && breaker_allows_unlocked(now_ns())) {
            const std::uint32_t slot = claim_empty_unlocked();
            add_total_unlocked();
            ++pending_;
            lk.unlock();
            Opened o = open_connection(now_ns() + to_ns(std::min(config_.acquire_timeout, std::chrono::milliseconds{10'000})));
            lk.lock();
            --pending_;
            Slot& s = slots_[slot];
            const std::uint32_t w = s.state.load(std::memory_order_relaxed);
            if (o.failure.empty() && !closed_) {
                opened_unlocked(s, o);
                make_available_unlocked(slot, w);
                serve_queue_unlocked();
                continue;
            }
            s.state.store(with_kind(w, empty), std::memory_order_release);
            sub_total_unlocked();
            if (!o.failure.empty()) {
                ++connect_failures_;
                last_connect_error_ = o.failure;
                breaker_failure_unlocked(o.failure, now_ns());
                housekeeper_retry_ = true;  // back off until the next interval
                if (closed_) drained_cv_.notify_all();
                serve_queue_unlocked();
            } else {
                ++created_;
                ++destroyed_[static_cast<std::size_t>(DestroyReason::shutdown)];
                drained_cv_.notify_all();
            }
            if (o.conn) {
                lk.unlock();
                o.conn.reset();
                lk.lock();
            }
            continue;
        }
        std::int64_t wake = never;
        if (timers) wake = std::min(lifecycle_pass(lk), now_ns() + to_ns(config_.housekeeping_interval));
        if (closed_) break;
        if (track_leaks_) wake = std::min(wake, next_leak_check);
        if (housekeeper_retry_) {
            wake = std::min(wake, now_ns() + to_ns(config_.housekeeping_interval));
            if (breaker_ == BreakerState::open) wake = std::max(wake, breaker_until_ns_);
        }
        if (breaker_ == BreakerState::open && head_ != nullptr) {
            // Queued waiters get their probe when the cooldown ends, even with no traffic.
            if (now_ns() >= breaker_until_ns_) {
                serve_queue_unlocked();
                continue;
            }
            wake = std::min(wake, breaker_until_ns_);
        }
        if (total_ < min_idle_ && !housekeeper_retry_ && (!may_open_unlocked() || breaker_ != BreakerState::closed)) {
            // Opening is capped (max_connecting), suspended, or held back by a circuit breaker
            // that acquires opened: look again shortly (nothing else wakes us at its cooldown).
            wake = std::min(wake, now_ns() + to_ns(config_.housekeeping_interval));
        }
        if (wake == never) {
            housekeeper_cv_.wait(lk);  // nothing to do: sleep until something changes
        } else {
            housekeeper_cv_.wait_until(lk, to_time_point(wake));
            if (housekeeper_retry_ && now_ns() >= wake) housekeeper_retry_ = false;
        }
    }
}

std::int64_t PoolCore::lifecycle_pass(std::unique_lock<std::mutex>& lk) {
    // Close idle connections past idle_timeout (down to min_idle) or past their lifetime;
    // ping those due a keepalive. Returns when the next one falls due.
    const std::int64_t now = now_ns();
    const std::int64_t idle_ns = to_ns(config_.idle_timeout);
    const std::int64_t keepalive_ns = to_ns(config_.keepalive_interval);
    std::int64_t next = never;
    std::vector<ConnPtr> victims;
    std::vector<std::pair<std::uint32_t, std::uint32_t>> to_ping;
    for (std::uint32_t i = 0; i < capacity_; ++i) {
        Slot& s = slots_[i];
        const std::uint32_t w = s.state.load(std::memory_order_acquire);
        if (kind_of(w) != idle) continue;
        const std::int64_t used = s.last_used_ns.load(std::memory_order_relaxed);
        if (s.expires_ns.load(std::memory_order_relaxed) <= now) {
            close_idle_unlocked(i, DestroyReason::lifetime, victims);
            continue;
        }
        next = std::min(next, s.expires_ns.load(std::memory_order_relaxed));
        if (idle_ns > 0 && total_ > min_idle_) {
            if (now - used >= idle_ns) {
                close_idle_unlocked(i, DestroyReason::idle, victims);
                continue;
            }
            next = std::min(next, used + idle_ns);
        }
        if (keepalive_ns > 0) {
            const std::int64_t last = std::max(used, s.last_ping_ns);
            if (now - last >= keepalive_ns) {
                std::uint32_t expected = w;
                if (s.state.compare_exchange_strong(expected, with_kind(w, reserved), std::memory_order_acq_rel))
                    to_ping.emplace_back(i, w);
            } else {
                next = std::min(next, last + keepalive_ns);
            }
        }
    }
    if (victims.empty() && to_ping.empty()) return next;
    keepalives_ += to_ping.size();
    lk.unlock();
    victims.clear();
    std::vector<bool> alive;
    for (auto [i, w] : to_ping) alive.push_back(slots_[i].conn->ping());  // reserved: ours alone
    lk.lock();
    for (std::size_t k = 0; k < to_ping.size(); ++k) {
        const auto [i, w] = to_ping[k];
        Slot& s = slots_[i];
        s.last_ping_ns = now_ns();
        if (alive[k] && !closed_) {
            make_available_unlocked(i, w);
            next = std::min(next, s.last_ping_ns + keepalive_ns);
        } else {
            victims.push_back(std::move(s.conn));
            s.state.store(with_kind(w, empty), std::memory_order_release);
            connection_gone_unlocked(alive[k] ? DestroyReason::shutdown : DestroyReason::validation);
            if (!alive[k]) {
                ++reconnect_debt_;
                mark_suspects_unlocked(s.created_ns);
            }
        }
    }
    if (!victims.empty()) {
        lk.unlock();
        victims.clear();
        lk.lock();
    }
    return now_ns();  // something changed: look again at once
}

void PoolCore::check_leaks(std::unique_lock<std::mutex>& lk) {
    const std::int64_t threshold = to_ns(config_.leak_threshold);
    const std::int64_t reclaim = to_ns(config_.leak_reclaim_after);
    struct Pending {
        LeakReport report;
        RawStack stack;
        bool traced;
    };
    std::vector<Pending> pending;
    // One clock reading for the pass, and symbolization (slow the first time: libbacktrace
    // reads the debug info) only after the scan, so it cannot push a lease past reclaim
    // before it was reported.
    const std::int64_t now = now_ns();
    lk.unlock();
    for (std::uint32_t i = 0; i < capacity_; ++i) {
        Slot& s = slots_[i];
        const std::uint32_t w = s.state.load(std::memory_order_acquire);
        if (kind_of(w) != leased) continue;
        const bool already = s.reported_word.load(std::memory_order_relaxed) == w;
        Pending p{};
        std::int64_t leased_ns = 0;
        {
            std::lock_guard g(s.trace_mu);
            if (s.trace.word != w) continue;  // its holder has not written the trace yet
            leased_ns = s.trace.leased_ns;
            p.report.thread_id = s.trace.thread_id;
            p.report.thread_name = s.trace.thread_name;
            p.stack = s.trace.stack;
        }
        const std::int64_t held = now - leased_ns;
        const bool suspect_now = held >= threshold && !already;
        const bool reclaim_now = reclaim > 0 && held >= reclaim;
        if (!suspect_now && !reclaim_now) continue;
        p.report.pool = config_.name;
        p.report.held = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::nanoseconds(held));
        if (suspect_now) {
            s.reported_word.store(w, std::memory_order_release);
            p.report.kind = LeakReport::Kind::suspected;
            p.traced = true;
            pending.push_back(p);
        }
        if (reclaim_now) {
            // Take it back: the holder keeps a dangling-free Lease that throws LeaseRevoked.
            lk.lock();
            std::uint32_t expected = w;
            ConnPtr running;
            if (!closed_ && s.state.compare_exchange_strong(expected, with_kind(w, reserved), std::memory_order_acq_rel)) {
                running = s.conn;
                revoked_.push_back(Revoked{i, w, std::move(s.conn)});
                s.state.store(with_kind(w, empty), std::memory_order_release);
                sub_total_unlocked();
                ++leaks_reclaimed_;
                serve_queue_unlocked();
                p.report.kind = LeakReport::Kind::reclaimed;
                p.traced = false;  // the suspected report carries the trace
                pending.push_back(p);
            }
            lk.unlock();
            // Stop its statement outside the lock (PQcancel may block). If the holder
            // returns it meanwhile, our copy keeps it open until the call is done.
            if (running) running->interrupt();
        }
    }
    for (auto& p : pending) {
        if (p.traced) p.report.stack = symbolize(p.stack);
        publish(std::move(p.report));
    }
    lk.lock();
}

void PoolCore::publish(LeakReport report) noexcept {
    try {
        {
            std::lock_guard lk(mu_);
            // Counted with the report, so a reader of stats() finds the report too.
            if (report.kind == LeakReport::Kind::returned) ++leaks_returned_late_;
            if (report.kind == LeakReport::Kind::suspected) ++leaks_detected_;
            leak_reports_.push_back(report);
            if (leak_reports_.size() > max_leak_reports) leak_reports_.pop_front();
        }
        if (config_.on_leak) config_.on_leak(report);
    } catch (...) {
        // A reporting failure (allocation, a throwing callback) must not take down the pool.
    }
}

std::vector<LeakReport> PoolCore::leaks() const {
    std::lock_guard lk(mu_);
    return {leak_reports_.begin(), leak_reports_.end()};
}

PoolStats PoolCore::stats() const {
    fast_clock::refine();
    PoolStats st;
    std::uint64_t hits = 0;
    std::uint64_t validation_failures = 0;
    for (const Shard& sh : shards_) {
        st.transaction_retries += sh.transaction_retries.load(std::memory_order_relaxed);
        hits += sh.hits.load(std::memory_order_relaxed);
        validation_failures += sh.validation_failures.load(std::memory_order_relaxed);
        sh.acquire_wait.snapshot_into(st.acquire_wait);
        sh.usage.snapshot_into(st.usage);
    }
    std::lock_guard lk(mu_);
    st.hits = hits;
    st.misses = misses_;
    st.acquires = hits + misses_;
    st.waits = waits_;
    st.timeouts = timeouts_;
    st.created = created_;
    st.connect_failures = connect_failures_;
    st.validation_failures = validation_failures;
    st.destroyed_by_reason = destroyed_;
    for (auto n : destroyed_) st.destroyed += n;
    st.leaks_detected = leaks_detected_;
    st.leaks_returned_late = leaks_returned_late_;
    st.leaks_reclaimed = leaks_reclaimed_;
    st.revoked_outstanding = revoked_.size();
    st.total = total_;
    st.pending = pending_;
    st.waiting = queued_;
    for (std::uint32_t i = 0; i < capacity_; ++i) {
        const auto kind = kind_of(slots_[i].state.load(std::memory_order_acquire));
        if (kind == idle) ++st.idle;
        if (kind == leased) ++st.active;
    }
    peak_active_ = std::max(peak_active_, st.active);
    st.peak_active = peak_active_;
    st.peak_total = peak_total_;
    st.max_size = max_;
    st.core_size = core_;
    st.min_idle = min_idle_;
    st.overflow_active = st.active > core_ ? st.active - core_ : 0;
    st.closed = closed_;
    st.suspended = suspended_;
    st.breaker = breaker_;
    st.breaker_transitions = breaker_transitions_;
    st.breaker_history.assign(breaker_history_.begin(), breaker_history_.end());
    st.reconnects = reconnects_;
    st.keepalives = keepalives_;
    st.overloaded = overloaded_;
    st.circuit_rejections = circuit_rejections_;
    st.connect = connect_hist_;
    return st;
}

// ---------------------------------------------------------------------------------------
// helpers under mu_

std::uint32_t PoolCore::claim_empty_unlocked() noexcept {
    // total_ < capacity_ guarantees an empty slot exists: slots leave `empty` only
    // under mu_ together with total_ += 1.
    for (std::uint32_t i = 0; i < capacity_; ++i) {
        const std::uint32_t w = slots_[i].state.load(std::memory_order_relaxed);
        if (kind_of(w) == empty) {
            slots_[i].state.store(with_kind(w, reserved), std::memory_order_relaxed);
            return i;
        }
    }
    std::terminate();  // unreachable while the invariant above holds
}

void PoolCore::give_permit_unlocked(bool probe) noexcept {
    if (head_ == nullptr || !may_open_unlocked() || (!probe && breaker_on_ && breaker_ != BreakerState::closed))
        return;
    const std::uint32_t slot = claim_empty_unlocked();
    add_total_unlocked();
    ++pending_;
    Waiter* w = pop_front_unlocked();
    w->slot = slot;
    Bell::wake(w->settle(Waiter::Outcome::permit));
}

void PoolCore::serve_queue_unlocked() noexcept {
    if (closed_ || suspended_ || head_ == nullptr) return;
    wake_front_if_idle_unlocked();
    if (breaker_on_ && breaker_ != BreakerState::closed) {
        if (breaker_ == BreakerState::open && now_ns() >= breaker_until_ns_ && may_open_unlocked()) {
            breaker_transition_unlocked(BreakerState::half_open, "cooldown over: one probe let through");
            give_permit_unlocked(true);
        } else if (breaker_ == BreakerState::open && pending_ == 0 && count_leased_unlocked() == 0) {
            while (Waiter* w = pop_front_unlocked()) {
                Bell::wake(w->settle(Waiter::Outcome::circuit_open));
            }
        }
        return;
    }
    while (head_ != nullptr && may_open_unlocked()) {
        const std::size_t before = queued_;
        give_permit_unlocked();
        if (queued_ == before) break;
    }
}

void PoolCore::enqueue_unlocked(Waiter& w) noexcept {
    w.prev = tail_;
    w.next = nullptr;
    if (tail_) {
        tail_->next = &w;
    } else {
        head_ = &w;
        front_since_ns_.store(w.since_ns, std::memory_order_relaxed);
        front_passed_over_.store(false, std::memory_order_relaxed);
    }
    tail_ = &w;
    ++queued_;
}

void PoolCore::unlink_unlocked(Waiter& w) noexcept {
    if (w.prev) {
        w.prev->next = w.next;
    } else {
        head_ = w.next;
        front_since_ns_.store(head_ ? head_->since_ns : 0, std::memory_order_relaxed);
        front_passed_over_.store(head_ != nullptr && head_->passed_over, std::memory_order_relaxed);
    }
    if (w.next) w.next->prev = w.prev;
    else tail_ = w.prev;
    w.next = w.prev = nullptr;
    --queued_;
    if (w.notified) {
        // It was woken to look and will not: let the next release wake the new front.
        w.notified = false;
        wake_pending_.store(false, std::memory_order_seq_cst);
    }
}

Waiter* PoolCore::pop_front_unlocked() noexcept {
    Waiter* w = head_;
    if (w) unlink_unlocked(*w);
    return w;
}

void PoolCore::wake_front_if_idle_unlocked() noexcept {
    if (head_ == nullptr || head_->notified) return;
    for (std::uint32_t i = 0; i < capacity_; ++i) {
        if (kind_of(slots_[i].state.load(std::memory_order_seq_cst)) == idle) {
            head_->notified = true;
            wake_pending_.store(true, std::memory_order_seq_cst);
            head_->bell.ring();
            return;
        }
    }
}

std::size_t PoolCore::count_leased_unlocked() const noexcept {
    std::size_t n = 0;
    for (std::uint32_t i = 0; i < capacity_; ++i)
        if (kind_of(slots_[i].state.load(std::memory_order_relaxed)) == leased) ++n;
    return n;
}

void PoolCore::note_peaks_unlocked() const noexcept {
    peak_active_ = std::max(peak_active_, count_leased_unlocked());
}

void PoolCore::connection_gone_unlocked(DestroyReason reason) noexcept {
    sub_total_unlocked();
    ++destroyed_[static_cast<std::size_t>(reason)];
    if (closed_) {
        drained_cv_.notify_all();
        return;
    }
    if (total_ < min_idle_) housekeeper_cv_.notify_one();
    serve_queue_unlocked();
}

std::string PoolCore::state_line_unlocked() const {
    // Every connection accounted for, so the line never reads as a contradiction
    // ("0/10 in use, 46 waiting" while all ten were being opened).
    std::size_t leased_now = 0, idle_now = 0;
    for (std::uint32_t i = 0; i < capacity_; ++i) {
        const auto kind = kind_of(slots_[i].state.load(std::memory_order_relaxed));
        leased_now += kind == leased ? 1 : 0;
        idle_now += kind == idle ? 1 : 0;
    }
    const std::size_t opening = total_ > leased_now + idle_now ? total_ - leased_now - idle_now : 0;
    std::string line = std::to_string(leased_now) + "/" + std::to_string(max_) + " in use, " +
                       std::to_string(idle_now) + " idle";
    if (opening > 0) line += ", " + std::to_string(opening) + " being opened";
    line += ", " + std::to_string(queued_) + " waiting";
    if (breaker_ == BreakerState::open) line += ", circuit breaker open";
    return line;
}

void PoolCore::add_total_unlocked() noexcept {
    ++total_;
    peak_total_ = std::max(peak_total_, total_);
    surplus_.store(total_ > core_ || total_ > max_, std::memory_order_relaxed);
}

void PoolCore::sub_total_unlocked() noexcept {
    --total_;
    surplus_.store(total_ > core_ || total_ > max_, std::memory_order_relaxed);
}

void PoolCore::opened_unlocked(Slot& s, Opened& o) noexcept {
    connect_hist_.record(static_cast<std::uint64_t>(o.took_ns));
    ++created_;
    if (reconnect_debt_ > 0) {
        --reconnect_debt_;
        ++reconnects_;
    }
    breaker_success_unlocked();
    s.conn = std::move(o.conn);
    s.raw.store(s.conn.get(), std::memory_order_release);
    s.created_ns = now_ns();
    s.last_used_ns.store(s.created_ns, std::memory_order_relaxed);
    s.last_ping_ns = s.created_ns;
    s.suspect.store(false, std::memory_order_relaxed);
    s.epoch.store(evict_epoch_.load(std::memory_order_relaxed), std::memory_order_relaxed);
    const std::int64_t life = to_ns(config_.max_lifetime);
    const auto jitter = static_cast<std::int64_t>(static_cast<double>(life) * config_.max_lifetime_jitter * uniform01());
    s.expires_ns.store(life > 0 ? s.created_ns + life - jitter : never, std::memory_order_relaxed);
}

void PoolCore::make_available_unlocked(std::uint32_t slot, std::uint32_t word) noexcept {
    // A connection that just became free (opened or pinged by the housekeeper): straight to
    // the front waiter if there is one, else idle.
    Slot& s = slots_[slot];
    if (head_ != nullptr && !suspended_) {
        Waiter* w = pop_front_unlocked();
        w->slot = slot;
        w->word = next_lease(word);
        s.state.store(w->word, std::memory_order_release);
        note_peaks_unlocked();
        Bell::wake(w->settle(Waiter::Outcome::handed));
    } else {
        s.state.store(with_kind(word, idle), std::memory_order_seq_cst);
    }
}

void PoolCore::close_idle_unlocked(std::uint32_t slot, DestroyReason reason,
                                   std::vector<ConnPtr>& victims) noexcept {
    Slot& s = slots_[slot];
    std::uint32_t w = s.state.load(std::memory_order_relaxed);
    if (kind_of(w) != idle ||
        !s.state.compare_exchange_strong(w, with_kind(w, reserved), std::memory_order_acq_rel))
        return;
    try {
        victims.push_back(std::move(s.conn));
    } catch (...) {
        s.conn.reset();  // out of memory for the list: close it here, under the lock
    }
    s.state.store(with_kind(w, empty), std::memory_order_release);
    connection_gone_unlocked(reason);
}

bool PoolCore::retire_leased(std::uint32_t slot, std::uint32_t word, std::int64_t now) noexcept {
    Slot& s = slots_[slot];
    DestroyReason reason = DestroyReason::surplus;
    {
        std::lock_guard lk(mu_);
        if (s.state.load(std::memory_order_acquire) != word) return false;  // revoked: caller sees it
        if (s.expires_ns.load(std::memory_order_relaxed) <= now) reason = DestroyReason::lifetime;
        else if (s.epoch.load(std::memory_order_relaxed) != evict_epoch_.load(std::memory_order_relaxed))
            reason = DestroyReason::evicted;
        else if (!(total_ > core_ || total_ > max_)) return false;
    }
    destroy_leased(slot, word, reason);
    return true;
}

void PoolCore::mark_suspects_unlocked(std::int64_t created_before) noexcept {
    for (std::uint32_t i = 0; i < capacity_; ++i) {
        Slot& s = slots_[i];
        if (kind_of(s.state.load(std::memory_order_relaxed)) != empty && s.created_ns <= created_before)
            s.suspect.store(true, std::memory_order_relaxed);
    }
}

// --- circuit breaker (all under mu_) ---

void PoolCore::admit_open_unlocked(std::int64_t now) {
    if (!breaker_on_ || breaker_ == BreakerState::closed) return;
    if (breaker_ == BreakerState::open && now >= breaker_until_ns_) {
        breaker_transition_unlocked(BreakerState::half_open, "cooldown over: one probe let through");
        return;  // this caller is the probe
    }
    ++circuit_rejections_;
    throw CircuitOpen(breaker_message_unlocked(now));
}

bool PoolCore::breaker_allows_unlocked(std::int64_t now) noexcept {
    if (!breaker_on_ || breaker_ == BreakerState::closed) return true;
    if (breaker_ == BreakerState::open && now >= breaker_until_ns_) {
        breaker_transition_unlocked(BreakerState::half_open, "cooldown over: one probe let through");
        return true;
    }
    return false;
}

void PoolCore::breaker_success_unlocked() noexcept {
    consecutive_failures_ = 0;
    if (breaker_on_ && breaker_ != BreakerState::closed) {
        breaker_transition_unlocked(BreakerState::closed, "a connection opened");
        serve_queue_unlocked();  // connections can be opened again
    }
}

void PoolCore::breaker_failure_unlocked(const std::string& error, std::int64_t now) noexcept {
    ++consecutive_failures_;
    if (!breaker_on_) return;
    if (breaker_ == BreakerState::half_open ||
        (breaker_ == BreakerState::closed && consecutive_failures_ >= config_.breaker_failures)) {
        breaker_until_ns_ = now + to_ns(config_.breaker_cooldown);
        breaker_since_ = std::chrono::system_clock::now();
        breaker_transition_unlocked(BreakerState::open, error);
        // Waiters that no returning lease can serve would only wait out their timeout.
        if (count_leased_unlocked() == 0) {
            while (Waiter* w = pop_front_unlocked()) {
                Bell::wake(w->settle(Waiter::Outcome::circuit_open));
            }
        }
    }
}

void PoolCore::breaker_transition_unlocked(BreakerState to, std::string reason) noexcept {
    breaker_ = to;
    ++breaker_transitions_;
    try {
        breaker_history_.push_back(BreakerTransition{std::chrono::system_clock::now(), to, std::move(reason)});
        if (breaker_history_.size() > 32) breaker_history_.pop_front();
    } catch (...) {
    }
}

std::string PoolCore::breaker_message_unlocked(std::int64_t now, bool with_pool) const {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::nanoseconds(std::max<std::int64_t>(0, breaker_until_ns_ - now)));
    const auto until = std::chrono::system_clock::now() + left;
    std::string msg = (with_pool ? "pool '" + config_.name + "': " : std::string()) + "circuit breaker " +
                      (breaker_ == BreakerState::half_open ? std::string("half-open (a probe connection is being opened)")
                                                           : "open since " + clock_text(breaker_since_)) +
                      " after " + std::to_string(config_.breaker_failures) + " consecutive connection failures";
    if (!last_connect_error_.empty()) msg += " (last: " + last_connect_error_ + ")";
    if (breaker_ == BreakerState::open)
        msg += "; acquires that need a new connection fail at once until " + clock_text(until) + " (in " +
               std::to_string(left.count()) + " ms), then one probe is let through";
    return msg;
}

// --- run-time control ---

void PoolCore::resize(std::size_t max_size, std::size_t min_idle) {
    if (max_size == 0 || max_size > capacity_)
        throw ConfigError("pool '" + config_.name + "': cannot resize to max_size " + std::to_string(max_size) +
                          "; it must be between 1 and max_size_limit (" + std::to_string(capacity_) + ")");
    if (min_idle > max_size)
        throw ConfigError("pool '" + config_.name + "': min_idle " + std::to_string(min_idle) +
                          " is above max_size " + std::to_string(max_size));
    std::vector<ConnPtr> victims;
    {
        std::lock_guard lk(mu_);
        max_ = max_size;
        min_idle_ = min_idle;
        core_ = std::min(config_.core_size ? config_.core_size : max_size, max_size);
        if (config_.core_size == 0) core_ = max_size;
        surplus_.store(total_ > core_ || total_ > max_, std::memory_order_relaxed);
        for (std::uint32_t i = 0; i < capacity_ && total_ > max_; ++i) close_idle_unlocked(i, DestroyReason::surplus, victims);
        serve_queue_unlocked();
        housekeeper_cv_.notify_all();
    }
}

void PoolCore::suspend() {
    std::lock_guard lk(mu_);
    if (closed_ || suspended_) return;
    suspended_ = true;
    signal_.fetch_or(suspended_bit, std::memory_order_seq_cst);
}

void PoolCore::resume() {
    std::lock_guard lk(mu_);
    if (!suspended_) return;
    suspended_ = false;
    signal_.fetch_and(~suspended_bit, std::memory_order_seq_cst);
    serve_queue_unlocked();
    housekeeper_cv_.notify_all();
}

void PoolCore::evict_all() {
    std::vector<ConnPtr> victims;
    {
        std::lock_guard lk(mu_);
        evict_epoch_.fetch_add(1, std::memory_order_relaxed);
        for (std::uint32_t i = 0; i < capacity_; ++i) close_idle_unlocked(i, DestroyReason::evicted, victims);
        housekeeper_cv_.notify_all();
    }
}

}  // namespace internal

// ---------------------------------------------------------------------------------------
// Lease and Pool

Connection& Lease::get() {
    if (conn_ == nullptr) throw UsageError("this lease is empty (moved from or already released)");
    if (core_->revoked(slot_, seq_))
        throw LeaseRevoked("pool '" + core_->config_.name +
                           "': this lease was revoked after being held past leak_reclaim_after (" +
                           std::to_string(core_->config_.leak_reclaim_after.count()) +
                           " ms); its connection was taken back. Return leases sooner, or raise the limit");
    return *conn_;
}

void Lease::release() noexcept {
    if (conn_ == nullptr) return;
    internal::PoolCore* core = core_;
    Connection* conn = conn_;
    const bool invalid = invalid_;
    core_ = nullptr;
    conn_ = nullptr;
    invalid_ = false;
    core->release_entry(slot_, seq_, conn, acquired_ns_, invalid);
}

Pool::Pool(std::shared_ptr<Driver> driver, PoolConfig config) : core_(nullptr) {
    config.validate();
    auto core = std::make_unique<internal::PoolCore>(std::move(driver), std::move(config));
    core->start_housekeeper();
    core_ = core.release();
}

Pool::~Pool() { core_->orphan(); }

Lease Pool::acquire() { return core_->acquire(core_->config_.acquire_timeout); }

Lease Pool::acquire(std::chrono::milliseconds timeout) {
    if (timeout.count() < 0) throw ConfigError("pool '" + core_->config_.name + "': acquire timeout is negative");
    return core_->acquire(timeout);
}

std::optional<Lease> Pool::try_acquire() { return core_->try_acquire(); }

bool Pool::shutdown(std::chrono::milliseconds grace) { return core_->shutdown(grace); }

PoolStats Pool::stats() const { return core_->stats(); }

std::vector<LeakReport> Pool::leaks() const { return core_->leaks(); }

void Pool::resize(std::size_t max_size, std::size_t min_idle) { core_->resize(max_size, min_idle); }

void Pool::suspend() { core_->suspend(); }

void Pool::note_transaction_retry() noexcept { core_->note_transaction_retry(); }

void Pool::resume() { core_->resume(); }

void Pool::evict_all() { core_->evict_all(); }

const PoolConfig& Pool::config() const noexcept { return core_->config_; }

const Driver& Pool::driver() const noexcept { return *core_->driver_; }

}  // namespace poolbench

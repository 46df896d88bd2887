// pool/core.cpp — the core's construction and lifetime, shutdown, statistics, run-time
// control (resize, suspend, evict), the helpers the other parts share under mu_, and the
// public Pool and Lease that forward to it.
#include "core.hpp"

#include "../backoff.hpp"
#include "poolbench/error.hpp"

#include <algorithm>

namespace poolbench {
namespace internal {

using namespace slot_word;

namespace {
std::atomic<std::uint64_t> next_pool_id{1};
}  // namespace

PoolCore::PoolCore(std::shared_ptr<Driver> driver, PoolConfig config)
    : config_(std::move(config)),
      connector_(std::move(driver), config_),
      id_(next_pool_id.fetch_add(1, std::memory_order_relaxed)),
      validation_ns_(to_ns(config_.validation_interval)),
      slots_(static_cast<std::uint32_t>(std::max(config_.max_size, config_.max_size_limit)), config_.idle_order),
      leaks_(config_),
      front_(to_ns(config_.starvation_threshold)),
      queue_(front_),
      breaker_(config_.breaker_failures, to_ns(config_.breaker_cooldown)),
      max_(config_.max_size),
      min_idle_(config_.min_idle),
      core_(config_.core_size ? config_.core_size : config_.max_size) {}

void PoolCore::start_housekeeper() { housekeeper_ = std::thread([this] { housekeep(); }); }

// ---------------------------------------------------------------------------------------
// lifetime
//
// ~Pool orphans the core; it is freed once it is drained (no connection open, no reclaimed
// lease outstanding) and no release is running in it. Whoever drains it last claims the
// freeing under mu_ (claim_free, exactly one claimant): ~Pool itself, or the release that
// returned the last lease, which frees it after leaving its own release (release_entry).

void PoolCore::orphan() noexcept {
    shutdown(std::chrono::milliseconds{0});
    if (housekeeper_.joinable()) housekeeper_.join();
    bool free_now = false;
    {
        MutexLock lk(mu_);
        orphaned_ = true;
        free_now = claim_free();
    }
    if (free_now) free_when_quiet();
}

void PoolCore::release_entry(std::uint32_t slot, std::uint32_t word, Connection* conn, std::int64_t acquired_ns,
                             bool invalid) noexcept {
    Shard& sh = metrics_.mine();
    sh.releasing.fetch_add(1, std::memory_order_seq_cst);
    const bool free_now = release(slot, word, conn, acquired_ns, invalid);
    sh.releasing.fetch_sub(1, std::memory_order_seq_cst);
    if (free_now) free_when_quiet();  // the claim makes this thread the only one to free it
}

bool PoolCore::claim_free() noexcept {
    if (!orphaned_ || free_claimed_ || !drained()) return false;
    free_claimed_ = true;
    return true;
}

void PoolCore::free_when_quiet() noexcept {
    // A thread that returned a connection swept by shutdown may still be on its way out.
    while (metrics_.releasing() != 0) std::this_thread::yield();
    delete this;
}

// ---------------------------------------------------------------------------------------
// shutdown and statistics

bool PoolCore::shutdown(std::chrono::milliseconds grace) {
    const auto deadline = Clock::now() + grace;
    std::vector<ConnPtr> victims;
    {
        MutexLock lk(mu_);
        if (!closed_) {
            closed_ = true;
            signal_.fetch_or(closed_bit, std::memory_order_seq_cst);
            queue_.fail_all(Waiter::Outcome::closed);
            housekeeper_cv_.notify_all();
            closing_cv_.notify_all();
        }
        for (std::uint32_t i = 0; i < slots_.capacity(); ++i) destroy_idle(i, DestroyReason::shutdown, victims);
    }
    victims.clear();
    std::vector<ConnPtr> running;
    {
        MutexLock lk(mu_);
        while (!drained()) {
            if (drained_cv_.wait_until(lk.native(), deadline) == std::cv_status::timeout) break;
        }
        if (drained()) return true;
        // Out of grace: stop what leased connections are running. Their holders still own
        // them; each is destroyed when it comes back.
        for (std::uint32_t i = 0; i < slots_.capacity(); ++i) {
            if (kind_of(slots_[i].state.load(std::memory_order_acquire)) == leased && slots_[i].conn)
                running.push_back(slots_[i].conn);
        }
        for (auto& r : reclaimed_) running.push_back(r.conn);
    }
    for (auto& c : running) c->interrupt();  // outside the lock: it may block
    return false;
}

PoolStats PoolCore::stats() const {
    fast_clock::refine();
    PoolStats st;
    metrics_.fill(st);
    MutexLock lk(mu_);
    counters_.fill(st);
    leaks_.fill(st);
    st.revoked_outstanding = reclaimed_.size();
    st.total = total_;
    st.pending = pending_;
    st.waiting = queue_.size();
    const auto now_in = slots_.counts();  // one pass: active + idle never exceeds total
    st.idle = now_in.idle;
    st.active = now_in.leased;
    counters_.peak_active = std::max({counters_.peak_active, st.active,
                                      std::min(fast_peak_.load(std::memory_order_relaxed), max_)});
    st.peak_active = counters_.peak_active;
    st.max_size = max_;
    st.core_size = core_;
    st.min_idle = min_idle_;
    st.overflow_active = st.active > core_ ? st.active - core_ : 0;
    st.closed = closed_;
    st.suspended = suspended_;
    st.breaker = breaker_.state();
    st.breaker_transitions = breaker_.transitions();
    st.breaker_history.assign(breaker_.history().begin(), breaker_.history().end());
    return st;
}

// ---------------------------------------------------------------------------------------
// run-time control

bool PoolCore::wait_for_min_idle(std::chrono::milliseconds timeout) {
    const auto until = Clock::now() + timeout;
    MutexLock lk(mu_);
    const std::uint64_t failures_before = counters_.connect_failures;
    for (;;) {
        // Open means opened and not being destroyed: total_ counts the ones being opened too.
        if (closed_) return false;
        if (total_ - pending_ >= min_idle_) return true;
        // The last warm-up open failed (the housekeeper now waits an interval), or one
        // failed while we waited, or the breaker refuses opens: nothing comes soon.
        if (housekeeper_retry_ || counters_.connect_failures != failures_before || breaker_.open()) return false;
        if (warm_cv_.wait_until(lk.native(), until) == std::cv_status::timeout)
            return !closed_ && total_ - pending_ >= min_idle_;
    }
}

void PoolCore::resize(std::size_t max_size, std::size_t min_idle) {
    if (max_size == 0 || max_size > slots_.capacity())
        throw ConfigError("pool '" + config_.name + "': cannot resize to max_size " + std::to_string(max_size) +
                          "; it must be between 1 and max_size_limit (" + std::to_string(slots_.capacity()) + ")");
    if (min_idle > max_size)
        throw ConfigError("pool '" + config_.name + "': min_idle " + std::to_string(min_idle) +
                          " is above max_size " + std::to_string(max_size));
    std::vector<ConnPtr> victims;
    {
        MutexLock lk(mu_);
        max_ = max_size;
        min_idle_ = min_idle;
        core_ = config_.core_size == 0 ? max_size : std::min(config_.core_size, max_size);
        surplus_.store(total_ > core_ || total_ > max_, std::memory_order_relaxed);
        for (std::uint32_t i = 0; i < slots_.capacity() && total_ > max_; ++i)
            destroy_idle(i, DestroyReason::surplus, victims);
        serve_queue();
        housekeeper_cv_.notify_all();
    }
}

void PoolCore::suspend() {
    MutexLock lk(mu_);
    if (closed_ || suspended_) return;
    suspended_ = true;
    signal_.fetch_or(suspended_bit, std::memory_order_seq_cst);
}

void PoolCore::resume() {
    MutexLock lk(mu_);
    if (!suspended_) return;
    suspended_ = false;
    signal_.fetch_and(~suspended_bit, std::memory_order_seq_cst);
    serve_queue();
    housekeeper_cv_.notify_all();
}

void PoolCore::evict_all() {
    std::vector<ConnPtr> victims;
    {
        MutexLock lk(mu_);
        evict_epoch_.fetch_add(1, std::memory_order_relaxed);
        for (std::uint32_t i = 0; i < slots_.capacity(); ++i) destroy_idle(i, DestroyReason::evicted, victims);
        housekeeper_cv_.notify_all();
    }
}

// ---------------------------------------------------------------------------------------
// helpers under mu_

std::uint32_t PoolCore::reserve_for_open() noexcept {
    // total_ < capacity guarantees an empty slot exists: slots leave `empty` only under
    // mu_ together with total_ += 1.
    const std::uint32_t slot = slots_.claim_empty();
    add_total();
    ++pending_;
    return slot;
}

void PoolCore::add_total() noexcept {
    ++total_;
    counters_.peak_total = std::max(counters_.peak_total, total_);
    surplus_.store(total_ > core_ || total_ > max_, std::memory_order_relaxed);
}

void PoolCore::sub_total() noexcept {
    --total_;
    surplus_.store(total_ > core_ || total_ > max_, std::memory_order_relaxed);
}

CircuitBreaker::Now PoolCore::breaker_now() const { return {now_ns(), std::chrono::system_clock::now()}; }

void PoolCore::admit_open(std::int64_t now) {
    if (breaker_.closed()) return;
    if (breaker_.admit({now, std::chrono::system_clock::now()}) == CircuitBreaker::Decision::probe) return;
    ++counters_.circuit_rejections;
    throw CircuitOpen(breaker_message());
}

void PoolCore::connect_failed(const std::string& error) noexcept {
    ++counters_.connect_failures;
    warm_cv_.notify_all();
    try {
        last_connect_error_ = error;
    } catch (...) {
    }
    // Waiters that no returning lease can serve would only wait out their timeout.
    if (breaker_.on_failure(error, breaker_now()) && slots_.count(leased) == 0)
        queue_.fail_all(Waiter::Outcome::circuit_open);
}

std::string PoolCore::breaker_message(bool with_pool) const {
    return (with_pool ? "pool '" + config_.name + "': " : std::string()) +
           breaker_.describe(breaker_now(), last_connect_error_);
}

void PoolCore::opened(Slot& s, Connector::Opened& o) noexcept {
    counters_.connect.record(static_cast<std::uint64_t>(o.took_ns));
    ++counters_.created;
    warm_cv_.notify_all();
    if (counters_.reconnect_debt > 0) {
        --counters_.reconnect_debt;
        ++counters_.reconnects;
    }
    if (breaker_.on_success(breaker_now())) serve_queue();  // connections can be opened again
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

void PoolCore::destroy_idle(std::uint32_t slot, DestroyReason reason, std::vector<ConnPtr>& victims) noexcept {
    Slot& s = slots_[slot];
    std::uint32_t w = s.state.load(std::memory_order_seq_cst);
    if (kind_of(w) != idle || !s.state.compare_exchange_strong(w, with_kind(w, reserved), std::memory_order_acq_rel))
        return;
    try {
        victims.push_back(std::move(s.conn));
    } catch (...) {
        s.conn.reset();  // out of memory for the list: destroy it here, under the lock
    }
    s.state.store(with_kind(w, empty), std::memory_order_release);
    destroyed(reason);
    if (closed_) closing_cv_.notify_all();
}

void PoolCore::destroyed(DestroyReason reason) noexcept {
    sub_total();
    counters_.destroyed_one(reason);
    if (closed_) {
        drained_cv_.notify_all();
        return;
    }
    if (total_ < min_idle_) housekeeper_cv_.notify_one();
    serve_queue();
}

void PoolCore::make_available(std::uint32_t slot, std::uint32_t word) noexcept {
    // A connection that just became free (opened or pinged by the housekeeper): straight to
    // the front waiter if there is one, else idle.
    Slot& s = slots_[slot];
    if (!queue_.empty() && !suspended_) {
        const std::uint32_t next = next_lease(word);
        s.state.store(next, std::memory_order_release);
        Bell::wake(queue_.hand_to_front(slot, next));
        note_peaks();
    } else {
        s.state.store(with_kind(word, idle), std::memory_order_seq_cst);
    }
}

void PoolCore::mark_suspects(std::int64_t created_before) noexcept {
    for (std::uint32_t i = 0; i < slots_.capacity(); ++i) {
        Slot& s = slots_[i];
        if (kind_of(s.state.load(std::memory_order_relaxed)) != empty && s.created_ns <= created_before)
            s.suspect.store(true, std::memory_order_relaxed);
    }
}

void PoolCore::give_permit(bool probe) noexcept {
    if (queue_.empty() || !may_open() || (!probe && !breaker_.closed())) return;
    const std::uint32_t slot = reserve_for_open();
    Bell::wake(queue_.permit_front(slot));
}

void PoolCore::serve_queue() noexcept {
    if (closed_ || suspended_ || queue_.empty()) return;
    wake_front_if_idle();
    if (!breaker_.closed()) {
        if (breaker_.open() && breaker_.cooldown_over(now_ns()) && may_open()) {
            (void)breaker_.admit(breaker_now());  // -> half-open: the front waiter probes
            give_permit(true);
        } else if (breaker_.open() && pending_ == 0 && slots_.count(leased) == 0) {
            queue_.fail_all(Waiter::Outcome::circuit_open);
        }
        return;
    }
    while (!queue_.empty() && may_open()) {
        const std::size_t before = queue_.size();
        give_permit();
        if (queue_.size() == before) break;
    }
}

void PoolCore::wake_front_if_idle() noexcept {
    if (slots_.any_idle()) queue_.ring_front();
}

void PoolCore::note_peaks() noexcept { counters_.peak_active = std::max(counters_.peak_active, slots_.count(leased)); }

std::string PoolCore::state_line() const {
    // Every connection accounted for, so the line never reads as a contradiction
    // ("0/10 in use, 46 waiting" while all ten were being opened).
    const auto now_in = slots_.counts();  // one pass, see counts()
    const std::size_t leased_now = now_in.leased;
    const std::size_t idle_now = now_in.idle;
    const std::size_t opening = total_ > leased_now + idle_now ? total_ - leased_now - idle_now : 0;
    std::string line = std::to_string(leased_now) + "/" + std::to_string(max_) + " in use, " +
                       std::to_string(idle_now) + " idle";
    if (opening > 0) line += ", " + std::to_string(opening) + " being opened";
    line += ", " + std::to_string(queue_.size()) + " waiting";
    if (breaker_.open()) line += ", circuit breaker open";
    return line;
}

}  // namespace internal

// ---------------------------------------------------------------------------------------
// Lease and Pool

Connection& Lease::get() {
    if (conn_ == nullptr) throw UsageError("this lease is empty (moved from or already released)");
    if (core_->reclaimed(slot_, seq_))
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

bool Pool::wait_for_min_idle(std::chrono::milliseconds timeout) { return core_->wait_for_min_idle(timeout); }

void Pool::suspend() { core_->suspend(); }

void Pool::note_transaction_retry() noexcept { core_->note_transaction_retry(); }

void Pool::resume() { core_->resume(); }

void Pool::evict_all() { core_->evict_all(); }

const PoolConfig& Pool::config() const noexcept { return core_->config_; }

const Driver& Pool::driver() const noexcept { return core_->driver(); }

}  // namespace poolbench

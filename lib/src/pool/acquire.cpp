// pool/acquire.cpp — on acquire: the lock-free fast path, then the slow path (open a
// connection if there is room, else queue), then validation of what was taken.
#include "core.hpp"

#include "poolbench/error.hpp"

#include <algorithm>

namespace poolbench::internal {

using namespace slot_word;

namespace {

/// The connection this thread used last, and from which pool (ids are never reused).
struct ThreadHint {
    std::uint64_t pool_id = 0;
    std::uint32_t slot = 0;
};
thread_local ThreadHint tl_hint;

}  // namespace

void PoolCore::sample_fast_peak() noexcept {
    // A pass over the slots (atomic loads) and, rarely, a CAS. Not under the lock, so a
    // slot released and another leased during the pass may both count: stats() clamps the
    // result to max_size.
    const std::size_t now = slots_.count(leased);
    std::size_t seen = fast_peak_.load(std::memory_order_relaxed);
    while (now > seen && !fast_peak_.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
    }
}

bool PoolCore::take_fast(Taken& out, std::int64_t now) noexcept {
    // With waiters queued a running thread may still take an idle connection unless the
    // front waiter is starving (bounded barging, waiter_queue.hpp).
    const std::uint64_t sig = signal_.load(std::memory_order_seq_cst);
    if (sig != 0 && ((sig & (closed_bit | suspended_bit)) != 0 || front_.starving(now))) return false;
    // The connection this thread returned last is usually still idle: one CAS, no scan.
    if (tl_hint.pool_id == id_ && config_.idle_order == IdleOrder::lifo &&
        Slots::try_lease(slots_[tl_hint.slot], out.word)) {
        out.slot = tl_hint.slot;
        return true;
    }
    return slots_.scan_idle(out.slot, out.word);
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
                metrics_.mine().validation_failures.fetch_add(1, std::memory_order_relaxed);
                // The pool is alive (this thread holds it), so no one can claim freeing it.
                (void)destroy_leased(t.slot, t.word, DestroyReason::validation);
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
    Shard& sh = metrics_.mine();
    sh.acquire_wait.record(elapsed(start, now));
    // The first and then one in fast_peak_every of each metrics shard's hits sample the
    // leased count (the fast path notes no peak of its own; the slow path's are noted).
    if (!t.created && sh.hits.fetch_add(1, std::memory_order_relaxed) % fast_peak_every == 0) sample_fast_peak();
    tl_hint = ThreadHint{id_, t.slot};
    Slot& s = slots_[t.slot];
    // Before the tracker publishes the trace, after which a reclaim and refill could put
    // another connection in the slot (harmless, the Lease would then be reclaimed, but this
    // way the pointer is always the one this lease was given).
    Connection* const conn = s.raw.load(std::memory_order_acquire);
    leaks_.on_lease(s.trace, t.word, now);
    return Lease(this, t.slot, conn, now, t.word);
}

std::optional<PoolCore::Taken> PoolCore::acquire_slow(std::int64_t start, std::int64_t deadline, bool may_wait) {
    MutexLock lk(mu_);
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
    if (!suspended_ && !front_.starving(now_ns()) && slots_.scan_idle(t.slot, t.word)) {
        note_peaks();
        return t;
    }
    if (queue_.empty() && may_open()) {
        admit_open(now_ns());  // the circuit breaker may refuse at once
        const std::uint32_t slot = reserve_for_open();
        lk.unlock();
        registration.end();
        return open_into(slot, deadline);
    }
    if (!may_wait) return std::nullopt;
    if (config_.max_waiting != 0 && queue_.size() >= config_.max_waiting) {
        ++counters_.overloaded;
        throw PoolOverloaded("pool '" + config_.name + "': too many threads waiting for a connection (" +
                             state_line() + ", max_waiting " + std::to_string(config_.max_waiting) +
                             "); shed load or raise max_size");
    }

    Waiter w;
    w.since_ns = now_ns();
    queue_.push_back(w);
    ++counters_.waits;
    const auto until = to_time_point(deadline);
    const auto starving_from = to_time_point(w.since_ns + front_.starvation_ns());
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
        if (look_at_threshold && woke >= starving_from) queue_.starving_now(w);
        // A release woke us to look (normal mode): begin_look clears the flag before we
        // look, so a release after our look wakes us again.
        const bool was_notified = queue_.begin_look(w);
        if (queue_.is_front(w) && !suspended_ && slots_.scan_idle(t.slot, t.word)) {
            queue_.unlink(w);
            wake_front_if_idle();
            note_peaks();
            return t;
        }
        if (was_notified && queue_.is_front(w) && !w.looked_at_threshold) queue_.pass_over(w);
        if (woke >= until) {
            queue_.unlink(w);
            serve_queue();
            throw_timeout(start, deadline);
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
            ++counters_.circuit_rejections;
            throw CircuitOpen(breaker_message());
        default:
            throw PoolClosed("pool '" + config_.name + "' was shut down while waiting for a connection");
    }
}

void PoolCore::throw_timeout(std::int64_t start, std::int64_t deadline) {
    ++counters_.timeouts;
    // The wait ran to the deadline (on steady_clock); the hot-path clock may read a hair
    // less, so report at least the timeout.
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::nanoseconds(std::max(elapsed(start, now_ns()), elapsed(start, deadline))));
    std::string msg = "pool '" + config_.name + "': timed out after " + std::to_string(waited.count()) +
                      " ms waiting for a connection (" + state_line() + ")";
    if (!last_connect_error_.empty()) msg += "; last connection error: " + last_connect_error_;
    msg += "; raise max_size or acquire_timeout, or return leases sooner";
    throw PoolTimeout(msg, waited, slots_.count(leased), max_, queue_.size());
}

PoolCore::Taken PoolCore::open_into(std::uint32_t slot, std::int64_t deadline) {
    Slot& s = slots_[slot];
    Connector::Opened o;
    std::string msg;
    bool closed_meanwhile = false;
    o = connector_.open(deadline);
    {
        MutexLock lk(mu_);
        for (int attempt = 1;; ++attempt) {
            if (o.failure.empty() || closed_) break;
            connect_failed(o.failure);
            const std::int64_t now = now_ns();
            if (!connector_.may_retry(attempt) || !breaker_.closed() || now >= deadline) break;
            // Backoff, never past the deadline; shutdown ends it.
            const auto until = to_time_point(std::min(deadline, now + connector_.backoff_ns(attempt)));
            while (!closed_ && closing_cv_.wait_until(lk.native(), until) != std::cv_status::timeout) {
            }
            if (closed_) break;
            lk.unlock();
            o = connector_.open(deadline);
            lk.lock();
        }
        --pending_;
        if (o.failure.empty() && !closed_) {
            opened(s, o);
            ++counters_.misses;
            const std::uint32_t word = next_lease(s.state.load(std::memory_order_relaxed));
            s.state.store(word, std::memory_order_release);
            note_peaks();
            serve_queue();  // max_connecting may have held the next in line back
            return Taken{slot, word, true};
        }
        // Opening failed, or the pool closed meanwhile: give the capacity back.
        s.state.store(with_kind(s.state.load(std::memory_order_relaxed), empty), std::memory_order_release);
        sub_total();
        closed_meanwhile = o.failure.empty();
        if (closed_meanwhile) {
            ++counters_.created;
            counters_.destroyed_one(DestroyReason::shutdown);
        }
        serve_queue();
        if (closed_) drained_cv_.notify_all();
        msg = closed_meanwhile ? "pool '" + config_.name + "' was shut down while a connection was being opened"
              : breaker_.open() ? "pool '" + config_.name + "': cannot open a new connection: " + o.failure + "; " +
                                      breaker_message(false)
                                : "pool '" + config_.name + "': cannot open a new connection: " + o.failure;
    }
    o.conn.reset();  // closing may do I/O: never under the lock
    if (closed_meanwhile) throw PoolClosed(msg);
    // This acquire did try to connect: a ConnectError, whose message says the breaker is
    // now open. CircuitOpen is for acquires refused without trying.
    throw ConnectError(msg);
}

}  // namespace poolbench::internal

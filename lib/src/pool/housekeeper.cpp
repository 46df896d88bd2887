// pool/housekeeper.cpp — on a tick: keep min_idle connections open, destroy idle ones past
// idle_timeout or their lifetime, ping those due a keepalive, look for leaked leases and
// reclaim them, and give queued waiters their probe when the breaker's cooldown ends.
// One thread per pool; it sleeps until the next of those falls due or something changes.
#include "core.hpp"

#include <algorithm>

namespace poolbench::internal {

using namespace slot_word;

void PoolCore::housekeep() {
    std::int64_t next_leak_check = now_ns() + leaks_.check_interval_ns();
    const bool timers = config_.idle_timeout.count() > 0 || config_.max_lifetime.count() > 0 ||
                        config_.keepalive_interval.count() > 0;
    const std::int64_t interval = to_ns(config_.housekeeping_interval);
    MutexLock lk(mu_);
    while (!closed_) {
        fast_clock::refine();
        if (leaks_.enabled() && now_ns() >= next_leak_check) {
            check_leaks();
            next_leak_check = now_ns() + leaks_.check_interval_ns();
            continue;
        }
        if (total_ < min_idle_ && !housekeeper_retry_ && may_open() &&
            breaker_.admit(breaker_now()) != CircuitBreaker::Decision::reject) {
            fill_min_idle();
            continue;
        }
        std::int64_t wake = never;
        if (timers) wake = std::min(lifecycle_pass(), now_ns() + interval);
        if (closed_) break;
        if (leaks_.enabled()) wake = std::min(wake, next_leak_check);
        if (housekeeper_retry_) {
            wake = std::min(wake, now_ns() + interval);
            if (breaker_.open()) wake = std::max(wake, breaker_.open_until_ns());
        }
        if (breaker_.open() && !queue_.empty()) {
            // Queued waiters get their probe when the cooldown ends, even with no traffic.
            if (breaker_.cooldown_over(now_ns())) {
                serve_queue();
                continue;
            }
            wake = std::min(wake, breaker_.open_until_ns());
        }
        if (total_ < min_idle_ && !housekeeper_retry_ && (!may_open() || !breaker_.closed())) {
            // Opening is capped (max_connecting), suspended, or held back by a circuit breaker
            // that acquires opened: look again shortly (nothing else wakes us at its cooldown).
            wake = std::min(wake, now_ns() + interval);
        }
        if (wake == never) {
            housekeeper_cv_.wait(lk.native());  // nothing to do: sleep until something changes
        } else {
            housekeeper_cv_.wait_until(lk.native(), to_time_point(wake));
            if (housekeeper_retry_ && now_ns() >= wake) housekeeper_retry_ = false;
        }
    }
}

void PoolCore::fill_min_idle() {
    const std::uint32_t slot = reserve_for_open();
    mu_.unlock();
    Connector::Opened o =
        connector_.open(now_ns() + to_ns(std::min(config_.acquire_timeout, std::chrono::milliseconds{10'000})));
    mu_.lock();
    --pending_;
    Slot& s = slots_[slot];
    const std::uint32_t w = s.state.load(std::memory_order_relaxed);
    if (o.failure.empty() && !closed_) {
        opened(s, o);
        make_available(slot, w);
        serve_queue();
        return;
    }
    s.state.store(with_kind(w, empty), std::memory_order_release);
    sub_total();
    if (!o.failure.empty()) {
        connect_failed(o.failure);
        housekeeper_retry_ = true;  // back off until the next interval
        if (closed_) drained_cv_.notify_all();
        serve_queue();
    } else {
        ++counters_.created;
        counters_.destroyed_one(DestroyReason::shutdown);
        drained_cv_.notify_all();
    }
    if (o.conn) {
        mu_.unlock();
        o.conn.reset();
        mu_.lock();
    }
}

std::int64_t PoolCore::lifecycle_pass() {
    // Destroy idle connections past idle_timeout (down to min_idle) or past their lifetime;
    // ping those due a keepalive. Returns when the next one falls due.
    const std::int64_t now = now_ns();
    const std::int64_t idle_ns = to_ns(config_.idle_timeout);
    const std::int64_t keepalive_ns = to_ns(config_.keepalive_interval);
    std::int64_t next = never;
    std::vector<ConnPtr> victims;
    std::vector<std::pair<std::uint32_t, std::uint32_t>> to_ping;
    for (std::uint32_t i = 0; i < slots_.capacity(); ++i) {
        Slot& s = slots_[i];
        const std::uint32_t w = s.state.load(std::memory_order_acquire);
        if (kind_of(w) != idle) continue;
        const std::int64_t used = s.last_used_ns.load(std::memory_order_relaxed);
        if (s.expires_ns.load(std::memory_order_relaxed) <= now) {
            destroy_idle(i, DestroyReason::lifetime, victims);
            continue;
        }
        next = std::min(next, s.expires_ns.load(std::memory_order_relaxed));
        if (idle_ns > 0 && total_ > min_idle_) {
            if (now - used >= idle_ns) {
                destroy_idle(i, DestroyReason::idle, victims);
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
    counters_.keepalives += to_ping.size();
    std::vector<bool> alive(to_ping.size());  // allocated before unlocking: nothing below throws
    mu_.unlock();
    victims.clear();
    for (std::size_t k = 0; k < to_ping.size(); ++k) alive[k] = slots_[to_ping[k].first].conn->ping();  // reserved: ours alone
    mu_.lock();
    for (std::size_t k = 0; k < to_ping.size(); ++k) {
        const auto [i, w] = to_ping[k];
        Slot& s = slots_[i];
        s.last_ping_ns = now_ns();
        if (alive[k] && !closed_) {
            make_available(i, w);
            next = std::min(next, s.last_ping_ns + keepalive_ns);
        } else {
            victims.push_back(std::move(s.conn));
            s.state.store(with_kind(w, empty), std::memory_order_release);
            destroyed(alive[k] ? DestroyReason::shutdown : DestroyReason::validation);
            if (!alive[k]) {
                ++counters_.reconnect_debt;
                mark_suspects(s.created_ns);
            }
        }
    }
    if (!victims.empty()) {
        mu_.unlock();
        victims.clear();
        mu_.lock();
    }
    return now_ns();  // something changed: look again at once
}

void PoolCore::check_leaks() {
    std::vector<LeakTracker::Finding> findings;
    try {
        findings.reserve(slots_.capacity());  // a finding is never dropped for want of room
    } catch (...) {
    }
    // One clock reading for the pass; publishing (which symbolizes stacks) after the scan.
    const std::int64_t now = now_ns();
    mu_.unlock();
    for (std::uint32_t i = 0; i < slots_.capacity(); ++i) {
        Slot& s = slots_[i];
        const std::uint32_t w = s.state.load(std::memory_order_acquire);
        if (kind_of(w) != leased) continue;
        auto f = leaks_.inspect(s.trace, w, now);
        if (!f) continue;
        if (f->reclaim) {
            // Take it back: the holder keeps a dangling-free Lease that throws LeaseRevoked.
            ConnPtr running;
            {
                MutexLock lk(mu_);
                bool room = true;
                try {
                    // So the push_back below cannot throw; doubling, so a growing list is not
                    // moved on every reclaim.
                    if (reclaimed_.size() == reclaimed_.capacity())
                        reclaimed_.reserve(std::max<std::size_t>(4, 2 * reclaimed_.size()));
                } catch (...) {
                    room = false;  // out of memory: try again next pass
                }
                std::uint32_t expected = w;
                if (room && !closed_ &&
                    s.state.compare_exchange_strong(expected, with_kind(w, reserved), std::memory_order_acq_rel)) {
                    running = s.conn;
                    reclaimed_.push_back(Reclaimed{i, w, std::move(s.conn)});
                    s.state.store(with_kind(w, empty), std::memory_order_release);
                    sub_total();
                    leaks_.count_reclaim();
                    serve_queue();
                }
                f->reclaim = static_cast<bool>(running);
            }
            // Stop its statement outside the lock (PQcancel may block). If the holder returns
            // it meanwhile, our copy keeps it open until the call is done.
            if (running) running->interrupt();
        }
        if (f->suspect || f->reclaim) {
            try {
                findings.push_back(std::move(*f));
            } catch (...) {
            }
        }
    }
    leaks_.publish(findings);
    mu_.lock();
}

}  // namespace poolbench::internal

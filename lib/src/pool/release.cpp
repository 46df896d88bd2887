// pool/release.cpp — on release: destroy what must not be reused, else make it idle, and
// then hand it to a starving waiter or wake the front waiter to compete for it
// (waiter_queue.hpp). Reclaimed leases coming back late end here too.
#include "core.hpp"

namespace poolbench::internal {

using namespace slot_word;

bool PoolCore::release(std::uint32_t slot, std::uint32_t word, Connection* conn, std::int64_t acquired_ns,
                       bool invalid) noexcept {
    const std::int64_t now = now_ns();
    metrics_.mine().usage.record(elapsed(acquired_ns, now));
    Slot& s = slots_[slot];
    if (reclaimed(slot, word)) return release_reclaimed(slot, word, now);
    leaks_.on_return(s.trace, word, acquired_ns, now);
    if (invalid || conn->is_broken()) return destroy_leased(slot, word, DestroyReason::broken);
    if (config_.reset_on_release && conn->needs_reset()) {
        bool ok = true;
        try {
            conn->reset();
        } catch (...) {
            ok = false;
        }
        if (!ok || conn->is_broken() || conn->in_transaction()) return destroy_leased(slot, word, DestroyReason::reset);
    }
    // Too old, evicted, or surplus to core_size/max_size: destroy it instead of keeping it.
    if (s.expires_ns.load(std::memory_order_relaxed) <= now ||
        s.epoch.load(std::memory_order_relaxed) != evict_epoch_.load(std::memory_order_relaxed) ||
        surplus_.load(std::memory_order_relaxed)) {
        bool done = false;
        const bool claimed = destroy_if_stale(slot, word, now, done);
        if (done) return claimed;
    }
    s.last_used_ns.store(now, std::memory_order_relaxed);
    const std::uint32_t idle_word = with_kind(word, idle);
    if (leaks_.reclaims()) {
        std::uint32_t expected = word;
        if (!s.state.compare_exchange_strong(expected, idle_word, std::memory_order_seq_cst))
            return release_reclaimed(slot, word, now);  // reclaimed while we were resetting it
    } else {
        s.state.store(idle_word, std::memory_order_seq_cst);
    }
    const std::uint64_t sig = signal_.load(std::memory_order_seq_cst);
    if (sig == 0) return false;
    if ((sig & (closed_bit | suspended_bit)) == suspended_bit) return false;  // resume() serves the queue
    if ((sig & closed_bit) != 0) return release_slow(slot, idle_word, now_ns());
    const std::int64_t later = now_ns();  // reset() may have taken a while: judge starving now
    switch (front_.after_release(later)) {
        case FrontSignals::OnRelease::hand_off:
            return release_slow(slot, idle_word, later);  // hand it straight to the front waiter
        case FrontSignals::OnRelease::wake_front:
            wake_front();  // normal mode: let the front waiter compete for it
            return false;
        case FrontSignals::OnRelease::nothing:
            return false;
    }
    return false;
}

void PoolCore::wake_front() noexcept {
    std::uint32_t* bell = nullptr;
    {
        MutexLock lk(mu_);
        bell = queue_.notify_front();
    }
    if (bell != nullptr) Bell::wake(bell);  // outside the lock: the waiter needs it to look
}

bool PoolCore::release_slow(std::uint32_t slot, std::uint32_t idle_word, std::int64_t now) noexcept {
    Slot& s = slots_[slot];
    ConnPtr victim;
    std::uint32_t* bell = nullptr;
    bool claimed = false;
    {
        MutexLock lk(mu_);
        std::uint32_t expected = idle_word;
        if (closed_) {
            // Shutdown may already have swept it; whoever wins the CAS destroys it.
            if (s.state.compare_exchange_strong(expected, with_kind(idle_word, reserved), std::memory_order_acq_rel)) {
                victim = std::move(s.conn);
                s.state.store(with_kind(idle_word, empty), std::memory_order_release);
                destroyed(DestroyReason::shutdown);
                claimed = claim_free();
            }
        } else if (suspended_) {
            // resume() serves the queue.
        } else if (!queue_.empty() && front_.starving(now) &&
                   s.state.compare_exchange_strong(expected, next_lease(idle_word), std::memory_order_acq_rel)) {
            bell = queue_.hand_to_front(slot, next_lease(idle_word));
            note_peaks();
        } else if (!queue_.empty()) {
            wake_front_if_idle();
        }
    }
    // Rung after unlocking, so the waiter does not wake into a held lock (it does not need
    // the lock to take a handed connection).
    if (bell != nullptr) Bell::wake(bell);
    victim.reset();
    return claimed;
}

bool PoolCore::release_reclaimed(std::uint32_t slot, std::uint32_t word, std::int64_t now) noexcept {
    ConnPtr victim;
    bool claimed = false;
    {
        MutexLock lk(mu_);
        for (auto it = reclaimed_.begin(); it != reclaimed_.end(); ++it) {
            if (it->slot == slot && it->word == word) {
                victim = std::move(it->conn);
                reclaimed_.erase(it);
                counters_.destroyed_one(DestroyReason::revoked);
                break;
            }
        }
        if (closed_) drained_cv_.notify_all();
        claimed = claim_free();
    }
    victim.reset();
    leaks_.on_reclaimed_return(slots_[slot].trace, word, now);
    return claimed;
}

bool PoolCore::destroy_leased(std::uint32_t slot, std::uint32_t word, DestroyReason reason) noexcept {
    if (reclaimed(slot, word)) return release_reclaimed(slot, word, now_ns());
    Slot& s = slots_[slot];
    ConnPtr victim;
    bool claimed = false;
    {
        MutexLock lk(mu_);
        // Under mu_ a reclaim cannot start; check once more for one that just finished.
        if (s.state.load(std::memory_order_acquire) != word) {
            lk.unlock();
            return release_reclaimed(slot, word, now_ns());
        }
        victim = std::move(s.conn);
        s.state.store(with_kind(word, empty), std::memory_order_release);
        destroyed(reason);
        if (reason == DestroyReason::broken || reason == DestroyReason::validation) {
            // A dead connection: the ones opened before it (a server restart kills them all)
            // are pinged before they are handed out again.
            ++counters_.reconnect_debt;
            mark_suspects(s.created_ns);
        }
        claimed = claim_free();
    }
    victim.reset();  // closing may do I/O: never under the lock
    return claimed;
}

bool PoolCore::destroy_if_stale(std::uint32_t slot, std::uint32_t word, std::int64_t now, bool& done) noexcept {
    Slot& s = slots_[slot];
    DestroyReason reason = DestroyReason::surplus;
    {
        MutexLock lk(mu_);
        if (s.state.load(std::memory_order_acquire) != word) return false;  // reclaimed: the caller sees it
        if (s.expires_ns.load(std::memory_order_relaxed) <= now) reason = DestroyReason::lifetime;
        else if (s.epoch.load(std::memory_order_relaxed) != evict_epoch_.load(std::memory_order_relaxed))
            reason = DestroyReason::evicted;
        else if (!(total_ > core_ || total_ > max_)) return false;
    }
    done = true;
    return destroy_leased(slot, word, reason);
}

}  // namespace poolbench::internal

// pool/slot_bag.hpp — a fixed array of slots, each with a compare-and-set state word.
//
// The bag knows nothing about databases: it hands out and takes back whatever Payload a
// slot carries (for the pool, a connection and its timers; see core.hpp). Its job is the
// lock-free fast path: finding an idle slot and leasing it with one CAS.
//
// A slot's state is one 32-bit word: the low two bits are its kind (empty, idle, leased,
// reserved), the rest a lease number bumped on every transition to `leased`. A holder
// remembers the word it was given; its lease is valid exactly while the slot still holds
// that word, which makes revocation (leak reclaim) and late returns ABA-safe without a
// lock. Which thread may make which transition is the owner's rule (core.hpp); the bag
// only provides the operations.
//
// Thread-safety: try_lease(), scan_idle(), count() and any_idle() may be called from any
// number of threads at once. claim_empty() must be serialised by the owner (the pool
// calls it under its mutex together with counting the slot as taken).
#pragma once

#include "poolbench/config.hpp"

#include <atomic>
#include <cstdint>
#include <exception>
#include <memory>

namespace poolbench::internal {

namespace slot_word {
constexpr std::uint32_t empty = 0;
constexpr std::uint32_t idle = 1;
constexpr std::uint32_t leased = 2;
constexpr std::uint32_t reserved = 3;
constexpr std::uint32_t kind_mask = 3;
constexpr std::uint32_t kind_of(std::uint32_t w) noexcept { return w & kind_mask; }
constexpr std::uint32_t with_kind(std::uint32_t w, std::uint32_t k) noexcept { return (w & ~kind_mask) | k; }
/// The word of the next lease: lease number + 1 (wrapping), kind leased.
constexpr std::uint32_t next_lease(std::uint32_t w) noexcept { return ((w & ~kind_mask) + 4U) | leased; }
}  // namespace slot_word

template <class Payload>
class SlotBag {
public:
    /// One slot: its state word and when it was last returned, beside the payload, on a
    /// cache line of its own.
    struct alignas(64) Entry : Payload {
        std::atomic<std::uint32_t> state{slot_word::empty};
        std::atomic<std::int64_t> last_used_ns{0};  // relaxed; written on return, read by takers
    };

    SlotBag(std::uint32_t capacity, IdleOrder order) : capacity_(capacity), order_(order), entries_(new Entry[capacity]) {}

    [[nodiscard]] std::uint32_t capacity() const noexcept { return capacity_; }
    Entry& operator[](std::uint32_t i) noexcept { return entries_[i]; }
    const Entry& operator[](std::uint32_t i) const noexcept { return entries_[i]; }

    /// idle -> leased with one CAS; on success `word` is the new lease word.
    static bool try_lease(Entry& e, std::uint32_t& word) noexcept {
        std::uint32_t w = e.state.load(std::memory_order_relaxed);
        if (slot_word::kind_of(w) != slot_word::idle) return false;
        const std::uint32_t next = slot_word::next_lease(w);
        if (!e.state.compare_exchange_strong(w, next, std::memory_order_acq_rel)) return false;
        word = next;
        return true;
    }

    /// Leases the most (LIFO) or least (FIFO) recently returned idle slot; retries when one
    /// is taken between the look and the CAS. Bounded: each failed CAS means another thread
    /// won one.
    bool scan_idle(std::uint32_t& slot, std::uint32_t& word) noexcept {
        for (int attempt = 0; attempt < 64; ++attempt) {
            std::uint32_t best = capacity_;
            std::int64_t best_used = 0;
            for (std::uint32_t i = 0; i < capacity_; ++i) {
                if (slot_word::kind_of(entries_[i].state.load(std::memory_order_seq_cst)) != slot_word::idle) continue;
                const std::int64_t used = entries_[i].last_used_ns.load(std::memory_order_relaxed);
                const bool better = order_ == IdleOrder::lifo ? used > best_used : used < best_used;
                if (best == capacity_ || better) {
                    best = i;
                    best_used = used;
                }
            }
            if (best == capacity_) return false;
            if (try_lease(entries_[best], word)) {
                slot = best;
                return true;
            }
        }
        return false;
    }

    /// An empty slot, now reserved for the caller. The owner guarantees one exists (it
    /// counts slots in use and never takes more than capacity()).
    std::uint32_t claim_empty() noexcept {
        for (std::uint32_t i = 0; i < capacity_; ++i) {
            const std::uint32_t w = entries_[i].state.load(std::memory_order_relaxed);
            if (slot_word::kind_of(w) == slot_word::empty) {
                entries_[i].state.store(slot_word::with_kind(w, slot_word::reserved), std::memory_order_relaxed);
                return i;
            }
        }
        std::terminate();  // unreachable while the owner keeps its count
    }

    /// Slots of `kind` right now (exact only while nobody changes them).
    [[nodiscard]] std::size_t count(std::uint32_t kind) const noexcept {
        std::size_t n = 0;
        for (std::uint32_t i = 0; i < capacity_; ++i)
            if (slot_word::kind_of(entries_[i].state.load(std::memory_order_acquire)) == kind) ++n;
        return n;
    }

    struct Counts {
        std::size_t idle = 0;
        std::size_t leased = 0;
    };
    /// Idle and leased slots in one pass, each slot's word read once: when slots enter and
    /// leave {idle, leased} only under the owner's lock, held here, idle + leased is exact
    /// even while lock-free takes and returns move slots between the two.
    [[nodiscard]] Counts counts() const noexcept {
        Counts c;
        for (std::uint32_t i = 0; i < capacity_; ++i) {
            const std::uint32_t k = slot_word::kind_of(entries_[i].state.load(std::memory_order_acquire));
            c.idle += k == slot_word::idle ? 1 : 0;
            c.leased += k == slot_word::leased ? 1 : 0;
        }
        return c;
    }

    /// True if some slot is idle (seq_cst: one side of the pool's Dekker pairs).
    [[nodiscard]] bool any_idle() const noexcept {
        for (std::uint32_t i = 0; i < capacity_; ++i)
            if (slot_word::kind_of(entries_[i].state.load(std::memory_order_seq_cst)) == slot_word::idle) return true;
        return false;
    }

private:
    const std::uint32_t capacity_;
    const IdleOrder order_;
    const std::unique_ptr<Entry[]> entries_;
};

}  // namespace poolbench::internal

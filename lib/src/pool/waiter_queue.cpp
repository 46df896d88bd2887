// pool/waiter_queue.cpp — the queue of waiting threads; see waiter_queue.hpp for the rule.
#include "waiter_queue.hpp"

namespace poolbench::internal {

void WaiterQueue::push_back(Waiter& w) noexcept {
    w.prev = tail_;
    w.next = nullptr;
    if (tail_ != nullptr) {
        tail_->next = &w;
    } else {
        head_ = &w;
        signals_.front_since_ns_.store(w.since_ns, std::memory_order_relaxed);
        signals_.front_passed_over_.store(false, std::memory_order_relaxed);
    }
    tail_ = &w;
    ++size_;
}

void WaiterQueue::unlink(Waiter& w) noexcept {
    if (w.prev != nullptr) {
        w.prev->next = w.next;
    } else {
        head_ = w.next;
        signals_.front_since_ns_.store(head_ != nullptr ? head_->since_ns : 0, std::memory_order_relaxed);
        signals_.front_passed_over_.store(head_ != nullptr && head_->passed_over, std::memory_order_relaxed);
    }
    if (w.next != nullptr) w.next->prev = w.prev;
    else tail_ = w.prev;
    w.next = w.prev = nullptr;
    --size_;
    if (w.notified) {
        // It was woken to look and will not: let the next release wake the new front.
        w.notified = false;
        signals_.clear_wake_pending();
    }
}

Waiter* WaiterQueue::pop_front() noexcept {
    Waiter* w = head_;
    if (w != nullptr) unlink(*w);
    return w;
}

std::uint32_t* WaiterQueue::notify_front() noexcept {
    if (head_ == nullptr) {
        signals_.clear_wake_pending();
        return nullptr;
    }
    if (head_->notified) return nullptr;
    head_->notified = true;
    return head_->bell.mark();
}

void WaiterQueue::ring_front() noexcept {
    if (std::uint32_t* const bell = wake_front_to_look()) Bell::wake(bell);
}

std::uint32_t* WaiterQueue::wake_front_to_look() noexcept {
    if (head_ == nullptr || head_->notified) return nullptr;
    head_->notified = true;
    signals_.wake_pending_.store(true, std::memory_order_seq_cst);
    return head_->bell.mark();
}

std::uint32_t* WaiterQueue::hand_to_front(std::uint32_t slot, std::uint32_t word) noexcept {
    Waiter* w = pop_front();
    w->slot = slot;
    w->word = word;
    return w->settle(Waiter::Outcome::handed);
}

std::uint32_t* WaiterQueue::permit_front(std::uint32_t slot) noexcept {
    Waiter* w = pop_front();
    w->slot = slot;
    return w->settle(Waiter::Outcome::permit);
}

void WaiterQueue::fail_all(Waiter::Outcome outcome) noexcept {
    while (Waiter* w = pop_front()) Bell::wake(w->settle(outcome));
}

bool WaiterQueue::begin_look(Waiter& w) noexcept {
    if (!w.notified) return false;
    w.notified = false;
    signals_.clear_wake_pending();
    return true;
}

void WaiterQueue::pass_over(Waiter& w) noexcept {
    w.passed_over = true;
    if (head_ == &w) signals_.front_passed_over_.store(true, std::memory_order_seq_cst);
}

void WaiterQueue::starving_now(Waiter& w) noexcept {
    // Clear the flag before the caller looks, so a release after the look sees it clear
    // and wakes us (the Dekker pair with after_release()).
    w.looked_at_threshold = true;
    w.passed_over = false;
    if (head_ == &w) signals_.front_passed_over_.store(false, std::memory_order_seq_cst);
}

}  // namespace poolbench::internal

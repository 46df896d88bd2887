// writer_gate.cpp — the write turn: bounded barging (gate_turns.hpp has the rule). A
// running writer takes a free turn at once; a queued writer sleeps on its own futex bell,
// woken either to compete for a free turn or, once the front has waited the threshold,
// with the turn already handed to it — then it returns without taking the gate's mutex
// again (see futex.hpp).
#include "poolbench/writer_gate.hpp"

#include "futex.hpp"
#include "gate_checkpointer.hpp"
#include "gate_turns.hpp"
#include "pool/time.hpp"
#include "poolbench/error.hpp"

#include <algorithm>
#include <atomic>

namespace poolbench {

namespace {
// The gate's clock: steady_clock nanoseconds (a futex deadline's clock, too). Never 0, which
// FrontSignals reads as "nobody queued".
std::int64_t gate_now() noexcept { return internal::to_ns(std::chrono::steady_clock::now().time_since_epoch()); }
}  // namespace

std::string WriterGateOptions::why_invalid() const {
    if (starvation_threshold.count() < 0)
        return "starvation_threshold is negative (" + std::to_string(starvation_threshold.count()) +
               " us); use 0 for strict first-come-first-served hand-off";
    if (starvation_threshold > max_starvation_threshold)
        return "starvation_threshold is " + std::to_string(starvation_threshold.count()) + " us, above the limit of " +
               std::to_string(max_starvation_threshold.count()) +
               " us (1 h); a queued writer may wait that long past others";
    return {};
}

Lease& WriteLease::lease() & {
    if (gate_ == nullptr) throw UsageError("WriteLease is empty (moved from or released); acquire one from a WriterGate");
    return lease_;
}

void WriteLease::release() noexcept {
    if (gate_ == nullptr) return;
    WriterGate* gate = gate_;
    gate_ = nullptr;
    // The lease may have been moved out (lease() hands it out by reference), or revoked by
    // leak reclaim (its connection is closed when it comes back): nothing to end or run.
    Connection* const c = internal::turn_connection(lease_);
    switch (c != nullptr ? c->end_write_turn() : Connection::TurnWork::none) {
        case Connection::TurnWork::after_turn:
            // A commit left work that needs no write lock (SQLite: the WAL checkpoint, with
            // its fdatasyncs): give the turn back, then leave the work and the lease to the
            // gate's helper thread, so neither the next writer nor this one waits for it.
            gate->give_turn();
            gate->checkpointer_->offer(lease_);
            return;
        case Connection::TurnWork::in_turn:
            // Work that must end before the next writer starts (SQLite: the checkpoint that
            // lets the WAL restart, which could not start while the helper checkpoints).
            gate->checkpointer_->wait_idle();
            c->after_write_turn();
            break;
        case Connection::TurnWork::none: break;
    }
    // Otherwise the connection goes back first, so the writer that takes the turn next
    // finds it idle in the pool instead of opening another one or waiting.
    lease_.release();
    gate->give_turn();
}

namespace {
WriterGateOptions checked(const std::string& name, WriterGateOptions options) {
    if (const std::string why = options.why_invalid(); !why.empty())
        throw ConfigError("writer gate '" + name + "': " + why);
    return options;
}
}  // namespace

WriterGate::WriterGate(std::string name, WriterGateOptions options)
    : name_(std::move(name)),
      options_(checked(name_, options)),
      turns_(std::make_unique<internal::GateTurns>(internal::to_ns(options_.starvation_threshold))),
      checkpointer_(std::make_unique<internal::GateCheckpointer>()) {}

WriterGate::~WriterGate() = default;

WriteLease WriterGate::acquire(Pool& pool) { return acquire(pool, pool.config().acquire_timeout); }

WriteLease WriterGate::acquire(Pool& pool, std::chrono::milliseconds timeout) {
    // One deadline for the turn and the lease together: waiting for one cannot restart the
    // timeout of the other.
    const auto start = std::chrono::steady_clock::now();
    const auto deadline = start + timeout;
    take_turn(deadline, pool);
    try {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        Lease lease = pool.acquire(std::max(left, std::chrono::milliseconds{0}));
        lease->begin_write_turn();
        return WriteLease(this, std::move(lease));
    } catch (...) {
        give_turn();
        throw;
    }
}

void WriterGate::take_turn(std::chrono::steady_clock::time_point deadline, const Pool& pool) {
    internal::MutexLock lock(mutex_);
    const std::int64_t start = gate_now();
    if (turns_->try_take(start)) return;
    internal::Waiter w;
    turns_->enqueue(w, start);
    const std::int64_t until = internal::to_ns(deadline.time_since_epoch());
    std::int64_t now = start;
    for (;;) {
        const std::int64_t wake_by = turns_->wake_by(w, now, until);
        const std::uint32_t seen = w.bell.seen();
        lock.unlock();
        w.bell.wait_until(seen, internal::to_time_point(wake_by));
        // Handed the turn: give_turn() unlinked us, counted the turn and kept it held for us.
        // Return without the mutex (the releaser may still hold it).
        if (w.outcome.load(std::memory_order_acquire) == internal::Waiter::Outcome::handed) return;
        lock.lock();
        if (w.outcome.load(std::memory_order_relaxed) == internal::Waiter::Outcome::handed) return;
        now = gate_now();
        if (turns_->look(w, now)) return;
        if (now >= until) break;
    }
    // Timed out while still queued: leave the queue (waking the next writer if the turn is free).
    std::uint32_t* const bell = turns_->leave(w);
    const bool held = turns_->held();
    const std::size_t queued = turns_->queued();
    lock.unlock();
    if (bell != nullptr) internal::Bell::wake(bell);
    const auto waited = internal::to_ms(gate_now() - start);
    // The turn is normally held when a writer times out; "free" means it was between two
    // writers (released, the next one not yet running) at that moment.
    throw PoolTimeout("writer gate '" + name_ + "' (pool '" + pool.config().name + "'): timed out after " +
                          std::to_string(waited.count()) + " ms waiting for the write turn (" +
                          (held ? "1 writer holds it" : "the turn is free") + ", " + std::to_string(queued) +
                          " others queued); " +
                          (held ? "writers are holding it too long (keep write transactions short) or raise the timeout"
                                : "it was between two writers when the timeout came; raise the timeout"),
                      waited, held ? 1 : 0, 1, queued);
}

void WriterGate::give_turn() noexcept {
    std::uint32_t* bell = nullptr;
    {
        internal::MutexLock lock(mutex_);
        bell = turns_->release(gate_now());
    }
    // After unlocking, so the writer does not wake into a held mutex. It may already have
    // returned (it saw `handed`, or timed out): waking a stale address is harmless (futex.hpp).
    if (bell != nullptr) internal::Bell::wake(bell);
}

std::size_t WriterGate::waiting() const {
    internal::MutexLock lock(mutex_);
    return turns_->queued();
}

std::uint64_t WriterGate::turns() const {
    internal::MutexLock lock(mutex_);
    return turns_->turns();
}

std::uint64_t WriterGate::waits() const {
    internal::MutexLock lock(mutex_);
    return turns_->waits();
}

std::uint64_t WriterGate::barges() const {
    internal::MutexLock lock(mutex_);
    return turns_->barges();
}

std::uint64_t WriterGate::handoffs() const {
    internal::MutexLock lock(mutex_);
    return turns_->handoffs();
}

std::uint64_t WriterGate::checkpoints_run() const { return checkpointer_->ran(); }

std::uint64_t WriterGate::checkpoints_skipped() const { return checkpointer_->skipped(); }

void WriterGate::wait_idle() const noexcept { checkpointer_->wait_idle(); }

}  // namespace poolbench

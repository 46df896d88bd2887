// gate_checkpointer.cpp — the WriterGate's helper thread; gate_checkpointer.hpp has the rules.
#include "gate_checkpointer.hpp"

#include <utility>

namespace poolbench::internal {

Connection* turn_connection(Lease& lease) noexcept {
    if (!lease) return nullptr;
    try {
        return &lease.connection();
    } catch (...) {  // NOLINT(bugprone-empty-catch): LeaseRevoked: the pool took it back
        return nullptr;
    }
}

GateCheckpointer::~GateCheckpointer() {
    std::thread thread;
    {
        MutexLock lk(mu_);
        stop_ = true;
        thread = std::move(thread_);
    }
    wake_.notify_one();
    if (thread.joinable()) thread.join();  // it runs the job in hand first
}

void GateCheckpointer::offer(Lease& lease) noexcept {
    bool inline_job = false;
    {
        MutexLock lk(mu_);
        if (busy_ || stop_) {
            ++skipped_;
        } else {
            if (!thread_.joinable()) {
                try {
                    thread_ = std::thread([this] { run(); });
                } catch (...) {
                    inline_job = true;  // no thread: run it here, below
                }
            }
            if (!inline_job) {
                job_ = std::move(lease);
                busy_ = true;
            } else {
                ++ran_;
            }
        }
    }
    if (!lease) {  // handed to the thread
        wake_.notify_one();
        return;
    }
    if (inline_job) {
        if (Connection* const c = turn_connection(lease)) c->after_write_turn();
    }
    lease.release();
}

void GateCheckpointer::run() {
    MutexLock lk(mu_);
    for (;;) {
        while (!job_ && !stop_) wake_.wait(lk.native());
        if (!job_) return;  // stopping, nothing in hand
        Lease job = std::move(job_);
        lk.unlock();
        if (Connection* const c = turn_connection(job)) c->after_write_turn();
        job.release();
        lk.lock();
        busy_ = false;
        ++ran_;
        idle_.notify_all();
    }
}

void GateCheckpointer::wait_idle() noexcept {
    MutexLock lk(mu_);
    while (busy_) idle_.wait(lk.native());
}

std::uint64_t GateCheckpointer::ran() const {
    MutexLock lk(mu_);
    return ran_;
}

std::uint64_t GateCheckpointer::skipped() const {
    MutexLock lk(mu_);
    return skipped_;
}

}  // namespace poolbench::internal

// router_health.cpp — the ReplicaRouter's rotation (router.hpp, router_core.hpp): one
// checker thread per replica, the checks themselves, failure reports from readers, and the
// lock-free in-rotation test readers make.
//
// A checker loops: check, apply the outcome under the node's mutex, wait health_interval
// or until woken (a reader's failure report, check_now(), stop). A check leases a
// connection from the replica's pool with health_timeout (so its connect is bounded and an
// open breaker answers at once) and runs the health check on it. While a check runs,
// check_started_ns says since when; a reader finding it older than health_timeout treats
// the replica as out of rotation (a hung server), without waiting for the check.
#include "router_core.hpp"

#include "pool/time.hpp"
#include "poolbench/error.hpp"

#include <pthread.h>

#include <algorithm>
#include <string>
#include <variant>

namespace poolbench {

HealthCheck default_health_check(Backend backend) {
    if (backend == Backend::postgresql) {
        return [](Connection& c, const Pool&) {
            const Rows r = c.query(
                "SELECT pg_is_in_recovery()::int, "
                "pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint");
            ReplicaHealth h;
            h.in_recovery = r.int_at(0, 0) != 0;
            if (const auto* lag = std::get_if<std::int64_t>(&r.rows.at(0).at(1))) {
                // Negative right after a standby restarts: the receive position starts at the
                // segment it streams from, behind what was already replayed.
                h.lag_bytes = std::max<std::int64_t>(*lag, 0);
            }
            return h;
        };
    }
    return [](Connection& c, const Pool&) {
        if (!c.ping()) throw QueryError("ping failed", "", 0, true, ErrorKind::connection_lost);
        return ReplicaHealth{.in_recovery = true, .lag_bytes = 0};
    };
}

namespace internal {

namespace {

/// Clears the node's `checking` pointer before the check's lease goes back.
class CheckingGuard {
public:
    CheckingGuard(RouterNode& n, Connection& c) POOLBENCH_EXCLUDES(n.mu) : n_(n) {
        MutexLock lk(n_.mu);
        n_.checking = &c;
    }
    ~CheckingGuard() POOLBENCH_NO_THREAD_SAFETY_ANALYSIS {
        MutexLock lk(n_.mu);
        n_.checking = nullptr;
    }
    CheckingGuard(const CheckingGuard&) = delete;
    CheckingGuard& operator=(const CheckingGuard&) = delete;

private:
    RouterNode& n_;
};

}  // namespace

bool RouterCore::overdue(const RouterNode& node, std::int64_t now) const noexcept {
    const std::int64_t started = node.check_started_ns.load(std::memory_order_acquire);
    return started != 0 && now - started > timeout_ns_;
}

bool RouterCore::in_rotation(const RouterNode& node, std::int64_t now) const noexcept {
    return node.state.load(std::memory_order_acquire) == NodeState::healthy && !overdue(node, now);
}

void RouterCore::set_state(RouterNode& node, NodeState to, const std::string& reason) {
    const NodeState from = node.state.load(std::memory_order_relaxed);
    if (from == NodeState::healthy && to != NodeState::healthy) ++node.left_rotation;
    if (from != to) {
        node.since = std::chrono::system_clock::now();
        if (node.history.size() == rotation_history_size) node.history.pop_front();
        node.history.push_back({node.since, std::chrono::steady_clock::now(), from, to,
                                to == NodeState::healthy ? std::string() : reason});
    }
    node.reason = to == NodeState::healthy ? std::string() : reason;
    node.state.store(to, std::memory_order_release);
}

void RouterCore::report_failure(RouterNode& node, NodeState state, const std::string& reason) noexcept {
    try {
        MutexLock lk(node.mu);
        ++node.marks;
        set_state(node, state, reason);
        node.wake = true;
    } catch (...) {
        // Only the reason string can fail to allocate; the state must still change.
        MutexLock lk(node.mu);
        ++node.marks;
        node.state.store(state, std::memory_order_release);
        node.wake = true;
    }
    node.cv.notify_one();
}

void RouterCore::start() {
    {
        MutexLock lk(ready_mu_);
        unchecked_ = nodes_.size() - 1;
    }
    for (std::size_t i = 1; i < nodes_.size(); ++i) {
        RouterNode& n = *nodes_[i];
        n.checker = std::thread([this, &n] { checker_loop(n); });
    }
}

void RouterCore::stop() noexcept {
    if (stopping_.exchange(true)) return;
    for (std::size_t i = 1; i < nodes_.size(); ++i) {
        RouterNode& n = *nodes_[i];
        {
            MutexLock lk(n.mu);
            // Under the mutex, so the check cannot return its connection meanwhile.
            if (n.checking != nullptr) n.checking->interrupt();
            n.wake = true;
        }
        n.cv.notify_all();
    }
    for (std::size_t i = 1; i < nodes_.size(); ++i) {
        if (nodes_[i]->checker.joinable()) nodes_[i]->checker.join();
    }
}

void RouterCore::check_now() noexcept {
    for (std::size_t i = 1; i < nodes_.size(); ++i) {
        RouterNode& n = *nodes_[i];
        {
            MutexLock lk(n.mu);
            n.wake = true;
        }
        n.cv.notify_one();
    }
}

bool RouterCore::wait_for_first_checks(std::chrono::milliseconds timeout) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    MutexLock lk(ready_mu_);
    while (unchecked_ > 0) {
        if (ready_cv_.wait_until(lk.native(), until) == std::cv_status::timeout) return unchecked_ == 0;
    }
    return true;
}

CheckOutcome RouterCore::judge(const ReplicaHealth& h) const {
    CheckOutcome o;
    o.lag = h.lag_bytes;
    const std::int64_t max = config_.max_lag_bytes;
    if (!h.in_recovery) {
        o.state = NodeState::not_standby;
        o.reason = "pg_is_in_recovery() is false: the server is a primary, not a standby";
    } else if (max >= 0 && !h.lag_bytes) {
        o.state = NodeState::lagging;
        o.reason = "replay lag unknown: not streaming from a primary (pg_last_wal_receive_lsn() is NULL)";
    } else if (max >= 0 && *h.lag_bytes > max) {
        o.state = NodeState::lagging;
        o.reason = "replay lag " + std::to_string(*h.lag_bytes) + " bytes is above max_lag_bytes " +
                   std::to_string(max);
    } else {
        o.state = NodeState::healthy;
    }
    return o;
}

CheckOutcome RouterCore::check_once(RouterNode& node, const HealthCheck& check) {
    CheckOutcome o;
    node.check_started_ns.store(now_ns(), std::memory_order_release);
    try {
        Lease lease = node.pool->acquire(config_.health_timeout);
        CheckingGuard guard(node, *lease);
        const ReplicaHealth h = check(*lease, *node.pool);
        o = judge(h);
    } catch (const PoolTimeout& e) {
        o.inconclusive = true;
        o.reason = e.what();
    } catch (const std::exception& e) {
        o.state = NodeState::down;
        o.reason = std::string("health check failed: ") + e.what();
    } catch (...) {
        o.state = NodeState::down;
        o.reason = "health check failed (not a std::exception)";
    }
    node.check_started_ns.store(0, std::memory_order_release);
    return o;
}

void RouterCore::checker_loop(RouterNode& node) {
    {
        const std::string name = "pb-check-" + std::to_string(node.index);
        (void)pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
    }
    const HealthCheck& check = checks_[node.index - 1];
    MutexLock lk(node.mu);
    while (!stopping_.load(std::memory_order_acquire)) {
        node.wake = false;
        const std::uint64_t marks = node.marks;
        lk.unlock();
        CheckOutcome o = check_once(node, check);
        lk.lock();
        if (stopping_.load(std::memory_order_acquire)) break;
        ++node.checks;
        if (o.inconclusive) {
            ++node.checks_inconclusive;
        } else {
            if (o.state != NodeState::healthy) ++node.check_failures;
            if (o.lag) node.lag = o.lag;
            // A failure a reader reported while this check ran is newer than its pass: keep
            // it (the report set `wake`, so the checker checks again at once).
            if (o.state != NodeState::healthy || node.marks == marks) set_state(node, o.state, o.reason);
        }
        if (!node.checked_once) {
            node.checked_once = true;
            {
                MutexLock ready(ready_mu_);
                --unchecked_;
            }
            ready_cv_.notify_all();
        }
        const auto until = std::chrono::steady_clock::now() + config_.health_interval;
        while (!node.wake && !stopping_.load(std::memory_order_acquire)) {
            if (node.cv.wait_until(lk.native(), until) == std::cv_status::timeout) break;
        }
    }
}

}  // namespace internal

}  // namespace poolbench

// router.cpp — the ReplicaRouter's routing (router.hpp, router_core.hpp): which node a read
// or a write uses, a read's one re-run, read-your-writes pins, leases and statistics.
// Rotation (what "in rotation" means and who changes it) is router_health.cpp's.
#include "router_core.hpp"

#include "pool/time.hpp"
#include "poolbench/error.hpp"

#include <random>
#include <string>
#include <utility>

namespace poolbench {

namespace internal {

namespace {

/// Counts a lease in its node's `active` for as long as it lives.
class ActiveGuard {
public:
    explicit ActiveGuard(RouterNode& n) noexcept : n_(n) { n_.active.fetch_add(1, std::memory_order_relaxed); }
    ~ActiveGuard() { n_.active.fetch_sub(1, std::memory_order_relaxed); }
    ActiveGuard(const ActiveGuard&) = delete;
    ActiveGuard& operator=(const ActiveGuard&) = delete;

private:
    RouterNode& n_;
};

/// Pins a session when the write it guards ends, however it ends.
class PinOnExit {
public:
    explicit PinOnExit(RouterSession* s) noexcept : s_(s) {}
    ~PinOnExit() {
        if (s_ != nullptr) RouterCore::note_write(*s_);
    }
    PinOnExit(const PinOnExit&) = delete;
    PinOnExit& operator=(const PinOnExit&) = delete;

private:
    RouterSession* s_;
};

std::uint64_t random_u64() {
    thread_local std::mt19937_64 rng{std::random_device{}()};
    return rng();
}

void count(std::atomic<std::uint64_t>& c) noexcept { c.fetch_add(1, std::memory_order_relaxed); }

}  // namespace

bool RouterCore::pinned(const RouterSession& session, std::int64_t now) const noexcept {
    const std::int64_t at = session.last_write_ns_.load(std::memory_order_acquire);
    return at != 0 && ryw_ns_ > 0 && now - at < ryw_ns_;
}

void RouterCore::note_write(RouterSession& session) noexcept {
    session.last_write_ns_.store(now_ns(), std::memory_order_release);
}

std::size_t RouterCore::pick_replica(std::size_t exclude) noexcept {
    const std::size_t n = nodes_.size() - 1;  // replicas are nodes_[1..n]
    if (n == 0) return no_node;
    const std::int64_t now = now_ns();
    auto usable = [&](std::size_t i) { return i != exclude && in_rotation(*nodes_[i], now); };
    switch (config_.strategy) {
        case ReadStrategy::round_robin: {
            const std::uint64_t start = rr_.fetch_add(1, std::memory_order_relaxed);
            for (std::size_t k = 0; k < n; ++k) {
                const std::size_t i = 1 + static_cast<std::size_t>((start + k) % n);
                if (usable(i)) return i;
            }
            return no_node;
        }
        case ReadStrategy::random: {
            std::size_t healthy = 0;
            for (std::size_t i = 1; i <= n; ++i) healthy += usable(i) ? 1 : 0;
            if (healthy == 0) return no_node;
            std::size_t pick = static_cast<std::size_t>(random_u64() % healthy);
            for (std::size_t i = 1; i <= n; ++i) {
                if (!usable(i)) continue;
                if (pick == 0) return i;
                --pick;
            }
            return no_node;  // a replica left the rotation between the two passes
        }
        case ReadStrategy::least_active: {
            const std::uint64_t start = rr_.fetch_add(1, std::memory_order_relaxed);
            std::size_t best = no_node;
            std::int64_t best_active = 0;
            for (std::size_t k = 0; k < n; ++k) {
                const std::size_t i = 1 + static_cast<std::size_t>((start + k) % n);
                if (!usable(i)) continue;
                const std::int64_t a = nodes_[i]->active.load(std::memory_order_relaxed);
                if (best == no_node || a < best_active) {
                    best = i;
                    best_active = a;
                }
            }
            return best;
        }
    }
    return no_node;
}

RouterNode& RouterCore::choose_read(bool pinned, std::size_t exclude, bool rerun, const std::exception_ptr& cause) {
    if (pinned) {
        if (!rerun) count(pinned_reads_);
        return *nodes_[0];
    }
    const std::size_t i = pick_replica(exclude);
    if (i != no_node) return *nodes_[i];
    if (config_.no_replica == NoReplicaPolicy::use_primary) {
        count(primary_fallbacks_);
        return *nodes_[0];
    }
    if (cause) std::rethrow_exception(cause);
    count(no_replica_errors_);
    std::string why;
    for (std::size_t k = 1; k < nodes_.size(); ++k) {
        const RouterNode& n = *nodes_[k];
        MutexLock lk(n.mu);
        why += (why.empty() ? "" : "; ") + n.name + ": " + std::string(to_string(n.state.load())) +
               (n.reason.empty() ? "" : " (" + n.reason + ")");
    }
    throw NoHealthyReplica("router: no replica in rotation" + (why.empty() ? std::string(" (none configured)") : ": " + why) +
                           "; reads are not sent to the primary (no_replica = fail)");
}

Lease RouterCore::lease_for_read(bool pinned, std::size_t exclude, bool rerun, const std::exception_ptr& cause,
                                 RouterNode*& node) {
    // Each failure here takes a replica out of rotation, so this ends within one try per
    // replica; the bound also covers a checker putting one back in between.
    for (std::size_t hop = 0;; ++hop) {
        RouterNode& n = choose_read(pinned, exclude, rerun, cause);
        node = &n;
        try {
            return n.pool->acquire();
        } catch (const ConnectError& e) {  // refused, timed out, or its breaker is open
            if (n.role == NodeRole::primary || hop >= nodes_.size()) throw;
            report_failure(n, NodeState::down, e.what());
        } catch (const PoolClosed& e) {  // a replica pool shut down under the router
            if (n.role == NodeRole::primary || hop >= nodes_.size()) throw;
            report_failure(n, NodeState::down, e.what());
        }
        count(reads_rerouted_);
    }
}

void RouterCore::read(RouterSession* session, ConnBodyRef body) {
    const bool pin = session != nullptr && pinned(*session, now_ns());
    std::size_t exclude = no_node;
    std::exception_ptr cause;  // the broken read's error, once re-running
    while (true) {
        const bool rerun = cause != nullptr;
        RouterNode* node = nullptr;
        Lease lease = lease_for_read(pin, exclude, rerun, cause, node);
        ActiveGuard active(*node);
        try {
            body(*lease);
        } catch (const QueryError& e) {
            node->read_failures.fetch_add(1, std::memory_order_relaxed);
            if (rerun || !config_.retry_broken_reads || e.kind() != ErrorKind::connection_lost) throw;
            lease.invalidate();
            lease.release();
            if (node->role == NodeRole::replica) report_failure(*node, NodeState::suspect, e.what());
            exclude = node->index;
            cause = std::current_exception();
            count(reads_retried_);
            continue;
        } catch (...) {
            node->read_failures.fetch_add(1, std::memory_order_relaxed);
            throw;
        }
        node->reads.fetch_add(1, std::memory_order_relaxed);
        return;
    }
}

void RouterCore::write(RouterSession* session, ConnBodyRef body) {
    RouterNode& p = *nodes_[0];
    Lease lease = p.pool->acquire();
    ActiveGuard active(p);
    PinOnExit pin(session);
    p.writes.fetch_add(1, std::memory_order_relaxed);
    body(*lease);
}

void RouterCore::transaction(RouterSession* session, const TxOptions& options, TxBodyRef body,
                             const RetryPolicy& policy) {
    RouterNode& p = *nodes_[0];
    ActiveGuard active(p);
    PinOnExit pin(session);
    p.writes.fetch_add(1, std::memory_order_relaxed);
    run_with_retries(*p.pool, options, body, policy, nullptr);
}

RoutedLease RouterCore::acquire_read(RouterSession* session) {
    const bool pin = session != nullptr && pinned(*session, now_ns());
    RouterNode* node = nullptr;
    Lease lease = lease_for_read(pin, no_node, false, nullptr, node);
    node->active.fetch_add(1, std::memory_order_relaxed);
    return RoutedLease(std::move(lease), node, node->index);
}

RoutedLease RouterCore::acquire_write(RouterSession* session) {
    RouterNode& p = *nodes_[0];
    Lease lease = p.pool->acquire();
    p.active.fetch_add(1, std::memory_order_relaxed);
    p.writes.fetch_add(1, std::memory_order_relaxed);
    if (session != nullptr) note_write(*session);
    return RoutedLease(std::move(lease), &p, 0);
}

RouterStats RouterCore::stats() const {
    RouterStats s;
    const std::int64_t now = now_ns();
    s.nodes.reserve(nodes_.size());
    for (const auto& np : nodes_) {
        const RouterNode& n = *np;
        NodeStats ns;
        ns.name = n.name;
        ns.role = n.role;
        ns.reads = n.reads.load(std::memory_order_relaxed);
        ns.read_failures = n.read_failures.load(std::memory_order_relaxed);
        ns.writes = n.writes.load(std::memory_order_relaxed);
        ns.active = n.active.load(std::memory_order_relaxed);
        if (n.role == NodeRole::primary) {
            ns.state = NodeState::healthy;
        } else {
            MutexLock lk(n.mu);
            ns.state = n.state.load(std::memory_order_acquire);
            ns.check_overdue = overdue(n, now);
            ns.in_rotation = ns.state == NodeState::healthy && !ns.check_overdue;
            ns.reason = n.reason;
            if (ns.check_overdue && ns.state == NodeState::healthy)
                ns.reason = "a health check has run longer than health_timeout";
            ns.since = n.since;
            ns.lag_bytes = n.lag;
            ns.checks = n.checks;
            ns.check_failures = n.check_failures;
            ns.checks_inconclusive = n.checks_inconclusive;
            ns.left_rotation = n.left_rotation;
            ns.history.assign(n.history.begin(), n.history.end());
        }
        s.nodes.push_back(std::move(ns));
    }
    s.reads_retried = reads_retried_.load(std::memory_order_relaxed);
    s.reads_rerouted = reads_rerouted_.load(std::memory_order_relaxed);
    s.primary_fallbacks = primary_fallbacks_.load(std::memory_order_relaxed);
    s.pinned_reads = pinned_reads_.load(std::memory_order_relaxed);
    s.no_replica_errors = no_replica_errors_.load(std::memory_order_relaxed);
    return s;
}

void router_read(RouterCore& core, RouterSession* session, ConnBodyRef body) { core.read(session, body); }
void router_write(RouterCore& core, RouterSession* session, ConnBodyRef body) { core.write(session, body); }
void router_transaction(RouterCore& core, RouterSession* session, const TxOptions& options, TxBodyRef body,
                        const RetryPolicy& policy) {
    core.transaction(session, options, body, policy);
}

}  // namespace internal

void RoutedLease::release() noexcept {
    if (node_ != nullptr) {
        lease_.release();
        node_->active.fetch_sub(1, std::memory_order_relaxed);
        node_ = nullptr;
    }
}

ReplicaRouter::ReplicaRouter(std::shared_ptr<Pool> primary, std::vector<std::shared_ptr<Pool>> replicas,
                             RouterConfig config)
    : core_(std::make_unique<internal::RouterCore>(std::move(primary), std::move(replicas), std::move(config))) {
    core_->start();
}

ReplicaRouter::~ReplicaRouter() { core_->stop(); }

RoutedLease ReplicaRouter::acquire_read() { return core_->acquire_read(nullptr); }
RoutedLease ReplicaRouter::acquire_write() { return core_->acquire_write(nullptr); }
bool ReplicaRouter::wait_for_health_checks(std::chrono::milliseconds timeout) {
    return core_->wait_for_first_checks(timeout);
}
void ReplicaRouter::check_now() noexcept { core_->check_now(); }
RouterStats ReplicaRouter::stats() const { return core_->stats(); }
Pool& ReplicaRouter::primary() const noexcept { return *core_->nodes_[0]->pool; }
std::size_t ReplicaRouter::replica_count() const noexcept { return core_->nodes_.size() - 1; }
const RouterConfig& ReplicaRouter::config() const noexcept { return core_->config_; }

Pool& ReplicaRouter::replica(std::size_t i) const {
    if (i >= replica_count()) {
        throw UsageError("router: no replica " + std::to_string(i) + " (there are " + std::to_string(replica_count()) +
                         ")");
    }
    return *core_->nodes_[i + 1]->pool;
}

RoutedLease RouterSession::acquire_read() { return core_->acquire_read(this); }
RoutedLease RouterSession::acquire_write() { return core_->acquire_write(this); }
void RouterSession::note_write() noexcept { internal::RouterCore::note_write(*this); }
bool RouterSession::pinned() const noexcept { return core_->pinned(*this, internal::now_ns()); }

}  // namespace poolbench

// router_core.hpp — the ReplicaRouter's state (router.hpp), shared by its two halves:
//
//   router.cpp         routing: picking a node, reads with their one re-run, writes,
//                      transactions, sessions, leases, statistics;
//   router_health.cpp  rotation: the per-replica checker threads, failure reports from
//                      readers, and the in-rotation test readers make.
//
// A node's rotation state is an atomic that readers load without a lock; it is written only
// under the node's mutex, together with the reason, the time it changed and the counters,
// so a transition and its bookkeeping are one step. Readers take a node's mutex only to
// report a failure. A checker applies a passing result only if no reader reported a failure
// while it ran (`marks` unchanged): an older good check never hides a newer failure (the
// report also woke the checker, which checks again at once).
//
// Thread-safety: as ReplicaRouter. Fields marked POOLBENCH_GUARDED_BY are touched only with
// that mutex held (scripts/thread_safety.sh); the atomics are read by any thread.
#pragma once

#include "poolbench/internal/mutex.hpp"
#include "poolbench/router.hpp"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace poolbench::internal {

inline constexpr std::size_t no_node = std::numeric_limits<std::size_t>::max();

struct RouterNode {
    RouterNode(std::shared_ptr<Pool> p, NodeRole r, std::size_t i)
        : pool(std::move(p)), role(r), index(i), name(pool->config().name) {}

    const std::shared_ptr<Pool> pool;
    const NodeRole role;
    const std::size_t index;  // 0 the primary, 1.. replicas
    const std::string name;

    // Counted by readers and writers (relaxed).
    alignas(64) std::atomic<std::uint64_t> reads{0};
    std::atomic<std::uint64_t> read_failures{0};
    std::atomic<std::uint64_t> writes{0};
    std::atomic<std::int64_t> active{0};

    // Rotation. `state` is written under mu; check_started_ns by the checker (0: no check
    // running), read by readers for the overdue rule.
    alignas(64) std::atomic<NodeState> state{NodeState::unchecked};
    std::atomic<std::int64_t> check_started_ns{0};

    mutable Mutex mu;
    std::condition_variable cv;  // wakes the checker: a failure report, check_now, stop
    bool wake POOLBENCH_GUARDED_BY(mu) = false;
    bool checked_once POOLBENCH_GUARDED_BY(mu) = false;
    std::uint64_t marks POOLBENCH_GUARDED_BY(mu) = 0;  // failures reported by readers
    std::string reason POOLBENCH_GUARDED_BY(mu);
    std::chrono::system_clock::time_point since POOLBENCH_GUARDED_BY(mu) = std::chrono::system_clock::now();
    std::optional<std::int64_t> lag POOLBENCH_GUARDED_BY(mu);
    std::uint64_t checks POOLBENCH_GUARDED_BY(mu) = 0;
    std::uint64_t check_failures POOLBENCH_GUARDED_BY(mu) = 0;
    std::uint64_t checks_inconclusive POOLBENCH_GUARDED_BY(mu) = 0;
    std::uint64_t left_rotation POOLBENCH_GUARDED_BY(mu) = 0;
    std::deque<RotationEvent> history POOLBENCH_GUARDED_BY(mu);  // at most rotation_history_size
    Connection* checking POOLBENCH_GUARDED_BY(mu) = nullptr;  // the check's connection, for stop()
    std::thread checker;
};

/// What one health check concluded.
struct CheckOutcome {
    bool inconclusive = false;  // no lease within the timeout: the pool is busy
    NodeState state = NodeState::down;
    std::string reason;
    std::optional<std::int64_t> lag;
};

class RouterCore {
public:
    RouterCore(std::shared_ptr<Pool> primary, std::vector<std::shared_ptr<Pool>> replicas, RouterConfig config);
    RouterCore(const RouterCore&) = delete;
    RouterCore& operator=(const RouterCore&) = delete;
    ~RouterCore() { stop(); }

    // --- routing (router.cpp) ---
    void read(RouterSession* session, ConnBodyRef body);
    void write(RouterSession* session, ConnBodyRef body);
    void transaction(RouterSession* session, const TxOptions& options, TxBodyRef body, const RetryPolicy& policy);
    RoutedLease acquire_read(RouterSession* session);
    RoutedLease acquire_write(RouterSession* session);
    RouterStats stats() const;
    bool pinned(const RouterSession& session, std::int64_t now) const noexcept;
    static void note_write(RouterSession& session) noexcept;

    // --- rotation (router_health.cpp) ---
    void start();
    /// Stops and joins the checkers, interrupting a check that is running. Idempotent.
    void stop() noexcept;
    void check_now() noexcept;
    bool wait_for_first_checks(std::chrono::milliseconds timeout);
    /// A replica readers may use at `now`: healthy, and no check overdue.
    bool in_rotation(const RouterNode& node, std::int64_t now) const noexcept;
    bool overdue(const RouterNode& node, std::int64_t now) const noexcept;
    /// A reader saw `node` fail: out of rotation in `state`, and its checker woken.
    void report_failure(RouterNode& node, NodeState state, const std::string& reason) noexcept;

    const RouterConfig config_;
    const std::int64_t timeout_ns_;
    const std::int64_t ryw_ns_;
    std::vector<std::unique_ptr<RouterNode>> nodes_;  // [0] the primary, then the replicas

private:
    // --- routing helpers (router.cpp) ---
    /// A replica in rotation other than `exclude`, by the strategy; no_node when none.
    std::size_t pick_replica(std::size_t exclude) noexcept;
    /// The node a read goes to: the primary while pinned or by fallback, else a replica.
    /// Throws NoHealthyReplica (or rethrows `cause` when given) under NoReplicaPolicy::fail.
    RouterNode& choose_read(bool pinned, std::size_t exclude, bool rerun, const std::exception_ptr& cause);
    /// Acquires on a replica chosen for a read, moving on to another node while replicas
    /// give no connection. Sets `node` to where the lease is.
    Lease lease_for_read(bool pinned, std::size_t exclude, bool rerun, const std::exception_ptr& cause,
                         RouterNode*& node);

    // --- rotation helpers (router_health.cpp) ---
    void checker_loop(RouterNode& node);
    CheckOutcome check_once(RouterNode& node, const HealthCheck& check);
    CheckOutcome judge(const ReplicaHealth& h) const;
    void set_state(RouterNode& node, NodeState to, const std::string& reason) POOLBENCH_REQUIRES(node.mu);

    alignas(64) std::atomic<std::uint64_t> rr_{0};
    std::atomic<std::uint64_t> reads_retried_{0};
    std::atomic<std::uint64_t> reads_rerouted_{0};
    std::atomic<std::uint64_t> primary_fallbacks_{0};
    std::atomic<std::uint64_t> pinned_reads_{0};
    std::atomic<std::uint64_t> no_replica_errors_{0};

    std::atomic<bool> stopping_{false};
    std::vector<HealthCheck> checks_;  // per replica (index - 1)
    Mutex ready_mu_;
    std::condition_variable ready_cv_;
    std::size_t unchecked_ POOLBENCH_GUARDED_BY(ready_mu_) = 0;
};

}  // namespace poolbench::internal

// runner_topology.cpp — the load over several pools (topology.hpp): the routed sources the
// load loop (runner_loop.hpp) runs each operation through.
//
//   RouterSource  writes through ReplicaRouter::write (the primary), reads through
//                 ReplicaRouter::read, so the router's reroutes and its one retry are part of
//                 what is measured. The acquire ends at the body's first entry (one clock read:
//                 the router hands the body no lease to read a timestamp from); a re-run read
//                 counts its whole retry in its query time.
//   ShardSource   draws the operation's key first (Workload::draw_key), leases from shard
//                 shard_for_key(key, N) (a write through that shard's WriterGate when the
//                 phase gates writers on SQLite shards), and counts the operation on that shard (one relaxed
//                 fetch_add on the shard's own cache line: shards share it between workers).
//
// Thread-safety: a source is shared by every worker of a phase; everything it touches is
// thread-safe (router.hpp, pool.hpp) or an atomic.
#include "runner_loop.hpp"
#include "topology.hpp"

#include <poolbench/router.hpp>
#include <poolbench/shard_map.hpp>
#include <poolbench/writer_gate.hpp>

namespace poolbench::cli {

namespace {

using namespace runner_detail;

struct RouterSource {
    ReplicaRouter& router;

    RoutedOp run(const Workload& workload, WorkerState& ws, bool write) {
        RoutedOp r;
        auto body = [&](Connection& conn) {
            if (r.acquired_ns == 0) r.acquired_ns = internal::fast_clock::now_ns();
            r.wrote = workload.run_op(conn, ws, write).wrote;
            r.done_ns = internal::fast_clock::now_ns();
        };
        if (write) {
            router.write(body);
        } else {
            router.read(body);
        }
        return r;
    }
};

struct ShardSource {
    const std::vector<std::shared_ptr<Pool>>& pools;
    Topology::ShardCount* counts;
    bool leaks_tracked;
    /// One per shard when writes queue at their shard's WriterGate; null otherwise.
    const std::unique_ptr<WriterGate>* gates;

    RoutedOp run(const Workload& workload, WorkerState& ws, bool write) {
        const std::int64_t key = workload.draw_key(ws, write);
        const std::size_t shard = shard_for_key(key, pools.size());
        GatedHandle h;
        if (write && gates != nullptr) {
            h.gated = gates[shard]->acquire(*pools[shard]);
        } else {
            h.plain = pools[shard]->acquire();
        }
        Lease& lease = h.lease();
        RoutedOp r;
        r.acquired_ns = acquire_end_ns(lease, leaks_tracked);
        try {
            r.wrote = workload.run_keyed_op(*lease, ws, write, key).wrote;
        } catch (const QueryError& e) {
            if (e.broken()) lease.invalidate();
            throw;
        }
        r.done_ns = internal::fast_clock::now_ns();
        h.release();
        (r.wrote ? counts[shard].writes : counts[shard].reads).fetch_add(1, std::memory_order_relaxed);
        return r;
    }
};

}  // namespace

LoadResult Topology::run_load(const Workload& workload, const LoadSpec& spec, const RunHooks& hooks, bool gated) {
    if (router_) return run_phase(RouterSource{*router_}, pools(), workload, spec, hooks);
    const bool gates = gated && gates_.size() == nodes_.size();
    return run_phase(ShardSource{shards_->shards(), counts_.data(), tracks_leaks(first_pool()), gates ? gates_.data() : nullptr},
                     pools(), workload, spec, hooks);
}

}  // namespace poolbench::cli

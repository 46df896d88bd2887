// pool/metrics.cpp — summing the pool's counters into PoolStats.
#include "metrics.hpp"

namespace poolbench::internal {

void ShardedMetrics::fill(PoolStats& st) const {
    std::uint64_t hits = 0;
    for (const Shard& sh : shards_) {
        st.transaction_retries += sh.transaction_retries.load(std::memory_order_relaxed);
        hits += sh.hits.load(std::memory_order_relaxed);
        st.validation_failures += sh.validation_failures.load(std::memory_order_relaxed);
        sh.acquire_wait.snapshot_into(st.acquire_wait);
        sh.usage.snapshot_into(st.usage);
    }
    st.hits = hits;
}

std::int64_t ShardedMetrics::releasing() const noexcept {
    std::int64_t running = 0;
    for (const Shard& sh : shards_) running += sh.releasing.load(std::memory_order_seq_cst);
    return running;
}

void CoreCounters::fill(PoolStats& st) const {
    st.misses = misses;
    st.acquires = st.hits + misses;
    st.waits = waits;
    st.timeouts = timeouts;
    st.created = created;
    st.connect_failures = connect_failures;
    st.destroyed_by_reason = destroyed;
    st.destroyed = 0;
    for (auto n : destroyed) st.destroyed += n;
    st.reconnects = reconnects;
    st.keepalives = keepalives;
    st.overloaded = overloaded;
    st.circuit_rejections = circuit_rejections;
    st.peak_total = peak_total;
    st.connect = connect;
}

}  // namespace poolbench::internal

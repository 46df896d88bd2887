// topology.hpp — a run's topology: one database (the common case: no Topology object at
// all, the runner's single-pool path untouched), a primary with read replicas, or shards.
//
//   TopologySpec      what the user asked for: --replica / [database] replicas, --shards N /
//                     [database] shards, several --db / [database] shard_urls, --read-strategy
//   resolve_topology  turns it into concrete URLs (N SQLite files DIR/shard-0.db ...), or a
//                     one-line UsageFailure (exit 2) saying what to do instead
//   Topology          the run's pools: a PoolRegistry of "primary", "replica-1".."replica-N"
//                     (the same PoolConfig each) with a ReplicaRouter (RouterConfig defaults
//                     but the strategy), or of "shard-0".."shard-{N-1}" with a ShardMap;
//                     seeding, the replay wait, write verification and the report's `pools`
//                     and `router` sections
//
// Routing in the load (runner_topology.cpp): writes go through the router's primary, reads
// through ReplicaRouter::read, so its reroutes and its one retry are part of what is
// measured. On shards each operation goes to shard_for_key(key, N) (shard_map.hpp: FNV-1a
// 64 over the int64's 8 little-endian bytes, then jump hash), drawn before acquiring
// (Workload::draw_key): a plain write's key is its row key, (worker << 32) | seq of the
// poolbench_writes row it inserts; an operation that reads an account (read, a mixed read,
// read_write, which then writes its row to the same shard) routes by the account id;
// select1 by a uniformly drawn account id. Each shard is seeded with the accounts 1..rows
// whose id maps to it.
//
// Thread-safety: TopologySpec and resolve_topology are plain values / main thread. A
// Topology is built, prepared, verified and reported on the scenario engine's thread; while
// a phase runs, its pools, router and shard counters are used from the worker threads
// (each is thread-safe: pool.hpp, router.hpp, shard_map.hpp; the counters are relaxed
// atomics read after the workers are joined, or by the sampler as they are).
#pragma once

#include "cli.hpp"
#include "report.hpp"
#include "runner.hpp"
#include "workload.hpp"

#include <poolbench/config.hpp>
#include <poolbench/connection.hpp>
#include <poolbench/pool.hpp>
#include <poolbench/router.hpp>
#include <poolbench/url.hpp>
#include <poolbench/writer_gate.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace poolbench {
class PoolRegistry;
class ShardMap;
}  // namespace poolbench
namespace CLI {
class App;
class Option;
}  // namespace CLI

namespace poolbench::cli {

/// A run's nodes as asked for. Empty (the default): one database, as always.
/// The most shards a run may have: each is a pool of its own, with its connections and its
/// housekeeping thread, in this one process.
inline constexpr std::int64_t max_shards = 256;

struct TopologySpec {
    std::vector<std::string> replicas;    ///< read replicas' URLs (PostgreSQL only for now)
    std::size_t shards = 0;               ///< N SQLite files in the directory the database URL names (0: none)
    std::vector<std::string> shard_urls;  ///< one URL per shard (resolved: every shard's)
    std::optional<ReadStrategy> read_strategy;
    std::string origin = "--replica";     ///< how the user spelt it, for errors ("[database] replicas")

    [[nodiscard]] bool multi() const noexcept { return !replicas.empty() || shards > 0 || !shard_urls.empty(); }
    [[nodiscard]] bool sharded() const noexcept { return shards > 0 || !shard_urls.empty(); }
};

/// "round_robin", "random", "least_active"; nullopt otherwise.
[[nodiscard]] std::optional<ReadStrategy> parse_read_strategy(std::string_view text) noexcept;

/// Checks `t` against the run's database URL text `db` (--db / --primary / [database] url;
/// "" when none was given; `temporary` when it is the fresh temp file DatabaseChoice made)
/// and makes it concrete: --shards N becomes N URLs DIR/shard-i.db (DIR created when
/// missing; nothing else in it touched), several --db stay as given. Returns the URL the
/// run's header and single-database faults use: the primary, or shard 0. Throws
/// UsageFailure (exit 2) with one line saying what works instead.
[[nodiscard]] std::string resolve_topology(TopologySpec& t, const std::string& db, bool temporary);

/// The topology flags of stress, soak and run (topology_options.cpp).
struct TopologyOptions {
    std::vector<std::string> dbs;  ///< every --db given (several: one per shard)
    std::string primary;           ///< --primary (the same as --db)
    std::vector<std::string> replicas;
    std::string read_strategy;
    std::int64_t shards = 0;  ///< signed: a negative value is refused, not wrapped
    const CLI::Option* shards_option = nullptr;
};
/// --primary, --replica, --read-strategy, --shards (group "Database"), and --db, repeatable.
void add_topology_options(CLI::App& cmd, CommonOptions& common, TopologyOptions& options);
/// The flags over the scenario's [database] keys (each flag replaces its own key: --replica
/// the replicas, --shards the shard count, several --db the shard URLs). Returns the
/// database URL text the flags give (--primary or --db; "" when neither). Throws UsageFailure.
[[nodiscard]] std::string apply_topology_options(const TopologyOptions& options, TopologySpec& t);

/// A report target (--json/--junit/--html) that is one of the shards' files is refused
/// (UnsafeReportPath, exit 2), as the single database's is (report_files.hpp).
void guard_reports_against_shards(const CommonOptions& common, const TopologySpec& t);

/// The node names of a resolved spec, in order: "primary", "replica-1".. or "shard-0"..
[[nodiscard]] std::vector<std::string> node_names(const TopologySpec& t);
/// The report's `pools` and `router` with every field present and zero (expectation paths
/// are checked against it before anything runs).
void skeleton_nodes(const TopologySpec& t, Report& r);

/// Every pool of a multi-node run. The first node's pool uses the driver the scenario
/// engine made (its fault decorator and session tracking); the others their own drivers.
class Topology {
public:
    struct Node {
        std::string name, role;  ///< role: "primary", "replica", "shard"
        DbUrl db;
        std::shared_ptr<Driver> driver;  ///< the real driver (side connections, seeding)
        std::shared_ptr<Pool> pool;
    };
    /// Per shard: operations routed there that read, and writes acknowledged there.
    struct alignas(64) ShardCount {
        std::atomic<std::uint64_t> reads{0}, writes{0};
    };

    /// Opens the pools (`first_pool_driver` wraps `first`'s real driver `first_driver`).
    /// Throws UsageFailure for a bad URL, DatabaseUnusable when a driver cannot be made.
    Topology(const TopologySpec& spec, const DbUrl& first, std::shared_ptr<Driver> first_driver,
             std::shared_ptr<Driver> first_pool_driver, const PoolConfig& config);
    Topology(const Topology&) = delete;
    Topology& operator=(const Topology&) = delete;
    ~Topology();

    /// Creates and seeds the workloads' tables: on the primary only, then waits (bounded by
    /// `timeout`) until every replica has replayed the primary's WAL position (a replica
    /// that is no standby, or a standby of another cluster by its system identifier, is
    /// refused at once); or on each shard, with the accounts that map to it. Throws
    /// DatabaseUnusable (exit 3).
    void prepare(const std::vector<Workload>& workloads, std::chrono::milliseconds timeout);
    /// Starts the router (replicas) and waits for its first health checks; a note for the
    /// report when they did not all end in time or a replica is out of rotation.
    [[nodiscard]] std::optional<std::string> start(std::chrono::milliseconds timeout);

    /// One load phase over the nodes (runner_topology.cpp). `gated`: SQLite shards queue
    /// each write at their own shard's WriterGate (the phase's writer_gate), as one database
    /// file does at the engine's.
    [[nodiscard]] LoadResult run_load(const Workload& workload, const LoadSpec& spec, const RunHooks& hooks,
                                      bool gated);

    /// Rows of this run per node (the primary, or each shard), summed into `writes`
    /// (unchecked when a node cannot count), each node's into report.pools' rows_verified;
    /// the in-doubt writes found on any node into writes.in_doubt_committed.
    /// Throws poolbench::Error when a node cannot be reached.
    void verify_writes(const std::vector<WritingPhase>& writing, std::chrono::milliseconds timeout,
                       WritesSection& writes, Report& report);
    /// Waits for the shards' gates' checkpoints in hand (their leases are not the load's),
    /// shuts every pool down (grace each); fills report.pool with the totals and the
    /// per-node `pools` and `router` sections (breaker reasons scrubbed of the URLs' secrets).
    void close_and_report(Report& report, std::size_t min_idle, std::chrono::milliseconds grace);

    [[nodiscard]] const std::vector<Node>& nodes() const noexcept { return nodes_; }
    [[nodiscard]] const ReplicaRouter* router() const noexcept { return router_.get(); }
    [[nodiscard]] ReplicaRouter* router() noexcept { return router_.get(); }
    [[nodiscard]] const ShardMap* shard_map() const noexcept { return shards_.get(); }
    [[nodiscard]] std::vector<ShardCount>& shard_counts() noexcept { return counts_; }
    /// Every node's pool, for the sampler's gauges (summed).
    [[nodiscard]] std::vector<const Pool*> pools() const;
    /// The pool single-database faults act on: the primary's, or shard 0's.
    [[nodiscard]] Pool& first_pool() const noexcept { return *nodes_.front().pool; }

private:
    void wait_for_replay(std::chrono::milliseconds timeout);

    TopologySpec spec_;
    PoolConfig config_;
    std::unique_ptr<PoolRegistry> registry_;
    std::vector<Node> nodes_;
    std::unique_ptr<ReplicaRouter> router_;
    std::unique_ptr<ShardMap> shards_;
    std::vector<ShardCount> counts_;
    std::vector<std::uint64_t> rows_verified_;
    std::vector<std::string> secrets_;
    /// SQLite shards: one WriterGate per shard file (empty otherwise). Declared after the
    /// nodes: destroyed first, while the pools their checkpoints lease from still live.
    std::vector<std::unique_ptr<WriterGate>> gates_;
};

/// The sum of several pools' statistics: counters and histograms added, gauges and sizes
/// added (peaks too: an upper bound, as each pool's peak may come at another moment), the
/// worst breaker state, every breaker transition in time order (the last 32).
[[nodiscard]] PoolStats sum_stats(const std::vector<PoolStats>& all);

}  // namespace poolbench::cli

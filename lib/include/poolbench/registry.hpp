// poolbench/registry.hpp — named pools in one process, each with its own configuration and
// statistics, and one call for the statistics of all of them.
//
// Usage:
//     poolbench::PoolRegistry pools;
//     pools.create("orders", "postgresql://app@db1/orders", {.max_size = 20});
//     pools.create("shard-0", "sqlite:///var/lib/app/shard-0.db", {.max_size = 4});
//     poolbench::Lease conn = pools.get("orders")->acquire();
//     for (const auto& [name, s] : pools.stats()) std::cout << name << ' ' << s.acquires << '\n';
//
// Pools are held by std::shared_ptr: a caller (a ReplicaRouter, a ShardMap, a worker
// thread) that got one keeps it alive after it leaves the registry, so removing a name
// never frees a pool under its users. close() removes the name and shuts the pool down
// (its users then get PoolClosed); remove() only removes the name.
//
// Like SQLAlchemy's engines keyed by bind name or Django's DATABASES aliases, one name maps
// to one pool; unlike them, names can be added and closed while other threads use the
// registry, and stats() gives every pool's figures in one call, taken one pool after the
// other (each snapshot is Pool::stats(): consistent per pool, not across pools).
//
// Thread-safety: every member function may be called from any number of threads at once.
// The registry's lock is held only to read or change the name table: never while a pool is
// created (its driver may open files), shut down (it may wait for leases) or asked for its
// statistics, so a slow pool never stalls the others. The destructor drops the registry's
// references (pools nobody else holds are destroyed, closing their connections); it must
// not run concurrently with other calls on the same registry.
#pragma once

#include "poolbench/config.hpp"
#include "poolbench/pool.hpp"
#include "poolbench/stats.hpp"

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace poolbench {

namespace internal {
struct RegistryTable;
}

class PoolRegistry {
public:
    PoolRegistry();
    PoolRegistry(const PoolRegistry&) = delete;
    PoolRegistry& operator=(const PoolRegistry&) = delete;
    ~PoolRegistry();

    /// Makes a pool over `url` (make_driver) with `config`, whose name is set to `name`,
    /// and registers it. Throws ConfigError for an empty or taken name, a bad URL or bad
    /// settings (nothing is registered then).
    std::shared_ptr<Pool> create(const std::string& name, std::string_view url, PoolConfig config = {});
    /// Registers an existing pool under `name` (its own config().name is left as it is).
    /// Throws ConfigError for an empty or taken name, UsageError for a null pool.
    std::shared_ptr<Pool> add(const std::string& name, std::shared_ptr<Pool> pool);

    /// The pool registered as `name`; throws UsageError naming the known names when none is.
    [[nodiscard]] std::shared_ptr<Pool> get(std::string_view name) const;
    /// The pool registered as `name`, or null.
    [[nodiscard]] std::shared_ptr<Pool> find(std::string_view name) const;
    /// Every registered name, sorted.
    [[nodiscard]] std::vector<std::string> names() const;
    [[nodiscard]] std::size_t size() const;

    /// Unregisters `name` and returns its pool (still open), or null when there was none.
    std::shared_ptr<Pool> remove(std::string_view name);
    /// Unregisters `name` and shuts its pool down (Pool::shutdown(grace)). False when there
    /// was no such name; otherwise what shutdown returned.
    bool close(std::string_view name, std::chrono::milliseconds grace = std::chrono::milliseconds{0});
    /// Unregisters and shuts down every pool, waiting up to `grace` for each in turn.
    /// True when every one closed all its connections within its grace.
    bool close_all(std::chrono::milliseconds grace = std::chrono::milliseconds{0});

    /// name -> Pool::stats() for every registered pool, in name order.
    [[nodiscard]] std::map<std::string, PoolStats> stats() const;

private:
    std::unique_ptr<internal::RegistryTable> table_;
};

}  // namespace poolbench

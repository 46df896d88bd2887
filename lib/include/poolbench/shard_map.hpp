// poolbench/shard_map.hpp — a key routes to one of N pools (shards) by a stable hash.
//
// Usage:
//     std::vector<std::shared_ptr<poolbench::Pool>> pools;  // e.g. N SQLite files
//     for (int i = 0; i < 4; ++i)
//         pools.push_back(registry.create("shard-" + std::to_string(i),
//                                         "sqlite:///data/shard-" + std::to_string(i) + ".db"));
//     poolbench::ShardMap shards(pools);
//     poolbench::Lease conn = shards.pool_for(user_id).acquire();
//
// The mapping, fixed for good (a test checks known keys against recorded shards, so a
// change that would move stored data to another shard fails the build):
//   1. the key's bytes: a string key's bytes as they are; an int64 key's 8 bytes of its
//      two's-complement value, least significant first (so the mapping does not depend on
//      the machine's byte order; an int64 key and its decimal text map differently);
//   2. hashed with 64-bit FNV-1a (offset basis 0xcbf29ce484222325, prime 0x100000001b3);
//   3. that hash picks one of N buckets with Lamping and Veach's jump consistent hash
//      ("A Fast, Minimal Memory, Consistent Hash Algorithm", 2014: the linear congruential
//      step key = key * 2862933555777941757 + 1 and j = (b + 1) * 2^31 / ((key >> 33) + 1)).
// Why these: jump hash spreads keys evenly and, when N grows to N + 1, moves only the
// keys that must move (about 1/(N + 1) of them, all to the new shard), with no ring to
// store; FNV-1a turns any key into the well-mixed 64-bit input jump hash needs, is
// specified byte by byte, and is the same on every platform and compiler (std::hash is
// neither). Shards are numbered by their position in the vector given to the constructor,
// so keep that order: a shard's number, not its URL, decides which keys it holds.
// Not a cryptographic hash: a client that chooses keys can aim them at one shard.
//
// Thread-safety: a ShardMap is immutable after construction; every member function may be
// called from any number of threads at once. The pools it hands out are thread-safe
// (pool.hpp). The free functions are pure.
#pragma once

#include "poolbench/pool.hpp"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

namespace poolbench {

/// 64-bit FNV-1a of `bytes`.
[[nodiscard]] std::uint64_t fnv1a_64(std::string_view bytes) noexcept;
/// Lamping-Veach jump consistent hash: a bucket in [0, buckets) for `key`; 0 when buckets < 1.
[[nodiscard]] std::int32_t jump_consistent_hash(std::uint64_t key, std::int32_t buckets) noexcept;
/// The shard of `key` among `shards` (see the top of this file); 0 when shards is 0.
[[nodiscard]] std::size_t shard_for_key(std::string_view key, std::size_t shards) noexcept;
[[nodiscard]] std::size_t shard_for_key(std::int64_t key, std::size_t shards) noexcept;

class ShardMap {
public:
    /// Throws ConfigError when `shards` is empty, holds a null pool or the same pool twice,
    /// or has more than 2^31 - 1 entries.
    explicit ShardMap(std::vector<std::shared_ptr<Pool>> shards);

    [[nodiscard]] std::size_t size() const noexcept { return shards_.size(); }
    [[nodiscard]] std::size_t shard_of(std::string_view key) const noexcept { return shard_for_key(key, size()); }
    [[nodiscard]] std::size_t shard_of(std::int64_t key) const noexcept { return shard_for_key(key, size()); }
    [[nodiscard]] Pool& pool_for(std::string_view key) const { return *shards_[shard_of(key)]; }
    [[nodiscard]] Pool& pool_for(std::int64_t key) const { return *shards_[shard_of(key)]; }
    /// Shard `i`'s pool; throws UsageError when i >= size().
    [[nodiscard]] Pool& shard(std::size_t i) const;
    [[nodiscard]] const std::vector<std::shared_ptr<Pool>>& shards() const noexcept { return shards_; }

private:
    std::vector<std::shared_ptr<Pool>> shards_;
};

}  // namespace poolbench

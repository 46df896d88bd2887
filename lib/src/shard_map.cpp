// shard_map.cpp — FNV-1a, jump consistent hash and ShardMap (shard_map.hpp).
#include "poolbench/shard_map.hpp"

#include "poolbench/error.hpp"

#include <algorithm>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace poolbench {

std::uint64_t fnv1a_64(std::string_view bytes) noexcept {
    std::uint64_t h = 0xcbf29ce484222325ULL;
    for (const char c : bytes) {
        h ^= static_cast<std::uint8_t>(c);
        h *= 0x100000001b3ULL;
    }
    return h;
}

std::int32_t jump_consistent_hash(std::uint64_t key, std::int32_t buckets) noexcept {
    std::int64_t b = -1;
    std::int64_t j = 0;
    while (j < buckets) {
        b = j;
        key = key * 2862933555777941757ULL + 1;
        j = static_cast<std::int64_t>(static_cast<double>(b + 1) *
                                      (static_cast<double>(std::int64_t{1} << 31) /
                                       static_cast<double>((key >> 33) + 1)));
    }
    return b < 0 ? 0 : static_cast<std::int32_t>(b);
}

std::size_t shard_for_key(std::string_view key, std::size_t shards) noexcept {
    if (shards == 0) return 0;
    const auto n = static_cast<std::int32_t>(std::min<std::size_t>(shards, std::numeric_limits<std::int32_t>::max()));
    return static_cast<std::size_t>(jump_consistent_hash(fnv1a_64(key), n));
}

std::size_t shard_for_key(std::int64_t key, std::size_t shards) noexcept {
    const auto v = static_cast<std::uint64_t>(key);
    char bytes[8];
    for (int i = 0; i < 8; ++i) bytes[i] = static_cast<char>((v >> (8 * i)) & 0xff);  // least significant first
    return shard_for_key(std::string_view(bytes, sizeof bytes), shards);
}

ShardMap::ShardMap(std::vector<std::shared_ptr<Pool>> shards) : shards_(std::move(shards)) {
    if (shards_.empty()) throw ConfigError("shard map: give at least one shard");
    if (shards_.size() > static_cast<std::size_t>(std::numeric_limits<std::int32_t>::max()))
        throw ConfigError("shard map: at most 2147483647 shards");
    std::vector<std::pair<const Pool*, std::size_t>> seen;
    seen.reserve(shards_.size());
    for (std::size_t i = 0; i < shards_.size(); ++i) {
        if (!shards_[i]) throw ConfigError("shard map: shard " + std::to_string(i) + " has no pool");
        seen.emplace_back(shards_[i].get(), i);
    }
    std::sort(seen.begin(), seen.end());
    for (std::size_t i = 1; i < seen.size(); ++i) {
        if (seen[i].first == seen[i - 1].first) {
            throw ConfigError("shard map: shards " + std::to_string(seen[i - 1].second) + " and " +
                              std::to_string(seen[i].second) + " are the same pool ('" + seen[i].first->config().name +
                              "')");
        }
    }
}

Pool& ShardMap::shard(std::size_t i) const {
    if (i >= shards_.size()) {
        throw UsageError("shard map: no shard " + std::to_string(i) + " (there are " + std::to_string(shards_.size()) +
                         ")");
    }
    return *shards_[i];
}

}  // namespace poolbench

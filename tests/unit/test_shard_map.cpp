// ShardMap's hash: FNV-1a 64 and jump consistent hash against published vectors, and the
// mapping of known keys, recorded once (from an independent implementation of the
// documented algorithm) and never to change: a change here moves users' data.
#include <catch2/catch.hpp>

#include "support/test_driver.hpp"

#include <poolbench/shard_map.hpp>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

using poolbench::fnv1a_64;
using poolbench::jump_consistent_hash;
using poolbench::shard_for_key;

TEST_CASE("FNV-1a 64 gives the reference values", "[shard]") {
    CHECK(fnv1a_64("") == 0xcbf29ce484222325ULL);
    CHECK(fnv1a_64("a") == 0xaf63dc4c8601ec8cULL);
    CHECK(fnv1a_64("foobar") == 0x85944171f73967e8ULL);
}

TEST_CASE("jump consistent hash gives the published values", "[shard]") {
    // The vectors ClickHouse's and Microsoft's implementations test against.
    CHECK(jump_consistent_hash(1, 1) == 0);
    CHECK(jump_consistent_hash(42, 57) == 43);
    CHECK(jump_consistent_hash(256, 1024) == 520);
    CHECK(jump_consistent_hash(3735883980ULL, 1) == 0);
    CHECK(jump_consistent_hash(3735883980ULL, 666) == 361);
    CHECK(jump_consistent_hash(16045690984833335023ULL, 255) == 237);
    CHECK(jump_consistent_hash(2016238256797177309ULL, 11) == 3);
    CHECK(jump_consistent_hash(10863919174838991ULL, 11) == 6);
    CHECK(jump_consistent_hash(12345, 0) == 0);
    CHECK(jump_consistent_hash(12345, -3) == 0);
}

TEST_CASE("the shard of known keys never changes", "[shard]") {
    constexpr std::array<std::size_t, 6> sizes{1, 2, 3, 4, 8, 16};
    struct StringKey {
        const char* key;
        std::array<std::size_t, 6> shard;  // for 1, 2, 3, 4, 8, 16 shards
    };
    const std::vector<StringKey> strings{
        {"", {0, 1, 1, 1, 1, 13}},          {"a", {0, 1, 2, 2, 2, 12}},
        {"user:1", {0, 0, 0, 0, 5, 12}},    {"user:2", {0, 0, 2, 2, 7, 7}},
        {"user:42", {0, 1, 1, 1, 1, 15}},   {"order-1001", {0, 0, 0, 0, 7, 8}},
        {"poolbench", {0, 1, 1, 1, 7, 7}},  {"shard", {0, 0, 0, 3, 4, 8}},
        {"alice", {0, 0, 0, 3, 4, 4}},      {"bob", {0, 0, 2, 2, 2, 12}},
        {"carol", {0, 0, 2, 3, 7, 7}},      {"dave", {0, 0, 0, 0, 0, 14}},
    };
    for (const auto& k : strings) {
        for (std::size_t i = 0; i < sizes.size(); ++i) {
            INFO("key '" << k.key << "', " << sizes[i] << " shards");
            CHECK(shard_for_key(std::string_view(k.key), sizes[i]) == k.shard[i]);
        }
    }
    struct IntKey {
        std::int64_t key;
        std::array<std::size_t, 6> shard;
    };
    const std::vector<IntKey> ints{
        {0, {0, 0, 0, 3, 7, 11}},
        {1, {0, 1, 1, 3, 3, 3}},
        {2, {0, 1, 1, 3, 6, 6}},
        {3, {0, 1, 1, 3, 3, 3}},
        {42, {0, 0, 2, 2, 2, 13}},
        {-1, {0, 0, 0, 0, 0, 0}},
        {1000, {0, 0, 2, 2, 7, 13}},
        {123456789, {0, 0, 0, 3, 3, 3}},
        {INT64_MIN, {0, 0, 2, 3, 3, 3}},
        {INT64_MAX, {0, 1, 1, 3, 6, 13}},
    };
    for (const auto& k : ints) {
        for (std::size_t i = 0; i < sizes.size(); ++i) {
            INFO("key " << k.key << ", " << sizes[i] << " shards");
            CHECK(shard_for_key(k.key, sizes[i]) == k.shard[i]);
        }
    }
    // An int64 key is its 8 bytes, least significant first.
    const std::string bytes("\x2a\0\0\0\0\0\0\0", 8);
    CHECK(shard_for_key(std::int64_t{42}, 16) == shard_for_key(std::string_view(bytes), 16));
    CHECK(shard_for_key(std::string_view("x"), 0) == 0);
}

TEST_CASE("keys spread evenly, and a new shard takes keys only from the others", "[shard]") {
    constexpr std::int64_t keys = 40'000;
    for (std::size_t n : {2U, 4U, 7U}) {
        std::vector<std::int64_t> per(n, 0);
        std::int64_t moved = 0;
        for (std::int64_t k = 0; k < keys; ++k) {
            const std::size_t before = shard_for_key(k, n);
            const std::size_t after = shard_for_key(k, n + 1);
            ++per[before];
            if (after != before) {
                ++moved;
                CHECK(after == n);  // a key only ever moves to the new shard
            }
        }
        for (std::size_t s = 0; s < n; ++s) {
            INFO(n << " shards, shard " << s);
            // Within 5% of an even share (binomial spread is about 1% here).
            CHECK(std::abs(per[s] - keys / static_cast<std::int64_t>(n)) < keys / static_cast<std::int64_t>(n) / 20);
        }
        // About 1/(n+1) of the keys move.
        const double share = static_cast<double>(moved) / keys;
        CHECK(share == Approx(1.0 / static_cast<double>(n + 1)).margin(0.02));
    }
}

TEST_CASE("ShardMap hands out the pool of each key's shard", "[shard]") {
    std::vector<std::shared_ptr<poolbench::Pool>> pools;
    for (int i = 0; i < 4; ++i) {
        pools.push_back(std::make_shared<poolbench::Pool>(std::make_shared<pbtest::TestDriver>(),
                                                          pbtest::config("s" + std::to_string(i), 1, std::chrono::milliseconds{1000})));
    }
    const poolbench::ShardMap map(pools);
    CHECK(map.size() == 4);
    CHECK(map.shard_of(std::string_view("alice")) == 3);
    CHECK(&map.pool_for(std::string_view("alice")) == pools[3].get());
    CHECK(&map.pool_for(std::int64_t{42}) == pools[2].get());
    CHECK(&map.shard(1) == pools[1].get());
    CHECK_THROWS_AS(map.shard(4), poolbench::UsageError);

    CHECK_THROWS_AS(poolbench::ShardMap({}), poolbench::ConfigError);
    CHECK_THROWS_AS(poolbench::ShardMap({pools[0], nullptr}), poolbench::ConfigError);
    CHECK_THROWS_WITH(poolbench::ShardMap({pools[0], pools[1], pools[0]}),
                      Catch::Contains("shards 0 and 2 are the same pool ('s0')"));
}

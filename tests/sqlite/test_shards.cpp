// Shards on real SQLite files: 4 files, one pool each in a PoolRegistry, a ShardMap over
// them, 100 threads writing keys at once. Every acknowledged write is found, on the shard
// the documented mapping names and nowhere else, and the per-shard counts add up.
#include "support/sqlite_support.hpp"

#include <poolbench/poolbench.hpp>

#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

using poolbench::Connection;
using poolbench::PoolRegistry;
using poolbench::ShardMap;

TEST_CASE("shards: 100 threads write keys to 4 SQLite files, each key on its documented shard", "[shard]") {
    sqltest::TempDir dir;
    constexpr std::size_t shards = 4;
    constexpr int threads = 100;
    constexpr int keys_per_thread = 20;

    PoolRegistry registry;
    std::vector<std::shared_ptr<poolbench::Pool>> pools;
    for (std::size_t i = 0; i < shards; ++i) {
        poolbench::PoolConfig cfg;
        cfg.max_size = 4;
        cfg.acquire_timeout = std::chrono::seconds(60);
        const std::string url = "sqlite://" + dir.file("shard-" + std::to_string(i) + ".db") +
                                "?busy_timeout=30000&journal_mode=wal&synchronous=normal";
        pools.push_back(registry.create("shard-" + std::to_string(i), url, cfg));
        auto l = pools.back()->acquire();
        l->execute("CREATE TABLE kv (k TEXT PRIMARY KEY, writer INTEGER NOT NULL)");
    }
    const ShardMap map(pools);

    std::atomic<int> acknowledged{0};
    std::atomic<int> failures{0};
    std::vector<std::thread> ts;
    ts.reserve(threads);
    for (int t = 0; t < threads; ++t) {
        ts.emplace_back([&, t] {
            for (int i = 0; i < keys_per_thread; ++i) {
                const std::string key = "user:" + std::to_string(t) + ":" + std::to_string(i);
                try {
                    auto lease = map.pool_for(key).acquire();
                    (void)lease->query("INSERT INTO kv (k, writer) VALUES (?1, ?2)",
                                       {poolbench::Value{key}, poolbench::Value{std::int64_t{t}}});
                    acknowledged.fetch_add(1);
                } catch (const std::exception&) {
                    failures.fetch_add(1);  // no Catch assertions off the main thread
                }
            }
        });
    }
    for (auto& th : ts) th.join();
    CHECK(failures.load() == 0);
    CHECK(acknowledged.load() == threads * keys_per_thread);

    // What the documented mapping says each shard holds.
    std::vector<std::set<std::string>> expected(shards);
    for (int t = 0; t < threads; ++t) {
        for (int i = 0; i < keys_per_thread; ++i) {
            const std::string key = "user:" + std::to_string(t) + ":" + std::to_string(i);
            expected[poolbench::shard_for_key(std::string_view(key), shards)].insert(key);
        }
    }
    std::size_t total = 0;
    for (std::size_t s = 0; s < shards; ++s) {
        auto lease = pools[s]->acquire();
        const auto rows = lease->query("SELECT k FROM kv ORDER BY k");
        std::set<std::string> found;
        for (std::size_t r = 0; r < rows.size(); ++r) found.insert(sqltest::text_at(rows, r));
        INFO("shard " << s);
        CHECK(found.size() == rows.size());
        CHECK(found == expected[s]);
        // Spread: each shard within a quarter of an even share (2000 keys: about 500 each).
        CHECK(found.size() > 375);
        CHECK(found.size() < 625);
        total += found.size();
    }
    CHECK(total == static_cast<std::size_t>(threads * keys_per_thread));

    // The registry's figures: every insert was one lease on its shard's pool.
    const auto stats = registry.stats();
    REQUIRE(stats.size() == shards);
    std::uint64_t leases = 0;
    for (std::size_t s = 0; s < shards; ++s) {
        const auto& st = stats.at("shard-" + std::to_string(s));
        CHECK(st.acquires == expected[s].size() + 2);  // + CREATE TABLE and the count above
        CHECK(st.peak_total <= 4);
        leases += st.acquires;
    }
    CHECK(leases == total + 2 * shards);
}

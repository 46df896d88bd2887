// The WAL auto-checkpoint under a WriterGate, on real SQLite files: the checkpoint a commit
// triggers runs on the gate's helper thread after the turn (not inside COMMIT, where it held
// up every queued writer), the WAL still stays within 4 times the auto-checkpoint threshold,
// and outside a turn the connection checkpoints as SQLite always does.
#include <catch2/catch.hpp>

#include "support/sqlite_support.hpp"

#include <poolbench/poolbench.hpp>

#include <atomic>
#include <cstdint>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

using namespace sqltest;

namespace {

poolbench::PoolConfig gate_config() {
    poolbench::PoolConfig c;
    c.name = "gate-checkpoint";
    c.max_size = 8;
    c.acquire_timeout = 30s;
    return c;
}

std::string url(const TempDir& dir, const std::string& options) {
    return "sqlite://" + dir.file("g.db") + "?busy_timeout=5000&" + options;
}

}  // namespace

TEST_CASE("SQLite: under a WriterGate the WAL checkpoints run on the gate's thread and the WAL stays within 4 times the threshold",
          "[sqlite][tx][gate]") {
    TempDir dir;
    Pool pool(make_driver(url(dir, "wal_autocheckpoint=20")), gate_config());
    {
        Lease l = pool.acquire();
        l->execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)");
    }
    constexpr int threads = 4;
    constexpr int per_thread = 1500;
    std::atomic<int> errors{0};
    std::uint64_t run = 0, skipped = 0;
    {
        poolbench::WriterGate gate("g.db");
        std::vector<std::thread> ts;
        for (int t = 0; t < threads; ++t) {
            ts.emplace_back([&] {
                for (int i = 0; i < per_thread; ++i) {
                    try {
                        poolbench::run_in_transaction(
                            pool, {.sqlite_mode = SqliteMode::immediate},
                            [](Transaction& tx) { tx.execute("INSERT INTO t(v) VALUES (zeroblob(3000))"); }, {},
                            &gate);
                    } catch (const std::exception&) {
                        errors.fetch_add(1);
                    }
                }
            });
        }
        for (auto& t : ts) t.join();
        run = gate.checkpoints_run();
        skipped = gate.checkpoints_skipped();
    }  // the gate's thread finishes the job in hand
    INFO("checkpoints run " << run << ", skipped " << skipped);
    CHECK(errors.load() == 0);
    CHECK(pool.stats().transaction_retries == 0);
    Lease l = pool.acquire();
    CHECK(l->query("SELECT count(*) FROM t").int_at(0) == threads * per_thread);
    CHECK(run >= 1);
    // Every commit appends at least one page (about 3 here) to the WAL: never restarted, the
    // file would hold at least threads * per_thread pages. Checkpoints in the gate's thread
    // cannot backfill it all while others write; from 2 * 20 frames on one runs inside the
    // turn if it can start, from 4 * 20 on after waiting for the thread's, and the next
    // writer restarts the WAL. So it never grows past 4 * 20 frames plus a commit.
    const auto page = static_cast<std::uintmax_t>(l->query("PRAGMA page_size").int_at(0));
    const auto wal = std::filesystem::file_size(dir.file("g.db") + "-wal");
    const std::uintmax_t frame = page + 24, header = 32;
    INFO("WAL " << wal << " bytes, " << (wal - header) / frame << " frames of " << page << " bytes");
    CHECK(wal <= header + (4 * 20 + 10) * frame);
    // The connections' own auto-checkpoint is back after each turn (0 if the turn's hook
    // had been left in place).
    std::vector<Lease> all;  // every connection of the pool at once
    for (int i = 1; i < 8; ++i) all.push_back(pool.acquire());
    all.push_back(std::move(l));
    for (auto& each : all) CHECK(each->query("PRAGMA wal_autocheckpoint").int_at(0) == 20);
}

TEST_CASE("SQLite: a write turn leaves the connection's auto-checkpoint as it found it or as a PRAGMA in it set it",
          "[sqlite][tx][gate]") {
    TempDir dir;
    const std::string setting = GENERATE(std::string("wal_autocheckpoint=0"), std::string("wal_autocheckpoint=7"));
    INFO(setting);
    const std::int64_t frames = setting == "wal_autocheckpoint=0" ? 0 : 7;
    PoolConfig c = gate_config();
    c.max_size = 1;  // one connection: every turn uses it
    Pool pool(make_driver(url(dir, setting)), c);
    {
        Lease l = pool.acquire();
        l->execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)");
    }
    poolbench::WriterGate gate("g.db");
    for (int i = 0; i < 50; ++i) {
        poolbench::run_in_transaction(
            pool, {}, [](Transaction& tx) { tx.execute("INSERT INTO t(v) VALUES (zeroblob(3000))"); }, {}, &gate);
    }
    // A turn whose transaction is still open when it ends leaves no work: the commit or
    // rollback after it checkpoints as SQLite would.
    {
        WriteLease w = gate.acquire(pool, 5s);
        w->execute("BEGIN IMMEDIATE");
        w->execute("INSERT INTO t(v) VALUES (1)");
    }  // the pool rolls it back
    const std::uint64_t jobs = gate.checkpoints_run() + gate.checkpoints_skipped();
    if (frames == 0) CHECK(jobs == 0);
    else CHECK(jobs >= 1);
    {
        Lease l = pool.acquire();  // waits for the gate's thread if it still holds the connection
        CHECK(l->query("PRAGMA wal_autocheckpoint").int_at(0) == frames);
        CHECK(l->query("SELECT count(*) FROM t").int_at(0) == 50);
    }
    // A PRAGMA in a turn that changes the threshold is what the connection keeps.
    {
        WriteLease w = gate.acquire(pool, 5s);
        w->execute("PRAGMA wal_autocheckpoint=13");
    }
    Lease l = pool.acquire();
    CHECK(l->query("PRAGMA wal_autocheckpoint").int_at(0) == 13);
    // ... and turns after it work with that threshold (and leave it in place).
    l.release();
    poolbench::run_in_transaction(
        pool, {}, [](Transaction& tx) { tx.execute("INSERT INTO t(v) VALUES (zeroblob(3000))"); }, {}, &gate);
    Lease again = pool.acquire();
    CHECK(again->query("PRAGMA wal_autocheckpoint").int_at(0) == 13);
}

TEST_CASE("SQLite: a lease moved out of its WriteLease ends the turn when it comes back: the auto-checkpoint is the connection's again",
          "[sqlite][tx][gate]") {
    TempDir dir;
    PoolConfig c = gate_config();
    c.max_size = 1;  // one connection: the lease taken again below is the moved-out one's
    Pool pool(make_driver(url(dir, "wal_autocheckpoint=8")), c);
    const std::string db = dir.file("g.db");
    std::uintmax_t page = 0;
    {
        Lease l = pool.acquire();
        l->execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB NOT NULL)");
        l->execute("PRAGMA wal_checkpoint(TRUNCATE)");  // an empty WAL: frames counted from 0
        page = static_cast<std::uintmax_t>(l->query("PRAGMA page_size").int_at(0));
    }
    const auto wal_frames = [&] {
        const auto wal = std::filesystem::file_size(db + "-wal");
        return wal < 32 ? std::uintmax_t{0} : (wal - 32) / (page + 24);
    };
    // Commits until the WAL holds 8 frames (the threshold) or more; returns how many.
    const auto write_past_threshold = [&](Lease& l) {
        int commits = 0;
        while (commits < 100 && wal_frames() < 8) {
            l->execute("INSERT INTO t(v) VALUES (zeroblob(3000))");  // a new page per row
            ++commits;
        }
        return commits;
    };
    poolbench::WriterGate gate("g.db");
    const auto db_before = std::filesystem::file_size(db);
    {
        WriteLease w = gate.acquire(pool, 5s);
        Lease out = std::move(w.lease());
        w.release();  // the turn is given back; the moved-out lease is still in its turn
        CHECK(write_past_threshold(out) < 100);
        CHECK(std::filesystem::file_size(db) == db_before);  // deferred: nothing copied yet
    }  // back to the pool: the turn ends and its deferred checkpoint runs
    CHECK(std::filesystem::file_size(db) > db_before);
    Lease l = pool.acquire();
    CHECK(l->query("PRAGMA wal_autocheckpoint").int_at(0) == 8);  // 0 while the turn's hook stays
    CHECK(gate.checkpoints_run() + gate.checkpoints_skipped() == 0);
    // Outside a turn, the commit that reaches the threshold checkpoints, as SQLite's does.
    l->execute("PRAGMA wal_checkpoint(TRUNCATE)");
    const auto db_mid = std::filesystem::file_size(db);
    CHECK(write_past_threshold(l) < 100);
    CHECK(std::filesystem::file_size(db) > db_mid);
}

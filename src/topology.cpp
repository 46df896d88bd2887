// topology.cpp — resolving a run's topology, its pools, seeding and the replay wait, write
// verification per node, and the report's per-pool sections (topology.hpp). The load
// through it is runner_topology.cpp's.
#include "topology.hpp"

#include "cli.hpp"
#include "preflight_checks.hpp"
#include "redaction.hpp"

#include <poolbench/error.hpp>
#include <poolbench/registry.hpp>
#include <poolbench/shard_map.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <thread>

namespace poolbench::cli {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

/// The names the user knows the settings by: flags, or the scenario file's keys.
struct Spelling {
    const char *replica, *shards, *urls, *primary, *strategy;
};
Spelling spelling(const TopologySpec& t) {
    if (t.origin == "file") {
        return {"[database] replicas", "[database] shards", "[database] shard_urls", "[database] url",
                "[database] read_strategy"};
    }
    return {"--replica", "--shards", "several --db", "--primary", "--read-strategy"};
}

DbUrl parse_or_usage(const std::string& url, const char* what) {
    try {
        return parse_db_url(url);
    } catch (const ConfigError& e) {
        throw UsageFailure(scrub(fmt::format("{}: {}", what, e.what()), url_secrets(url)));
    }
}

std::string query_of(const std::string& url) {
    const auto q = url.find('?');
    return q == std::string::npos ? std::string() : url.substr(q);
}

}  // namespace

std::optional<ReadStrategy> parse_read_strategy(std::string_view text) noexcept {
    for (auto s : {ReadStrategy::round_robin, ReadStrategy::random, ReadStrategy::least_active}) {
        if (text == to_string(s)) return s;
    }
    return std::nullopt;
}

std::string resolve_topology(TopologySpec& t, const std::string& db, bool temporary) {
    const Spelling say = spelling(t);
    if (t.read_strategy && t.replicas.empty()) {
        throw UsageFailure(fmt::format("{} applies only with {} (reads are routed among replicas)", say.strategy,
                                       say.replica));
    }
    if (!t.multi()) return db;
    if (!t.replicas.empty() && t.sharded()) {
        throw UsageFailure(fmt::format("{} cannot be combined with {}: replicas copy one database, shards split it; "
                                       "give one of them",
                                       say.replica, t.shards > 0 ? say.shards : say.urls));
    }
    if (!t.replicas.empty()) {
        if (db.empty() || temporary) {
            throw UsageFailure(fmt::format("{} needs a primary: give {} postgresql://... (the server the replicas "
                                           "stream from)",
                                           say.replica, say.primary));
        }
        const DbUrl primary = parse_or_usage(db, say.primary);
        if (primary.backend != Backend::postgresql) {
            throw UsageFailure(fmt::format("{}: read replicas are PostgreSQL only for now, and the primary {} is {}; "
                                           "give {} postgresql://... (to split SQLite data over files, use --shards N)",
                                           say.replica, primary.redacted, to_string(primary.backend), say.primary));
        }
        std::set<std::string> seen{db};
        for (const auto& r : t.replicas) {
            const DbUrl u = parse_or_usage(r, say.replica);
            if (u.backend != Backend::postgresql) {
                throw UsageFailure(fmt::format("{} {}: read replicas are PostgreSQL only for now (this is {}); give "
                                               "the postgresql:// URL of a streaming standby",
                                               say.replica, u.redacted, to_string(u.backend)));
            }
            if (!seen.insert(r).second) {
                throw UsageFailure(fmt::format("{} {} is given twice (or is the primary); give each replica once",
                                               say.replica, u.redacted));
            }
        }
        return db;
    }
    if (t.shards > 0 && !t.shard_urls.empty()) {
        throw UsageFailure(fmt::format("give {} or {} (one URL per shard), not both", say.shards, say.urls));
    }
    if (t.shards > 0) {
        // N SQLite files in one directory: the database URL names the directory.
        const DbUrl where = parse_or_usage(db, "--db");
        if (where.backend != Backend::sqlite || where.memory) {
            throw UsageFailure(fmt::format("{} {} makes {} SQLite files in a directory, and {} is {}: give --db "
                                           "sqlite:///DIR (for PostgreSQL or MariaDB shards give one --db URL per "
                                           "shard)",
                                           say.shards, t.shards, t.shards, where.redacted,
                                           where.memory ? "an in-memory database" : to_string(where.backend)));
        }
        fs::path dir = where.path;
        if (temporary) dir = dir.parent_path();  // the fresh temporary directory itself
        std::error_code ec;
        if (fs::exists(dir, ec) && !fs::is_directory(dir, ec)) {
            throw UsageFailure(fmt::format("{}: {} is a file, not a directory; give --db sqlite:///DIR (the shards "
                                           "are DIR/shard-0.db ... DIR/shard-{}.db)",
                                           say.shards, dir.string(), t.shards - 1));
        }
        fs::create_directories(dir, ec);
        if (ec) {
            throw UsageFailure(fmt::format("{}: cannot create the directory {}: {}", say.shards, dir.string(), ec.message()));
        }
        const std::string query = query_of(db);
        t.shard_urls.clear();
        for (std::size_t i = 0; i < t.shards; ++i) {
            t.shard_urls.push_back(fmt::format("sqlite://{}/shard-{}.db{}", dir.string(), i, query));
        }
    }
    std::set<std::string> seen;
    std::optional<Backend> backend;
    for (const auto& s : t.shard_urls) {
        const DbUrl u = parse_or_usage(s, "--db");
        if (u.memory) {
            throw UsageFailure(fmt::format("shard {} is an in-memory SQLite database, which no other process can "
                                           "check; give a file per shard (or --shards N --db sqlite:///DIR)",
                                           u.redacted));
        }
        if (backend && *backend != u.backend) {
            throw UsageFailure(fmt::format("the shards mix {} and {}; give shards of one backend",
                                           to_string(*backend), to_string(u.backend)));
        }
        backend = u.backend;
        std::error_code ec;
        const std::string identity = u.backend == Backend::sqlite ? fs::weakly_canonical(u.path, ec).string() : s;
        if (!seen.insert(identity).second) {
            throw UsageFailure(fmt::format("shard {} is given twice; give each shard once", u.redacted));
        }
    }
    t.shards = t.shard_urls.size();
    return t.shard_urls.front();
}

std::vector<std::string> node_names(const TopologySpec& t) {
    std::vector<std::string> out;
    if (!t.replicas.empty()) {
        out.emplace_back("primary");
        for (std::size_t i = 0; i < t.replicas.size(); ++i) out.push_back(fmt::format("replica-{}", i + 1));
    } else {
        // Unresolved (--check): --shards N names N shards before their files exist.
        const std::size_t n = t.shard_urls.empty() ? t.shards : t.shard_urls.size();
        for (std::size_t i = 0; i < n; ++i) out.push_back(fmt::format("shard-{}", i));
    }
    return out;
}

void skeleton_nodes(const TopologySpec& t, Report& r) {
    if (!t.multi()) return;
    for (const auto& name : node_names(t)) {
        NodeRecord n;
        n.name = name;
        n.role = name == "primary" ? "primary" : name.rfind("replica-", 0) == 0 ? "replica" : "shard";
        if (n.role == "replica") {
            n.state = "";
            n.left_rotation = 0;
        } else {
            n.rows_verified = 0;
        }
        r.pools.push_back(std::move(n));
    }
    if (!t.replicas.empty()) r.router = RouterSection{};
}

Topology::Topology(const TopologySpec& spec, const DbUrl& first, std::shared_ptr<Driver> first_driver,
                   std::shared_ptr<Driver> first_pool_driver, const PoolConfig& config)
    : spec_(spec), config_(config), registry_(std::make_unique<PoolRegistry>()) {
    const std::vector<std::string> names = node_names(spec_);
    const std::vector<std::string>& urls = spec_.replicas.empty() ? spec_.shard_urls : spec_.replicas;
    for (std::size_t i = 0; i < names.size(); ++i) {
        Node n;
        n.name = names[i];
        n.role = n.name == "primary" ? "primary" : spec_.replicas.empty() ? "shard" : "replica";
        std::shared_ptr<Driver> pool_driver;
        if (i == 0) {
            n.db = first;
            n.driver = first_driver;
            pool_driver = first_pool_driver;
        } else {
            n.db = parse_or_usage(urls[spec_.replicas.empty() ? i : i - 1], "--db");
            n.driver = open_driver(n.db);
            pool_driver = n.driver;
        }
        for (auto& s : url_secrets(n.db.original)) secrets_.push_back(std::move(s));
        PoolConfig c = config_;
        c.name = n.name;
        n.pool = registry_->add(n.name, std::make_shared<Pool>(pool_driver, c));
        nodes_.push_back(std::move(n));
    }
    rows_verified_.assign(nodes_.size(), 0);
}

Topology::~Topology() = default;

std::vector<const Pool*> Topology::pools() const {
    std::vector<const Pool*> out;
    for (const auto& n : nodes_) out.push_back(n.pool.get());
    return out;
}

void Topology::prepare(const std::vector<Workload>& workloads, std::chrono::milliseconds timeout) {
    if (!spec_.replicas.empty()) {
        // The primary was seeded by the engine's preflight: the replicas receive it.
        wait_for_replay(timeout);
        return;
    }
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        const Node& n = nodes_[i];
        try {
            auto conn = n.driver->connect(Clock::now() + timeout);
            // A shard that refuses writes (a hot standby given as a shard) would fail every
            // write routed there: one line now, as the preflight says it for one database.
            check_writable(*conn, n.db.backend, workloads);
            for (const auto& w : workloads) w.setup_shard(*conn, i, nodes_.size());
        } catch (const std::exception& e) {
            throw DatabaseUnusable(unusable_message(n.db, fmt::format("{}: {}", n.name, e.what())));
        }
    }
}

namespace {

/// The cluster's system identifier (pg_control_system(); a physical standby has its
/// primary's), or nullopt when the server does not say (an older or PostgreSQL-like server,
/// a role refused it).
std::optional<std::string> system_identifier(Connection& conn) {
    try {
        const Rows r = conn.query("SELECT system_identifier::text FROM pg_catalog.pg_control_system()");
        if (!r.empty()) {
            if (const auto* s = std::get_if<std::string>(&r.rows[0][0])) return *s;
        }
    } catch (const QueryError&) {  // NOLINT(bugprone-empty-catch): the check is skipped, as documented
    }
    return std::nullopt;
}

}  // namespace

void Topology::wait_for_replay(std::chrono::milliseconds timeout) {
    const Node& primary = nodes_.front();
    const auto deadline = Clock::now() + timeout;
    std::string lsn;
    std::optional<std::string> cluster;
    try {
        auto conn = primary.driver->connect(deadline);
        const Rows r = conn->query("SELECT pg_current_wal_lsn()::text");
        if (!r.empty()) {
            if (const auto* s = std::get_if<std::string>(&r.rows[0][0])) lsn = *s;
        }
        cluster = system_identifier(*conn);
    } catch (const std::exception& e) {
        throw DatabaseUnusable(unusable_message(primary.db, e.what()));
    }
    if (lsn.empty() || lsn.find_first_not_of("0123456789ABCDEFabcdef/") != std::string::npos) {
        throw DatabaseUnusable(unusable_message(primary.db, "the primary did not report its WAL position "
                                                            "(pg_current_wal_lsn()); is it a standby itself?"));
    }
    for (std::size_t i = 1; i < nodes_.size(); ++i) {
        const Node& n = nodes_[i];
        std::string at = "unknown";
        try {
            auto conn = n.driver->connect(deadline);
            if (conn->query("SELECT CASE WHEN pg_is_in_recovery() THEN 1 ELSE 0 END").int_at(0) == 0) {
                throw DatabaseUnusable(unusable_message(
                    n.db, fmt::format("{} is not a standby (pg_is_in_recovery() is false): give the URL of a "
                                      "streaming replica of the primary",
                                      n.name)));
            }
            // A standby of another cluster would pass the replay wait on an unrelated WAL
            // position, and its reads would be another database's.
            if (const auto its = system_identifier(*conn); cluster && its && *its != *cluster) {
                throw DatabaseUnusable(unusable_message(
                    n.db, fmt::format("{} is a standby of another cluster (its system identifier is {}, the "
                                      "primary's {}): give the URL of a streaming replica of this primary",
                                      n.name, *its, *cluster)));
            }
            const std::string sql = fmt::format(
                "SELECT CASE WHEN pg_last_wal_replay_lsn() >= '{}'::pg_lsn THEN 1 ELSE 0 END, "
                "coalesce(pg_last_wal_replay_lsn()::text, 'none')",
                lsn);
            while (true) {
                const Rows r = conn->query(sql);
                if (const auto* s = std::get_if<std::string>(&r.rows[0][1])) at = *s;
                if (r.int_at(0) == 1) break;
                if (Clock::now() >= deadline) {
                    throw DatabaseUnusable(unusable_message(
                        n.db, fmt::format("{} has not replayed the primary's WAL up to {} within {} ms (it is at {}): "
                                          "is it streaming from this primary? See pg_stat_wal_receiver on it",
                                          n.name, lsn, timeout.count(), at)));
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(20));  // bounded by the deadline above
            }
        } catch (const DatabaseUnusable&) {
            throw;
        } catch (const std::exception& e) {
            throw DatabaseUnusable(unusable_message(n.db, fmt::format("{}: {}", n.name, e.what())));
        }
    }
}

std::optional<std::string> Topology::start(std::chrono::milliseconds timeout) {
    if (spec_.replicas.empty()) {
        std::vector<std::shared_ptr<Pool>> pools;
        for (const auto& n : nodes_) pools.push_back(n.pool);
        shards_ = std::make_unique<ShardMap>(std::move(pools));
        counts_ = std::vector<ShardCount>(nodes_.size());
        for (const auto& n : nodes_) {
            if (n.db.backend == Backend::sqlite) gates_.push_back(std::make_unique<WriterGate>("poolbench-writers-" + n.name));
        }
        return std::nullopt;
    }
    RouterConfig rc;
    rc.strategy = spec_.read_strategy.value_or(ReadStrategy::round_robin);
    std::vector<std::shared_ptr<Pool>> replicas;
    for (std::size_t i = 1; i < nodes_.size(); ++i) replicas.push_back(nodes_[i].pool);
    router_ = std::make_unique<ReplicaRouter>(nodes_.front().pool, std::move(replicas), rc);
    const bool checked = router_->wait_for_health_checks(timeout);
    std::string out;
    for (const auto& ns : router_->stats().nodes) {
        if (ns.role != NodeRole::replica || ns.in_rotation) continue;
        out += fmt::format("{}{} was out of rotation when the load began ({}{}{}): its reads went elsewhere until it "
                           "passed a health check",
                           out.empty() ? "" : "; ", ns.name, to_string(ns.state), ns.reason.empty() ? "" : ": ",
                           scrub(ns.reason, secrets_));
    }
    if (!checked) out += fmt::format("{}the replicas' first health checks took longer than {} ms", out.empty() ? "" : "; ",
                                     timeout.count());
    return out.empty() ? std::nullopt : std::optional<std::string>(out);
}

void Topology::verify_writes(const std::vector<WritingPhase>& writing, std::chrono::milliseconds timeout,
                             WritesSection& writes, Report& report) {
    // Replicas hold copies: the primary's rows are the run's. Shards: each holds its own.
    const std::size_t counted = spec_.replicas.empty() ? nodes_.size() : 1;
    writes.checked = true;
    for (std::size_t i = 0; i < counted; ++i) {
        auto conn = nodes_[i].driver->connect(Clock::now() + timeout);
        std::uint64_t rows = 0;
        for (const WritingPhase& phase : writing) {
            // A row is on one shard: looking each in-doubt write up on every node counts it once.
            const auto found = phase.workload->count_written(*conn, phase.in_doubt);
            if (!found) {
                writes.checked = false;
                return;
            }
            rows += found->rows;
            writes.in_doubt_committed += found->in_doubt_committed;
        }
        rows_verified_[i] = rows;
        if (i < report.pools.size()) report.pools[i].rows_verified = rows;
        writes.verified += rows;
    }
}

void Topology::close_and_report(Report& report, std::size_t min_idle, std::chrono::milliseconds grace) {
    for (const auto& g : gates_) g->wait_idle();
    std::optional<RouterStats> rs;
    if (router_) {
        rs = router_->stats();
        report.router = RouterSection{std::string(to_string(router_->config().strategy)), rs->reads_retried,
                                      rs->reads_rerouted, rs->primary_fallbacks, rs->no_replica_errors};
        router_.reset();  // its checkers stop before the pools they check shut down
    }
    std::vector<PoolStats> finals;
    std::size_t active_at_end = 0;
    bool clean = true;
    for (std::size_t i = 0; i < nodes_.size(); ++i) {
        const Node& n = nodes_[i];
        NodeRecord rec;
        rec.name = n.name;
        rec.role = n.role;
        rec.url = n.db.redacted;
        const std::size_t active = n.pool->stats().active;
        const bool closed = n.pool->shutdown(grace);
        PoolStats st = n.pool->stats();
        rec.pool = make_pool_section(st, min_idle, active, closed);
        for (auto& e : rec.pool.breaker.history) e.reason = scrub(e.reason, secrets_);
        if (rs) {
            const NodeStats& ns = rs->nodes.at(i);
            rec.reads = ns.reads;
            rec.writes = ns.writes;
            rec.read_failures = ns.read_failures;
            if (n.role == "replica") {
                rec.state = std::string(to_string(ns.state));
                rec.left_rotation = ns.left_rotation;
            } else {
                rec.rows_verified = rows_verified_[i];
            }
        } else {
            rec.reads = counts_.empty() ? 0 : counts_[i].reads.load(std::memory_order_relaxed);
            rec.writes = counts_.empty() ? 0 : counts_[i].writes.load(std::memory_order_relaxed);
            rec.rows_verified = rows_verified_[i];
        }
        active_at_end += active;
        clean = clean && closed;
        finals.push_back(std::move(st));
        report.pools.push_back(std::move(rec));
    }
    report.pool = make_pool_section(sum_stats(finals), min_idle * nodes_.size(), active_at_end, clean);
}

PoolStats sum_stats(const std::vector<PoolStats>& all) {
    PoolStats t;
    std::vector<BreakerTransition> history;
    for (const auto& s : all) {
        t.acquires += s.acquires;
        t.hits += s.hits;
        t.misses += s.misses;
        t.waits += s.waits;
        t.timeouts += s.timeouts;
        t.created += s.created;
        t.connect_failures += s.connect_failures;
        t.validation_failures += s.validation_failures;
        t.destroyed += s.destroyed;
        for (std::size_t k = 0; k < t.destroyed_by_reason.size(); ++k) t.destroyed_by_reason[k] += s.destroyed_by_reason[k];
        t.transaction_retries += s.transaction_retries;
        t.keepalives += s.keepalives;
        t.reconnects += s.reconnects;
        t.overloaded += s.overloaded;
        t.circuit_rejections += s.circuit_rejections;
        t.leaks_detected += s.leaks_detected;
        t.leaks_returned_late += s.leaks_returned_late;
        t.leaks_reclaimed += s.leaks_reclaimed;
        t.revoked_outstanding += s.revoked_outstanding;
        t.total += s.total;
        t.active += s.active;
        t.idle += s.idle;
        t.pending += s.pending;
        t.waiting += s.waiting;
        t.peak_active += s.peak_active;
        t.peak_total += s.peak_total;
        t.max_size += s.max_size;
        t.core_size += s.core_size;
        t.min_idle += s.min_idle;
        t.overflow_active += s.overflow_active;
        t.closed = t.closed || s.closed;
        t.suspended = t.suspended || s.suspended;
        if (s.breaker == BreakerState::open || (s.breaker == BreakerState::half_open && t.breaker == BreakerState::closed)) {
            t.breaker = s.breaker;
        }
        t.breaker_transitions += s.breaker_transitions;
        history.insert(history.end(), s.breaker_history.begin(), s.breaker_history.end());
        t.acquire_wait.merge(s.acquire_wait);
        t.usage.merge(s.usage);
        t.connect.merge(s.connect);
    }
    std::stable_sort(history.begin(), history.end(),
                     [](const BreakerTransition& a, const BreakerTransition& b) { return a.at < b.at; });
    constexpr std::size_t kept = 32;
    if (history.size() > kept) history.erase(history.begin(), history.end() - static_cast<std::ptrdiff_t>(kept));
    t.breaker_history = std::move(history);
    return t;
}

}  // namespace poolbench::cli

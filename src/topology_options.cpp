// topology_options.cpp — the command line's face of topology.hpp: --primary, --replica,
// --read-strategy, --shards and a repeatable --db, and how they override a scenario file's
// [database] keys.
#include "topology.hpp"

#include "report_files.hpp"

#include "cli11.hpp"
#include <fmt/format.h>

namespace poolbench::cli {

void add_topology_options(CLI::App& cmd, CommonOptions& common, TopologyOptions& o) {
    add_database_option(cmd, common, &o.dbs);
    cmd.add_option("--primary", o.primary,
                   "The primary's URL, with --replica (the same as --db): writes go here, reads to the replicas")
        ->type_name("URL")
        ->group("Database");
    cmd.add_option("--replica", o.replicas,
                   "A read replica's URL (a PostgreSQL streaming standby of --primary); repeatable. Reads are routed "
                   "among the healthy replicas, writes to the primary; the report gives each node's figures")
        ->allow_extra_args(false)
        ->type_name("URL")
        ->group("Database");
    cmd.add_option("--read-strategy", o.read_strategy, "How reads pick a replica (with --replica)")
        ->check(CLI::IsMember({"round_robin", "random", "least_active"}))
        ->default_str("round_robin")
        ->group("Database");
    o.shards_option = cmd.add_option("--shards", o.shards,
                                     "Split the data over N SQLite files DIR/shard-0.db ... in the directory --db "
                                     "sqlite:///DIR names (created if missing; nothing else in it is touched); each "
                                     "operation goes to the shard of its key. Or give one --db URL per shard")
                          ->type_name("N")
                          ->group("Database");
}

std::string apply_topology_options(const TopologyOptions& o, TopologySpec& t) {
    const bool given = !o.replicas.empty() || !o.read_strategy.empty() || o.dbs.size() > 1 ||
                       (o.shards_option != nullptr && o.shards_option->count() > 0);
    if (given) t.origin = "flags";
    if (!o.primary.empty() && !o.dbs.empty()) {
        throw UsageFailure("give --primary or --db, not both (--primary is the same as --db, named for --replica)");
    }
    if (o.shards_option != nullptr && o.shards_option->count() > 0) {
        if (o.shards < 1 || o.shards > max_shards) {
            throw UsageFailure(fmt::format("--shards {}: give the number of shards, 1 to {} (e.g. --shards 4 --db "
                                           "sqlite:///DIR)",
                                           o.shards, max_shards));
        }
        t.shards = static_cast<std::size_t>(o.shards);
        t.shard_urls.clear();
    }
    if (o.dbs.size() > 1) {
        t.shard_urls = o.dbs;
        if (o.shards_option != nullptr && o.shards_option->count() > 0) {
            throw UsageFailure("give --shards N with one --db sqlite:///DIR, or several --db (one URL per shard), not both");
        }
        t.shards = 0;
    }
    if (!o.replicas.empty()) t.replicas = o.replicas;
    if (!o.read_strategy.empty()) t.read_strategy = parse_read_strategy(o.read_strategy);
    if (!o.primary.empty()) return o.primary;
    return o.dbs.empty() ? std::string() : o.dbs.front();
}

void guard_reports_against_shards(const CommonOptions& common, const TopologySpec& t) {
    for (std::size_t i = 1; i < t.shard_urls.size(); ++i) guard_reports_against(common, parse_db_url(t.shard_urls[i]));
}

}  // namespace poolbench::cli

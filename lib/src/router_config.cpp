// router_config.cpp — the ReplicaRouter's settings: validation, names, and the checks made
// when a router is built (router.hpp, router_core.hpp).
#include "router_core.hpp"

#include "poolbench/error.hpp"

#include <algorithm>
#include <string>
#include <utility>

namespace poolbench {

std::string_view to_string(ReadStrategy s) noexcept {
    switch (s) {
        case ReadStrategy::round_robin: return "round_robin";
        case ReadStrategy::random: return "random";
        case ReadStrategy::least_active: return "least_active";
    }
    return "unknown";
}

std::string_view to_string(NoReplicaPolicy p) noexcept {
    switch (p) {
        case NoReplicaPolicy::use_primary: return "use_primary";
        case NoReplicaPolicy::fail: return "fail";
    }
    return "unknown";
}

std::string_view to_string(NodeRole r) noexcept {
    return r == NodeRole::primary ? "primary" : "replica";
}

std::string_view to_string(NodeState s) noexcept {
    switch (s) {
        case NodeState::unchecked: return "unchecked";
        case NodeState::healthy: return "healthy";
        case NodeState::down: return "down";
        case NodeState::suspect: return "suspect";
        case NodeState::not_standby: return "not_standby";
        case NodeState::lagging: return "lagging";
    }
    return "unknown";
}

void RouterConfig::validate() const {
    auto ms = [](std::chrono::milliseconds d) { return std::to_string(d.count()) + " ms"; };
    if (health_interval.count() <= 0)
        throw ConfigError("router: health_interval = " + ms(health_interval) + "; it must be above 0");
    if (health_timeout.count() <= 0)
        throw ConfigError("router: health_timeout = " + ms(health_timeout) + "; it must be above 0");
    if (read_your_writes.count() < 0)
        throw ConfigError("router: read_your_writes = " + ms(read_your_writes) + "; it must be 0 (off) or more");
}

namespace internal {

namespace {

std::int64_t ns_of(std::chrono::milliseconds d) {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}

RouterConfig checked(RouterConfig c) {
    c.validate();
    return c;
}

}  // namespace

RouterCore::RouterCore(std::shared_ptr<Pool> primary, std::vector<std::shared_ptr<Pool>> replicas, RouterConfig config)
    : config_(checked(std::move(config))),
      timeout_ns_(ns_of(config_.health_timeout)),
      ryw_ns_(ns_of(config_.read_your_writes)) {
    if (!primary) throw ConfigError("router: no primary pool");
    std::vector<const Pool*> seen{primary.get()};
    nodes_.push_back(std::make_unique<RouterNode>(std::move(primary), NodeRole::primary, 0));
    for (auto& r : replicas) {
        const std::size_t i = nodes_.size();
        if (!r) throw ConfigError("router: replica " + std::to_string(i - 1) + " has no pool");
        if (std::find(seen.begin(), seen.end(), r.get()) != seen.end()) {
            throw ConfigError("router: pool '" + r->config().name +
                              "' is given twice (a replica must be a pool of its own, not the primary's)");
        }
        seen.push_back(r.get());
        checks_.push_back(config_.health_check ? config_.health_check : default_health_check(r->driver().backend()));
        nodes_.push_back(std::make_unique<RouterNode>(std::move(r), NodeRole::replica, i));
    }
}

}  // namespace internal

}  // namespace poolbench

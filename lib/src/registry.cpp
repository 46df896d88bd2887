// registry.cpp — PoolRegistry (registry.hpp): a name table under one mutex; pools are made,
// shut down and asked for statistics outside it.
#include "poolbench/registry.hpp"

#include "poolbench/drivers.hpp"
#include "poolbench/error.hpp"
#include "poolbench/internal/mutex.hpp"

#include <utility>

namespace poolbench {

namespace internal {

struct RegistryTable {
    mutable Mutex mu;
    std::map<std::string, std::shared_ptr<Pool>, std::less<>> pools POOLBENCH_GUARDED_BY(mu);

    /// Copies of every entry, for work done outside the lock.
    std::vector<std::pair<std::string, std::shared_ptr<Pool>>> snapshot() const POOLBENCH_EXCLUDES(mu) {
        MutexLock lk(mu);
        return {pools.begin(), pools.end()};
    }
};

}  // namespace internal

namespace {

void check_name(const std::string& name) {
    if (name.empty()) throw ConfigError("pool registry: a pool name must not be empty");
}

}  // namespace

PoolRegistry::PoolRegistry() : table_(std::make_unique<internal::RegistryTable>()) {}

PoolRegistry::~PoolRegistry() = default;

std::shared_ptr<Pool> PoolRegistry::create(const std::string& name, std::string_view url, PoolConfig config) {
    check_name(name);
    if (find(name)) throw ConfigError("pool registry: a pool named '" + name + "' is already registered");
    config.name = name;
    // Made outside the lock: opening a driver may touch files or parse a long URL.
    auto pool = std::make_shared<Pool>(make_driver(url), std::move(config));
    return add(name, std::move(pool));
}

std::shared_ptr<Pool> PoolRegistry::add(const std::string& name, std::shared_ptr<Pool> pool) {
    check_name(name);
    if (!pool) throw UsageError("pool registry: add('" + name + "') was given no pool");
    internal::MutexLock lk(table_->mu);
    auto [it, inserted] = table_->pools.try_emplace(name, pool);
    if (!inserted) throw ConfigError("pool registry: a pool named '" + name + "' is already registered");
    return it->second;
}

std::shared_ptr<Pool> PoolRegistry::find(std::string_view name) const {
    internal::MutexLock lk(table_->mu);
    const auto it = table_->pools.find(name);
    return it == table_->pools.end() ? nullptr : it->second;
}

std::shared_ptr<Pool> PoolRegistry::get(std::string_view name) const {
    if (auto pool = find(name)) return pool;
    std::string known;
    for (const auto& n : names()) known += (known.empty() ? "" : ", ") + n;
    throw UsageError("pool registry: no pool named '" + std::string(name) + "' (registered: " +
                     (known.empty() ? "none" : known) + ")");
}

std::vector<std::string> PoolRegistry::names() const {
    internal::MutexLock lk(table_->mu);
    std::vector<std::string> out;
    out.reserve(table_->pools.size());
    for (const auto& entry : table_->pools) out.push_back(entry.first);
    return out;
}

std::size_t PoolRegistry::size() const {
    internal::MutexLock lk(table_->mu);
    return table_->pools.size();
}

std::shared_ptr<Pool> PoolRegistry::remove(std::string_view name) {
    internal::MutexLock lk(table_->mu);
    const auto it = table_->pools.find(name);
    if (it == table_->pools.end()) return nullptr;
    auto pool = std::move(it->second);
    table_->pools.erase(it);
    return pool;
}

bool PoolRegistry::close(std::string_view name, std::chrono::milliseconds grace) {
    auto pool = remove(name);
    if (!pool) return false;
    return pool->shutdown(grace);  // outside the lock: it may wait for leases
}

bool PoolRegistry::close_all(std::chrono::milliseconds grace) {
    std::map<std::string, std::shared_ptr<Pool>, std::less<>> all;
    {
        internal::MutexLock lk(table_->mu);
        all.swap(table_->pools);
    }
    bool clean = true;
    for (const auto& entry : all) clean = entry.second->shutdown(grace) && clean;
    return clean;
}

std::map<std::string, PoolStats> PoolRegistry::stats() const {
    std::map<std::string, PoolStats> out;
    for (auto& [name, pool] : table_->snapshot()) out.emplace(name, pool->stats());
    return out;
}

}  // namespace poolbench

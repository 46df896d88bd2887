#include <poolbench/poolbench.hpp>

#include <cstdio>

int main() {
    poolbench::PoolConfig config;
    config.max_size = 2;
    poolbench::Pool pool(poolbench::make_driver("sqlite::memory:"), config);
    auto lease = pool.acquire();
    const auto rows = lease->query("SELECT 40 + 2");
    if (rows.int_at(0) != 42) return 1;
    std::puts("consumer ok");
    return 0;
}

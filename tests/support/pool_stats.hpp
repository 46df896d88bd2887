// Reading PoolStats in tests, for every suite that runs a pool (unit, sqlite, pg).
#pragma once

#include <poolbench/stats.hpp>

#include <cstddef>
#include <cstdint>

namespace pbtest {

/// How many connections the pool closed for `reason`.
inline std::uint64_t destroyed(const poolbench::PoolStats& s, poolbench::DestroyReason reason) {
    return s.destroyed_by_reason[static_cast<std::size_t>(reason)];
}

}  // namespace pbtest

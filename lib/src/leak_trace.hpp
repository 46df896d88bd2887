// leak_trace.hpp — capture a call stack cheaply on acquire; symbolize it only when a
// leak is reported (Boost.Stacktrace, libbacktrace backend). Not installed.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <vector>

namespace poolbench::internal {

struct RawStack {
    std::array<void*, 40> frames{};
    std::size_t depth = 0;
};

/// Records the caller's return addresses (about 1-2 us; no allocation, no symbol lookup).
void capture_stack(RawStack& out) noexcept;

/// "function at file:line" per frame, innermost first, without the pool's own frames
/// and without frames that have no name. At most `max_frames`.
std::vector<std::string> symbolize(const RawStack& stack, std::size_t max_frames = 24);

/// The calling thread's kernel id (gettid), cached per thread.
long current_thread_id() noexcept;
/// The calling thread's name (prctl PR_GET_NAME) as it was at its first call here.
const std::string& current_thread_name();

}  // namespace poolbench::internal

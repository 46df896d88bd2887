#include "poolbench/internal/fast_clock.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>

#if defined(__x86_64__)
#include <cpuid.h>
#include <x86intrin.h>
#endif

namespace poolbench::internal::fast_clock {

namespace {

std::int64_t steady_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

#if defined(__x86_64__)
bool invariant_tsc() noexcept {
    unsigned a = 0, b = 0, c = 0, d = 0;
    if (__get_cpuid_max(0x80000000U, nullptr) < 0x80000007U) return false;
    __cpuid(0x80000007U, a, b, c, d);
    return (d & (1U << 8)) != 0;  // "TscInvariant": constant rate, runs in every C-state
}
inline std::int64_t ticks() noexcept { return static_cast<std::int64_t>(__rdtsc()); }
#else
bool invariant_tsc() noexcept { return false; }
inline std::int64_t ticks() noexcept { return 0; }
#endif

/// The anchor, published with a sequence lock so readers never take a lock.
struct Anchor {
    std::atomic<std::uint64_t> seq{0};
    std::atomic<std::int64_t> tsc{0};
    std::atomic<std::int64_t> ns{0};
    std::atomic<double> ns_per_tick{0.0};
};

struct State {
    bool tsc = false;
    Anchor anchor;
    // First calibration point, for the long baseline; and refinement bookkeeping.
    std::int64_t base_tsc = 0;
    std::int64_t base_ns = 0;
    std::int64_t last_refine_ns = 0;
    std::mutex refine_mu;

    State() {
        tsc = invariant_tsc();
        if (!tsc) return;
        // Calibrate over ~2 ms. Each end pairs one steady_clock read with the TSC midway
        // between two TSC reads around it; of several tries keep the tightest bracket, so a
        // preemption during a read (likely on a busy machine) cannot skew the scale.
        const auto sample = [](std::int64_t& t, std::int64_t& n) {
            std::int64_t best_width = INT64_MAX;
            for (int i = 0; i < 16; ++i) {
                const std::int64_t t1 = ticks();
                const std::int64_t ns = steady_ns();
                const std::int64_t t2 = ticks();
                if (t2 - t1 < best_width) {
                    best_width = t2 - t1;
                    t = t1 + (t2 - t1) / 2;
                    n = ns;
                }
            }
        };
        sample(base_tsc, base_ns);
        std::int64_t t = 0, n = 0;
        do {
            sample(t, n);
        } while (n - base_ns < 2'000'000);
        const double k = t > base_tsc ? static_cast<double>(n - base_ns) / static_cast<double>(t - base_tsc) : 0.0;
        if (!(k > 0.05 && k < 20.0)) {  // not a 50 MHz - 20 GHz counter: do not trust it
            tsc = false;
            return;
        }
        publish(t, n, k);
        last_refine_ns = n;
    }

    void publish(std::int64_t t, std::int64_t n, double k) noexcept {
        // A sequence lock without fences (ThreadSanitizer does not model them): the data
        // stores are releases, so a reader that sees any new field also sees the odd count.
        const std::uint64_t s = anchor.seq.load(std::memory_order_relaxed);
        anchor.seq.store(s + 1, std::memory_order_relaxed);
        anchor.tsc.store(t, std::memory_order_release);
        anchor.ns.store(n, std::memory_order_release);
        anchor.ns_per_tick.store(k, std::memory_order_release);
        anchor.seq.store(s + 2, std::memory_order_release);
    }
};

State& state() {
    static State s;  // calibrates on first use (about 1 ms)
    return s;
}

}  // namespace

std::int64_t now_ns() noexcept {
    State& st = state();
    if (!st.tsc) return steady_ns();
    const std::int64_t t = ticks();
    for (;;) {
        const std::uint64_t s1 = st.anchor.seq.load(std::memory_order_acquire);
        const std::int64_t at = st.anchor.tsc.load(std::memory_order_acquire);
        const std::int64_t an = st.anchor.ns.load(std::memory_order_acquire);
        const double k = st.anchor.ns_per_tick.load(std::memory_order_acquire);
        if ((s1 & 1U) == 0 && st.anchor.seq.load(std::memory_order_relaxed) == s1)
            return an + static_cast<std::int64_t>(static_cast<double>(t - at) * k);
    }
}

void refine() noexcept {
    State& st = state();
    if (!st.tsc) return;
    std::unique_lock lk(st.refine_mu, std::try_to_lock);
    if (!lk.owns_lock()) return;
    if (steady_ns() - st.last_refine_ns < 1'000'000'000) return;
    std::int64_t t = 0, n = 0, best_width = INT64_MAX;
    for (int i = 0; i < 8; ++i) {  // the tightest of a few brackets, as in calibration
        const std::int64_t t1 = ticks();
        const std::int64_t ns = steady_ns();
        const std::int64_t t2 = ticks();
        if (t2 - t1 < best_width) {
            best_width = t2 - t1;
            t = t1 + (t2 - t1) / 2;
            n = ns;
        }
    }
    if (t <= st.base_tsc) return;
    st.publish(t, n, static_cast<double>(n - st.base_ns) / static_cast<double>(t - st.base_tsc));
    st.last_refine_ns = n;
}

bool uses_tsc() noexcept { return state().tsc; }

}  // namespace poolbench::internal::fast_clock

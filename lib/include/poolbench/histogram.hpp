// poolbench/histogram.hpp — a mergeable log-linear histogram of non-negative integers
// (the library records nanoseconds).
//
// Values below 128 are counted exactly; above, each power of two is split into 128
// equal buckets, so a reported percentile (the bucket's midpoint) is within 0.4% of the
// true value. Values at or above 2^44 (about 4.9 hours in ns) land in the last bucket.
//
// Thread-safety: Histogram is a plain value type (not thread-safe to mutate
// concurrently). internal::AtomicHistogram in pool internals records concurrently.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace poolbench {

class Histogram {
public:
    static constexpr unsigned sub_bits = 7;
    static constexpr std::size_t sub_count = std::size_t{1} << sub_bits;  // 128
    static constexpr unsigned max_bits = 44;
    static constexpr std::size_t bucket_count = sub_count + (max_bits - sub_bits) * sub_count;

    Histogram();

    void record(std::uint64_t value) noexcept { record_n(value, 1); }
    void record_n(std::uint64_t value, std::uint64_t n) noexcept;
    void merge(const Histogram& other) noexcept;
    void clear() noexcept;

    [[nodiscard]] std::uint64_t count() const noexcept { return count_; }
    [[nodiscard]] std::uint64_t min() const noexcept { return count_ ? min_ : 0; }
    [[nodiscard]] std::uint64_t max() const noexcept { return max_; }
    [[nodiscard]] double mean() const noexcept;
    /// The value at quantile q in [0, 1] (0.99 = p99); 0 when empty.
    [[nodiscard]] std::uint64_t percentile(double q) const noexcept;
    /// The sum of the values recorded (exact up to the double's 53 bits).
    [[nodiscard]] double sum() const noexcept { return static_cast<double>(sum_); }
    /// The values recorded in one bucket (index below bucket_count).
    [[nodiscard]] std::uint64_t count_in(std::size_t bucket) const noexcept { return counts_[bucket]; }

    [[nodiscard]] static std::size_t bucket_of(std::uint64_t value) noexcept;
    [[nodiscard]] static std::uint64_t bucket_low(std::size_t index) noexcept;
    [[nodiscard]] static std::uint64_t bucket_high(std::size_t index) noexcept;  ///< inclusive

    // For AtomicHistogram::snapshot.
    void add_raw(std::size_t bucket, std::uint64_t n) noexcept { counts_[bucket] += n; count_ += n; }
    void set_sum_min_max(std::uint64_t sum, std::uint64_t min, std::uint64_t max) noexcept;

private:
    // 128 bits: exact, and cheap to add on the recording path (long double was not).
    __extension__ using Sum = unsigned __int128;

    std::vector<std::uint64_t> counts_;
    std::uint64_t count_ = 0;
    Sum sum_ = 0;
    std::uint64_t min_ = UINT64_MAX;
    std::uint64_t max_ = 0;
};

}  // namespace poolbench

#include "poolbench/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace poolbench {

Histogram::Histogram() : counts_(bucket_count, 0) {}

std::size_t Histogram::bucket_of(std::uint64_t value) noexcept {
    if (value < sub_count) return static_cast<std::size_t>(value);
    const unsigned msb = 63U - static_cast<unsigned>(std::countl_zero(value));
    if (msb >= max_bits) return bucket_count - 1;
    const unsigned shift = msb - sub_bits;  // >= 0 because value >= 128
    const std::uint64_t mantissa = value >> shift;  // in [128, 256)
    return sub_count + shift * sub_count + static_cast<std::size_t>(mantissa - sub_count);
}

std::uint64_t Histogram::bucket_low(std::size_t index) noexcept {
    if (index < sub_count) return index;
    const std::size_t shift = (index - sub_count) / sub_count;
    const std::uint64_t mantissa = sub_count + (index - sub_count) % sub_count;
    return mantissa << shift;
}

std::uint64_t Histogram::bucket_high(std::size_t index) noexcept {
    if (index < sub_count) return index;
    const std::size_t shift = (index - sub_count) / sub_count;
    return bucket_low(index) + ((std::uint64_t{1} << shift) - 1);
}

void Histogram::record_n(std::uint64_t value, std::uint64_t n) noexcept {
    if (n == 0) return;
    counts_[bucket_of(value)] += n;
    count_ += n;
    sum_ += static_cast<Sum>(value) * n;
    min_ = std::min(min_, value);
    max_ = std::max(max_, value);
}

void Histogram::merge(const Histogram& other) noexcept {
    if (other.count_ == 0) return;
    for (std::size_t i = 0; i < bucket_count; ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    sum_ += other.sum_;
    min_ = std::min(min_, other.min_);
    max_ = std::max(max_, other.max_);
}

void Histogram::clear() noexcept {
    std::fill(counts_.begin(), counts_.end(), 0);
    count_ = 0;
    sum_ = 0;
    min_ = UINT64_MAX;
    max_ = 0;
}

void Histogram::set_sum_min_max(std::uint64_t sum, std::uint64_t min, std::uint64_t max) noexcept {
    sum_ = sum;
    min_ = min;
    max_ = max;
}

double Histogram::mean() const noexcept {
    return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0;
}

std::uint64_t Histogram::percentile(double q) const noexcept {
    if (count_ == 0) return 0;
    q = std::clamp(q, 0.0, 1.0);
    // The rank of the q-th value, 1-based: ceil(q * count), at least 1.
    auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
    rank = std::clamp<std::uint64_t>(rank, 1, count_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
        seen += counts_[i];
        if (seen >= rank) {
            // The bucket's midpoint, clamped to the values actually seen.
            const std::uint64_t low = bucket_low(i);
            const std::uint64_t mid = low + (bucket_high(i) - low) / 2;
            return std::clamp(mid, min_, max_);
        }
    }
    return max_;
}

}  // namespace poolbench

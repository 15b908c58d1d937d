#pragma once
// Scans of one row of logits for the sampler (engine/sampler.h): SmolLM2's vocabulary has 49152
// entries, and scalar loops over it cost a visible part of a decode step (std::max_element
// ~150 µs on Zen 4, ~4 % of a depth-0 step; the default sampler's passes ~140 µs). These are
// Highway kernels (~3-5 µs a pass, docs/benchmarks.md), each with a scalar reference
// (tests/unit/logit_scan_test.cc compares them on every compiled target).
#include <cstdint>
#include <span>
#include <vector>

namespace kvbits {

// The lowest index among the largest values of x, NaN values skipped; -1 when x is empty or
// every value is NaN. -0 and +0 compare equal (the first of them wins), -inf is a value.
int64_t max_index(std::span<const float> x);
int64_t max_index_ref(std::span<const float> x);

// Replaces every NaN of x by -inf and returns the largest value (-inf for an empty row).
float clear_nan_max(std::span<float> x);
float clear_nan_max_ref(std::span<float> x);

// How many values of x are >= t (NaN never is).
int64_t count_at_least(std::span<const float> x, float t);
int64_t count_at_least_ref(std::span<const float> x, float t);

// The indices i with x[i] >= t, ascending, into out (cleared first).
void indices_at_least(std::span<const float> x, float t, std::vector<int32_t>& out);
void indices_at_least_ref(std::span<const float> x, float t, std::vector<int32_t>& out);

}  // namespace kvbits

// cli11.hpp — CLI11, included once the same way everywhere.
//
// CLI11 2.1's inline split() trips g++ 12's -Wnull-dereference (a false positive in
// std::string code inlined from the header; it shows in some builds, e.g. ThreadSanitizer,
// and not in others): silenced for this header only.
#pragma once

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <CLI/CLI.hpp>
#pragma GCC diagnostic pop

// Counts heap allocations in the test process, for the zero-allocation step test.
#ifndef SWIFT_DP_TRAIN_ALLOCATION_COUNTER_H
#define SWIFT_DP_TRAIN_ALLOCATION_COUNTER_H
#include <stdbool.h>
/// Allocations (malloc, calloc, realloc, posix_memalign, aligned_alloc) on any thread so far.
long allocation_count(void);
/// While on, every allocation also prints a backtrace to stderr (for finding one).
void allocation_trace(bool on);
#endif

#ifndef SWIFT_DP_TRAIN_CTURBOJPEG_SHIM_H
#define SWIFT_DP_TRAIN_CTURBOJPEG_SHIM_H
#include <turbojpeg.h>
// TJSCALED is a macro; expose it as a function.
static inline int ctj_scaled(int dimension, tjscalingfactor factor) { return TJSCALED(dimension, factor); }
#endif

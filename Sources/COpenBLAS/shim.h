// Debian keeps cblas.h under the openblas-pthread include directory that pkg-config adds.
#ifndef SWIFT_DP_TRAIN_COPENBLAS_SHIM_H
#define SWIFT_DP_TRAIN_COPENBLAS_SHIM_H
#include <cblas.h>
#endif

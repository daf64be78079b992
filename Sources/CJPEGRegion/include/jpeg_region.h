#ifndef SWIFT_DP_TRAIN_JPEG_REGION_H
#define SWIFT_DP_TRAIN_JPEG_REGION_H
// Decodes one rectangle of a (DCT-scaled) JPEG with the libjpeg API: what TurboJPEG 2.1's
// tjDecompress2 cannot do. Errors come back as a status and text, never as exit() or a
// longjmp into Swift. One decoder per thread (a libjpeg object is not thread-safe).
#include <stddef.h>
#include <stdint.h>

typedef struct jr_decoder jr_decoder;

/// Options of jr_decode_region; 0 decodes exactly as tjDecompress2 with flags 0 does.
enum {
    JR_FAST_DCT = 1,         ///< JDCT_IFAST instead of the accurate integer IDCT (TJFLAG_FASTDCT).
    JR_FAST_UPSAMPLE = 2,    ///< do_fancy_upsampling = FALSE (TJFLAG_FASTUPSAMPLE).
};

enum {
    JR_OK = 0,          ///< Decoded with no warning.
    JR_WARNING = 1,     ///< Decoded, but libjpeg warned (e.g. a truncated file padded with grey),
                        ///< or failed after a warning (Note [Error after a warning]).
    JR_ERROR = -1,      ///< Not decoded; jr_message says why.
};

jr_decoder *jr_create(void);
void jr_destroy(jr_decoder *decoder);

/// Decodes the rectangle (left, top, width, height) of the image decoded at eighths/8 of its
/// size (each side ceil(side · eighths / 8), as TJSCALED). Row y of the rectangle lands at
/// output + y · stride, its first pixel `*column` pixels in: a few decoded columns to its left
/// (down to an iMCU boundary) and one to its right come with it. `output` holds height · stride
/// bytes, and stride is at least a whole scaled row: 4 bytes a pixel (CMYK, as libjpeg delivers
/// them) for CMYK/YCCK files, else 3 (RGB; grayscale expanded). The rectangle must lie inside
/// the scaled image. Its pixels equal the same rectangle of a whole-image decode at that scale.
int jr_decode_region(jr_decoder *decoder, const uint8_t *data, size_t size, int eighths, int left, int top,
                     int width, int height, int options, uint8_t *output, size_t stride, int *column);

/// The text of the last error or warning (libjpeg's own message), "" if none.
const char *jr_message(const jr_decoder *decoder);

#endif

#ifndef SWIFT_DP_TRAIN_CPNG_SHIM_H
#define SWIFT_DP_TRAIN_CPNG_SHIM_H
// PNG → 8-bit RGB exactly as Pillow's `Image.open(f).convert("RGB")` (Pillow 13).
//
// libpng reports errors by longjmp, which must not cross Swift frames, so the whole read lives
// here in C: the error callback jumps back to the setjmp in the same C function. The
// simplified API (png_image_*) is not used because it treats 16-bit data as linear light and
// composites alpha, while Pillow takes high bytes and drops alpha.
// SwiftPM does not track edits to this header: touch Sources/DataPipeline/PNGDecoding.swift
// (or clean the build) after changing it, or the old code stays compiled in.
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const unsigned char *data;
    size_t size;
    size_t offset;
    char message[160];
} cpng_source;

static void cpng_on_error(png_structp png, png_const_charp text) {
    cpng_source *source = (cpng_source *)png_get_error_ptr(png);
    snprintf(source->message, sizeof source->message, "%s", text);
    png_longjmp(png, 1);
}

// Warnings (e.g. "iCCP: known incorrect sRGB profile") are not failures; Pillow is silent too.
static void cpng_on_warning(png_structp png, png_const_charp text) { (void)png; (void)text; }

static void cpng_on_read(png_structp png, png_bytep out, png_size_t count) {
    cpng_source *source = (cpng_source *)png_get_io_ptr(png);
    if (count > source->size - source->offset) png_error(png, "truncated PNG (data ends early)");
    memcpy(out, source->data + source->offset, count);
    source->offset += count;
}

// Note [Pillow's PNG conversion] (PngImagePlugin._MODES, Unpack.c, Convert.c):
// - 1/2/4-bit gray are scaled to 0...255 (×255, ×85, ×17), palettes are looked up;
// - 16-bit samples keep their high byte (rawmodes "RGB;16B", "RGBA;16B", "LA;16B") ...
// - ... except 16-bit gray without alpha, which opens as "I;16" and converts to RGB by
//   clipping the value to 255 (so 256...65535 all become white);
// - alpha (including tRNS) is dropped, never composited; gamma and colour profiles are ignored;
// - CRCs are checked for the chunks before the image data and not for IDAT;
// - chunks after the image data (even a missing IEND) are never read.
static int cpng_is_clipped_gray16(int color_type, int bit_depth) {
    return color_type == PNG_COLOR_TYPE_GRAY && bit_depth == 16;
}

/// Reads the header. Returns 0 and the size, or −1 with `source->message` set.
static inline int cpng_read_size(cpng_source *source, unsigned *width, unsigned *height) {
    source->offset = 0;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, source, cpng_on_error, cpng_on_warning);
    if (!png) { snprintf(source->message, sizeof source->message, "out of memory"); return -1; }
    png_infop info = png_create_info_struct(png);
    if (!info || setjmp(png_jmpbuf(png))) {
        if (!info) snprintf(source->message, sizeof source->message, "out of memory");
        png_destroy_read_struct(&png, info ? &info : NULL, NULL);
        return -1;
    }
    png_set_read_fn(png, source, cpng_on_read);
    png_set_crc_action(png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
    png_read_info(png, info);
    *width = png_get_image_width(png, info);
    *height = png_get_image_height(png, info);
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}

/// Decodes into `rgb` (width×height×3 bytes, the size cpng_read_size gave). Returns 0, or −1
/// with `source->message` set (the buffer then holds partial data).
static inline int cpng_decode_rgb(cpng_source *source, unsigned char *rgb, unsigned width, unsigned height) {
    source->offset = 0;
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, source, cpng_on_error, cpng_on_warning);
    if (!png) { snprintf(source->message, sizeof source->message, "out of memory"); return -1; }
    png_infop info = png_create_info_struct(png);
    if (!info || setjmp(png_jmpbuf(png))) {
        if (!info) snprintf(source->message, sizeof source->message, "out of memory");
        png_destroy_read_struct(&png, info ? &info : NULL, NULL);
        return -1;
    }
    png_set_read_fn(png, source, cpng_on_read);
    png_set_crc_action(png, PNG_CRC_ERROR_QUIT, PNG_CRC_ERROR_QUIT);
    png_read_info(png, info);
    if (png_get_image_width(png, info) != width || png_get_image_height(png, info) != height)
        png_error(png, "image size changed between reads");
    // Pillow does not check the CRCs of the image data chunks (see the note above).
    png_set_crc_action(png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);

    int color_type = png_get_color_type(png, info);
    int bit_depth = png_get_bit_depth(png, info);
    int clipped_gray16 = cpng_is_clipped_gray16(color_type, bit_depth);
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if ((color_type & PNG_COLOR_MASK_COLOR) == 0 && bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (bit_depth == 16 && !clipped_gray16) png_set_strip_16(png);  // keeps the high byte
    // Always: with STRIP_ALPHA set libpng also stops expanding tRNS into an alpha channel.
    png_set_strip_alpha(png);
    if ((color_type & PNG_COLOR_MASK_COLOR) == 0 && !clipped_gray16) png_set_gray_to_rgb(png);
    int passes = png_set_interlace_handling(png);
    png_read_update_info(png, info);

    // 16-bit gray rows (2 bytes a pixel) are read packed into the front of `rgb` and widened
    // in place afterwards; every other kind arrives as RGB rows.
    size_t row_bytes = clipped_gray16 ? (size_t)width * 2 : (size_t)width * 3;
    if (png_get_rowbytes(png, info) != row_bytes || png_get_channels(png, info) != (clipped_gray16 ? 1 : 3))
        png_error(png, "unsupported PNG pixel layout");
    for (int pass = 0; pass < passes; pass++)
        for (unsigned y = 0; y < height; y++) png_read_row(png, rgb + (size_t)y * row_bytes, NULL);
    png_destroy_read_struct(&png, &info, NULL);

    if (clipped_gray16) {
        // Backwards, so no 16-bit sample is overwritten before it is read (3p ≥ 2p).
        for (size_t p = (size_t)width * height; p-- > 0;) {
            unsigned value = ((unsigned)rgb[2 * p] << 8) | rgb[2 * p + 1];
            unsigned char clipped = value > 255 ? 255 : (unsigned char)value;
            rgb[3 * p] = rgb[3 * p + 1] = rgb[3 * p + 2] = clipped;
        }
    }
    return 0;
}

#endif

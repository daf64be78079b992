// Region decoding with the libjpeg API (libjpeg-turbo 2.1: jpeg_crop_scanline,
// jpeg_skip_scanlines), for the training crop: only the rows and columns a RandomResizedCrop
// reads are inverse-transformed, upsampled and colour-converted, and decoding stops at the
// region's last row. Rows above the region are still entropy-decoded (Huffman data has no
// index), so the saving is the IDCT and colour work outside the region and everything below.
#include "jpeg_region.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

// Note [Errors without exit]: libjpeg's default error_exit prints and calls exit(). We jump
// back to the setjmp in the calling function of this file instead (never across Swift
// frames), keep libjpeg's own message text, and reset the object with jpeg_abort_decompress
// so the same decoder takes the next file. Warnings are counted and the first one's text is
// kept, as TurboJPEG's handler does (turbojpeg.c, my_emit_message): the caller treats a
// warning as a decoded image, exactly like tjDecompress2 returning TJERR_WARNING.
struct jr_error {
    struct jpeg_error_mgr pub;
    jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

struct jr_decoder {
    struct jpeg_decompress_struct cinfo;
    struct jr_error error;
    // Row pointers into the caller's buffer, reused from file to file.
    JSAMPROW *rows;
    size_t rows_capacity;
};

static void jr_error_exit(j_common_ptr cinfo) {
    struct jr_error *error = (struct jr_error *)cinfo->err;
    (*cinfo->err->format_message)(cinfo, error->message);
    longjmp(error->jump, 1);
}

static void jr_emit_message(j_common_ptr cinfo, int level) {
    struct jr_error *error = (struct jr_error *)cinfo->err;
    if (level >= 0) return;  // trace messages: libjpeg prints none at trace_level 0 either
    if (cinfo->err->num_warnings == 0) (*cinfo->err->format_message)(cinfo, error->message);
    cinfo->err->num_warnings++;
}

static void jr_output_message(j_common_ptr cinfo) { (void)cinfo; }

jr_decoder *jr_create(void) {
    jr_decoder *decoder = calloc(1, sizeof *decoder);
    if (!decoder) return NULL;
    decoder->cinfo.err = jpeg_std_error(&decoder->error.pub);
    decoder->error.pub.error_exit = jr_error_exit;
    decoder->error.pub.emit_message = jr_emit_message;
    decoder->error.pub.output_message = jr_output_message;
    if (setjmp(decoder->error.jump)) {  // jpeg_create_decompress fails only on out-of-memory
        free(decoder);
        return NULL;
    }
    jpeg_create_decompress(&decoder->cinfo);
    return decoder;
}

void jr_destroy(jr_decoder *decoder) {
    if (!decoder) return;
    jpeg_destroy_decompress(&decoder->cinfo);
    free(decoder->rows);
    free(decoder);
}

const char *jr_message(const jr_decoder *decoder) { return decoder->error.message; }

static int is_cmyk(const struct jpeg_decompress_struct *cinfo) {
    return cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
}

// Our own refusals (misuse, out of memory) are errors even after a libjpeg warning.
static void fail(jr_decoder *decoder, const char *text) {
    snprintf(decoder->error.message, sizeof decoder->error.message, "%s", text);
    decoder->cinfo.err->num_warnings = 0;
    longjmp(decoder->error.jump, 1);
}

int jr_decode_region(jr_decoder *decoder, const uint8_t *data, size_t size, int eighths, int left, int top,
                     int width, int height, int options, uint8_t *output, size_t stride, int *column) {
    struct jpeg_decompress_struct *cinfo = &decoder->cinfo;
    decoder->error.message[0] = 0;
    cinfo->err->num_warnings = 0;
    // Rows written so far; volatile because the error path below reads it after a longjmp.
    volatile int rows_done = 0;
    if (setjmp(decoder->error.jump)) {
        jpeg_abort_decompress(cinfo);
        // Note [Error after a warning]: tjDecompress2 reports a fatal error that follows a
        // warning as TJERR_WARNING (turbojpeg.c: tjGetErrorCode looks only at the warning flag),
        // so the whole-image path returns an image for, e.g., a truncated progressive file whose
        // cut lands in a table. We answer the same, with the rows never decoded set to zero
        // (TurboJPEG leaves whatever the buffer held), keeping the first warning's text.
        // rows_done only grows by whole rows read, so the rows from it on were never written.
        if (cinfo->err->num_warnings == 0) return JR_ERROR;
        if (rows_done < height) memset(output + (size_t)rows_done * stride, 0, (size_t)(height - rows_done) * stride);
        return JR_WARNING;
    }
    if (eighths < 1 || eighths > 8) fail(decoder, "jr_decode_region: eighths must be 1 to 8");
    jpeg_mem_src(cinfo, data, (unsigned long)size);
    jpeg_read_header(cinfo, TRUE);
    // The settings tjDecompress2 makes for TJPF_RGB / TJPF_CMYK with flags 0 (turbojpeg.c,
    // setDecompDefaults): CMYK and YCCK files come out as CMYK, everything else (grayscale
    // included) as RGB; ISLOW IDCT and fancy upsampling unless the caller asks for speed.
    cinfo->out_color_space = is_cmyk(cinfo) ? JCS_CMYK : JCS_RGB;
    cinfo->scale_num = (unsigned int)eighths;
    cinfo->scale_denom = 8;
    cinfo->dct_method = (options & JR_FAST_DCT) ? JDCT_IFAST : JDCT_ISLOW;
    cinfo->do_fancy_upsampling = (options & JR_FAST_UPSAMPLE) ? FALSE : TRUE;
    jpeg_start_decompress(cinfo);
    const JDIMENSION full_width = cinfo->output_width, full_height = cinfo->output_height;
    if (left < 0 || top < 0 || width <= 0 || height <= 0 || (JDIMENSION)left + (JDIMENSION)width > full_width
        || (JDIMENSION)top + (JDIMENSION)height > full_height)
        fail(decoder, "jr_decode_region: region outside the scaled image");
    const size_t components = (size_t)cinfo->output_components;

    // Note [Crop margin]: libjpeg-turbo's fancy h2v1/h2v2 upsampling treats the left and right
    // ends of a jpeg_crop_scanline row as image edges (libjpeg.txt, "Partial image
    // decompression"): the outermost column on each side gets its chroma replicated instead of
    // interpolated from the neighbour. Asking for one column more on each side than the
    // region (where the image has one) puts those columns outside the region, so every pixel
    // we return equals the full decode's. The left end is then moved down to an iMCU boundary.
    JDIMENSION x = left > 0 ? (JDIMENSION)left - 1 : 0;
    JDIMENSION end = (JDIMENSION)(left + width) < full_width ? (JDIMENSION)(left + width) + 1 : full_width;
    // libjpeg-turbo upsamples fancily only rows with more than two chroma samples
    // (jdsample.c, jinit_upsampler: downsampled_width > 2) and replicates otherwise, so a crop
    // a few pixels wide would lose the interpolation a whole-image decode has (measured: a
    // 1-pixel column at the left edge of a 4:2:0 image differed). Decode at least 32 columns;
    // a chroma factor of 4 (4:1:1) then still gives 8 samples.
    const JDIMENSION min_width = 32;
    if (end - x < min_width) {
        end = x + min_width < full_width ? x + min_width : full_width;
        if (end - x < min_width) x = end > min_width ? end - min_width : 0;
    }
    JDIMENSION crop_width = end - x;
    if (x > 0 || crop_width < full_width) jpeg_crop_scanline(cinfo, &x, &crop_width);
    // Rows go straight into the caller's buffer, each `stride` bytes, at least a whole scaled
    // row (so even libjpeg-turbo < 2.1.3, which could write an uncropped row with merged
    // upsampling (its change log, 2.1.3), stays inside).
    if (stride < (size_t)full_width * components) fail(decoder, "jr_decode_region: stride below a scaled row");
    *column = (int)((JDIMENSION)left - x);
    if (decoder->rows_capacity < (size_t)height) {
        JSAMPROW *grown = realloc(decoder->rows, (size_t)height * sizeof *grown);
        if (!grown) fail(decoder, "jr_decode_region: out of memory");
        decoder->rows = grown;
        decoder->rows_capacity = (size_t)height;
    }
    for (int y = 0; y < height; y++) decoder->rows[y] = output + (size_t)y * stride;
    if (top > 0) jpeg_skip_scanlines(cinfo, (JDIMENSION)top);
    while (rows_done < height) {
        JDIMENSION read = jpeg_read_scanlines(cinfo, decoder->rows + rows_done, (JDIMENSION)(height - rows_done));
        if (read == 0) fail(decoder, "jr_decode_region: no scanline");
        rows_done += (int)read;
    }
    // A region that reaches the last row finishes as tjDecompress2 does (reading to EOI);
    // otherwise stop here: nothing below the region is decoded or checked.
    if (cinfo->output_scanline == full_height)
        jpeg_finish_decompress(cinfo);
    else
        jpeg_abort_decompress(cinfo);
    return cinfo->err->num_warnings ? JR_WARNING : JR_OK;
}

#!/usr/bin/env python3
"""Writes the PNG fixtures for ImageDecoder's PNG tests and their golden RGB bytes.

Made with Pillow 13.0.0 (Python 3.11): `python3 make_fixtures.py` in this folder.

Each <name>.png is a 7x5 image; <name>.rgb holds the 7*5*3 bytes of
`Image.open(name.png).convert("RGB").tobytes()`, which is what torchvision's loader sees.
Pillow writes the kinds it can (1-bit, L, LA, I;16, P, RGB, RGBA, with tRNS); it cannot write
16-bit colour, 16-bit gray+alpha, 2/4-bit gray or Adam7 interlacing, so those are written
by the small encoder below -- but every golden file comes from Pillow reading the PNG.
"""
import struct
import zlib

from PIL import Image

W, H = 7, 5


def chunk(kind, data):
    body = kind + data
    return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def png(rows, bit_depth, color_type, interlace=False, extra=b""):
    """rows: H lists of samples (ints); packs them at bit_depth (big-endian for 16 bits)."""
    def pack(samples):
        if bit_depth == 8:
            return bytes(samples)
        if bit_depth == 16:
            return b"".join(struct.pack(">H", s) for s in samples)
        out, acc, nbits = bytearray(), 0, 0
        for s in samples:
            acc, nbits = (acc << bit_depth) | s, nbits + bit_depth
            if nbits == 8:
                out.append(acc)
                acc, nbits = 0, 0
        if nbits:
            out.append(acc << (8 - nbits))
        return bytes(out)

    channels = {0: 1, 2: 3, 3: 1, 4: 2, 6: 4}[color_type]
    raw = bytearray()
    if not interlace:
        for row in rows:
            raw += b"\x00" + pack(row)
    else:
        # Adam7: (x0, y0, dx, dy) per pass; each pass is its own sub-image of filtered rows.
        for x0, y0, dx, dy in [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4),
                               (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]:
            for y in range(y0, H, dy):
                xs = list(range(x0, W, dx))
                if not xs:
                    continue
                samples = [s for x in xs for s in rows[y][x * channels:(x + 1) * channels]]
                raw += b"\x00" + pack(samples)
    ihdr = struct.pack(">IIBBBBB", W, H, bit_depth, color_type, 0, 0, 1 if interlace else 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + extra
            + chunk(b"IDAT", zlib.compress(bytes(raw))) + chunk(b"IEND", b""))


def value(x, y, c, top):
    """A pattern with every pixel distinct in each channel, spread over 0...top."""
    return ((x * 37 + y * 101 + c * 53) * 2654435761) % (top + 1)


def write_pillow(name, image, **params):
    image.save(f"{name}.png", **params)


def write_raw(name, data):
    with open(f"{name}.png", "wb") as f:
        f.write(data)


def main():
    # Pillow-written kinds.
    gray = Image.new("L", (W, H))
    gray.putdata([value(x, y, 0, 255) for y in range(H) for x in range(W)])
    write_pillow("gray8", gray)
    write_pillow("gray8_trns", gray, transparency=value(3, 2, 0, 255))
    write_pillow("gray1", gray.point(lambda v: 255 if v >= 128 else 0).convert("1", dither=Image.Dither.NONE))
    # 16-bit gray: values both below and above 255 (Pillow clips those to 255, see the tests).
    gray16 = Image.new("I;16", (W, H))
    gray16.putdata([value(x, y, 0, 1023) for y in range(H) for x in range(W)])
    write_pillow("gray16", gray16)
    graya = Image.merge("LA", [gray, gray.point(lambda v: 255 - v)])
    write_pillow("graya8", graya)
    rgb = Image.new("RGB", (W, H))
    rgb.putdata([tuple(value(x, y, c, 255) for c in range(3)) for y in range(H) for x in range(W)])
    write_pillow("rgb8", rgb)
    write_pillow("rgb8_trns", rgb, transparency=rgb.getpixel((1, 1)))
    # Alpha 0 on coloured pixels shows whether alpha is dropped (Pillow) or composited.
    alpha = Image.new("L", (W, H))
    alpha.putdata([0 if (x + y) % 3 == 0 else value(x, y, 3, 255) for y in range(H) for x in range(W)])
    write_pillow("rgba8", Image.merge("RGBA", [*rgb.split(), alpha]))
    palette = rgb.quantize(colors=12, dither=Image.Dither.NONE)  # 12 colours: Pillow writes 4 bits
    write_pillow("palette4", palette)
    palette8 = rgb.quantize(colors=40, dither=Image.Dither.NONE)
    write_pillow("palette8", palette8)
    write_pillow("palette8_trns", palette8, transparency=bytes([0, 128, 255, 7, 0]))

    # Hand-encoded kinds Pillow cannot write.
    write_raw("gray4", png([[value(x, y, 0, 15) for x in range(W)] for y in range(H)], 4, 0))
    write_raw("graya16", png([[value(x, y, c, 65535) for x in range(W) for c in range(2)] for y in range(H)], 16, 4))
    rgb16 = [[value(x, y, c, 65535) for x in range(W) for c in range(3)] for y in range(H)]
    # gAMA 1/2.2 (45455): Pillow ignores gamma, so the decoder must too.
    write_raw("rgb16_gama", png(rgb16, 16, 2, extra=chunk(b"gAMA", struct.pack(">I", 45455))))
    write_raw("rgba16", png([[value(x, y, c, 65535) for x in range(W) for c in range(4)] for y in range(H)], 16, 6))
    # Indices past the end of a 2-colour palette: Pillow gives black (and so must we).
    write_raw("palette_short", png([[(x + y) % 6 for x in range(W)] for y in range(H)], 8, 3,
                                   extra=chunk(b"PLTE", bytes([10, 20, 30, 200, 100, 50]))))
    rgb8_rows = [[value(x, y, c, 255) for x in range(W) for c in range(3)] for y in range(H)]
    write_raw("rgb8_interlaced", png(rgb8_rows, 8, 2, interlace=True))
    write_raw("gray16_interlaced", png([[value(x, y, 0, 1023) for x in range(W)] for y in range(H)], 16, 0, interlace=True))
    write_raw("rgba16_interlaced", png([[value(x, y, c, 65535) for x in range(W) for c in range(4)] for y in range(H)], 16, 6, interlace=True))

    names = ["gray1", "gray4", "gray8", "gray8_trns", "gray16", "gray16_interlaced", "graya8", "graya16",
             "palette4", "palette8", "palette8_trns", "palette_short", "rgb8", "rgb8_trns", "rgb8_interlaced",
             "rgb16_gama", "rgba8", "rgba16", "rgba16_interlaced"]
    for name in names:
        with Image.open(f"{name}.png") as im:
            im.load()
            info = f"{im.mode} {im.info.get('interlace', 0)}"
            data = im.convert("RGB").tobytes()
        assert len(data) == W * H * 3, name
        with open(f"{name}.rgb", "wb") as f:
            f.write(data)
        print(name, info)


if __name__ == "__main__":
    main()

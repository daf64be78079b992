"""Golden fixtures for TorchvisionTransformTests: Pillow resizes of two raw RGB images.

Made with Pillow 13.0.0 (numpy 2.x only builds the source images):
    python3 -m venv venv && venv/bin/pip install pillow==13.0.0 numpy
    venv/bin/python make_fixtures.py      # run from this folder; rewrites the .rgb files

torchvision's Resize / RandomResizedCrop on a PIL image call exactly `img.resize((w, h), filter)`
(after `img.crop(...)` for the random crop), so these bytes are what torchvision produces.
Every .rgb file is raw interleaved RGB, rows top to bottom, no header; the size is in the name.
The tests never run Python: they read these files.
"""
import numpy as np
from PIL import Image

FILTERS = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}


def noise_image():
    """37×23 uniform noise: every pixel differs from its neighbours, the worst case for rounding."""
    rng = np.random.RandomState(20240611)
    return rng.randint(0, 256, size=(23, 37, 3), dtype=np.uint8)


def photo_like_image():
    """300×200: smooth gradients, hard edges (bicubic overshoot gets clipped) and mild noise."""
    rng = np.random.RandomState(7)
    y, x = np.mgrid[0:200, 0:300].astype(np.float64)
    r = 128 + 100 * np.sin(x / 17.0) * np.cos(y / 11.0)
    g = 255 * (x + y) / 500.0
    b = np.where(((x // 23) + (y // 19)) % 2 == 0, 250.0, 5.0)
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, 6, size=(200, 300, 3))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def save(name, array):
    with open(name, "wb") as f:
        f.write(np.ascontiguousarray(array, dtype=np.uint8).tobytes())


# (source name, output width, output height, filters). Widths/heights cover downscale by
# non-integer factors, upscale, one side unchanged (Pillow skips that pass) and both, and both
# pass orders (Pillow 13 runs the vertical pass first when H - h > 2 (W - w), Resample.c).
CASES = [
    ("noise37x23", 16, 10, ["nearest", "bilinear", "bicubic"]),
    ("noise37x23", 9, 13, ["nearest", "bilinear", "bicubic"]),
    ("noise37x23", 50, 31, ["nearest", "bilinear", "bicubic"]),
    ("noise37x23", 37, 11, ["bilinear", "bicubic"]),   # width unchanged: vertical pass only
    ("noise37x23", 20, 23, ["bilinear", "bicubic"]),   # height unchanged: horizontal pass only
    ("noise37x23", 61, 7, ["bilinear", "bicubic"]),    # up in x, down in y: vertical pass first
    ("noise37x23", 30, 5, ["bilinear", "bicubic"]),    # H - h > 2 (W - w): vertical pass first
    ("noise37x23", 33, 15, ["bilinear", "bicubic"]),   # H - h = 2 (W - w): horizontal first
    ("noise37x23", 33, 14, ["bilinear", "bicubic"]),   # H - h = 2 (W - w) + 1: vertical first
    ("noise37x23", 1, 1, ["bilinear", "bicubic"]),
    ("photo300x200", 384, 256, ["bilinear", "bicubic"]),  # Resize(256): shorter side 200 → 256
    ("photo300x200", 113, 75, ["bilinear", "bicubic"]),   # strong non-integer downscale
    ("photo300x200", 290, 61, ["bilinear", "bicubic"]),   # vertical pass first
]

if __name__ == "__main__":
    sources = {"noise37x23": noise_image(), "photo300x200": photo_like_image()}
    for name, array in sources.items():
        save(f"{name}.rgb", array)
    for name, w, h, filters in CASES:
        image = Image.fromarray(sources[name], "RGB")
        for f in filters:
            save(f"{name}_{f}_{w}x{h}.rgb", np.asarray(image.resize((w, h), FILTERS[f])))
    print("Pillow", Image.__version__)

"""Real photographs and torchvision's evaluation transform on them, for PhotoEvalTransformTests.

The photographs come from packages' sample data: grace_hopper.jpg (matplotlib
mpl-data/sample_data, public domain, US Navy) and rocket.jpg (scikit-image data, public domain,
NASA) as distributed; chelsea, coffee and camera (scikit-image data, CC0) re-encoded from their
PNGs to cover JPEG variants: 4:4:4 chroma, progressive, grayscale, and CMYK (Adobe).

For each, torchvision 0.29 on Pillow: Image.open(f).convert("RGB") -> Resize(R) ->
CenterCrop(S), written as raw RGB bytes `<name>.<S>.rgb` (ToTensor + Normalize are exact
arithmetic on these bytes, done on the Swift side). photos.json lists (file, resize, size).

    python make_photo_fixtures.py MATPLOTLIB_SAMPLE_DATA_DIR SKIMAGE_DATA_DIR
"""
import json
import os
import shutil
import sys

from PIL import Image
from torchvision import transforms

here = os.path.dirname(os.path.abspath(__file__))
mpl, skimage = sys.argv[1], sys.argv[2]

shutil.copy(os.path.join(mpl, "grace_hopper.jpg"), here)
shutil.copy(os.path.join(skimage, "rocket.jpg"), here)
Image.open(os.path.join(skimage, "chelsea.png")).convert("RGB").save(
    os.path.join(here, "chelsea_444.jpg"), quality=85, subsampling=0)
Image.open(os.path.join(skimage, "coffee.png")).convert("RGB").save(
    os.path.join(here, "coffee_progressive.jpg"), quality=90, progressive=True)
Image.open(os.path.join(skimage, "camera.png")).convert("L").save(
    os.path.join(here, "camera_gray.jpg"), quality=90)
Image.open(os.path.join(skimage, "chelsea.png")).convert("CMYK").save(
    os.path.join(here, "chelsea_cmyk.jpg"), quality=90)

cases = [("grace_hopper.jpg", 256, 224), ("rocket.jpg", 256, 224), ("chelsea_444.jpg", 146, 128),
         ("coffee_progressive.jpg", 146, 128), ("camera_gray.jpg", 146, 128), ("chelsea_cmyk.jpg", 146, 128)]
for name, resize, size in cases:
    image = Image.open(os.path.join(here, name)).convert("RGB")
    out = transforms.CenterCrop(size)(transforms.Resize(resize)(image))
    assert out.size == (size, size)
    with open(os.path.join(here, f"{name}.{size}.rgb"), "wb") as f:
        f.write(out.tobytes())
with open(os.path.join(here, "photos.json"), "w") as f:
    json.dump([{"file": n, "resize": r, "size": s} for n, r, s in cases], f, indent=1)
print("wrote", len(cases), "cases")

"""Golden fixtures for AugmentationParityTests: torchvision's ColorJitter and TrivialAugmentWide
operations on PIL images, each with fixed parameters.

Made with torchvision 0.29.2, torch 2.15 and Pillow 13.0.0 (the project's reference venv):
    /work/torchvenv/bin/python make_fixtures.py      # run from anywhere; rewrites this folder's data

Inputs are real photographs already committed in ../photos (torchvision's eval transform of
chelsea_444.jpg and coffee_progressive.jpg, as decoded by PIL), cropped small, plus a few tiny
synthetic images for the edge cases of AutoContrast, Equalize and the 3×3 smoothing filter:
  photo40.rgb       40×40 centre of chelsea_444.jpg.128.rgb (square, like the training crop)
  wide40x30.rgb     40×30 from coffee_progressive.jpg.128.rgb (non-square: catches x/y mix-ups)
  flat8x6.rgb       one colour (AutoContrast/Equalize leave it alone)
  steps32x16.rgb    four levels and one brighter pixel (Equalize's table reaches 256 and is clipped)
  tiny2x2.rgb       smaller than the 3×3 kernel (Sharpness blends with an unfiltered copy)

Each case runs through torchvision's own functional code on a PIL image:
  - ColorJitter components: F.adjust_brightness / adjust_contrast / adjust_saturation /
    adjust_hue with float32 factors (ColorJitter draws them as float32 tensors), and one whole
    ColorJitter with a fixed order and fixed factors, applied the way ColorJitter.forward does;
  - TrivialAugmentWide: torchvision.transforms.autoaugment._apply_op(img, op, magnitude,
    NEAREST, fill=None) with magnitude = the op's magnitude table at a bin, negated for the
    negative sign, exactly as TrivialAugmentWide.forward computes it.
Outputs are concatenated into expected.rgb (raw interleaved RGB, rows top to bottom);
cases.json gives each case's input, parameters and byte offset. tables.json holds the
magnitude tables of TrivialAugmentWide._augmentation_space(31) as this torch computes them
(float32 values): torch.linspace on x86 vector builds rounds some bins
differently from the scalar formula, and the tests check our tables against these.
Every float is written as a string, Python's repr (shortest round-trip), so that the tests
read it back exactly (Foundation's JSON number parser on Linux is off in the last bit).
The tests never run Python.
"""
import json
import os

import numpy as np
import torch
import torchvision
from PIL import Image
from torchvision.transforms import InterpolationMode, TrivialAugmentWide
from torchvision.transforms import functional as F
from torchvision.transforms.autoaugment import _apply_op

HERE = os.path.dirname(os.path.abspath(__file__))
PHOTOS = os.path.join(HERE, "..", "photos")


def load_raw(name, size):
    with open(os.path.join(PHOTOS, name), "rb") as f:
        return Image.frombytes("RGB", (size, size), f.read())


def f32(x):
    """The float32 value nearest x, as a Python float (ColorJitter's factors are float32 draws)."""
    return float(np.float32(x))


inputs = {
    "photo40": load_raw("chelsea_444.jpg.128.rgb", 128).crop((44, 44, 84, 84)),
    "wide40x30": load_raw("coffee_progressive.jpg.128.rgb", 128).crop((44, 49, 84, 79)),
    "flat8x6": Image.new("RGB", (8, 6), (90, 140, 200)),
    "tiny2x2": Image.frombytes("RGB", (2, 2), bytes([10, 200, 30, 250, 5, 128, 0, 255, 77, 31, 64, 190])),
}
# Equalize: 511 of 512 pixels below the top level and one at it, so that in channel 0 the
# step is 2 with a remainder of 1 and n // step at the top level is 256: Pillow clips that
# table entry to 255 (a uint8 cast would wrap it to 0).
levels = np.array([0, 40, 90, 200] * 128, dtype=np.int64)[:511]
channel0 = np.append(levels, 250)
steps = np.stack([channel0, 255 - channel0, (channel0 * 7 + 3) % 256], axis=1).astype(np.uint8)
inputs["steps32x16"] = Image.fromarray(steps.reshape(16, 32, 3), "RGB")

space = TrivialAugmentWide()._augmentation_space(31)
tables = {name: [repr(float(v)) if m.dtype.is_floating_point else int(v) for v in m.reshape(-1).tolist()]
          for name, (m, _) in space.items() if m.ndim > 0}


def exact(x):
    """A float as its repr string (None stays None)."""
    return None if x is None else repr(float(x))


def trivial_case(image_name, op, bin_index=None, negative=False):
    magnitudes, signed = space[op]
    magnitude = float(magnitudes[bin_index].item()) if magnitudes.ndim > 0 else 0.0
    assert signed or not negative
    if negative:
        magnitude *= -1.0
    output = _apply_op(inputs[image_name], op, magnitude, interpolation=InterpolationMode.NEAREST, fill=None)
    return {"input": image_name, "kind": "trivial_augment", "op": op, "bin": bin_index, "negative": negative,
            "magnitude": exact(magnitude)}, output


def jitter_case(image_name, component, factor):
    function = {"brightness": F.adjust_brightness, "contrast": F.adjust_contrast,
                "saturation": F.adjust_saturation, "hue": F.adjust_hue}[component]
    return {"input": image_name, "kind": component, "factor": exact(factor)}, function(inputs[image_name], factor)


def whole_jitter_case(image_name, order, b, c, s, h):
    """ColorJitter.forward with get_params' result fixed: fn_idx = order, then the factors."""
    image = inputs[image_name]
    for fn_id in order:
        if fn_id == 0 and b is not None:
            image = F.adjust_brightness(image, b)
        elif fn_id == 1 and c is not None:
            image = F.adjust_contrast(image, c)
        elif fn_id == 2 and s is not None:
            image = F.adjust_saturation(image, s)
        elif fn_id == 3 and h is not None:
            image = F.adjust_hue(image, h)
    return {"input": image_name, "kind": "color_jitter", "order": order, "brightness": exact(b),
            "contrast": exact(c), "saturation": exact(s), "hue": exact(h)}, image


cases = []
# ColorJitter components at two factors each (inside ColorJitter(0.4)'s [0.6, 1.4]), then the
# extremes of a wider jitter; hue on both sides, small enough to round to no shift (the HSV
# round trip alone), one level, and the ±0.5 limits.
for component in ["brightness", "contrast", "saturation"]:
    for factor in [0.63, 1.37, 0.0, 1.95]:
        cases.append(jitter_case("photo40", component, f32(factor)))
for factor in [-0.5, -0.3, -0.05, 0.0015, 0.004, 0.21, 0.5]:
    cases.append(jitter_case("photo40", "hue", f32(factor)))
cases.append(whole_jitter_case("photo40", [3, 1, 0, 2], f32(1.21), f32(0.74), f32(1.33), f32(-0.08)))
cases.append(whole_jitter_case("photo40", [2, 0, 3, 1], f32(0.7), None, f32(0.65), None))

# TrivialAugmentWide: every op; signed ops at a middle and the largest bin, both signs.
for op in ["Identity", "AutoContrast", "Equalize"]:
    for image_name in ["photo40", "wide40x30", "flat8x6", "steps32x16"]:
        cases.append(trivial_case(image_name, op))
for op, bins in [("ShearX", [0, 12, 30]), ("ShearY", [12, 30]), ("TranslateX", [7, 15, 30]),
                 ("TranslateY", [7, 15, 30]), ("Rotate", [3, 10, 20, 30]), ("Brightness", [11, 30]),
                 ("Color", [11, 30]), ("Contrast", [11, 30]), ("Sharpness", [11, 30])]:
    geometric = op in ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")
    for bin_index in bins:
        for negative in [False, True]:
            if bin_index == 0 and negative:
                continue
            cases.append(trivial_case("photo40", op, bin_index, negative))
            if geometric or (op == "Sharpness" and bin_index == 30):
                cases.append(trivial_case("wide40x30", op, bin_index, negative))
for bin_index in [0, 12, 30]:
    cases.append(trivial_case("photo40", "Posterize", bin_index))
for bin_index in [0, 15, 29, 30]:
    cases.append(trivial_case("photo40", "Solarize", bin_index))
cases.append(trivial_case("tiny2x2", "Sharpness", 30, False))

manifest, blob = [], bytearray()
for case, output in cases:
    assert output.mode == "RGB" and output.size == inputs[case["input"]].size
    data = output.tobytes()
    case.update(offset=len(blob), length=len(data))
    manifest.append(case)
    blob += data

for name, image in inputs.items():
    with open(os.path.join(HERE, f"{name}.rgb"), "wb") as f:
        f.write(image.tobytes())
with open(os.path.join(HERE, "expected.rgb"), "wb") as f:
    f.write(bytes(blob))
with open(os.path.join(HERE, "cases.json"), "w") as f:
    json.dump({"versions": {"torch": torch.__version__, "torchvision": torchvision.__version__,
                            "pillow": Image.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability()},
               "inputs": {name: [image.width, image.height] for name, image in inputs.items()},
               "cases": manifest}, f, indent=1)
with open(os.path.join(HERE, "tables.json"), "w") as f:
    json.dump(tables, f, indent=1)
print(f"wrote {len(manifest)} cases, {len(blob)} bytes of expected output")

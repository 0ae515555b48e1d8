#!/usr/bin/env python3
"""Synthetic text images for rapidocr's models (calibration and validation data for `pith sensitivity`
/ `pith compress --auto` on them).

    python3 scripts/text_lines.py --count 128 --seed 1 -o lines.npy              # PP-OCRv4 rec
    python3 scripts/text_lines.py --kind cls --count 256 --seed 2 -o cls.npy     # the direction classifier
    python3 scripts/text_lines.py --kind det --count 16 --seed 2 -o pages.npy    # PP-OCRv4 det

rec: each line is 1–4 words (and sometimes a number) drawn from a small vocabulary, rendered with one of
four DejaVu fonts (Debian's fonts-dejavu-core) at 26–40 px, dark on a light background, scaled to
48 pixels high and placed at the left of a 320-pixel-wide canvas, normalized as rapidocr does
((x / 255 − 0.5) / 0.5, padding 0): float32 [count, 3, 48, 320].
cls: the same lines resized to 48 × 192, every second one turned by 180°: float32 [count, 3, 48, 192].
det: 320 × 320 pages of such lines at 12–26 px, at varying indents and spacing on light paper,
normalized with ImageNet's mean and deviation as rapidocr's detector is: float32 [count, 3, 320, 320].
A seed gives the same images again.
"""
import argparse
import os
import random

import numpy as np
from PIL import Image, ImageDraw, ImageFont

FONT_FOLDER = "/usr/share/fonts/truetype/dejavu"
FONTS = ["DejaVuSans.ttf", "DejaVuSerif.ttf", "DejaVuSansMono.ttf", "DejaVuSans-Bold.ttf"]
WORDS = ("the quick brown fox jumps over lazy dog invoice total amount date 2026 order number price tax receipt page "
         "model pith compress").split()
HEIGHT, WIDTH = 48, 320


def line(rng):
    text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4)))
    if rng.random() < 0.4:
        text += f" {rng.randint(0, 99999)}"
    font = ImageFont.truetype(os.path.join(FONT_FOLDER, rng.choice(FONTS)), rng.randint(26, 40))
    width = int(font.getlength(text)) + 16
    image = Image.new("RGB", (width, HEIGHT), (rng.randint(200, 255),) * 3)
    ink = rng.randint(0, 60)
    ImageDraw.Draw(image).text((8, (HEIGHT - font.size) // 2 - 2), text, font=font, fill=(ink, ink, ink))
    scaled = min(WIDTH, max(8, width))
    pixels = np.asarray(image.resize((scaled, HEIGHT)), np.float32) / 255
    out = np.zeros((3, HEIGHT, WIDTH), np.float32)
    out[:, :, :scaled] = ((pixels - 0.5) / 0.5).transpose(2, 0, 1)
    return out


def lines(count, seed):
    rng = random.Random(seed)
    return np.stack([line(rng) for _ in range(count)])


def directions(count, seed):
    """The lines at the classifier's 48 × 192, odd ones turned upside down."""
    out = []
    for i, text in enumerate(lines(count, seed)):
        pixels = ((text.transpose(1, 2, 0) * 0.5 + 0.5) * 255).astype(np.uint8)
        small = np.asarray(Image.fromarray(pixels).resize((192, HEIGHT)), np.float32) / 255
        chw = ((small - 0.5) / 0.5).transpose(2, 0, 1)
        out.append(chw[:, ::-1, ::-1] if i % 2 else chw)
    return np.ascontiguousarray(np.stack(out), dtype=np.float32)


def pages(count, seed, size=320):
    """Document-like pages for the detector."""
    rng = random.Random(seed)
    mean, std = np.array([0.485, 0.456, 0.406], np.float32), np.array([0.229, 0.224, 0.225], np.float32)
    out = []
    for _ in range(count):
        image = Image.new("RGB", (size, size), (rng.randint(225, 255),) * 3)
        draw = ImageDraw.Draw(image)
        y = rng.randint(4, 20)
        while y < size - 30:
            font = ImageFont.truetype(os.path.join(FONT_FOLDER, rng.choice(FONTS)), rng.randint(12, 26))
            text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 5)))
            ink = rng.randint(0, 70)
            draw.text((rng.randint(4, 60), y), text, font=font, fill=(ink, ink, ink))
            y += int(font.size * rng.uniform(1.3, 2.2))
        out.append(((np.asarray(image, np.float32) / 255 - mean) / std).transpose(2, 0, 1))
    return np.ascontiguousarray(np.stack(out), dtype=np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", choices=["rec", "cls", "det"], default="rec")
    parser.add_argument("--count", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args()
    if not os.path.isdir(FONT_FOLDER):
        raise SystemExit(f"text_lines.py: the DejaVu fonts are not in {FONT_FOLDER} (Debian package fonts-dejavu-core)")
    np.save(args.output, {"rec": lines, "cls": directions, "det": pages}[args.kind](args.count, args.seed))


if __name__ == "__main__":
    main()

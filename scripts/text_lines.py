#!/usr/bin/env python3
"""Synthetic text-line images for rapidocr's PP-OCRv4 recognition model (calibration and validation
data for `pith sensitivity` / `pith compress --auto` on it).

    python3 scripts/text_lines.py --count 128 --seed 1 -o lines.npy

Each line is 1–4 words (and sometimes a number) drawn from a small vocabulary, rendered with one of
four DejaVu fonts (Debian's fonts-dejavu-core) at 26–40 px, dark on a light background, scaled to
48 pixels high and placed at the left of a 320-pixel-wide canvas, normalized as rapidocr does
((x / 255 − 0.5) / 0.5, padding 0): float32 [count, 3, 48, 320]. A seed gives the same lines again.
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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=128)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args()
    if not os.path.isdir(FONT_FOLDER):
        raise SystemExit(f"text_lines.py: the DejaVu fonts are not in {FONT_FOLDER} (Debian package fonts-dejavu-core)")
    np.save(args.output, lines(args.count, args.seed))


if __name__ == "__main__":
    main()

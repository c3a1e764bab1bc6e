"""PIL drawings for the miniature datasets: scenes of labelled objects, text pages and bar charts."""

import random

from PIL import Image, ImageDraw, ImageFont

from ..synthetic import COLOURS  # noqa: F401  (one palette for every generated image)


def font(size: int = 14) -> ImageFont.FreeTypeFont:
    return ImageFont.load_default(size=size)


def background(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    grey = rng.randint(235, 255)
    return Image.new("RGB", size, (grey, grey, grey))


def scene(rng: random.Random, objects: list[str], size: tuple[int, int] = (160, 120)) -> Image.Image:
    """Coloured boxes, each labelled with an object name (a stand-in for a photo holding those objects)."""
    image = background(rng, size)
    draw = ImageDraw.Draw(image)
    width, height = size
    slot = width // max(1, len(objects))
    for index, name in enumerate(objects):
        colour = COLOURS[rng.choice(list(COLOURS))]
        left = index * slot + 4
        top = rng.randint(10, height // 2)
        draw.rectangle((left, top, left + slot - 8, top + height // 3), fill=colour)
        draw.text((left, top + height // 3 + 2), name, fill=(0, 0, 0), font=font(11))
    return image


def text_page(rng: random.Random, lines: list[str], size: tuple[int, int] = (240, 160)) -> Image.Image:
    """Dark text lines on a light page (documents, signs)."""
    image = background(rng, size)
    draw = ImageDraw.Draw(image)
    y = 8
    for line in lines:
        draw.text((10, y), line, fill=(20, 20, 20), font=font(14))
        y += 20
    return image


def bar_chart(
    rng: random.Random, title: str, bars: dict[str, float], size: tuple[int, int] = (240, 180)
) -> Image.Image:
    """A titled vertical bar chart with each bar's value printed above it."""
    image = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    width, height = size
    draw.text((8, 4), title, fill=(0, 0, 0), font=font(13))
    top, bottom = 40, height - 24
    peak = max(bars.values()) or 1.0
    slot = (width - 16) // max(1, len(bars))
    for index, (label, value) in enumerate(bars.items()):
        left = 8 + index * slot + 4
        bar_top = bottom - (bottom - top) * value / peak
        draw.rectangle((left, bar_top, left + slot - 8, bottom), fill=COLOURS[list(COLOURS)[index % len(COLOURS)]])
        draw.text((left, bar_top - 14), f"{value:g}", fill=(0, 0, 0), font=font(11))
        draw.text((left, bottom + 4), label, fill=(0, 0, 0), font=font(11))
    draw.line((8, bottom, width - 8, bottom), fill=(0, 0, 0))
    return image

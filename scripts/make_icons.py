"""Draw the web app's icons (ours: the favicon's three bars) as SVG and PNG, from one geometry.

    python scripts/make_icons.py

writes src/iaforall/web/static/icons/: icon.svg, icon-192.png and icon-512.png (rounded, for
"any" use) and icon-maskable-512.png (full bleed, the bars inside the central safe circle that
phones crop to). The PNGs are committed; run this again only when the design changes.
Needs Pillow (a dependency of IAForAll already).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

OUT = Path(__file__).resolve().parents[1] / "src" / "iaforall" / "web" / "static" / "icons"
SIZE = 512  # the design's units
GREEN, CREAM = "#2f5d50", "#f4efe6"
CORNER = 112  # the rounded square's radius (maskable icons are full squares)
BARS_X = (152, 256, 360)
BARS_Y = (168, 344)  # from, to (the round caps go beyond by half the width)
BAR_WIDTH = 56
SUPERSAMPLE = 4  # drawn larger, then reduced: smooth edges


def svg() -> str:
    bars = "".join(f"M{x} {BARS_Y[1]}V{BARS_Y[0]}" for x in BARS_X)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {SIZE} {SIZE}">'
        f'<rect width="{SIZE}" height="{SIZE}" rx="{CORNER}" fill="{GREEN}"/>'
        f'<path d="{bars}" stroke="{CREAM}" stroke-width="{BAR_WIDTH}" '
        'stroke-linecap="round"/></svg>\n'
    )


def png(pixels: int, *, maskable: bool) -> Image.Image:
    scale = pixels * SUPERSAMPLE / SIZE
    big = round(SIZE * scale)
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    corner = 0 if maskable else round(CORNER * scale)
    draw.rounded_rectangle((0, 0, big - 1, big - 1), radius=corner, fill=GREEN)
    half = BAR_WIDTH * scale / 2
    for x in BARS_X:
        cx, top, bottom = x * scale, BARS_Y[0] * scale, BARS_Y[1] * scale
        draw.rectangle((cx - half, top, cx + half, bottom), fill=CREAM)
        for cy in (top, bottom):  # the round caps
            draw.ellipse((cx - half, cy - half, cx + half, cy + half), fill=CREAM)
    return image.resize((pixels, pixels), Image.Resampling.LANCZOS)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "icon.svg").write_text(svg())
    for pixels in (192, 512):
        png(pixels, maskable=False).save(OUT / f"icon-{pixels}.png", optimize=True)
    png(512, maskable=True).save(OUT / "icon-maskable-512.png", optimize=True)
    print(f"icons written to {OUT}")


if __name__ == "__main__":
    main()

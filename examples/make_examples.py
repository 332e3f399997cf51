"""Draw the example digits in this folder: dark pen strokes on white paper, as a user's
own picture would be (no MNIST data inside, so they are free to ship).

    python examples/make_examples.py
"""

from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

STROKES = {
    "seven.png": [[(60, 55), (150, 55), (95, 165)]],
    "three.png": [
        [(62, 60), (100, 45), (140, 62), (135, 95), (100, 105)],
        [(100, 105), (143, 122), (140, 155), (100, 170), (60, 155)],
    ],
    "zero.png": [
        [
            (100, 45),
            (65, 70),
            (58, 110),
            (70, 150),
            (100, 168),
            (132, 150),
            (142, 110),
            (135, 70),
            (100, 45),
        ]
    ],
}


def shifted(name: str, dx: int) -> list:
    return [[(x + dx, y) for x, y in points] for points in STROKES[name]]


# A whole number for `digitrec read`: 3, 0 and 7 written in a row.
NUMBER = shifted("three.png", 0) + shifted("zero.png", 110) + shifted("seven.png", 215)


def draw(strokes, size=200, width=14, wide=None) -> Image.Image:
    image = Image.new("RGB", (wide or size, size), (245, 243, 236))  # off-white paper
    pen = ImageDraw.Draw(image)
    for points in strokes:
        pen.line(points, fill=(25, 30, 60), width=width, joint="curve")
        for x, y in (points[0], points[-1]):
            pen.ellipse(
                (x - width / 2, y - width / 2, x + width / 2, y + width / 2), fill=(25, 30, 60)
            )
    return image.filter(ImageFilter.GaussianBlur(1.2))


if __name__ == "__main__":
    folder = Path(__file__).parent
    for name, strokes in STROKES.items():
        draw(strokes).save(folder / name)
        print(f"wrote {folder / name}")
    draw(NUMBER, wide=420).save(folder / "number-307.png")
    print(f"wrote {folder / 'number-307.png'}")

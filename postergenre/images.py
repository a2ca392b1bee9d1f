"""Reading posters: every stage sees an RGB uint8 array, whatever the file held."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

Image.MAX_IMAGE_PIXELS = 100_000_000  # posters are small; refuse decompression bombs early


class PosterError(ValueError):
    """A poster file that cannot be used; the message names the file and why."""


def to_rgb(image: Image.Image) -> Image.Image:
    """Grayscale, CMYK, palette and alpha images as RGB (alpha composited on white)."""
    if image.mode == "RGB":
        return image
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def open_rgb(path: str | Path) -> Image.Image:
    """Open and fully decode a poster as RGB, or raise PosterError naming the file."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()  # a full decode: a header check alone misses truncated files
                return to_rgb(image)
    except FileNotFoundError:
        raise PosterError(f"{path}: file not found") from None
    except UnidentifiedImageError:
        raise PosterError(f"{path}: not an image") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as exc:
        raise PosterError(f"{path}: cannot decode image ({exc})") from None


def load_rgb_array(path: str | Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """A poster as an HxWx3 uint8 array, resized to size=(height, width) if given."""
    image = open_rgb(path)
    if size is not None:
        image = image.resize((size[1], size[0]), Image.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def decodes(data: bytes) -> bool:
    """True when bytes hold a fully decodable image."""
    import io
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
        return True
    except Exception:  # any decoder failure means "not a usable image"
        return False

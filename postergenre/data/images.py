"""Reading posters: every stage sees an RGB uint8 array, whatever the file held."""
from __future__ import annotations

import io
import os
import stat
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError
from pillow_heif import register_heif_opener

register_heif_opener()  # HEIC/HEIF, as phones save photos
Image.MAX_IMAGE_PIXELS = 100_000_000  # posters are small; refuse decompression bombs early
MAX_ASPECT = 20  # a poster is about 2:3; sides further apart than 20:1 are refused from the header, before decoding
# A PNG's compressed chunks (an ICC colour profile, text): print workflows embed profiles of several MB, over
# Pillow's 1 MB default; up to 64 MB in all is read, and a chunk that inflates past that is still refused.
MAX_METADATA = 64 * 2**20
PngImagePlugin.MAX_TEXT_CHUNK = MAX_METADATA
PngImagePlugin.MAX_TEXT_MEMORY = MAX_METADATA
# A poster file is opened only when it is a regular file of at most this size, checked before a byte is read: a
# FIFO would block the reader, and a 10 GB file would be read whole to hash it. 100 megapixels (the decoder's limit)
# of uncompressed RGB is 300 MB.
MAX_FILE_BYTES = 300 * 2**20


class PosterError(ValueError):
    """A poster that cannot be used; the message names the file and why.

    kind is "missing", "not_image", "corrupt" or "refused" (read from its header, never decoded); detail says
    what the decoder raised or why it was refused.
    """

    def __init__(self, name, kind: str, detail: str = ""):
        reason = {"missing": "file not found", "not_image": "not an image",
                  "corrupt": f"cannot decode image ({detail})", "refused": f"refused: {detail}"}[kind]
        super().__init__(f"{name}: {reason}")
        self.kind, self.detail = kind, detail


def check_poster_file(path: str | Path, name=None) -> int:
    """A poster file's size when it may be opened (a regular file within MAX_FILE_BYTES); PosterError otherwise,
    from its metadata alone: nothing is opened."""
    name = name if name is not None else path
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise PosterError(name, "missing") from None
    except (OSError, ValueError) as exc:  # a name too long, a loop of links, no permission on a folder
        raise PosterError(name, "refused", f"cannot be read ({type(exc).__name__}: {exc.strerror or exc})") from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "a FIFO" if stat.S_ISFIFO(info.st_mode) else \
            "a device or socket"
        raise PosterError(name, "refused", f"not a regular file ({kind})")
    if info.st_size > MAX_FILE_BYTES:
        raise PosterError(name, "refused", f"{info.st_size / 2**20:,.0f} MB is over the {MAX_FILE_BYTES / 2**20:.0f} MB "
                                           "limit for a poster file")
    return info.st_size


def to_rgb(image: Image.Image) -> Image.Image:
    """Grayscale, CMYK, palette and alpha images as RGB (alpha composited on white); 16-bit and float
    grayscale scaled to 8 bits (Pillow's own conversion clips them: a 16-bit poster would come out white)."""
    if image.mode == "RGB":
        return image
    if image.mode.startswith("I") or image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        if image.mode.startswith("I;16"):
            top = 65535.0
        elif image.mode == "F":
            top = 1.0 if values.max(initial=0) <= 1 else 255.0
        else:  # "I": 32-bit, which is how some 16-bit files open
            top = 65535.0 if values.max(initial=0) > 255 else 255.0
        gray = np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(gray, "L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def decode(source: str | Path | bytes, name: str | Path | None = None, max_pixels: int | None = None) -> Image.Image:
    """Fully decode an image from a file or bytes (a header check alone misses truncated files), turned upright by
    its EXIF orientation.

    Raises PosterError naming `name` (default: the path) and the kind of failure. Sides over MAX_ASPECT apart and,
    where given, more than max_pixels pixels are refused from the header, before anything is decoded.
    """
    name = name if name is not None else source
    if not isinstance(source, bytes):
        check_poster_file(source, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(source) if isinstance(source, bytes) else source) as image:
                long, short = max(image.size), max(1, min(image.size))
                if long / short > MAX_ASPECT:
                    raise PosterError(name, "refused", f"{image.width}x{image.height} pixels, sides over "
                                                       f"{MAX_ASPECT}:1 apart (a poster is about 2:3)")
                if max_pixels and image.width * image.height > max_pixels:
                    raise PosterError(name, "refused", f"{image.width * image.height / 1e6:.0f} megapixels is over "
                                                       f"the {max_pixels / 1e6:.0f} megapixel limit (a decompression "
                                                       "bomb?)")
                image.load()
                return ImageOps.exif_transpose(image)  # upright, as a phone's EXIF orientation says (1-8)
    except PosterError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PosterError(name, "refused", str(exc).replace(" DOS attack", "")) from None
    except FileNotFoundError:
        raise PosterError(name, "missing") from None
    except PermissionError:
        raise PosterError(name, "refused", "no permission to read it") from None
    except UnidentifiedImageError:
        raise PosterError(name, "not_image") from None
    except Exception as exc:  # any decoder failure (truncated, corrupt, bomb) means an unusable image
        raise PosterError(name, "corrupt", f"{type(exc).__name__}: {exc}") from None


def recompress(image: Image.Image, quality: int) -> Image.Image:
    """The image as a JPEG of `quality` would give it back: the same compression for posters of every source."""
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=int(quality))
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def open_rgb(path: str | Path) -> Image.Image:
    """Open and fully decode a poster as RGB, or raise PosterError naming the file."""
    return to_rgb(decode(Path(path)))


def decodes(data: bytes) -> bool:
    """True when bytes hold a fully decodable image."""
    try:
        decode(data, "<bytes>")
        return True
    except PosterError:
        return False


FITS = ("crop", "squash", "pad")


def fit_image(image: Image.Image, size: tuple[int, int], fit: str = "crop") -> np.ndarray:
    """An RGB image as an HxWx3 uint8 array of `size` (height, width).

    crop: keep the aspect, cut the edges that do not fit (the default; posters are ~2:3);
    squash: stretch to the size; pad: keep the aspect, pad with black.
    """
    height, width = size
    if fit == "squash":
        return np.asarray(image.resize((width, height), Image.BILINEAR), dtype=np.uint8)
    scale = (max if fit == "crop" else min)(width / image.width, height / image.height)
    resized = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                           Image.BILINEAR)
    canvas = Image.new("RGB", (width, height))
    canvas.paste(resized, ((width - resized.width) // 2, (height - resized.height) // 2))
    return np.asarray(canvas, dtype=np.uint8)


def load_poster(path: str | Path, size: tuple[int, int], fit: str = "crop") -> np.ndarray:
    return fit_image(open_rgb(path), size, fit)

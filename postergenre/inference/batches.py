"""The one place a network runs on posters: decoded a batch ahead on threads while the network takes the
batch before, outputs filled into one preallocated array.

A network here is any callable from a float32 batch of images (0..255) to a numpy array, with an
`output_shape`: a LiteRT interpreter (litert.LiteNetwork) or a Keras network wrapped for it
(keras_network.KerasNetwork). Prediction, evaluation and training's feature extraction all come here.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

from ..config import progress_bar
from ..data.images import PosterError, fit_image, load_poster, open_rgb

DECODE_THREADS = 4


def _load(poster, size, fit, prepare=None) -> tuple[np.ndarray | None, str]:
    """(the poster as a size[0] x size[1] x 3 uint8 array, or None and why not); prepare: a step on the decoded
    image first (finding the poster in a photo of it)."""
    try:
        if isinstance(poster, np.ndarray):
            if poster.shape != (*size, 3):
                return None, f"an image of shape {poster.shape}, the network takes {(*size, 3)}"
            return poster, ""
        if isinstance(poster, Image.Image):
            return fit_image(prepare(poster) if prepare else poster, size, fit), ""
        if not str(poster).strip():
            return None, "no poster path (an empty cell?)"
        if prepare:
            return fit_image(prepare(open_rgb(poster)), size, fit), ""
        return load_poster(poster, size, fit), ""
    except PosterError as exc:
        return None, str(exc)


def run_network(network, posters, size: tuple[int, int], fit: str = "crop", batch_size: int = 64,
                progress: bool = False, desc: str = "predict", tta: bool = False,
                prepare=None) -> tuple[np.ndarray, list[str]]:
    """The network's output for every poster (paths, PIL images or arrays already at `size`), and an error per
    poster ('' where it was read). A poster that cannot be read costs the others nothing: its row is NaN.

    tta: each batch also runs mirrored, and the two outputs are averaged (for a network built without flip TTA).
    """
    posters = list(posters)
    outputs = np.full((len(posters), *network.output_shape[1:]), np.nan, np.float32)
    errors = [""] * len(posters)
    starts = range(0, len(posters), batch_size)
    bar = progress_bar(total=len(posters), desc=desc, unit="poster", disable=not progress)  # stderr: stdout is the answer
    with ThreadPoolExecutor(max_workers=DECODE_THREADS) as pool:
        def submit(start):
            return [pool.submit(_load, p, size, fit, prepare) for p in posters[start:start + batch_size]]
        pending = submit(0) if posters else []
        for start in starts:
            loaded = [f.result() for f in pending]
            if start + batch_size < len(posters):  # decode the next batch while this one runs through the network
                pending = submit(start + batch_size)
            rows = [start + i for i, (image, _) in enumerate(loaded) if image is not None]
            for i, (_, error) in enumerate(loaded):
                errors[start + i] = error
            if rows:
                batch = np.stack([image for image, _ in loaded if image is not None]).astype(np.float32)
                result = np.asarray(network(batch))
                if tta:
                    result = (result + np.asarray(network(batch[:, :, ::-1]))) / 2
                outputs[rows] = result
            bar.update(len(loaded))
    bar.close()
    return outputs, errors


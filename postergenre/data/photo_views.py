"""A poster as a phone photo of it, for training: the poster on a wall of some texture, the picture turned and in
perspective, softened, lit unevenly, with a colour cast and saved as a JPEG. Drawn from a seed, so that a cached
variant is the same picture every time. This is training's own generator; the benchmarks measure on another one
(benchmarks/rooms.py), which training never sees."""
from __future__ import annotations

import io

import cv2
import numpy as np
from PIL import Image

FILL = (0.3, 0.9)          # the poster's share of the picture's height
TURN = 8.0                 # degrees the camera may be turned
SKEW = 0.05                # of the poster's size: how far a corner may move (perspective)
BLUR = (0.0, 1.6)          # Gaussian sigma in pixels of the output
QUALITY = (35, 90)         # JPEG quality


def _wall(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A background: a colour, noise over a few scales (grain, plaster, fabric), and a light gradient."""
    colour = rng.uniform(30, 230, 3)
    wall = np.empty((height, width, 3), np.float32)
    wall[:] = colour
    for cell, amount in ((2, rng.uniform(2, 14)), (rng.integers(6, 40), rng.uniform(0, 18))):
        small = rng.normal(0, 1, (max(2, height // cell), max(2, width // cell), 1)).astype(np.float32)
        if rng.uniform() < 0.4:  # stretched one way: grain, planks, weave
            small = cv2.resize(small, (small.shape[1], max(2, small.shape[0] // 6)))
        wall += amount * cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)[..., None]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    slope = rng.uniform(-0.35, 0.35, 2)
    return wall * (1 + slope[0] * (ys / height - 0.5) + slope[1] * (xs / width - 0.5))[..., None]


def photo_view(poster: Image.Image, seed: int) -> Image.Image:
    """The poster photographed: a picture of about the poster's own size holding it at 30-90% of its height."""
    rng = np.random.default_rng(seed)
    source = np.asarray(poster.convert("RGB"), np.float32)
    height, width = source.shape[:2]
    side = max(height, width)
    out_h, out_w = (side, round(side * 0.75)) if rng.uniform() < 0.7 else (round(side * 0.75), side)
    fill = rng.uniform(*FILL) * out_h / height
    poster_h, poster_w = height * fill, width * fill
    if poster_w > 0.95 * out_w:  # a landscape picture holds a smaller poster
        poster_h, poster_w = poster_h * 0.95 * out_w / poster_w, 0.95 * out_w
    left = rng.uniform(0, out_w - poster_w)
    top = rng.uniform(0, out_h - poster_h)
    target = np.float32([[left, top], [left + poster_w, top], [left + poster_w, top + poster_h], [left, top + poster_h]])
    target += rng.uniform(-SKEW, SKEW, (4, 2)).astype(np.float32) * [poster_w, poster_h]
    turn = cv2.getRotationMatrix2D((out_w / 2, out_h / 2), rng.uniform(-TURN, TURN), 1.0)
    target = (np.c_[target, np.ones(4)] @ turn.T).astype(np.float32)
    corners = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    matrix = cv2.getPerspectiveTransform(corners, target)
    wall = _wall(rng, out_h, out_w)
    wall = cv2.warpAffine(wall, turn, (out_w, out_h), borderMode=cv2.BORDER_REFLECT)  # the room turns too
    warped = cv2.warpPerspective(source, matrix, (out_w, out_h), flags=cv2.INTER_AREA)
    inside = cv2.warpPerspective(np.ones((height, width), np.float32), matrix, (out_w, out_h))[..., None]
    picture = wall * (1 - inside) + warped * inside
    picture *= rng.uniform(0.7, 1.2) * (1 + rng.uniform(-0.08, 0.08, 3))  # exposure and a colour cast
    if rng.uniform() < 0.3:  # a soft bright spot: glare
        ys, xs = np.mgrid[0:out_h, 0:out_w].astype(np.float32)
        cy, cx, radius = rng.uniform(0, out_h), rng.uniform(0, out_w), rng.uniform(0.1, 0.4) * out_w
        picture += rng.uniform(40, 120) * np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * radius**2))[..., None]
    sigma = rng.uniform(*BLUR)
    if sigma > 0.3:
        picture = cv2.GaussianBlur(picture, (0, 0), sigma)
    picture += rng.normal(0, rng.uniform(1, 6), picture.shape).astype(np.float32)  # sensor noise
    buffer = io.BytesIO()
    Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8)).save(buffer, "JPEG",
                                                                    quality=int(rng.integers(*QUALITY)))
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")

"""Photos of posters in real rooms, drawn from a seed: the benchmarks' own generator (issue 44), fixed before any
finder or training change was tried. Never tune these settings to make a fix look good.

Each picture is a phone-like photo (3:4 or 4:3, long side 960) of a poster on a background: a plain wall, or a
texture (wood grain, brick, fabric, paper, a painted wall with its light gradient and vignetting) with noise of 8-15
grey levels; with clutter touching one or two sides (another picture, a frame, a door's edge); the whole room turned
a few degrees (the picture is cropped from a larger scene, so its corners show the room, not blank); the poster
filling a chosen share of the picture; glare (a bright soft spot) and a colour cast. The poster's true corners come
with it, for measuring a finder.
"""
from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

LONG_SIDE = 960
PLAIN = dict(fill=(0.45, 0.6), corner=0.04, room_turn=(0.0, 0.0), texture="plain", noise=(4.0, 4.0), clutter=0,
             glare=False, cast=0.0, blur=(0.5, 1.5), light=(0.75, 1.25), quality=85)
ROOMS = {
    "textured": {**PLAIN, "texture": "any", "noise": (8.0, 15.0)},
    "clutter": {**PLAIN, "clutter": 2},
    "turned with the room": {**PLAIN, "room_turn": (3.0, 8.0)},
    "filling 25-90%": {**PLAIN, "fill": (0.25, 0.9)},
    "glare and a colour cast": {**PLAIN, "glare": True, "cast": 0.12},
    "textured + clutter + turned": {**PLAIN, "texture": "any", "noise": (8.0, 15.0), "clutter": 2,
                                    "room_turn": (3.0, 8.0)},
    "all together": {**PLAIN, "texture": "any", "noise": (8.0, 15.0), "clutter": 2, "room_turn": (3.0, 8.0),
                     "fill": (0.25, 0.9), "glare": True, "cast": 0.12},
}
TEXTURES = ("wood", "brick", "fabric", "paper", "painted")


def smooth_noise(rng, height: int, width: int, cell: int) -> np.ndarray:
    """Noise of unit scale that changes over about `cell` pixels."""
    small = rng.normal(size=(height // cell + 2, width // cell + 2)).astype(np.float32)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def draw_texture(kind: str, height: int, width: int, rng) -> np.ndarray:
    """A background of `kind` as float RGB, 0-255."""
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    if kind == "wood":
        base = np.array([150, 100, 62]) * rng.uniform(0.7, 1.2)
        period = rng.uniform(7, 16)
        grain = np.sin(2 * np.pi * (yy + 8 * smooth_noise(rng, height, width, 40)) / period)
        shade = 0.82 + 0.12 * grain + 0.05 * smooth_noise(rng, height, width, 90)
        plank = rng.uniform(90, 160)
        seams = (np.mod(yy, plank) < 2).astype(np.float32)
        picture = base * shade[..., None] * (1 - 0.45 * seams[..., None])
    elif kind == "brick":
        high = rng.uniform(18, 30)
        long = high * rng.uniform(2.0, 2.6)
        row = np.floor(yy / high)
        shifted = xx + (np.mod(row, 2) * long / 2)
        column = np.floor(shifted / long)
        mortar = (np.mod(yy, high) < 3) | (np.mod(shifted, long) < 3)
        tone = np.random.default_rng(int(rng.integers(1 << 30))).uniform(0.75, 1.15, (int(row.max()) + 2,
                                                                                     int(column.max()) + 2))
        brick = np.array([160, 72, 50]) * rng.uniform(0.8, 1.15)
        picture = brick * tone[row.astype(int), column.astype(int)][..., None]
        picture = np.where(mortar[..., None], np.array([190, 185, 175]) * rng.uniform(0.8, 1.1), picture)
    elif kind == "fabric":
        period = rng.uniform(3, 6)
        weave = 0.5 * (np.sin(2 * np.pi * xx / period) * np.sin(2 * np.pi * yy / period))
        folds = 0.12 * smooth_noise(rng, height, width, 60)
        base = rng.uniform(40, 200, 3)
        picture = base * (0.9 + 0.1 * weave + folds)[..., None]
    elif kind == "paper":
        base = np.array([232, 226, 210]) * rng.uniform(0.85, 1.05)
        picture = base * (1 + 0.04 * smooth_noise(rng, height, width, 30) + 0.02 * smooth_noise(rng, height, width,
                                                                                               4))[..., None]
    elif kind == "painted":  # one colour, lit from one side, with a darker rim
        colour = rng.uniform(90, 230, 3).astype(np.float32)
        direction = rng.uniform(0, 2 * np.pi)
        ramp = ((xx - width / 2) * np.cos(direction) + (yy - height / 2) * np.sin(direction)) / max(height, width)
        rim = ((xx - width / 2) ** 2 + (yy - height / 2) ** 2) / ((width / 2) ** 2 + (height / 2) ** 2)
        picture = colour * (1 + rng.uniform(0.2, 0.45) * ramp - rng.uniform(0.15, 0.35) * rim)[..., None]
    else:  # plain: one colour, a little tinted, as bench_photos.py's `as measured`
        picture = np.broadcast_to(rng.uniform(110, 230) + rng.uniform(-15, 15, 3), (height, width, 3))
    return np.asarray(picture, np.float32)


def draw_clutter(scene: np.ndarray, sides: list[str], rng, other: np.ndarray | None, window: tuple) -> None:
    """Draw, in place, something touching each of `sides` of the picture that `window` (left, top, width, height)
    will cut from the scene: another picture, a frame or a door's edge, from the scene's edge inwards."""
    left, top, width, height = window
    scene_h, scene_w = scene.shape[:2]
    for side in sides:
        kind = rng.choice(["picture", "frame", "door"])
        depth = rng.uniform(0.06, 0.2) if kind != "door" else rng.uniform(0.04, 0.1)
        span = rng.uniform(0.3, 0.8) if kind != "door" else 1.0
        horizontal = side in ("top", "bottom")
        along, across = (width, height) if horizontal else (height, width)
        first = (left if horizontal else top) + int(rng.uniform(0, 1 - span) * along)
        last = first + int(span * along) if kind != "door" else (scene_w if horizontal else scene_h)
        first = first if kind != "door" else 0
        reach = int(depth * across) + (top if side == "top" else left if side == "left" else
                                       scene_h - top - height if side == "bottom" else scene_w - left - width)
        rows, columns = ((slice(0, reach) if side == "top" else slice(scene_h - reach, scene_h)), slice(first, last)) \
            if horizontal else (slice(first, last), (slice(0, reach) if side == "left" else slice(scene_w - reach,
                                                                                                  scene_w)))
        shape = scene[rows, columns].shape[:2]
        if kind == "picture" and other is not None:
            patch = cv2.resize(other, (shape[1], shape[0]))
        elif kind == "picture":
            patch = np.broadcast_to(rng.uniform(0, 255, 3), (*shape, 3))
        else:
            patch = np.broadcast_to(rng.uniform(20, 90, 3) if kind == "frame" else rng.uniform(150, 250, 3),
                                    (*shape, 3)).copy()
            if kind == "frame":  # a picture's light mat shows inside the frame's dark rim
                rim = max(3, (shape[0] if horizontal else shape[1]) // 3)
                inner = {"top": (slice(rim, None), slice(None)), "bottom": (slice(None, -rim), slice(None)),
                         "left": (slice(None), slice(rim, None)), "right": (slice(None), slice(None, -rim))}[side]
                patch[inner] = rng.uniform(200, 250)
        scene[rows, columns] = patch


def room_photo(poster: Image.Image, seed: int, fill, corner, room_turn, texture: str, noise, clutter: int,
               glare: bool, cast: float, blur, light, quality: int, other: Image.Image | None = None
               ) -> tuple[Image.Image, np.ndarray, int]:
    """A photo of `poster` in a room drawn from `seed`: the picture, the poster's four corners in it (x, y,
    clockwise from top left) and the JPEG quality to save it at. `other`: a picture that clutter may show."""
    rng = np.random.default_rng(seed)
    width, height = (LONG_SIDE, LONG_SIDE * 3 // 4) if rng.uniform() < 0.3 else (LONG_SIDE * 3 // 4, LONG_SIDE)
    aspect = poster.height / poster.width
    poster_h = min(np.sqrt(rng.uniform(*fill) * width * height * aspect), 0.97 * height)
    poster_w = min(poster_h / aspect, 0.97 * width)
    poster_h = poster_w * aspect
    angle = rng.uniform(*room_turn) * rng.choice([-1, 1])
    # the scene is drawn larger, turned, and the picture cut from its middle: its corners show the room
    radians = np.deg2rad(angle)
    scene_w = int(np.ceil(width * abs(np.cos(radians)) + height * abs(np.sin(radians)))) + 4
    scene_h = int(np.ceil(width * abs(np.sin(radians)) + height * abs(np.cos(radians)))) + 4
    left, top = (scene_w - width) // 2, (scene_h - height) // 2
    kind = str(rng.choice(TEXTURES)) if texture == "any" else texture
    scene = np.ascontiguousarray(draw_texture(kind, scene_h, scene_w, rng))
    if clutter:
        sides = [str(s) for s in rng.choice(["top", "bottom", "left", "right"], size=int(rng.integers(1, clutter + 1)),
                                            replace=False)]
        draw_clutter(scene, sides, rng, None if other is None else np.asarray(other.convert("RGB"), np.float32),
                     (left, top, width, height))
    turn = cv2.getRotationMatrix2D((scene_w / 2, scene_h / 2), angle, 1.0)
    forward, shift = turn[:, :2], turn[:, 2]
    for _ in range(50):  # where the poster lies in the picture, wholly inside it
        offset = rng.uniform(-1, 1, 2) * [(width - poster_w) / 2, (height - poster_h) / 2]
        corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]]) * [poster_w / 2, poster_h / 2] + offset \
            + [width / 2, height / 2] + rng.uniform(-corner, corner, (4, 2)) * [poster_w, poster_h]
        if (corners.min(axis=0) >= 1).all() and (corners <= [width - 2, height - 2]).all():
            break
    else:
        corners = np.clip(corners, 1, [width - 2, height - 2])
    in_scene = (corners + [left, top] - shift) @ np.linalg.inv(forward).T  # placed so that turning brings it there
    big = poster.resize((max(1, round(poster_w * 1.1)), max(1, round(poster_h * 1.1))), Image.BICUBIC)
    source = np.float32([[0, 0], [big.width, 0], [big.width, big.height], [0, big.height]])
    matrix = cv2.getPerspectiveTransform(source, np.float32(in_scene))
    warped = cv2.warpPerspective(np.asarray(big, np.float32), matrix, (scene_w, scene_h), flags=cv2.INTER_LINEAR)
    mask = cv2.warpPerspective(np.ones((big.height, big.width), np.float32), matrix, (scene_w, scene_h))[..., None]
    scene = warped * mask + scene * (1 - mask)
    if angle:
        scene = cv2.warpAffine(scene, turn, (scene_w, scene_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    picture = scene[top:top + height, left:left + width]
    if glare:
        gx, gy = corners.mean(axis=0) + rng.uniform(-0.3, 0.3, 2) * [poster_w, poster_h]
        yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
        sigma = rng.uniform(0.08, 0.2) * np.hypot(width, height)
        picture = picture + rng.uniform(60, 140) * np.exp(-((xx - gx) ** 2 + (yy - gy) ** 2) / (2 * sigma ** 2)
                                                          )[..., None]
    picture = cv2.GaussianBlur(np.ascontiguousarray(picture), (0, 0), rng.uniform(*blur))
    if cast:
        picture = picture * (1 + rng.uniform(-cast, cast, 3))
    picture = picture * rng.uniform(*light) + rng.normal(0, rng.uniform(*noise), picture.shape)
    return Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8)), corners.astype(np.float32), int(quality)

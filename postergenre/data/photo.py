"""Finding the poster in a photo of it, and undoing its perspective (OpenCV). On a plain background (a wall, a table)
the picture's border gives the background's colour and the largest region unlike it is the poster; elsewhere (wood,
brick, fabric, clutter) the poster's straight edges find it (photo_edges.py). A picture without a convincing poster
in it (a poster file itself) is given back whole."""
from __future__ import annotations

import hashlib
import threading
from concurrent.futures import Future
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from .photo_edges import (BUSY_BACKGROUND, CLEAN_OUTSIDE, border_band, border_sides, edge_corners, order_corners,
                          outline_masks, scaled, unlike_wall)

WORK_SIDE = 480            # the search runs on the picture scaled to this long side
AREA = (0.2, 0.7)          # of the picture: a poster that fills more of it is taken as it is (its own margins stay)
ASPECT = (1.15, 2.0)       # height / width of what is found: posters are about 1.5
SOLID = 0.93               # the region's own area over its quadrilateral's: a poster is a filled four-sided sheet
SEARCHES_KEPT = 256        # the last searches' corners, by the pixels searched: see poster_corners


@dataclass
class Found:
    image: Image.Image
    corners: np.ndarray | None  # 4x2 (x, y) in the picture, clockwise from top left; None: the whole picture


def poster_corners(image: Image.Image) -> np.ndarray | None:
    """The corners of the poster in a photo of it (in the picture's pixels), or None when none is convincing: from
    the colour of a plain background when there is one, otherwise from the picture's long straight edges."""
    rgb, scale = scaled(np.asarray(image.convert("RGB")), WORK_SIDE)
    corners = _searched(rgb)
    return None if corners is None else corners / scale


_searches: dict[bytes, Future] = {}
_searches_lock = threading.Lock()


def _searched(rgb: np.ndarray) -> np.ndarray | None:
    """The search on `rgb`, done once for the same pixels: a prediction with words finds the poster for the network
    and for the words' reader, in two threads, so the second waits for the first's answer instead of searching again."""
    key = hashlib.blake2b(rgb.tobytes(), digest_size=16, person=str(rgb.shape).encode()[:16]).digest()
    with _searches_lock:
        search = _searches.get(key)
        mine = search is None
        if mine:
            search = _searches[key] = Future()
            if len(_searches) > SEARCHES_KEPT:
                del _searches[next(iter(_searches))]
    if mine:
        try:
            corners = colour_corners(rgb)
            search.set_result(corners if corners is not None else edge_corners(rgb))
        except BaseException as exc:
            with _searches_lock:
                _searches.pop(key, None)
            search.set_exception(exc)
            raise
    return search.result()


def colour_corners(small: np.ndarray) -> np.ndarray | None:
    """The poster as the largest region unlike a plain background (in `small`'s pixels), or None."""
    small = small.astype(np.float32)
    height, width = small.shape[:2]
    band = border_band(small.shape)
    edge = np.concatenate(border_sides(small, band))
    background = np.median(edge, axis=0)
    edge_distance = np.linalg.norm(edge - background, axis=1)
    if np.percentile(edge_distance, 90) > BUSY_BACKGROUND:
        return None
    mask = unlike_wall(small, background, edge_distance, sigma=1.5)
    kernel = np.ones((7, 7), np.uint8)
    mask = cv2.morphologyEx(cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel), cv2.MORPH_OPEN, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask)
    if count < 2:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    contours, _ = cv2.findContours((labels == largest).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    outline = max(contours, key=cv2.contourArea)
    hull = cv2.convexHull(outline)
    quad = None
    for tolerance in (0.02, 0.04, 0.06, 0.08):
        approx = cv2.approxPolyDP(hull, tolerance * cv2.arcLength(hull, True), True)
        if len(approx) == 4:
            quad = order_corners(approx)
            break
    if quad is None:
        return None
    area = cv2.contourArea(quad) / (height * width)
    sides = np.linalg.norm(quad - np.roll(quad, -1, axis=0), axis=1)  # top, right, bottom, left
    aspect = (sides[1] + sides[3]) / max(1e-6, sides[0] + sides[2])
    solid = cv2.contourArea(outline) / max(1e-6, cv2.contourArea(quad))  # a sheet fills its corners; a figure does not
    if not (AREA[0] <= area <= AREA[1] and ASPECT[0] <= aspect <= ASPECT[1] and solid >= SOLID):
        return None
    # Around a photographed poster there is only background; around a picture inside a poster there are its title
    # and credits. Outside the quadrilateral (less a margin for its edges), nothing may differ from the background.
    _, outside = outline_masks(mask.shape, quad, band)  # approxPolyDP's corners are whole pixels already
    if outside.sum() == 0 or (mask[outside] > 0).mean() > CLEAN_OUTSIDE:
        return None
    return quad


def find_poster(image: Image.Image) -> Found:
    """The poster in the picture, its perspective undone; the picture itself when none is found."""
    corners = poster_corners(image)
    if corners is None:
        return Found(image, None)
    return Found(straightened(image, corners), corners)


def straightened(image: Image.Image, corners: np.ndarray) -> Image.Image:
    """The quadrilateral `corners` (4x2, clockwise from top left) of the picture, its perspective undone: as wide
    and as tall as its sides are long on average."""
    sides = np.linalg.norm(corners - np.roll(corners, -1, axis=0), axis=1)
    width, height = max(1, round((sides[0] + sides[2]) / 2)), max(1, round((sides[1] + sides[3]) / 2))
    target = np.float32([[0, 0], [width, 0], [width, height], [0, height]])
    matrix = cv2.getPerspectiveTransform(np.float32(corners), target)
    flat = cv2.warpPerspective(np.asarray(image.convert("RGB")), matrix, (width, height), flags=cv2.INTER_AREA)
    return Image.fromarray(flat)


def poster_in(image: Image.Image) -> Image.Image:
    """find_poster's image alone: what the network and the words' reader see."""
    return find_poster(image).image

"""Finding the poster in a photo of it without a plain wall: the poster's four sides are long straight edges (OpenCV's
line segment detector, on the picture's brightness and on its two colour-opponent channels, since a poster's edge may
part two colours of one brightness), so each pair of near-level lines with each pair of near-upright ones is a
candidate. A candidate must look like a poster (area, aspect, corners near right angles), show an edge with a colour
step along most of each side, and have a room around it: just inside and just outside each side the colours differ (a
texture's own line, a brick's mortar, has the same wall on both sides), the strip outside at least three sides looks
like the picture's border (the room), and the inside is not the border's colours. On a plain wall whose colour the
poster's margin shares, those coarse colours cannot tell the poster from the wall; there the wall's own colour does
(`Wall`): inside the outline most pixels differ from it, outside nothing does but clutter at the picture's edges. A
picture inside a poster file fails these tests, since there the border is the poster's own."""
from __future__ import annotations

import threading
from dataclasses import dataclass

import cv2
import numpy as np

BORDER = 0.03              # the band along the picture's edges that shows the room
BUSY_BACKGROUND = 30.0     # a band's 90th-percentile colour distance from its median: above, no plain wall there
CLEAN_OUTSIDE = 0.01       # the share of the picture outside the poster that may differ from a plain wall

EDGE_SIDE = 320            # the edge search runs on the picture scaled to this long side
LINE_ANGLE = 30            # degrees from level (or upright) that a poster's side may lean in a photo
LINES_KEPT = 12            # the strongest distinct lines of each direction that corners are tried from
EDGE_AREA = (0.2, 0.8)     # of the picture: a poster that fills more is taken whole with its margins
EDGE_ASPECT = (1.32, 1.68)  # height / width: posters are about 1.48, seen a little slanted
SUPPORT = 0.4              # the share of each side that lies on an edge with contrast across it
SHORTLIST = 10             # the best-supported outlines whose surroundings are examined
ACROSS = 3.0               # pixels either side of a segment where its colour step is read
RING = 0.04                # of the picture's long side: the strips just outside and just inside each side
INSIDE_LIKE_BORDER = 0.6   # colour histogram overlap with the border from which the inside is no poster on a wall
OUTSIDE_LIKE_BORDER = 0.3  # overlap with the border from which a side's outside strip counts as the room
SAME_BOTH_SIDES = 0.5      # overlap of the strips inside and outside a side from which the side is no poster's edge
LARGER = 0.3               # how much a larger outline (of the picture's area) wins by: a poster's own frame lies inside it
STEP_WEIGHT = 0.5          # how much a side with the same colours on both of its sides counts against an outline
ROOM_INSIDE_WEIGHT = 0.2   # how much a side whose inside strip looks like the room counts: a side on the wall past
                           # the poster
SAME_WALL = 20.0           # colour distance between two sides of the border within which they show one wall
WALL_BORDER = 0.6          # the share of the picture's border that must be the plain wall
UNLIKE_WALL_INSIDE = 0.7   # the share of an outline's inside that must differ from the plain wall
WALL_AROUND = 0.8          # the share of the picture around the outline that must be the wall (the rest: clutter)
CORNER_ANGLE = 12          # degrees a corner may differ from a right angle (perspective)
CONTRAST = 14.0            # the colour difference across a side that counts as its edge (0-255 RGB distance)
COLOUR_EDGE = (15, 45)     # Canny's thresholds on the colour-opponent channels: a side between two colours of one
                           # brightness is an edge too


_LOCAL = threading.local()  # a line detector per thread: an OpenCV algorithm object is not shared safely


def _segments(grey: np.ndarray) -> np.ndarray | None:
    """Straight segments where the brightness gradient keeps one direction (x1, y1, x2, y2 rows), or None."""
    if not hasattr(_LOCAL, "detector"):
        _LOCAL.detector = cv2.createLineSegmentDetector(cv2.LSD_REFINE_STD)
    try:
        return _LOCAL.detector.detect(grey)[0]
    except cv2.error:  # its region-to-rectangle step can assert on degenerate regions (a flat, blank picture)
        return None


def _lines(grey: np.ndarray, smooth: np.ndarray, opponent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct near-level and near-upright lines longest on a colour step: rows of (angle, offset) with the
    line x cos(angle) + y sin(angle) = offset. Segments come from the brightness and from the colour-opponent
    channels (`opponent`: `smooth`, the picture blurred, through `colour_opponent`); each counts by its length
    times the share of it along which the colours just either side of it differ (a texture's own line, with the same
    wall both sides, counts little)."""
    height, width = grey.shape
    back = np.array([width / opponent.shape[1], height / opponent.shape[0]] * 2, np.float32)
    found = [_segments(grey), *(None if (segments := _segments(np.ascontiguousarray(opponent[..., channel]))) is None
                                else segments * back for channel in (1, 2))]
    found = [segments.reshape(-1, 4) for segments in found if segments is not None]
    if not found:
        return np.empty((0, 2)), np.empty((0, 2))
    x1, y1, x2, y2 = np.concatenate(found).astype(np.float64).T
    length = np.hypot(x2 - x1, y2 - y1)
    long = length >= 0.06 * min(height, width)
    x1, y1, x2, y2, length = x1[long], y1[long], x2[long], y2[long], length[long]
    normal = np.arctan2(x2 - x1, -(y2 - y1))  # the direction across the segment
    normal = np.where(normal < 0, normal + np.pi, normal)
    offset = x1 * np.cos(normal) + y1 * np.sin(normal)
    t = (np.arange(8) + 0.5) / 8
    along = np.stack([x1[:, None] + (x2 - x1)[:, None] * t, y1[:, None] + (y2 - y1)[:, None] * t], axis=-1)
    across = ACROSS * np.stack([np.cos(normal), np.sin(normal)], axis=-1)[:, None]
    step = np.linalg.norm(_at(smooth, along + across) - _at(smooth, along - across), axis=-1)
    weight = length * (step >= CONTRAST).mean(axis=1)
    groups = []
    for upright in (False, True):  # a level side's normal points up or down, an upright side's left or right
        tilt = np.abs(np.cos(normal)) if not upright else np.abs(np.sin(normal))
        chosen = np.flatnonzero((tilt < np.sin(np.deg2rad(LINE_ANGLE))) & (weight > 0))
        order = chosen[np.argsort(-weight[chosen], kind="stable")]
        angle, at, total = np.empty(len(order)), np.empty(len(order)), np.empty(len(order))  # the lines so far
        count = 0
        for i in order:  # a side broken into pieces is one line: their weights add up
            same = np.flatnonzero((np.abs(angle[:count] - normal[i]) <= np.deg2rad(2))
                                  & (np.abs(at[:count] - offset[i]) <= 3))
            if same.size:
                total[same[0]] += weight[i]
            else:
                angle[count], at[count], total[count] = normal[i], offset[i], weight[i]
                count += 1
        kept = np.argsort(-total[:count], kind="stable")[:LINES_KEPT]
        groups.append(np.stack([angle[kept], at[kept]], axis=1).reshape(-1, 2))
    return groups[0], groups[1]


def colour_opponent(smooth: np.ndarray) -> np.ndarray:
    """The picture in Lab at half its resolution: a JPEG keeps colour at half the resolution of brightness, and so
    does the colour search, at a quarter of the cost."""
    height, width = smooth.shape[:2]
    half = (max(1, width // 2), max(1, height // 2))
    return cv2.cvtColor(cv2.resize(np.clip(smooth, 0, 255).astype(np.uint8), half, interpolation=cv2.INTER_AREA),
                        cv2.COLOR_RGB2LAB)


def _at(image: np.ndarray, where: np.ndarray) -> np.ndarray:
    """The image's pixels at the (x, y) points `where` (rounded, clipped to the picture)."""
    height, width = image.shape[:2]
    x = np.clip(np.round(where[..., 0]).astype(int), 0, width - 1)
    y = np.clip(np.round(where[..., 1]).astype(int), 0, height - 1)
    return image[y, x]


def _crossing(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Where lines a and b (arrays of (angle, offset)) cross, pairwise over their leading axes."""
    cos_a, sin_a, cos_b, sin_b = np.cos(a[..., 0]), np.sin(a[..., 0]), np.cos(b[..., 0]), np.sin(b[..., 0])
    det = cos_a * sin_b - sin_a * cos_b
    det = np.where(np.abs(det) < 1e-9, 1e-9, det)
    x = (a[..., 1] * sin_b - b[..., 1] * sin_a) / det
    y = (cos_a * b[..., 1] - cos_b * a[..., 1]) / det
    return np.stack([x, y], axis=-1)


def _side_support(smooth: np.ndarray, edges: np.ndarray, quads: np.ndarray, samples: int = 32, step: float = 2.5
                  ) -> np.ndarray:
    """For each quadrilateral (n, 4, 2) and each of its sides, the share of points that lie on an edge with a colour
    difference of at least CONTRAST between just inside and just outside."""
    height, width = smooth.shape[:2]
    start, end = quads, np.roll(quads, -1, axis=1)
    t = (np.arange(samples) + 0.5) / samples
    points = start[:, :, None] + (end - start)[:, :, None] * t[None, None, :, None]  # n, 4, samples, 2
    direction = end - start
    normal = np.stack([direction[..., 1], -direction[..., 0]], axis=-1)
    normal /= np.maximum(1e-9, np.linalg.norm(normal, axis=-1, keepdims=True))
    centre = quads.mean(axis=1, keepdims=True)
    outward = np.sign(((start + end) / 2 - centre) * normal).sum(axis=-1, keepdims=True)
    normal = normal * np.where(outward == 0, 1, outward)
    inner = points - normal[:, :, None] * step
    outer = points + normal[:, :, None] * step

    difference = np.linalg.norm(_at(smooth, inner) - _at(smooth, outer), axis=-1)  # n, 4, samples
    inside = ((points >= 0) & (points <= [width - 1, height - 1])).all(axis=-1)
    return (inside & (difference >= CONTRAST) & (_at(edges, points) > 0)).mean(axis=-1)


def _pairs(lines: np.ndarray, at: np.ndarray, apart: float) -> tuple[np.ndarray, np.ndarray]:
    """The pairs of lines (first before second along the picture) far enough apart to be a poster's opposite sides,
    and parallel enough for its corners to be near right angles."""
    first, second = np.triu_indices(len(lines), 1)
    turn = np.abs(lines[first, 0] - lines[second, 0]) % np.pi
    parallel = np.minimum(turn, np.pi - turn) <= np.deg2rad(2 * CORNER_ANGLE)
    swap = at[first] > at[second]
    first, second = np.where(swap, second, first), np.where(swap, first, second)
    keep = parallel & (np.abs(at[second] - at[first]) >= apart)
    return first[keep], second[keep]


def scaled(rgb: np.ndarray, side: int) -> tuple[np.ndarray, float]:
    """The picture with its long side at most `side` (a thumbnail is never enlarged), and the scale used."""
    scale = min(1.0, side / max(rgb.shape[:2]))
    if scale == 1.0:
        return rgb, 1.0
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), scale


def order_corners(points: np.ndarray) -> np.ndarray:
    """Top left, top right, bottom right, bottom left."""
    points = np.asarray(points, dtype=np.float32).reshape(4, 2)
    total, difference = points.sum(axis=1), np.diff(points, axis=1).ravel()
    return np.array([points[np.argmin(total)], points[np.argmin(difference)], points[np.argmax(total)],
                     points[np.argmax(difference)]], dtype=np.float32)


def border_band(shape: tuple[int, ...]) -> int:
    """The width in pixels of the band along a picture's edges that shows the room."""
    return max(2, round(BORDER * min(shape[:2])))


def border_sides(pixels: np.ndarray, band: int) -> list[np.ndarray]:
    """The band's pixels along each edge of an RGB picture (top, bottom, left, right), each n x 3."""
    return [pixels[:band].reshape(-1, 3), pixels[-band:].reshape(-1, 3), pixels[:, :band].reshape(-1, 3),
            pixels[:, -band:].reshape(-1, 3)]


def border_mask(shape: tuple[int, ...], band: int) -> np.ndarray:
    """True on the band along the picture's edges."""
    border = np.ones(shape[:2], bool)
    border[band:-band, band:-band] = False
    return border


def filled(shape: tuple[int, ...], polygon: np.ndarray) -> np.ndarray:
    """True inside a convex polygon ((x, y) corners, rounded to whole pixels) on a picture of `shape`."""
    mask = np.zeros(shape[:2], np.uint8)
    cv2.fillConvexPoly(mask, np.round(polygon).astype(np.int32), 1)
    return mask > 0


def outline_masks(shape: tuple[int, ...], quad: np.ndarray, band: int) -> tuple[np.ndarray, np.ndarray]:
    """Inside the quadrilateral, and around it less a margin of `band` pixels for its edges (both boolean)."""
    inside = filled(shape, quad)
    near = cv2.dilate(inside.astype(np.uint8), np.ones((2 * band + 1, 2 * band + 1), np.uint8))
    return inside, near == 0


def edge_corners(rgb: np.ndarray) -> np.ndarray | None:
    """The poster as the best quadrilateral of long straight edges (in `rgb`'s pixels), or None. Each candidate pairs
    two near-level lines with two near-upright ones; it must look like a poster (area, aspect, corners near right
    angles), show an edge with a colour step along most of each side and stand in a room (`room_around`) or on a
    plain wall (`Wall`). Of those, the best supported wins, the larger a little ahead; one whose side has alike
    colours on both sides, or the room's colours just inside, falls behind."""
    small, scale = scaled(rgb, EDGE_SIDE)
    height, width = small.shape[:2]
    smooth = cv2.GaussianBlur(small, (0, 0), 1.2).astype(np.float32)
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    opponent = colour_opponent(smooth)
    edges = cv2.Canny(cv2.GaussianBlur(grey, (0, 0), 1.2), 20, 60)
    for channel in (1, 2):
        edges |= cv2.resize(cv2.Canny(np.ascontiguousarray(opponent[..., channel]), *COLOUR_EDGE), (width, height),
                            interpolation=cv2.INTER_NEAREST)
    level, upright = _lines(cv2.GaussianBlur(grey, (0, 0), 1.0), smooth, opponent)
    if len(level) < 2 or len(upright) < 2:
        return None
    level_at = _crossing(level, np.array([[0.0, width / 2]]))[:, 1]  # where each crosses the picture's middle
    upright_at = _crossing(upright, np.array([[np.pi / 2, height / 2]]))[:, 0]
    shortest = np.sqrt(EDGE_AREA[0] * height * width)  # the side of a square of the least area, shrunk below
    tops, bottoms = _pairs(level, level_at, 0.8 * shortest * np.sqrt(EDGE_ASPECT[0]))
    lefts, rights = _pairs(upright, upright_at, 0.8 * shortest / np.sqrt(EDGE_ASPECT[1]))
    t, b = np.repeat(tops, len(lefts)), np.repeat(bottoms, len(lefts))
    left, right = np.tile(lefts, len(tops)), np.tile(rights, len(tops))
    quads = np.stack([_crossing(level[t], upright[left]), _crossing(level[t], upright[right]),
                      _crossing(level[b], upright[right]), _crossing(level[b], upright[left])], axis=1)
    margin = 0.02 * max(height, width)
    inside = ((quads >= -margin) & (quads <= [width - 1 + margin, height - 1 + margin])).all(axis=(1, 2))
    sides = np.linalg.norm(quads - np.roll(quads, -1, axis=1), axis=-1)
    aspect = (sides[:, 1] + sides[:, 3]) / np.maximum(1e-9, sides[:, 0] + sides[:, 2])
    x, y = quads[..., 0], quads[..., 1]
    area = 0.5 * np.abs((x * np.roll(y, -1, axis=1) - np.roll(x, -1, axis=1) * y).sum(axis=1)) / (height * width)
    edges_out = np.roll(quads, -1, axis=1) - quads
    edges_in = quads - np.roll(quads, 1, axis=1)
    cosine = (edges_out * edges_in).sum(-1) / np.maximum(1e-9, np.linalg.norm(edges_out, axis=-1)
                                                         * np.linalg.norm(edges_in, axis=-1))
    square = (np.abs(cosine) <= np.sin(np.deg2rad(CORNER_ANGLE))).all(axis=1)  # each corner near a right angle
    keep = inside & square & (aspect >= EDGE_ASPECT[0]) & (aspect <= EDGE_ASPECT[1]) & (area >= EDGE_AREA[0]) \
        & (area <= EDGE_AREA[1])
    if not keep.any():
        return None
    quads, area = quads[keep], area[keep]
    sides_support = _side_support(smooth, cv2.dilate(edges, np.ones((3, 3), np.uint8)), quads)
    supported = np.flatnonzero(sides_support.min(axis=1) >= SUPPORT)
    prior = sides_support[supported].mean(axis=1) + LARGER * area[supported]
    colours = _colour_bins(small[::2, ::2])  # colours need no more than half the pixels
    wall: Wall | None | bool = False  # looked for only when an outline needs it
    best, best_score = None, -np.inf
    shortlist = np.argsort(-prior)[:SHORTLIST]
    for index, score in zip(supported[shortlist], prior[shortlist]):
        if score <= best_score:  # the room's test only lowers a score: no later outline can win
            break
        outline = quads[index] / 2  # in the half-size picture the colours and the wall are read from
        surroundings = room_around(colours, outline)
        if surroundings is not None and not surroundings.photographed and wall is False:
            wall = Wall.of(small[::2, ::2])
        if surroundings is not None and (surroundings.photographed or wall and wall.holds(outline)):
            score -= STEP_WEIGHT * surroundings.same_both_sides + ROOM_INSIDE_WEIGHT * max(surroundings.inside_strips)
            if score > best_score:
                best, best_score = index, score
    if best is None:
        return None
    return order_corners(np.clip(quads[best], 0, [width - 1, height - 1])) / scale


def _colour_bins(pixels: np.ndarray) -> np.ndarray:
    """Each pixel's coarse colour (4 levels a channel: 64 bins)."""
    return (pixels.astype(np.int32) // 64) @ np.array([16, 4, 1])


def _colours(bins: np.ndarray) -> np.ndarray:
    """The histogram of coarse colours, summing to 1."""
    counts = np.bincount(bins, minlength=64).astype(np.float64)
    return counts / max(1.0, counts.sum())


def _overlap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.minimum(a, b).sum())


@dataclass
class Surroundings:
    inside_like_border: float  # the inside's colours against the picture's border (the room)
    outside_like_border: list[float | None]  # each side's outside strip against the border (None: no strip in the picture)
    same_both_sides: float     # the most alike strips inside and outside one side (1: no strip in the picture)
    inside_strips: list[float]  # each side's inside strip against the border (0: no strip in the picture)

    @property
    def photographed(self) -> bool:
        """A poster photographed in a room rather than a part of a poster file: its colours differ from the room's,
        the room's colours come back outside at least three sides (clutter may stand beside one), and each side
        parts unlike colours."""
        return (self.inside_like_border < INSIDE_LIKE_BORDER and self.same_both_sides < SAME_BOTH_SIDES
                and sum(o is not None and o >= OUTSIDE_LIKE_BORDER for o in self.outside_like_border) >= 3)


def room_around(bins: np.ndarray, quad: np.ndarray) -> Surroundings | None:
    """What surrounds a quadrilateral in a picture (as `_colour_bins`): the picture's border, the strip just outside
    and the strip just inside each side. None when the border shows almost nothing but the quadrilateral."""
    height, width = bins.shape
    inside = filled(bins.shape, quad)
    border = border_mask(bins.shape, border_band(bins.shape)) & ~inside
    if border.sum() < 50:
        return None
    room = _colours(bins[border])
    grow = max(3, round(RING * max(height, width)))
    centre = quad.mean(axis=0)
    outside_like, same, inside_like = [], [], []
    for start, end in zip(quad, np.roll(quad, -1, axis=0)):
        normal = np.array([end[1] - start[1], start[0] - end[0]])
        normal *= grow / max(1e-9, np.linalg.norm(normal)) * (1 if np.dot((start + end) / 2 - centre, normal) > 0
                                                              else -1)
        strips = []
        for reach, region in ((normal, ~inside), (-normal, inside)):  # outside, then inside
            strip = filled(bins.shape, np.array([start, end, end + reach, start + reach])) & region
            strips.append(_colours(bins[strip]) if strip.sum() > 10 else None)
        outside_like.append(None if strips[0] is None else _overlap(strips[0], room))
        same.append(1.0 if strips[0] is None or strips[1] is None else _overlap(*strips))
        inside_like.append(0.0 if strips[1] is None else _overlap(strips[1], room))
    return Surroundings(_overlap(_colours(bins[inside]), room), outside_like, max(same), inside_like)


def unlike_wall(small: np.ndarray, wall: np.ndarray, spread: np.ndarray, sigma: float) -> np.ndarray:
    """Where `small` (float RGB) differs from a plain wall of colour `wall`, measured against how much the wall's own
    pixels in the border differ from it (`spread`, their colour distances from it): 1 there, 0 on the wall."""
    distance = cv2.GaussianBlur(np.linalg.norm(small - wall, axis=2), (0, 0), sigma)
    return (distance > max(25.0, 3 * np.percentile(spread, 95))).astype(np.uint8)


@dataclass
class Wall:
    """A plain wall seen along at least two sides of the picture's border (clutter may hide the others): what in the
    picture differs from it, and which of that touches the picture's edge (a frame, a door, another picture)."""
    unlike: np.ndarray   # uint8, 1 where the picture differs from the wall
    clutter: np.ndarray  # bool, the unlike regions that touch the picture's edge
    band: int

    @classmethod
    def of(cls, small: np.ndarray) -> Wall | None:
        """The plain wall in `small` (RGB), or None when no two sides of the border show one plain colour covering
        most of the border."""
        small = small.astype(np.float32)
        height, width = small.shape[:2]
        band = border_band(small.shape)
        plain = [(side, median) for side in border_sides(small, band) if np.percentile(
            np.linalg.norm(side - (median := np.median(side, axis=0)), axis=1), 90) <= BUSY_BACKGROUND]
        if not plain:
            return None
        shared = max((median for _, median in plain),  # the colour most plain sides show
                     key=lambda colour: sum(np.linalg.norm(m - colour) <= SAME_WALL for _, m in plain))
        seen = [side for side, median in plain if np.linalg.norm(median - shared) <= SAME_WALL]
        if len(seen) < 2:
            return None
        pixels = np.concatenate(seen)
        wall = np.median(pixels, axis=0)
        unlike = unlike_wall(small, wall, np.linalg.norm(pixels - wall, axis=1), sigma=1.0)
        if 1 - unlike[border_mask(small.shape, band)].mean() < WALL_BORDER:
            return None
        count, labels, stats, _ = cv2.connectedComponentsWithStats(unlike)
        left, top, right, bottom = (stats[:, 0], stats[:, 1], stats[:, 0] + stats[:, 2], stats[:, 1] + stats[:, 3])
        touching = (left == 0) | (top == 0) | (right >= width) | (bottom >= height)
        touching[0] = False  # the wall itself
        return cls(unlike, touching[labels], band)

    def holds(self, quad: np.ndarray) -> bool:
        """Whether `quad` outlines a poster on this wall: most of its inside differs from the wall, and outside it
        (less a margin for its edges) nothing does but the clutter at the picture's edges."""
        inside, around = outline_masks(self.unlike.shape, quad, self.band)
        outside = around & ~self.clutter
        return bool(outside.any() and self.unlike[inside].mean() >= UNLIKE_WALL_INSIDE
                    and 1 - self.unlike[around].mean() >= WALL_AROUND and self.unlike[outside].mean() <= CLEAN_OUTSIDE)

"""Training's phone photos of a poster: the same picture for a seed, another for another seed, and the poster in it
(its own picture matches somewhere in the photo, far better than its pixels shuffled do)."""
import numpy as np

from postergenre.data.images import open_rgb
from postergenre.data.photo_views import photo_view
from tests.conftest import real_posters


def best_match(photo: np.ndarray, template: np.ndarray) -> float:
    """The best normalised correlation of `template`, at 30-95% of its size, anywhere in `photo` (grey)."""
    import cv2
    scores = []
    for scale in np.linspace(0.3, 0.95, 14):
        small = cv2.resize(template, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        if small.shape[0] < photo.shape[0] and small.shape[1] < photo.shape[1]:
            scores.append(cv2.matchTemplate(photo, small, cv2.TM_CCOEFF_NORMED).max())
    return max(scores)


def test_a_photo_view_is_drawn_from_its_seed_and_holds_the_poster():
    poster = open_rgb(real_posters(3)[2])
    first, again, other = photo_view(poster, 11), photo_view(poster, 11), photo_view(poster, 12)
    assert np.array_equal(np.asarray(first), np.asarray(again)), "a cached variant is the same picture every time"
    assert first.size != other.size or not np.array_equal(np.asarray(first), np.asarray(other))
    assert max(first.size) == max(poster.size) and first.mode == "RGB"
    photo = np.asarray(first.convert("L"), np.float32)
    grey = np.asarray(poster.convert("L"), np.float32)
    shuffled = np.random.default_rng(0).permuted(grey)
    found, chance = best_match(photo, grey), best_match(photo, shuffled)
    assert found > 0.5 and found > chance + 0.2, (found, chance)

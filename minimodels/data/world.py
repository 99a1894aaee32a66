"""The synthetic video world: one coloured shape moving and bouncing over a plain background.

Every clip is described by a small record (its *scene*): appearance attributes (shape, colour, size), motion
attributes (direction, speed, whether it bounced), the background grey level, and the object's centre in each
frame in units of the frame width. ``render_clip`` turns a scene into pixels at any resolution, so the shipped
dataset stores numbers and text, not pixels, and the same scene can be shown at 32² for CPU or 288² for a full run.

Designed so that appearance can be read from one frame and motion cannot, and so that content fills many patches and
moves between them (see ``SIZES``):
- shape, colour and size are visible in any single frame;
- the start position is uniform whatever the heading and speed, and there is no motion blur, so the first frame —
  where the motion labels are defined — carries no information about direction or speed: they only show in how
  the object moves between frames. (Later frames alone are weakly informative: a right-mover that has not yet
  bounced tends to be further right. The single-frame baseline therefore shows the first frame.)
"""

from __future__ import annotations

import random

import numpy as np

SHAPES = ("circle", "square", "triangle", "cross", "diamond")
COLOURS = {
    "red": (0.92, 0.12, 0.12),
    "green": (0.15, 0.78, 0.22),
    "blue": (0.18, 0.38, 0.98),
    "yellow": (0.96, 0.88, 0.12),
    "purple": (0.64, 0.22, 0.86),
    "orange": (1.00, 0.55, 0.05),
}
# Radius as a fraction of the frame width. Large enough that the object covers several of the tiny model's 8-pixel
# patches (a 4 × 4 grid at 32²: about 2 for small, 4 for large) and crosses patch borders as it moves: content in
# many patches, and content that moves between them, is what makes masked tokens depend on motion (stage 2's
# premise), and what lets a tiny encoder pick up motion on every seed, not on lucky ones.
SIZES = {"small": 0.16, "large": 0.25}
DIRECTIONS = {"up": (0.0, -1.0), "down": (0.0, 1.0), "left": (-1.0, 0.0), "right": (1.0, 0.0)}
SPEEDS = {"slow": 0.035, "fast": 0.08}  # displacement per frame, fraction of the frame width
BOUNCE_VISIBLE = 0.005  # a reflection in the last step must bring the object this far back to be seen as a bounce

# The attributes the probes read, with their classes in a fixed order (label = index).
APPEARANCE = {"shape": SHAPES, "colour": tuple(COLOURS), "size": tuple(SIZES)}
MOTION = {"direction": tuple(DIRECTIONS), "speed": tuple(SPEEDS)}


def sample_appearance(rng: random.Random) -> dict:
    return {"shape": rng.choice(SHAPES), "colour": rng.choice(list(COLOURS)), "size": rng.choice(list(SIZES))}


def simulate(rng: random.Random, appearance: dict, direction: str, speed: str, frames: int) -> dict:
    """Roll the object forward ``frames`` steps from a uniform start, reflecting off the walls."""
    r = SIZES[appearance["size"]]
    lo, hi = r, 1.0 - r
    pos = [rng.uniform(lo, hi), rng.uniform(lo, hi)]
    vel = [c * SPEEDS[speed] for c in DIRECTIONS[direction]]
    xs, ys, bounced = [], [], False
    for t in range(frames):
        xs.append(round(pos[0], 4))
        ys.append(round(pos[1], 4))
        if t == frames - 1:  # no move after the last frame: a bounce nobody sees is no bounce
            break
        for i in range(2):
            pos[i] += vel[i]
            if pos[i] < lo or pos[i] > hi:  # reflect: the distance travelled past the wall comes back
                wall = lo if pos[i] < lo else hi
                back = 2 * abs(pos[i] - wall)  # how much shorter this step is than a straight one
                pos[i] = 2 * wall - pos[i]
                vel[i] = -vel[i]
                # A reflection before the last step shows as motion reversed in the next frames; one in the last
                # step shows only as that shortened step, so a graze of the wall is no bounce to see.
                bounced |= t < frames - 2 or back > BOUNCE_VISIBLE
    return {
        **appearance,
        "direction": direction,
        "speed": speed,
        "bounced": bounced,
        "background": round(rng.uniform(0.0, 0.3), 3),
        "xs": xs,
        "ys": ys,
    }


def _shape_mask(shape: str, dx: np.ndarray, dy: np.ndarray, r: float) -> np.ndarray:
    """Inside-test for ``shape`` of radius r at offsets (dx, dy) from its centre (y grows downwards)."""
    if shape == "circle":
        return dx**2 + dy**2 <= r**2
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) <= 0.8 * r
    if shape == "diamond":
        return np.abs(dx) + np.abs(dy) <= r
    if shape == "triangle":  # apex up, base at 0.8 r below the centre
        height = (dy + r) / 1.8  # 0 at the apex, r at the base
        return (dy >= -r) & (dy <= 0.8 * r) & (np.abs(dx) <= height)
    if shape == "cross":
        bar = r / 3
        return ((np.abs(dx) <= bar) & (np.abs(dy) <= r)) | ((np.abs(dy) <= bar) & (np.abs(dx) <= r))
    raise ValueError(f"unknown shape {shape!r}; choose one of {SHAPES}")


def render_clip(scene: dict, size: int = 32, supersample: int = 2, frames: int | None = None) -> np.ndarray:
    """Scene -> uint8 frames of shape (T, size, size, 3). Edges are anti-aliased by supersampling.

    ``frames``: T frames spread uniformly over the scene's time span (VideoPrism samples its 16 frames so), the
    object's centre interpolated between the stored ones; None or the stored count draws the stored frames as they
    are. The same motion is then seen at a higher frame rate: its labels still hold.
    """
    xs, ys = np.asarray(scene["xs"], dtype=float), np.asarray(scene["ys"], dtype=float)  # (T0,) each
    if frames is not None and frames != len(xs):
        at = np.linspace(0, len(xs) - 1, frames)  # (T,) positions on the stored frames' time axis
        xs, ys = np.interp(at, np.arange(len(xs)), xs), np.interp(at, np.arange(len(ys)), ys)
    s = size * supersample
    coords = (np.arange(s) + 0.5) / s  # pixel centres in [0, 1]
    gx, gy = np.meshgrid(coords, coords)  # (s, s) each
    mask = _shape_mask(scene["shape"], gx - xs[:, None, None], gy - ys[:, None, None],
                       SIZES[scene["size"]]).astype(np.float32)  # (T, s, s)
    mask = mask.reshape(len(xs), size, supersample, size, supersample).mean(axis=(2, 4))  # (T, size, size)
    colour = np.asarray(COLOURS[scene["colour"]], dtype=np.float32)
    frames = scene["background"] * (1 - mask[..., None]) + colour * mask[..., None]  # (T, size, size, 3)
    return np.round(frames * 255).astype(np.uint8)


def labels(scene: dict) -> dict[str, int]:
    """The class index of every probed attribute of a scene."""
    return {name: classes.index(scene[name]) for name, classes in {**APPEARANCE, **MOTION}.items()}

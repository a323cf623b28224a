"""Tile plans and feathered blending for tiled super-resolution (pure functions, numpy only).

Each axis of the LR image is split into ``n = ceil(length / tile)`` nearly equal *cores* (no core is
smaller than about ``tile / 2``, unlike a plan with a thin remainder tile). Every core is read with
``tile_pad`` extra LR pixels on each side (clipped at the image border), so the network sees context.

Blending. Around each boundary between two neighbouring cores there is a cross-fade zone of half-width
``f = min(tile_pad // 2, smallest core // 2)`` LR pixels. In that zone the left tile's weight falls as
``cos²`` and the right tile's rises as ``sin²`` (their sum is exactly 1); outside it a tile has weight 1
on its core and 0 elsewhere. So a tile never contributes the outer ``tile_pad - f`` pixels of its padding,
where zero padding at the tile edge corrupts its output, and at the image border (no neighbour) its
weight stays 1. The 2-D weight of a tile is the outer product of its two axis weights; the tile grid is
a product grid, so the normaliser is the outer product of the per-axis weight sums (no full-size map).
"""
import dataclasses
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class Span:
    """One tile along one axis, in LR pixels: the core ``[start, stop)`` and the read ``[pad_start, pad_stop)``."""

    start: int
    stop: int
    pad_start: int
    pad_stop: int


@dataclasses.dataclass(frozen=True)
class Tile:
    """A 2-D tile: its row span ``y`` and column span ``x``."""

    y: Span
    x: Span

    @property
    def read_box(self):
        """``(top, bottom, left, right)`` of the padded LR region to run through the network."""
        return self.y.pad_start, self.y.pad_stop, self.x.pad_start, self.x.pad_stop


def axis_spans(length, tile, tile_pad):
    """Split ``[0, length)`` into nearly equal cores of at most ``tile`` pixels, each padded by ``tile_pad``.

    ``tile <= 0`` or ``tile >= length`` gives one span covering the whole axis (no padding needed).
    """
    if length <= 0:
        raise ValueError(f'cannot tile an axis of length {length}')
    if tile <= 0 or tile >= length:
        return [Span(0, length, 0, length)]
    count = math.ceil(length / tile)
    edges = [round(i * length / count) for i in range(count + 1)]
    return [Span(a, b, max(0, a - tile_pad), min(length, b + tile_pad)) for a, b in zip(edges[:-1], edges[1:])]


def plan_tiles(height, width, tile, tile_pad):
    """Row-major list of :class:`Tile` covering an ``height x width`` LR image."""
    return [Tile(ys, xs) for ys in axis_spans(height, tile, tile_pad) for xs in axis_spans(width, tile, tile_pad)]


def feather_width(spans, tile_pad):
    """Half-width ``f`` (LR pixels) of the cross-fade zones: half the padding, and at most half a core."""
    if len(spans) < 2:
        return 0.0
    smallest = min(s.stop - s.start for s in spans)
    return float(min(tile_pad // 2, smallest // 2))


def span_weights(span, spans, scale, feather):
    """Blend weight of ``span`` over its padded output range: float32 ``(scale * (pad_stop - pad_start),)``.

    Weights are evaluated at HR pixel centres, expressed in LR coordinates.
    """
    centres = (np.arange(scale * span.pad_start, scale * span.pad_stop, dtype=np.float64) + 0.5) / scale
    weight = np.ones_like(centres)
    first, last = span.start == spans[0].start, span.stop == spans[-1].stop
    if not first:
        weight *= _ramp(centres, span.start, feather)
    if not last:
        weight *= 1.0 - _ramp(centres, span.stop, feather)
    return weight.astype(np.float32)


def _ramp(x, boundary, feather):
    """0 left of the zone ``[boundary - f, boundary + f]``, 1 right of it, ``sin²`` in between."""
    if feather <= 0:
        return (x >= boundary).astype(np.float64)  # hard seam when there is no room to feather
    t = np.clip((x - (boundary - feather)) / (2 * feather), 0.0, 1.0)
    return np.sin(0.5 * np.pi * t) ** 2


class TileBlender:
    """Accumulates weighted tile outputs into a CPU image and normalises at the end.

    Args:
        height, width (int): LR size; the output is ``(scale * height, scale * width, channels)``.
        scale (int): network scale factor.
        tile, tile_pad (int): as for :func:`plan_tiles`.
        channels (int): output channels. Default: 3.
    """

    def __init__(self, height, width, scale, tile, tile_pad, channels=3):
        self.scale = scale
        self.rows = axis_spans(height, tile, tile_pad)
        self.cols = axis_spans(width, tile, tile_pad)
        fy, fx = feather_width(self.rows, tile_pad), feather_width(self.cols, tile_pad)
        self._wy = {s: span_weights(s, self.rows, scale, fy) for s in self.rows}
        self._wx = {s: span_weights(s, self.cols, scale, fx) for s in self.cols}
        self._norm_y = np.zeros(scale * height, np.float32)
        self._norm_x = np.zeros(scale * width, np.float32)
        for s, w in self._wy.items():
            self._norm_y[scale * s.pad_start:scale * s.pad_stop] += w
        for s, w in self._wx.items():
            self._norm_x[scale * s.pad_start:scale * s.pad_stop] += w
        self.output = np.zeros((scale * height, scale * width, channels), np.float32)

    @property
    def tiles(self):
        """The tiles to run, row-major."""
        return [Tile(ys, xs) for ys in self.rows for xs in self.cols]

    def add(self, tile, sr):
        """Accumulate the network output ``sr`` ``(scale * padded h, scale * padded w, C)`` of ``tile``."""
        s = self.scale
        wy, wx = self._wy[tile.y], self._wx[tile.x]
        if sr.shape[:2] != (wy.size, wx.size):
            raise ValueError(f'tile output has shape {sr.shape[:2]}, expected {(wy.size, wx.size)}: '
                             f'is the model scale really {s}?')
        self.output[s * tile.y.pad_start:s * tile.y.pad_stop, s * tile.x.pad_start:s * tile.x.pad_stop] += (
            sr * (wy[:, None, None] * wx[None, :, None]))

    def result(self):
        """The blended image ``(scale * H, scale * W, C)`` (float32; the accumulator, normalised in place)."""
        self.output /= (self._norm_y[:, None, None] * self._norm_x[None, :, None])
        return self.output

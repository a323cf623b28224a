"""A ranking of a model's conv filters for one degradation against another, and its JSON file.

A :class:`Ranking` holds two scores per filter: ``score`` ranks the filters specific to ``deg`` (for
FAIG: FAIG_deg - FAIG_vs), ``score_vs`` ranks those specific to ``vs`` (for FAIG: the negation). For
methods that do not depend on the degradation (|theta - theta_bar|, random) both are the same.

The JSON file lists every filter once, in descending ``score`` order, as
``{"index", "layer", "o", "i", "score", "score_vs", "rank_vs"}``, next to the method, the two specs and
the settings that produced it. ``rank_vs`` stores the ``vs`` order exactly, whatever rounding the
printed scores get.
"""
import json
import os
from dataclasses import dataclass, field
from typing import Optional

import torch

from ddrsr.errors import DDRSRError

WHICH = ('deg', 'vs')


def descending(scores):
    """Indices that sort ``scores`` (F,) in descending order; ties keep the lower index first."""
    return torch.sort(scores, descending=True, stable=True).indices


def count_for_percent(num_filters, percent):
    """How many filters ``percent`` % of ``num_filters`` is (rounded; 0 % -> 0, 100 % -> all)."""
    if not 0 <= percent <= 100:
        raise DDRSRError(f'a percentage of filters must lie in [0, 100], got {percent}')
    return int(round(num_filters * percent / 100.0))


@dataclass
class Ranking:
    """Filter ranking from :func:`ddrsr.faig.attribute`.

    Attributes:
        method (str): ``faig``, ``ig``, ``absdiff`` or ``random``.
        deg, vs (str): the degradation the ranking is for, and the one it is contrasted with.
        signature (list): the model's conv layers ``(name, out, in, kh, kw)`` (see ``FilterIndex``).
        score (Tensor): ``(F,)``; higher = more specific to ``deg``.
        score_vs (Tensor): ``(F,)``; higher = more specific to ``vs``.
        settings (dict): steps, images, crop, seed, runtime...: whatever produced the scores.
    """
    method: str
    deg: str
    vs: str
    signature: list
    score: torch.Tensor
    score_vs: torch.Tensor
    settings: dict = field(default_factory=dict)
    # Exact orders read from a JSON file, whose printed scores are rounded (ties could reorder them).
    stored_orders: Optional[dict] = None

    @property
    def num_filters(self):
        return int(self.score.numel())

    def order(self, which='deg'):
        """Flat filter indices, most specific to ``deg`` (or ``vs``) first: ``(F,)`` long tensor."""
        if which not in WHICH:
            raise DDRSRError(f'which must be one of {WHICH}, got {which!r}')
        if self.stored_orders is not None:
            return self.stored_orders[which]
        return descending(self.score if which == 'deg' else self.score_vs)

    def top(self, percent, which='deg'):
        """Flat indices of the top ``percent`` % filters for ``deg`` or ``vs``."""
        return self.order(which)[:count_for_percent(self.num_filters, percent)]

    def spec(self, which='deg'):
        return self.deg if which == 'deg' else self.vs

    def check_model(self, filters):
        """Raise DDRSRError unless ``filters`` (a FilterIndex) has the layers this ranking was made on."""
        if [tuple(row) for row in filters.signature()] != [tuple(row) for row in self.signature]:
            raise DDRSRError(f'this {self.method} ranking was made on a model with other conv layers '
                             f'({len(self.signature)} layers, {self.num_filters} filters) than the one given '
                             f'({len(filters.layers)} layers, {len(filters)} filters); use the matching --arch')

    # ------------------------------------------------------------------------------------------ JSON
    def to_dict(self, filters):
        """A JSON-ready dict; ``filters`` is the model's FilterIndex (it names layers, o, i)."""
        self.check_model(filters)
        order = self.order('deg')
        rank_vs = torch.empty_like(order)
        rank_vs[self.order('vs')] = torch.arange(len(order))
        position, o, i = filters.locate(order)
        names = [layer.name for layer in filters.layers]
        score, score_vs = self.score[order].tolist(), self.score_vs[order].tolist()
        rows = [{'index': int(k), 'layer': names[p], 'o': int(oo), 'i': int(ii), 'score': float(f'{s:.7g}'),
                 'score_vs': float(f'{sv:.7g}'), 'rank_vs': int(r)}
                for k, p, oo, ii, s, sv, r in zip(order.tolist(), position.tolist(), o.tolist(), i.tolist(),
                                                  score, score_vs, rank_vs[order].tolist())]
        return {'method': self.method, 'deg': self.deg, 'vs': self.vs, 'num_filters': self.num_filters,
                'settings': self.settings, 'layers': [list(row) for row in self.signature], 'filters': rows}

    def save(self, path, filters):
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        with open(path, 'w') as f:
            json.dump(self.to_dict(filters), f, separators=(',', ':'))
        return path

    @classmethod
    def from_dict(cls, data, where='ranking'):
        """Rebuild from :meth:`to_dict` output, keeping both orders exactly."""
        try:
            rows = data['filters']
            num = int(data['num_filters'])
            index = torch.tensor([row['index'] for row in rows], dtype=torch.long)
            rank_vs = torch.tensor([row['rank_vs'] for row in rows], dtype=torch.long)
            method, deg, vs, layers = data['method'], data['deg'], data['vs'], data['layers']
        except (KeyError, TypeError, ValueError) as error:
            raise DDRSRError(f'{where} is not a ranking written by `ddrsr faig` (missing {error})') from None
        if len(rows) != num or sorted(index.tolist()) != list(range(num)):
            raise DDRSRError(f'{where} does not list each of its {num} filters exactly once; rewrite it with '
                             '`ddrsr faig`')
        if sorted(rank_vs.tolist()) != list(range(num)):
            raise DDRSRError(f'{where} has a broken rank_vs column; rewrite it with `ddrsr faig`')
        score, score_vs = torch.empty(num), torch.empty(num)
        score[index] = torch.tensor([float(row['score']) for row in rows])
        score_vs[index] = torch.tensor([float(row['score_vs']) for row in rows])
        order_vs = torch.empty(num, dtype=torch.long)
        order_vs[rank_vs] = index
        return cls(method, deg, vs, [tuple(row) for row in layers], score, score_vs, dict(data.get('settings', {})),
                   stored_orders={'deg': index, 'vs': order_vs})

    @classmethod
    def load(cls, path):
        try:
            with open(path) as f:
                data = json.load(f)
        except FileNotFoundError:
            raise DDRSRError(f'ranking file {path!r} not found; write it with `ddrsr faig -o {path}`') from None
        except (OSError, ValueError) as error:
            raise DDRSRError(f'cannot read ranking {path!r}: {error}') from None
        return cls.from_dict(data, where=repr(path))


def layer_counts(ranking, filters, percent=1.0, which='deg'):
    """``{layer_name: number of the top-percent filters in it}`` for every conv layer, in depth order."""
    counts = {layer.name: 0 for layer in filters.layers}
    chosen = ranking.top(percent, which)
    if chosen.numel():
        position, _, _ = filters.locate(chosen)
        for p, n in zip(*torch.unique(position, return_counts=True)):
            counts[filters.layers[int(p)].name] = int(n)
    return counts

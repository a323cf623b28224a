"""The conv filters of any ``nn.Module``, one flat index for all of them, and baseline/target pairing.

A *filter* is one 2-D kernel ``weight[o, i, :, :]`` of one ``nn.Conv2d`` (biases are not filters). Layers
are found by walking ``named_modules()``, so no layer name is hard-coded: filter ``k`` of the flat index
is ``(layer, o, i)`` with layers in ``named_modules()`` order (roughly: depth order), then ``o``, then
``i`` (the order of ``weight.flatten(0, 1)``).
"""
from dataclasses import dataclass
from typing import List, Tuple

import torch
from torch import nn

from ddrsr.errors import DDRSRError


@dataclass(frozen=True)
class ConvLayer:
    """One ``nn.Conv2d``: its name, parameter name and weight shape ``(out, in_per_group, kh, kw)``."""
    name: str
    param: str
    shape: Tuple[int, int, int, int]
    offset: int  # flat index of filter (o=0, i=0)

    @property
    def count(self):
        return self.shape[0] * self.shape[1]


class FilterIndex:
    """Flat numbering of every conv filter of a module: ``k <-> (layer, o, i)``.

    Args:
        model (nn.Module): any module; every ``nn.Conv2d`` in ``named_modules()`` contributes
            ``out_channels * in_channels / groups`` filters.
    """

    def __init__(self, model):
        layers, offset = [], 0
        for name, module in model.named_modules():
            if isinstance(module, nn.Conv2d):
                shape = tuple(module.weight.shape)
                layers.append(ConvLayer(name, f'{name}.weight' if name else 'weight', shape, offset))
                offset += shape[0] * shape[1]
        if not layers:
            raise DDRSRError(f'{type(model).__name__} has no nn.Conv2d layers, so it has no filters to attribute')
        self.layers: List[ConvLayer] = layers
        self.num_filters = offset
        self._by_name = {layer.name: layer for layer in layers}
        self._offsets = torch.tensor([layer.offset for layer in layers])

    def __len__(self):
        return self.num_filters

    def layer(self, name):
        return self._by_name[name]

    def locate(self, indices):
        """``(layer_position (K,), o (K,), i (K,))`` long tensors for flat ``indices`` (K,)."""
        indices = torch.as_tensor(indices, dtype=torch.long).flatten()
        if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= self.num_filters):
            raise DDRSRError(f'filter index out of range 0..{self.num_filters - 1}')
        position = torch.searchsorted(self._offsets, indices, right=True) - 1
        local = indices - self._offsets[position]
        in_per_group = torch.tensor([layer.shape[1] for layer in self.layers])[position]
        return position, local // in_per_group, local % in_per_group

    def describe(self, index):
        """``(layer_name, o, i)`` of flat filter ``index``."""
        position, o, i = self.locate([index])
        return self.layers[int(position)].name, int(o), int(i)

    def flat(self, layer_name, o, i):
        """Flat index of filter ``weight[o, i]`` of layer ``layer_name``."""
        layer = self._by_name.get(layer_name)
        if layer is None or not (0 <= o < layer.shape[0] and 0 <= i < layer.shape[1]):
            raise DDRSRError(f'there is no filter ({layer_name!r}, o={o}, i={i}) in this model')
        return layer.offset + o * layer.shape[1] + i

    def split(self, indices):
        """``{layer_name: (o (K,), i (K,))}`` for flat ``indices``, layers in index order."""
        position, o, i = self.locate(indices)
        out = {}
        for p in position.unique().tolist():
            chosen = position == p
            out[self.layers[p].name] = (o[chosen], i[chosen])
        return out

    def signature(self):
        """``[(layer_name, out, in_per_group, kh, kw)]``: what two indices must share to be compatible."""
        return [(layer.name, *layer.shape) for layer in self.layers]

    def per_filter(self, weights):
        """Stack ``{param_name: weight (out, in, kh, kw)}`` into ``(F, kh*kw)``-style rows per layer.

        Returns a list with one ``(out * in, kh * kw)`` tensor per layer, in index order (kernel sizes may
        differ between layers, so they are not concatenated).
        """
        return [weights[layer.param].reshape(layer.count, -1) for layer in self.layers]

    def reduce(self, weights, fn):
        """``(F,)``: ``fn`` applied to every filter's kernel entries, e.g. ``lambda w: w.abs().sum(1)``."""
        return torch.cat([fn(rows) for rows in self.per_filter(weights)])


def conv_weights(model):
    """``{param_name: weight tensor}`` of every conv layer of ``model`` (the tensors themselves, not copies)."""
    return {layer.param: model.get_parameter(layer.param) for layer in FilterIndex(model).layers}


def check_same_architecture(baseline, target):
    """Refuse a baseline/target pair unless both have the same parameters, buffers and shapes.

    FAIG interpolates every parameter between the two networks, so "same architecture" means identical
    state-dict keys and shapes, not just the same conv layers.

    Returns:
        FilterIndex: the filters of ``target`` (which are those of ``baseline``).
    """
    def shapes(model):
        return {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}

    base, targ = shapes(baseline), shapes(target)
    only_base, only_target = sorted(set(base) - set(targ)), sorted(set(targ) - set(base))
    resized = [f'{k} {base[k]} vs {targ[k]}' for k in sorted(set(base) & set(targ)) if base[k] != targ[k]]
    if only_base or only_target or resized:
        details = []
        if only_base:
            details.append(f'only in the baseline: {", ".join(only_base[:5])}' + (' ...' if len(only_base) > 5 else ''))
        if only_target:
            details.append(f'only in the target: {", ".join(only_target[:5])}' + (' ...' if len(only_target) > 5
                                                                                 else ''))
        if resized:
            details.append(f'different shapes: {", ".join(resized[:5])}' + (' ...' if len(resized) > 5 else ''))
        raise DDRSRError(f'baseline ({type(baseline).__name__}) and target ({type(target).__name__}) have different '
                         f'architectures ({"; ".join(details)}); FAIG needs the target fine-tuned from the baseline, '
                         'with the same architecture (pass both checkpoints with the same --arch)')
    return FilterIndex(target)

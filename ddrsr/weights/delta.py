"""Weights stored as a difference from a base model, and the detail knob that walks between the two.

A model fine-tuned from another one with most of it frozen (``rrdb_ddr_real_x4``: Real-ESRGAN's x4plus trunk, new
StyleMods, a retrained head) ships only what the base lacks or holds differently: a *delta* file, whose header names
the base (``ddrsr.base_model``, ``ddrsr.base_sha256``). :func:`compose_state` rebuilds the full state dict, and with
``detail`` it is ESRGAN's network interpolation between the two ends:

* ``detail = 0``: the fine-tuned model (the fidelity end, trained with a pixel loss);
* ``detail = 1``: the base's weights (x4plus: Real-ESRGAN's GAN look);
* in between, each tensor the two share is ``(1 - detail) * fine_tuned + detail * base``.

Tensors only the fine-tuned model has (the StyleMods, the DDR encoder, ``clean_embedding``) either stay as they are
(``style='keep'``) or fade to zero with ``1 - detail`` when they are listed in ``fade`` (``style='fade'``): a zero
StyleMod is the identity, so ``detail = 1`` then computes exactly the base network.
"""
from typing import Dict, Iterable, Optional

import torch

STYLES = ('keep', 'fade')


def delta_state(state: Dict[str, torch.Tensor], base: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
    """The tensors of ``state`` that ``base`` lacks or holds with another value (compared in ``state``'s dtype).

    >>> delta_state({'a': torch.ones(1), 'b': torch.zeros(1), 'c': torch.ones(1)}, {'a': torch.ones(1),
    ...                                                                               'b': torch.ones(1)})
    {'b': tensor([0.]), 'c': tensor([1.])}
    """
    return {key: value for key, value in state.items()
            if key not in base or base[key].shape != value.shape or not torch.equal(base[key].to(value.dtype), value)}


def compose_state(delta: Dict[str, torch.Tensor], base: Dict[str, torch.Tensor], detail: float = 0.0,
                  fade: Iterable[str] = (), style: str = 'keep') -> Dict[str, torch.Tensor]:
    """The full fp32 state dict at ``detail`` in ``[0, 1]`` (see the module docstring).

    Args:
        delta: the fine-tuned model's tensors that differ from ``base`` or are new.
        base: the base model's state dict.
        detail: 0 the fine-tuned model, 1 the base's shared tensors.
        fade: key prefixes (whole dotted components) of new tensors that fade to zero with ``style='fade'``.
        style: ``'keep'`` or ``'fade'``.

    >>> delta, base = {'w': torch.tensor([0.]), 'style.g': torch.tensor([2.])}, {'w': torch.tensor([1.])}
    >>> compose_state(delta, base, 0.25, fade=['style'], style='fade')
    {'w': tensor([0.2500]), 'style.g': tensor([1.5000])}
    """
    from ddrsr.errors import DDRSRError
    from ddrsr.utils.prefixes import under_any

    detail = float(detail)
    if not 0 <= detail <= 1:
        raise DDRSRError(f'detail must be between 0 (fidelity) and 1 (the base model\'s look), got {detail:g}')
    if style not in STYLES:
        raise DDRSRError(f'detail style must be one of {STYLES}, got {style!r}')
    fade = tuple(fade)
    state = {key: value.float() for key, value in base.items()}
    for key, value in delta.items():
        value = value.float()
        if key in state:
            if state[key].shape != value.shape:
                raise DDRSRError(f'{key} has shape {tuple(value.shape)} in the fine-tuned weights but '
                                 f'{tuple(state[key].shape)} in the base: they are not one architecture')
            state[key] = torch.lerp(value, state[key], detail) if detail else value
        elif style == 'fade' and under_any(key, fade):
            state[key] = value * (1 - detail)
        else:
            state[key] = value
    return state


def read_base_reference(metadata: Dict[str, str]) -> Optional[tuple]:
    """``(base model name, base sha256)`` named by a delta file's header, or None for a whole file."""
    name = metadata.get('ddrsr.base_model')
    return (name, metadata.get('ddrsr.base_sha256')) if name else None

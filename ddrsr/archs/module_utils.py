"""Reach a named layer of any ``nn.Module`` and capture what it outputs.

Shared by the DDR encoder (features at one layer), the analysis tools (features at any layer) and FAIG.
Layer names are those of ``model.named_modules()``, e.g. ``body.15`` or ``body.3.rdb2.conv1``.
"""
import contextlib

import torch

from ddrsr.errors import DDRSRError, closest


def get_layer(model, name):
    """The submodule called ``name``; a DDRSRError lists close matches when there is none."""
    modules = dict(model.named_modules())
    if name in modules and name != '':
        return modules[name]
    names = [n for n in modules if n]
    hints = closest(name, names, 5)
    hint = f' Did you mean: {", ".join(hints)}?' if hints else ''
    sample = ', '.join(names[:12]) + (', ...' if len(names) > 12 else '')
    raise DDRSRError(f'{type(model).__name__} has no layer {name!r}.{hint} Layers include: {sample}')


def is_tracing():
    """Whether a graph is being recorded (``torch.jit.trace``, ONNX export, ``torch.compile``/``torch.export``).

    Python-side work that only makes sense eagerly (early exits, input checks) is skipped then: the graph
    must be recorded whole, and a shape check would bake the example's shape into it.
    """
    return torch.jit.is_tracing() or torch.onnx.is_in_onnx_export() or torch.compiler.is_compiling()


class _StopForward(Exception):
    """Raised by a hook to skip the rest of a forward pass once the wanted layer has run.

    It carries the store of the :func:`capture_layer_output` that raised it, so that nested early exits (an
    analysis reading ``encoder.generator.body.7`` of a DDR network whose encoder itself stops at ``body.7``)
    each catch only their own: the outer one passes through the inner :func:`run_until`.
    """

    def __init__(self, store):
        super().__init__()
        self.store = store


@contextlib.contextmanager
def capture_layer_output(model, name, stop=False):
    """Record the output of layer ``name`` during forward passes run inside the ``with`` block.

    Yields a dict whose ``'output'`` entry holds the most recent output tensor. With ``stop=True`` the
    hook raises :class:`_StopForward` so the layers after ``name`` never run; call the model through
    :func:`run_until` in that case. Early exit is turned off while tracing or exporting, where the
    graph must be recorded whole (dead layers are then removed by the exporter's dead-code pass).
    """
    layer = get_layer(model, name)
    store = {}
    can_stop = stop and not is_tracing()

    def hook(_module, _inputs, output):
        store['output'] = output[0] if isinstance(output, (tuple, list)) else output
        if can_stop:
            raise _StopForward(store)

    handle = layer.register_forward_hook(hook)
    try:
        yield store
    finally:
        handle.remove()


def _run_once(model, name, inputs):
    with capture_layer_output(model, name, stop=True) as store:
        try:
            model(*inputs)
        except _StopForward as stop:
            if stop.store is not store:  # an outer run_until's stop: let it through
                raise
    return store.get('output')


def run_until(model, name, *inputs):
    """Run ``model(*inputs)`` only as far as layer ``name`` and return that layer's output.

    A layer that the model's own forward pass never reaches (e.g. ``encoder.generator.conv_last`` of a DDR
    network, whose encoder reads its generator only up to one layer) is reached by running the outermost
    module on its path that takes the same inputs and does reach it (here ``encoder.generator``).

    >>> net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(4, 2, 1))
    >>> run_until(net, '1', torch.zeros(2, 3, 8, 8)).shape
    torch.Size([2, 4, 8, 8])
    """
    output = _run_once(model, name, inputs)
    if output is not None:
        return output
    parts = name.split('.')
    for depth in range(1, len(parts)):
        ancestor, rest = '.'.join(parts[:depth]), '.'.join(parts[depth:])
        try:
            output = _run_once(get_layer(model, ancestor), rest, inputs)
        except (RuntimeError, TypeError, ValueError, DDRSRError):  # this ancestor takes other inputs
            continue
        if output is not None:
            return output
    raise DDRSRError(f'layer {name!r} of {type(model).__name__} did not run during the forward pass')

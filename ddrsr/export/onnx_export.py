"""ONNX export of SR networks (one graph, or the encoder/generator pair) and an onnxruntime parity check.

Exporter choice (torch 2.15). Both exporters work for RRDBNet-DDR and give the same graph (same Conv
count, outputs within 3e-8 of torch). We keep the TorchScript exporter (``dynamo=False``): it is ~7x
faster (0.8 s vs 5.8 s for a tiny model, which matters for tests and for the CLI's first ``--backend
onnx`` run) and takes plain ``dynamic_axes``. It is deprecated since torch 2.9 and warns; if a later
torch removes it, switch ``_export`` to ``dynamo=True`` with ``dynamic_shapes`` (checked to work here).

The DDR encoder reads its generator only up to one layer. Eagerly it stops the forward with an
exception; while exporting that is off (see ``ddrsr.archs.module_utils``), the whole generator is
traced, and the exporter's dead-code pass drops the layers after the chosen one (``count_ops`` checks).
"""
import copy
import io
import os
import warnings

import numpy as np
import onnx
import torch
from torch import nn

from ddrsr.utils.atomic_file import AtomicFile
from ddrsr.errors import DDRSRError

DEFAULT_OPSET = 17
_EXAMPLE_SIZE = (32, 48)  # tracing size; every axis but channels is declared dynamic


class _LqToSr(nn.Module):
    """One graph: ``lq (B, 3, H, W) -> sr``; a DDR network computes its embedding inside."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, lq):
        return self.model(lq)


class _Encode(nn.Module):
    """Encoder graph: ``lq (B, 3, H, W) -> embedding (B, D)``."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, lq):
        return self.model.encode(lq)


class _Generate(nn.Module):
    """Generator graph: ``(lq tile (B, 3, h, w), embedding (B, D)) -> sr (B, 3, s*h, s*w)``."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, lq, embedding):
        return self.model(lq, embedding=embedding)


def _prepared(model, fp16):
    """A CPU copy of ``model`` in eval mode (fp16 if asked), so exporting never touches the caller's model."""
    copied = copy.deepcopy(model).cpu().eval().requires_grad_(False)
    return copied.half() if fp16 else copied.float()


def _network_and_metadata(model):
    """``(nn.Module, ONNX metadata)`` of a :class:`ddrsr.loader.LoadedModel` or a plain network."""
    from ddrsr.loader import as_loaded

    loaded = as_loaded(model)
    return loaded.network, {'scale': str(loaded.scale), 'use_ddr': str(loaded.use_ddr), 'model_name': loaded.name,
                            'producer': 'ddrsr'}


def _export(module, args, path, input_names, output_names, dynamic_axes, opset, metadata):
    """Trace ``module`` to ``path`` (written atomically), add ``metadata`` and run the ONNX checker."""
    buffer = io.BytesIO()  # exported and checked in memory: only a checked graph reaches ``path``
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DeprecationWarning)  # "legacy TorchScript-based exporter"
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        torch.onnx.export(module, args, buffer, dynamo=False, opset_version=opset, input_names=input_names,
                          output_names=output_names, dynamic_axes=dynamic_axes, do_constant_folding=True)
    graph = onnx.load_from_string(buffer.getvalue())
    for key, value in metadata.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(graph)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with AtomicFile(path) as f:
        f.write(graph.SerializeToString())
    return path


def _example(model, fp16, batch=1):
    dtype = torch.float16 if fp16 else torch.float32
    return torch.rand(batch, 3, *_EXAMPLE_SIZE, generator=torch.Generator().manual_seed(0)).to(dtype)


def export_onnx(model, path, opset=DEFAULT_OPSET, fp16=False):
    """Export ``model`` (a ``LoadedModel`` or an ``nn.Module``) as ONE graph ``lq (B, 3, H, W) -> sr (B, 3, s*H, s*W)``, dynamic in B, H and W.

    For a DDR network the embedding is computed inside the graph. ``fp16`` makes inputs, weights and
    outputs float16. The file is checked with ``onnx.checker.check_model``.

    Returns:
        str: ``path``.
    """
    if opset < DEFAULT_OPSET:
        raise DDRSRError(f'opset {opset} is too old; use {DEFAULT_OPSET} or higher')
    model, meta = _network_and_metadata(model)
    net = _prepared(model, fp16)
    axes = {'lq': {0: 'batch', 2: 'height', 3: 'width'}, 'sr': {0: 'batch', 2: 'out_height', 3: 'out_width'}}
    return _export(_LqToSr(net), (_example(net, fp16),), path, ['lq'], ['sr'], axes, opset, meta)


def export_split(model, encoder_path, generator_path, opset=DEFAULT_OPSET, fp16=False):
    """Export the pair used for tiled ONNX inference.

    * encoder ``lq (B, 3, H, W) -> embedding (B, D)`` (only for DDR networks; otherwise not written),
    * generator ``(lq (B, 3, h, w), embedding (B, D)) -> sr (B, 3, s*h, s*w)``; without DDR it takes
      only ``lq``.

    Returns:
        tuple: ``(encoder_path or None, generator_path)``.
    """
    if opset < DEFAULT_OPSET:
        raise DDRSRError(f'opset {opset} is too old; use {DEFAULT_OPSET} or higher')
    model, meta = _network_and_metadata(model)
    net = _prepared(model, fp16)
    lq = _example(net, fp16)
    lq_axes = {0: 'batch', 2: 'height', 3: 'width'}
    sr_axes = {'sr': {0: 'batch', 2: 'out_height', 3: 'out_width'}}
    if not getattr(net, 'use_ddr', False):
        _export(_LqToSr(net), (lq,), generator_path, ['lq'], ['sr'], {'lq': lq_axes, **sr_axes}, opset, meta)
        return None, generator_path
    _export(_Encode(net), (lq,), encoder_path, ['lq'], ['embedding'],
            {'lq': lq_axes, 'embedding': {0: 'batch'}}, opset, meta)
    with torch.no_grad():
        embedding = net.encode(lq)
    _export(_Generate(net), (lq, embedding), generator_path, ['lq', 'embedding'], ['sr'],
            {'lq': lq_axes, 'embedding': {0: 'batch'}, **sr_axes}, opset, meta)
    return encoder_path, generator_path


def count_ops(path, op_type='Conv'):
    """How many ``op_type`` nodes the graph at ``path`` has (subgraphs included)."""
    def walk(graph):
        total = 0
        for node in graph.node:
            total += node.op_type == op_type
            for attribute in node.attribute:
                if attribute.g is not None and attribute.g.node:
                    total += walk(attribute.g)
        return total
    return walk(onnx.load(path).graph)


def providers_for(device):
    """onnxruntime providers for ``device``: CUDA then CPU on a GPU, CPU only otherwise."""
    import onnxruntime as ort

    wanted = ['CUDAExecutionProvider', 'CPUExecutionProvider'] if torch.device(device).type == 'cuda' \
        else ['CPUExecutionProvider']
    available = ort.get_available_providers()
    return [p for p in wanted if p in available] or ['CPUExecutionProvider']


def verify_onnx(model, path, sizes=((37, 53), (64, 48)), device='cpu', seed=0):
    """Compare onnxruntime on ``path`` with ``model`` in torch on random LQ images of each ``(H, W)``.

    Works for the one-graph export and for a split generator (its embedding input is fed
    ``model.encode(lq)``). fp16 graphs are fed float16 inputs and compared with the fp32 model.

    Returns:
        dict: ``{'HxW': {'max_abs': float, 'mean_abs': float}}`` per size.
    """
    import onnxruntime as ort

    onnx.checker.check_model(path)
    session = ort.InferenceSession(path, providers=providers_for(device))
    inputs = session.get_inputs()
    fp16 = inputs[0].type == 'tensor(float16)'
    net = _prepared(model, False).to(device)
    generator = torch.Generator().manual_seed(seed)
    report = {}
    for height, width in sizes:
        lq = torch.rand(1, 3, height, width, generator=generator)
        with torch.inference_mode():
            expected = net(lq.to(device)).float().cpu().numpy()
            feeds = {inputs[0].name: lq.numpy().astype(np.float16 if fp16 else np.float32)}
            if len(inputs) > 1:
                feeds[inputs[1].name] = net.encode(lq.to(device)).cpu().numpy().astype(feeds[inputs[0].name].dtype)
        got = session.run(None, feeds)[0].astype(np.float32)
        if got.shape != expected.shape:
            raise DDRSRError(f'{path}: onnxruntime output shape {got.shape} != torch {expected.shape} at '
                             f'{height}x{width}; re-export the model')
        diff = np.abs(got - expected)
        report[f'{height}x{width}'] = {'max_abs': float(diff.max()), 'mean_abs': float(diff.mean())}
    return report

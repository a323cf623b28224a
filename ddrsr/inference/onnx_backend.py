"""onnxruntime backend for the Upsampler, built on the exported encoder/generator pair.

Tiled inference needs the embedding once per photo, so the one-graph export (lq -> sr, e computed
inside) cannot be used: the encoder graph ``lq -> e`` runs once, the generator graph ``(tile, e) -> sr``
runs per tile. Each graph gets one ``InferenceSession``, created once and reused for every photo.

The pair is exported on first use into a cache folder keyed by a sha256 of the network's weights (and the
torch version), so a changed checkpoint is exported again and an unchanged one is reused. Every file of the
pair is written atomically (a temporary file, then one ``os.replace``) and ``meta.json`` last, so processes
sharing the cache never read a half-written graph: two that export at once both write complete, equal files.
"""
import hashlib
import json
import os

import numpy as np
import torch

from ddrsr.utils.atomic_file import AtomicFile
from ddrsr.errors import DDRSRError

_ENCODER_FILE, _GENERATOR_FILE, _META_FILE = 'encoder.onnx', 'generator.onnx', 'meta.json'
_CACHE_FORMAT = 1  # bump when the export changes so old caches are not reused


def default_cache_root():
    """``$DDRSR_CACHE``, else ``$XDG_CACHE_HOME/ddrsr``, else ``~/.cache/ddrsr``."""
    if os.environ.get('DDRSR_CACHE'):
        return os.environ['DDRSR_CACHE']
    base = os.environ.get('XDG_CACHE_HOME') or os.path.join(os.path.expanduser('~'), '.cache')
    return os.path.join(base, 'ddrsr')


def weights_key(model):
    """A short sha256 of the network's class, state-dict names, shapes and values."""
    digest = hashlib.sha256(f'{type(model).__name__}:{_CACHE_FORMAT}:{torch.__version__}'.encode())
    for name, tensor in model.state_dict().items():
        digest.update(f'{name}:{tuple(tensor.shape)}:{tensor.dtype}'.encode())
        digest.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def cached_split_pair(model, onnx_dir=None):
    """The exported pair for ``model``, exported into ``onnx_dir`` unless an up-to-date copy is there.

    Args:
        model (LoadedModel | nn.Module): the SR network (``use_ddr`` decides whether an encoder graph exists).
        onnx_dir (str, optional): cache folder; default ``<cache root>/onnx/<model_name>-<key>``.

    Returns:
        tuple: ``(encoder_path or None, generator_path)``.
    """
    from ddrsr.export import export_split
    from ddrsr.loader import as_loaded

    loaded = as_loaded(model)
    model = loaded.network
    key = weights_key(model)
    if onnx_dir is None:
        onnx_dir = os.path.join(default_cache_root(), 'onnx', f'{loaded.name}-{key}')
    use_ddr = loaded.use_ddr
    encoder = os.path.join(onnx_dir, _ENCODER_FILE)
    generator = os.path.join(onnx_dir, _GENERATOR_FILE)
    meta_path = os.path.join(onnx_dir, _META_FILE)
    meta = {'key': key, 'use_ddr': use_ddr, 'scale': loaded.scale}
    try:
        with open(meta_path) as f:
            fresh = json.load(f) == meta
    except (OSError, ValueError):
        fresh = False
    fresh = fresh and os.path.isfile(generator) and (os.path.isfile(encoder) or not use_ddr)
    if not fresh:
        try:
            os.makedirs(onnx_dir, exist_ok=True)
            export_split(loaded, encoder, generator)
            with AtomicFile(meta_path) as f:  # written last: a half-done export is never "fresh"
                f.write(json.dumps(meta).encode())
        except OSError as error:
            raise DDRSRError(f'cannot write the ONNX cache in {onnx_dir!r} ({error}); '
                             'set DDRSR_CACHE to a writable folder') from None
    return (encoder if use_ddr else None), generator


class OnnxBackend:
    """Encoder and generator sessions; inputs and outputs are CPU float32 tensors, like ``TorchBackend``.

    Args:
        encoder_path (str | None): ``lq -> embedding`` graph, or None for a network without DDR.
        generator_path (str): ``(lq, embedding) -> sr`` graph (or ``lq -> sr`` without DDR).
        device (torch.device | str): CUDA uses the CUDA provider first, then CPU.
        threads (int, optional): intra-op threads of each session (default: onnxruntime's own, one per
            physical core); benchmarks set it to torch's thread count to compare engines, not pools.
    """

    half = False

    def __init__(self, encoder_path, generator_path, device='cpu', threads=None):
        import onnx
        import onnxruntime as ort

        from ddrsr.export.onnx_export import providers_for

        providers = providers_for(device)
        options = ort.SessionOptions()
        # Tiles come in several shapes (the edges), and for each new shape the memory-pattern planner keeps a
        # block of its own (onnxruntime issue #11118; its maintainers advise turning it off). Off: the full-size
        # model's peak RSS on a 560² photo in 256-px tiles fell from 2802 to 2253 MiB, the lite one's on 800² from
        # 2274 to 1884 MiB, at the same speed (89 vs 93 s; 20 vs 22 s).
        options.enable_mem_pattern = False
        if threads:
            options.intra_op_num_threads = int(threads)
        self.sessions = {}
        for role, path in (('encoder', encoder_path), ('generator', generator_path)):
            if path is None:
                continue
            try:
                onnx.checker.check_model(path)  # a corrupt cache file fails here, before a session opens
            except Exception as error:
                first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                raise DDRSRError(f'{path}: not a valid ONNX model ({first}); delete the ONNX cache folder '
                                 'and run again') from None
            self.sessions[role] = ort.InferenceSession(path, options, providers=providers)
        self.generator_inputs = [i.name for i in self.sessions['generator'].get_inputs()]
        if (len(self.generator_inputs) > 1) != ('encoder' in self.sessions):
            raise DDRSRError(f'{generator_path}: the generator graph and the encoder graph do not belong '
                             'together; delete the ONNX cache folder and run again')

    def encode(self, lq):
        """``(1, 3, h, w)`` CPU tensor -> embedding ``(1, D)`` numpy float32."""
        session = self.sessions['encoder']
        return session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(lq.numpy())})[0]

    def __call__(self, tile, embedding):
        """``(1, 3, h, w)`` CPU tensor -> ``(1, 3, s*h, s*w)`` CPU float32 tensor."""
        feeds = {self.generator_inputs[0]: np.ascontiguousarray(tile.numpy())}
        if embedding is not None:
            feeds[self.generator_inputs[1]] = embedding
        return torch.from_numpy(self.sessions['generator'].run(None, feeds)[0])

    def to_fp32(self):
        """Nothing to do: the exported pair is fp32."""

"""Upsampler: whole photos in, super-resolved photos out (tiles, one DDR embedding per photo, alpha, fp16).

The flow for one photo ``(H, W, 3)``:

1. **Embedding.** If the network has a DDR encoder (``use_ddr``), ``e = encode(lq)`` ``(1, D)`` is
   computed once, from the whole LQ photo or, above ``embed_crop`` pixels per side, from a centre crop.
2. **Tiles.** The photo stays on the CPU; each padded tile ``(1, 3, h, w)`` goes to the device and runs
   as ``model(tile, embedding=e)``, the *same* e for every tile (the degradation belongs to the photo;
   per-tile embeddings give seams). :class:`~ddrsr.inference.tiling.TileBlender` feathers them together.
3. **Alpha** is resized with bicubic interpolation (see :meth:`Upsampler.enhance`), grey photos are run
   as RGB and averaged back to one channel, and ``outscale`` other than the native scale is reached with
   a Lanczos resize of the output (as Real-ESRGAN does).
"""
import dataclasses
import math
import os
import warnings
from typing import TYPE_CHECKING, Callable, Optional, Union

import cv2
import numpy as np
import torch

from ddrsr.archs.stylemod_rrdbnet_arch import steer_embedding
from ddrsr.data.patches import centre_crop  # noqa: F401  (also re-exported here, where it used to live)
from ddrsr.utils.device import resolve_device  # noqa: F401  (also re-exported here, where it used to live)
from ddrsr.errors import DDRSRError, check_image_batch
from ddrsr.data.photo_io import DEFAULT_MAX_PIXELS, ImageData, check_pixel_count, read_image, write_image
from ddrsr.inference.tiling import TileBlender
from ddrsr.inference.torch_backend import (NonFinite, TorchBackend, _NonFinite,  # noqa: F401  (re-exported)
                                           resolve_precision)
from ddrsr.zoo import DEFAULT_MODEL

if TYPE_CHECKING:
    from ddrsr.loader import LoadedModel

from ddrsr.defaults import DEFAULT_EMBED_CROP, DEFAULT_TILE_PAD  # noqa: E402,F401
#: Range of ``strength``: 0 treats the photo as clean, 1 is its own degradation, 1.5 restores harder.
STRENGTH_RANGE = (0.0, 1.5)


AUTO_STRENGTH = 'auto'


def check_strength(strength: Union[float, str]) -> Union[float, str]:
    """``strength`` as a float in :data:`STRENGTH_RANGE`; DDRSRError otherwise.

    >>> check_strength('0.5')
    0.5
    """
    try:
        value = float(strength)
    except (TypeError, ValueError):
        raise DDRSRError(f'strength must be a number from {STRENGTH_RANGE[0]:g} to {STRENGTH_RANGE[1]:g}, '
                         f'got {strength!r}') from None
    if not STRENGTH_RANGE[0] <= value <= STRENGTH_RANGE[1]:  # also refuses nan
        raise DDRSRError(f'strength must be from {STRENGTH_RANGE[0]:g} (treat the photo as clean) to '
                         f'{STRENGTH_RANGE[1]:g} (restore harder), 1 being the photo\'s own degradation; got {strength!r}')
    return value


from ddrsr.defaults import BACKENDS  # noqa: E402,F401


class BackendFallbackWarning(RuntimeWarning):
    """``backend='auto'`` wanted onnxruntime but could not use it, and runs torch instead."""


def choose_backend(backend: str, device: Union[str, torch.device]) -> str:
    """The engine for ``backend`` on ``device``: ``'auto'`` is onnxruntime on the CPU (docs/BENCHMARKS.md
    measures it within a few % of torch channels-last there, 0.97x, with equal outputs) and torch on CUDA (fp16 and
    cuDNN's NHWC kernels).

    >>> choose_backend('auto', torch.device('cuda')), choose_backend('torch', torch.device('cpu'))
    ('torch', 'torch')
    """
    if backend not in BACKENDS:
        raise DDRSRError(f'unknown backend {backend!r}; use {", ".join(BACKENDS)}')
    if backend != 'auto':
        return backend
    return 'onnx' if torch.device(device).type == 'cpu' else 'torch'


@dataclasses.dataclass
class FileResult:
    """What :meth:`Upsampler.upscale_file` did: the output ``path`` and whether it was ``skipped`` (exists)."""

    path: str
    skipped: bool = False


def _onnx_backend(loaded, onnx_dir, device, int8):
    """The onnxruntime backend on ``loaded``'s cached fp32 pair, with the generator quantized to int8 if asked
    (cached beside the pair; the encoder stays fp32 so that the embedding does not move)."""
    from ddrsr.inference.onnx_backend import OnnxBackend, cached_split_pair

    encoder_path, generator_path = cached_split_pair(loaded, onnx_dir)
    if int8:
        from ddrsr.inference.quantize import cached_int8_generator

        generator_path = cached_int8_generator(os.path.dirname(generator_path), generator_path, encoder_path)
    return OnnxBackend(encoder_path, generator_path, device=device)


class Upsampler:
    """Super-resolve photos with a zoo model (or any SR ``nn.Module``), tiled or whole.

    Args:
        model_name (str): zoo name (see ``ddrsr.zoo.MODELS``). Ignored when ``model`` is given.
        weights (str, optional): checkpoint to load instead of the shipped one.
        device (str): ``'auto'``, ``'cpu'`` or ``'cuda'``.
        tile (int): LR core size of a tile; 0 runs the whole photo at once.
        tile_pad (int): LR context added on each side of a tile.
        precision (str): ``'auto'`` (default), ``'fp32'``, ``'bf16'`` (CPUs with native bf16, torch backend),
            ``'fp16'`` (CUDA) or ``'int8'`` (CPU, onnx backend: the generator graph quantized statically and cached,
            ``ddrsr.inference.quantize``); see :func:`ddrsr.inference.torch_backend.resolve_precision`. A photo whose fp16 output
            has NaN/Inf is redone in fp32, and fp32 is kept from then on. ``precision_name`` says which one runs.
        half (bool, optional): the older spelling: True is ``precision='fp16'``, False ``'fp32'``.
        backend (str): ``'auto'`` (default; see :func:`choose_backend`), ``'torch'`` or ``'onnx'`` (onnxruntime
            with the exported encoder/generator pair). With ``'auto'``, an ONNX pair that cannot be exported or
            loaded (or a missing onnxruntime) gives one :class:`BackendFallbackWarning` and the torch backend;
            an explicit ``'onnx'`` raises instead. ``backend_name`` says which one runs.
        onnx_dir (str, optional): where the ONNX pair is cached (default ``<cache>/onnx/<model>-<sha256>``, see
            ``ddrsr.inference.onnx_backend``); exported once per weights, shared by concurrent processes.
        model (LoadedModel | nn.Module, optional): a ready network: a :class:`ddrsr.loader.LoadedModel`, or an
            ``nn.Module`` whose SR factor is its ``scale`` (or ``upscale``) attribute; ``use_ddr`` and ``encode``
            if DDR.
        embed_crop (int): largest LR crop per side used to compute the embedding.
        channels_last (bool): run the torch backend in NHWC memory format (faster on CPU and CUDA; the
            results equal NCHW's to float rounding). Default: True.
        max_pixels (int): refuse inputs with more pixels, and outputs with more than ``max_pixels * scale²``
            (0 or None: no limit). Files are checked from their header, before decoding.
        strength (float): restoration strength, 0 to 1.5 (default 1). The photo's embedding e is replaced
            by ``e_clean + strength * (e - e_clean)``, ``e_clean`` being the model's ``clean_embedding``
            (mean embedding of clean patches): 0 treats the photo as clean, 1 as itself, 1.5 restores harder.
            Every tile uses that one steered embedding. It can be changed later (``upsampler.strength = 0.5``).
            ``'auto'`` takes ``ddrsr inspect``'s recommendation for each photo (``last_strength`` says which).
        detail (float, optional): for a model with a detail knob (``rrdb_ddr_real_x4``), 0 (fidelity: the
            pixel-loss fine-tune) to 1 (its base model's look, Real-ESRGAN x4plus): ESRGAN's network interpolation
            (``ddrsr.weights.delta``). Default: the model's own. DDRSRError for other models.
        on_tile (callable, optional): progress of each photo, called as ``on_tile(done, total)`` with ``done=0``
            before the photo's embedding and after each of its ``total`` tiles. It may be replaced later
            (``upsampler.on_tile = ...``); an exception it raises stops the photo before its next tile, which is how
            ``ddrsr serve`` cancels a job.

    >>> from ddrsr.archs import RRDBNetDDR
    >>> from ddrsr.loader import LoadedModel
    >>> net = RRDBNetDDR(num_feat=8, num_block=1, num_grow_ch=4, use_ddr=False)  # untrained, for the shapes
    >>> upsampler = Upsampler(model=LoadedModel.from_module(net), device='cpu', backend='torch', tile=8)
    >>> upsampler.enhance(np.zeros((10, 12, 3), np.uint8)).shape  # (H, W, 3) uint8 -> (4H, 4W, 3) uint8
    (40, 48, 3)
    """

    #: The strength each photo runs at (a number, or ``'auto'``: asked of ``ddrsr inspect`` per photo).
    _strength: Union[float, str]
    #: What the last photo ran at, and why (strength auto); None before the first photo.
    last_strength: Optional[float]
    last_strength_basis: Optional[object]

    def __init__(self, model_name: str = DEFAULT_MODEL, weights: Optional[str] = None, device: str = 'auto',
                 tile: int = 0, tile_pad: int = DEFAULT_TILE_PAD, half: Optional[bool] = None, backend: str = 'auto',
                 onnx_dir: Optional[str] = None, model: Union['LoadedModel', torch.nn.Module, None] = None,
                 embed_crop: int = DEFAULT_EMBED_CROP, channels_last: bool = True,
                 max_pixels: Optional[int] = DEFAULT_MAX_PIXELS, strength: Union[float, str] = 1.0,
                 detail: Optional[float] = None, precision: str = 'auto',
                 on_tile: Optional[Callable[[int, int], None]] = None) -> None:
        if backend not in BACKENDS:
            raise DDRSRError(f'unknown backend {backend!r}; use {", ".join(BACKENDS)}')
        if tile < 0 or tile_pad < 0:
            raise DDRSRError('tile and tile_pad must be >= 0 (tile 0 means no tiling)')
        if max_pixels is not None and max_pixels < 0:
            raise DDRSRError('max_pixels must be >= 0 (0 means no limit)')
        self.max_pixels = max_pixels
        self.device = resolve_device(device)
        from ddrsr.loader import as_loaded, load
        if model is not None and detail is not None:
            raise DDRSRError('detail is chosen when the weights are loaded: pass ddrsr.loader.load(name, detail=...) '
                             'as model, or a model_name with detail')
        loaded = load(model_name, weights=weights, device='cpu', detail=detail) if model is None else as_loaded(model)
        network = loaded.network
        self.loaded, self.scale, self.model_name, self.use_ddr = loaded, loaded.scale, loaded.name, loaded.use_ddr
        self.tile, self.tile_pad, self.embed_crop = tile, tile_pad, embed_crop
        self._clean = network.clean_embedding.detach().float().cpu().clone() if loaded.has_clean_embedding else None
        self.last_strength, self.last_strength_basis = None, None  # what the last photo ran at (strength auto)
        self.strength, self.on_tile = strength, on_tile
        if half is not None:
            if precision != 'auto':
                raise DDRSRError('give precision or half (its older spelling), not both')
            precision = 'fp16' if half else 'fp32'
        self.precision_name = resolve_precision(precision, self.device, loaded.cpu_precision, loaded.supports_half)
        if tile and not loaded.supports_tiling:
            raise DDRSRError(f'{loaded.name} does not support tiling (its descriptor says supports_tiling=False); '
                             'use --tile 0')
        self.backend_name = choose_backend(backend, self.device)
        if self.precision_name == 'bf16':  # the exported ONNX pair is fp32
            if backend == 'onnx':
                raise DDRSRError('the onnx backend runs fp32 or int8; use --precision fp32 or int8 with it, '
                                 'or --backend torch')
            self.backend_name = 'torch'
        if self.precision_name == 'int8':  # only onnxruntime runs the quantized graph
            if backend == 'torch':
                raise DDRSRError('int8 runs on the onnx backend; use --backend onnx (or auto) with it')
            self.backend_name = 'onnx'
        if self.backend_name == 'onnx':
            try:
                self.backend = _onnx_backend(loaded, onnx_dir, self.device, self.precision_name == 'int8')
                if self.precision_name != 'int8':
                    self.precision_name = 'fp32'  # the exported pair is fp32
            except Exception as error:  # any export/session failure: auto still has torch to fall back on
                if backend == 'onnx' or precision == 'int8':
                    raise
                first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
                warnings.warn(f'the onnxruntime backend is unavailable ({first}); using torch', BackendFallbackWarning)
                self.backend_name = 'torch'
                if self.precision_name == 'int8':  # auto chose int8: torch runs the model's fp32 instead
                    self.precision_name = 'fp32'
        if self.backend_name == 'torch':
            self.backend = TorchBackend(network, self.device, self.precision_name, channels_last,
                                        fp32_ends=loaded.bf16_fp32_ends)

    @property
    def half(self) -> bool:
        """Whether the network runs in fp16 now."""
        return self.precision_name == 'fp16'

    @property
    def model(self) -> Optional[torch.nn.Module]:
        """The torch network (torch backend only)."""
        return getattr(self.backend, 'model', None)

    @property
    def strength(self) -> Union[float, str]:
        """Restoration strength (0 to 1.5, or ``'auto'``); see the class docstring."""
        return self._strength

    @strength.setter
    def strength(self, value: Union[float, str]) -> None:
        if value == AUTO_STRENGTH:
            if not self.use_ddr:
                raise DDRSRError(f'strength auto needs a DDR model; {self.model_name!r} has no DDR embedding')
            from ddrsr.inspection import Inspector

            self._advisor = Inspector(self.loaded.network)  # DDRSRError now if its regressors do not fit the encoder
            self._strength = value
            return
        value = check_strength(value)
        if value != 1 and not self.use_ddr:
            raise DDRSRError(f'model {self.model_name!r} has no DDR embedding, so strength must be 1; '
                             'use a DDR model such as rrdb_ddr_real_x4_lite')
        if value != 1 and self._clean is None:
            raise DDRSRError(f'strength {value:g} needs the clean embedding of model {self.model_name!r}, which '
                             'its weights lack; compute it with python scripts/compute_clean_embedding.py and '
                             'pass the file it writes with --weights (or use strength 1)')
        self._strength = value

    # ----------------------------------------------------------------------------------------- core
    def _embedding(self, lq):
        """One embedding for the whole photo ``lq`` ``(1, 3, H, W)``, or None for a non-DDR network.

        With ``strength != 1`` it is moved along the line from the clean embedding (the same ``e(s)`` for
        every tile): ``e_clean + s * (e - e_clean)``. The ONNX encoder returns numpy, the torch one a tensor.
        """
        if not self.use_ddr:
            return None
        strength = self._photo_strength(lq) if self._strength == AUTO_STRENGTH else float(self._strength)
        self.last_strength = strength
        embedding = self.backend.encode(centre_crop(lq, self.embed_crop))
        return embedding if strength == 1 else steer_embedding(embedding, self._clean, strength)

    def _photo_strength(self, lq):
        """``--strength auto``: ``ddrsr inspect``'s recommendation for this photo (1 where the model has no table)."""
        strength, self.last_strength_basis = self._advisor.recommend(lq)
        return strength if self._clean is not None else 1.0

    def _super_resolve(self, lq):
        """``(1, 3, H, W)`` CPU float32 -> float32 numpy ``(s*H, s*W, 3)``, not clipped."""
        height, width = lq.shape[-2:]
        blender = TileBlender(height, width, self.scale, self.tile, self.tile_pad)
        report = self.on_tile or (lambda done, total: None)
        total = len(blender.tiles)
        with torch.inference_mode():
            report(0, total)
            embedding = self._embedding(lq)
            for done, tile in enumerate(blender.tiles, 1):
                top, bottom, left, right = tile.read_box
                sr = self.backend(lq[:, :, top:bottom, left:right], embedding)
                blender.add(tile, sr[0].permute(1, 2, 0).numpy())
                report(done, total)
        return blender.result()

    def _run(self, rgb):
        """``(H, W, 3)`` float numpy -> float32 numpy ``(s*H, s*W, 3)``, not clipped (fp16 falls back to fp32)."""
        return self._run_tensor(torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None].float())

    def _run_tensor(self, lq):
        try:
            return self._super_resolve(lq)
        except NonFinite:
            warnings.warn('fp16 gave NaN/Inf; running this and later photos in fp32', RuntimeWarning)
            self.backend.to_fp32()
            self.precision_name = 'fp32'
            return self._super_resolve(lq)

    def _output_size(self, height, width, outscale):
        outscale = self.scale if outscale is None else float(outscale)
        if not outscale > 0 or not math.isfinite(outscale):
            raise DDRSRError(f'outscale must be a positive number, got {outscale!r}')
        return max(1, int(round(height * outscale))), max(1, int(round(width * outscale)))

    def enhance_tensor(self, lq: torch.Tensor) -> torch.Tensor:
        """Super-resolve a batch of photos given as a tensor, each photo with its own embedding.

        Tiling, fp16 and ``strength`` work as in :meth:`enhance`; the output is at the network's scale.

        Args:
            lq (Tensor): float ``(B, 3, H, W)`` RGB in [0, 1], on any device.

        Returns:
            Tensor: float32 ``(B, 3, scale * H, scale * W)`` in [0, 1], on the CPU.

        Raises:
            DDRSRError: ``lq`` is not a float ``(B, 3, H, W)`` tensor.

        >>> from ddrsr.archs import RRDBNetDDR
        >>> from ddrsr.loader import LoadedModel
        >>> net = RRDBNetDDR(num_feat=8, num_block=1, num_grow_ch=4, use_ddr=False)
        >>> upsampler = Upsampler(model=LoadedModel.from_module(net), device='cpu', backend='torch')
        >>> upsampler.enhance_tensor(torch.rand(2, 3, 6, 5)).shape
        torch.Size([2, 3, 24, 20])
        """
        check_image_batch(lq, 'Upsampler.enhance_tensor: lq')
        lq = lq.detach().float().cpu()
        outputs = [torch.from_numpy(self._run_tensor(photo[None])).permute(2, 0, 1) for photo in lq]
        return torch.stack(outputs).clamp_(0.0, 1.0)

    def enhance_data(self, image: ImageData, outscale: Optional[float] = None) -> ImageData:
        """Super-resolve an :class:`ImageData` and return a new one (same alpha/grey/bit-depth/metadata).

        Alpha is resized with bicubic interpolation, not run through the network: it is a mask, not a
        photo, so the DDR encoder would measure a "degradation" that is not there, and bicubic keeps
        the mask's values predictable (Real-ESRGAN offers the same as ``--alpha_upsampler``).
        """
        height, width = image.rgb.shape[:2]
        if height < 1 or width < 1:
            raise DDRSRError('the image is empty')
        check_pixel_count('the image', width, height, self.max_pixels)
        out_h, out_w = self._output_size(height, width, outscale)
        if self.max_pixels and out_h * out_w > self.max_pixels * self.scale ** 2:
            raise DDRSRError(f'the output would be {out_w}x{out_h} pixels, over max_pixels x scale² '
                             f'({self.max_pixels / 1e6:g} MP x {self.scale ** 2}); lower the outscale or raise '
                             '--max_pixels')
        sr = self._run(image.rgb)
        if sr.shape[:2] != (out_h, out_w):
            sr = cv2.resize(sr, (out_w, out_h), interpolation=cv2.INTER_LANCZOS4)
        np.clip(sr, 0.0, 1.0, out=sr)  # in place: sr is our own buffer, and a copy is 400 MB at 8K output
        alpha = None
        if image.alpha is not None:
            alpha = np.clip(cv2.resize(image.alpha, (out_w, out_h), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)
        if image.is_gray:
            sr = np.repeat(sr.mean(axis=2, keepdims=True), 3, axis=2)
        return dataclasses.replace(image, rgb=sr, alpha=alpha)

    def enhance(self, img: np.ndarray, outscale: Optional[float] = None) -> np.ndarray:
        """Super-resolve one RGB(A) or grey array.

        Args:
            img (np.ndarray): ``(H, W)``, ``(H, W, 3)`` or ``(H, W, 4)`` in **RGB(A)** order (unlike
                Real-ESRGAN's BGR; flip ``cv2.imread`` results with ``img[..., ::-1]``); uint8, uint16, or
                float in [0, 1].
            outscale (float, optional): output size / input size; default the network's scale.

        Returns:
            np.ndarray: same dtype and channel layout as ``img``, ``round(outscale * H) x round(outscale * W)``.
        """
        img = np.asarray(img)
        if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3, 4)):
            raise DDRSRError(f'expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {img.shape}')
        peak = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(img.dtype, 1.0)
        data = img.astype(np.float32) / peak
        if data.ndim == 3 and data.shape[2] == 1:
            data = data[:, :, 0]
        gray = data.ndim == 2
        rgb = np.repeat(data[:, :, None], 3, axis=2) if gray else data[:, :, :3]
        alpha = data[:, :, 3] if not gray and data.shape[2] == 4 else None
        out = self.enhance_data(ImageData(rgb, alpha, gray), outscale)
        result = out.rgb[:, :, 0] if gray else out.rgb
        if alpha is not None:
            result = np.dstack([result, out.alpha])
        if img.ndim == 3 and img.shape[2] == 1:
            result = result[:, :, None]
        if peak > 1:
            result *= peak  # in place: result is this call's own buffer (saves a full-size float copy)
            result += 0.5
            return result.astype(img.dtype)
        return result.astype(np.float32)

    # ----------------------------------------------------------------------------------------- files
    @staticmethod
    def output_path(out_path: str, image: ImageData, ext: str = 'auto') -> str:
        """The file name actually written: ``ext`` png/jpg forces that suffix; ``auto`` keeps the suffix of
        ``out_path`` when that format can hold the result (JPEG has no alpha and no 16 bits), else png."""
        stem, suffix = os.path.splitext(out_path)
        if ext not in ('auto', 'png', 'jpg'):
            raise DDRSRError(f'unknown --ext {ext!r}; use auto, png or jpg')
        if ext != 'auto':
            return f'{stem}.{ext}'
        keeps = {'.png': True, '.jpg': None, '.jpeg': None, '.webp': None}.get(suffix.lower(), False)
        if keeps is None:  # JPEG / WebP: 8 bits; JPEG also has no alpha
            keeps = image.bit_depth == 8 and (image.alpha is None or suffix.lower() == '.webp')
        return out_path if keeps else f'{stem}.png'

    def upscale_file(self, in_path: str, out_path: str, outscale: Optional[float] = None, ext: str = 'auto',
                     overwrite: bool = False) -> 'FileResult':
        """Read ``in_path``, super-resolve it and write it atomically next to ``out_path``'s name.

        The suffix of the written file follows :meth:`output_path`. The input is never overwritten; an
        existing output is left alone (``FileResult(skipped=True)``) unless ``overwrite``.

        Returns:
            FileResult: the path written (or skipped) and whether it was skipped.
        """
        image = read_image(in_path, self.max_pixels)
        final = self.output_path(os.fspath(out_path), image, ext)
        if os.path.abspath(final) == os.path.abspath(in_path) or (
                os.path.exists(final) and os.path.samefile(final, in_path)):
            raise DDRSRError(f'{in_path}: the output would overwrite the input; choose another -o folder or --suffix')
        if os.path.exists(final) and not overwrite:
            return FileResult(final, skipped=True)
        result = self.enhance_data(image, outscale)
        bit_depth = result.bit_depth if final.lower().endswith('.png') else 8
        write_image(final, result.rgb, result.alpha, result.is_gray, bit_depth, result.icc, result.exif)
        return FileResult(final)


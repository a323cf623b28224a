"""Defaults and choices that the command line and the library share, in a module that imports nothing heavy.

The CLI's parsers read their defaults and ``choices`` from here, so ``ddrsr --help`` and ``python inference.py
--help`` build without importing torch, basicsr or kornia; the library modules that use these values import them
from here too, so each has one definition.
"""
import os

#: Where the shipped weights (and the inspect regressors) are: ``$DDRSR_WEIGHTS`` when set, else the repository's
#: ``weights/`` beside the package (an editable install, or a run from a clone). A wheel installed with ``pip install
#: .`` does not carry the 40 MB of weights: point ``DDRSR_WEIGHTS`` at a copy of that folder.
WEIGHTS_DIR = os.environ.get('DDRSR_WEIGHTS') or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'weights')

#: ``ddrsr upscale`` / ``Upsampler``: the largest input in pixels. A guard against decompression bombs, not
#: against memory (tiling bounds that).
MAX_PIXELS = 100_000_000
#: ``ddrsr serve``: the largest upload (16 MP, a phone photo). Lower than MAX_PIXELS because a server runs for
#: others: the x4 result of 16 MP is 256 MP, ~3 GB as float32 while assembled, and on a CPU an upscale takes
#: minutes per megapixel; raise it with --max_pixels.
SERVE_MAX_PIXELS = 16_000_000
#: ``ddrsr serve``: tile size in input pixels (progress and cancel act per tile).
SERVE_TILE = 256
#: Default LR padding per tile side. It must cover the *effective* receptive field (what measurably
#: reaches an output pixel), not the theoretical one (~92 LR pixels for the lite RRDBNet-DDR). With the
#: feathered blend a tile uses nothing from its outer tile_pad/2 pixels. Measured tiled-vs-whole max abs
#: error (tile 32, 70x90 photo, tiny test net): pad 4 -> 2.8e-3, 6 -> 7.9e-6, 8 -> 3.3e-7, 24 -> 2.4e-7
#: (float noise); the randomly initialised lite net is at float noise from pad 12. Trained nets reach
#: further, so the default keeps a wide margin (Real-ESRGAN uses 10 for a 23-block RRDBNet). Re-measure
#: a trained checkpoint with scripts/measure_tile_pad.py.
DEFAULT_TILE_PAD = 24
#: Largest LR crop (per side) the DDR encoder sees (the Upsampler and ``ddrsr inspect``). A *crop*, not a resize:
#: resizing would change the blur width and the noise level, which are exactly what the encoder measures.
DEFAULT_EMBED_CROP = 512

#: Inference backends and precisions (``ddrsr.inference.upsampler``, ``ddrsr.inference.torch_backend``).
BACKENDS = ('auto', 'torch', 'onnx')
PRECISIONS = ('auto', 'fp32', 'bf16', 'fp16', 'int8')
#: How many convolutions at the start and at the end of a network stay fp32 when the rest runs in bf16 or int8
#: (``ddrsr.inference.precision_ends``); a model's descriptor may declare fewer for bf16 (``LoadedModel``).
FULL_PRECISION_ENDS = (1, 2)

#: The named degradation specs of the validation sets (``ddrsr.data.degradations.parse_spec``).
NAMED_SPECS = ('clean', 'blur2', 'blur4', 'noise20', 'blur2_noise20', 'jpeg30', 'jpeg50')

#: FAIG: attribution methods and the filter percentages masked by default (``ddrsr.faig``).
FAIG_METHODS = ('faig', 'ig', 'absdiff', 'random')
FAIG_PERCENTS = (1, 3, 5, 10)

#: Distortion identification methods (``ddrsr.analysis.identification``).
IDENTIFY_METHODS = ('ddr', 'ddr_stats', 'brisque', 'resnet18')

#: The shipped ``ddrsr inspect`` regressors.
DEFAULT_REGRESSORS = os.path.join(WEIGHTS_DIR, 'inspect_regressors_lite.npz')

"""Inference on photos: the Upsampler (tiles, one DDR embedding per photo, alpha/grey/16-bit, fp16, torch|onnx)."""
from ddrsr.data.photo_io import ImageData, read_image, write_image  # noqa: F401
from .upsampler import DEFAULT_TILE_PAD, FileResult, Upsampler  # noqa: F401

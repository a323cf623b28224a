"""Export to ONNX (one graph, or the encoder/generator pair for tiling) and check it with onnxruntime."""
from .onnx_export import count_ops, export_onnx, export_split, verify_onnx  # noqa: F401

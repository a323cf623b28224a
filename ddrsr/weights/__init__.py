"""Weights handling: safe checkpoint loading and atomic saving (checkpoint.py), the ``.safetensors`` file
(file_format.py), the shipped folder's SHA256SUMS (manifest.py) and model cards (companions.py)."""

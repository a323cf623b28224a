"""``ddrsr serve``: a local web page over the library (optional extra: ``pip install -e ".[web]"``).

:mod:`~ddrsr.serve.engine` does the work and needs no web package; :mod:`~ddrsr.serve.app` is the Gradio
page and :mod:`~ddrsr.serve.server` starts and stops it. Only the engine is imported here, so
``import ddrsr.serve`` works without Gradio.
"""
from .engine import JobCancelled, PhotoReport, ServeEngine, UpscaleResult, report_row

__all__ = ['JobCancelled', 'PhotoReport', 'ServeEngine', 'UpscaleResult', 'report_row']

"""ddrsr: blind super-resolution guided by deep degradation representations (DDR).

Importing ddrsr is cheap: it installs the basicsr/torchvision alias finder (``ddrsr.compat``) and nothing else, so
``ddrsr --help`` answers without importing torch. The subpackages load on first use (``ddrsr.archs``,
``ddrsr.loader``, ...). Importing ``ddrsr.archs``, ``ddrsr.data`` or ``ddrsr.models`` registers their classes into
basicsr's registries, as Real-ESRGAN's packages do; :func:`register` imports all three, for code that builds
networks, datasets or models from BasicSR option files.
"""
import importlib

from . import compat  # noqa: F401  (the alias finder must be in place before basicsr is imported anywhere)
from .errors import DDRSRError  # noqa: F401

__version__ = '0.1.0'


def register():
    """Fill basicsr's ARCH/DATASET/MODEL registries with ddrsr's classes (idempotent).

    >>> import ddrsr
    >>> ddrsr.register()
    >>> from basicsr.utils.registry import ARCH_REGISTRY
    >>> ARCH_REGISTRY.get('RRDBNetDDR').__name__
    'RRDBNetDDR'
    """
    from . import archs, data, models  # noqa: F401


def __getattr__(name):
    # PEP 562: `ddrsr.archs` etc. work after a bare `import ddrsr`, importing the subpackage on first access.
    try:
        return importlib.import_module(f'{__name__}.{name}')
    except ModuleNotFoundError as error:
        if error.name != f'{__name__}.{name}':
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None

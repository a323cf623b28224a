"""ddrsr: blind super-resolution guided by deep degradation representations (DDR).

Importing ddrsr installs the basicsr/torchvision alias first, then registers ddrsr's architectures,
datasets and models into basicsr's registries (as Real-ESRGAN does).
"""
from . import compat  # noqa: F401  (must run before basicsr is imported anywhere)
from .errors import DDRSRError  # noqa: F401
from . import archs, data, models  # noqa: F401,E402

__version__ = '0.1.0'

"""The single shim between basicsr 1.4.2 and modern torchvision.

basicsr 1.4.2 (its last release) does ``from torchvision.transforms.functional_tensor import
rgb_to_grayscale``; torchvision 0.17 removed that private module. The upstream fix was merged but never
released, so ddrsr registers an alias module before basicsr is first imported. ``ddrsr/__init__.py``
imports this module first; nothing else in ddrsr should touch torchvision internals.
"""
import importlib
import sys
import types

_ALIAS = 'torchvision.transforms.functional_tensor'


def install_torchvision_alias():
    """Make ``torchvision.transforms.functional_tensor`` importable. Idempotent; returns the module."""
    if _ALIAS in sys.modules:
        return sys.modules[_ALIAS]
    try:
        return importlib.import_module(_ALIAS)
    except ImportError:
        pass
    from torchvision.transforms import functional

    alias = types.ModuleType(_ALIAS)
    alias.__doc__ = 'ddrsr alias: the functions basicsr 1.4.2 needs, taken from torchvision.transforms.functional.'
    alias.rgb_to_grayscale = functional.rgb_to_grayscale
    sys.modules[_ALIAS] = alias
    return alias


install_torchvision_alias()

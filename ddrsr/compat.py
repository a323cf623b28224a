"""The single shim between basicsr 1.4.2 and modern torchvision.

basicsr 1.4.2 (its last release) does ``from torchvision.transforms.functional_tensor import
rgb_to_grayscale``; torchvision 0.17 removed that private module. The upstream fix was merged but never
released, so ddrsr serves an alias module in its place. ``import ddrsr`` installs a finder for it at the end of
``sys.meta_path``: it costs nothing until basicsr asks for the module (so ``ddrsr --help`` never imports torch),
and it is only consulted when torchvision has no such module of its own. Nothing else in ddrsr should touch
torchvision internals.
"""
import importlib
import importlib.abc
import importlib.util
import sys

_ALIAS = 'torchvision.transforms.functional_tensor'


class _AliasFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Builds ``torchvision.transforms.functional_tensor`` from ``torchvision.transforms.functional``."""

    def find_spec(self, fullname, path=None, target=None):
        return importlib.util.spec_from_loader(fullname, self) if fullname == _ALIAS else None

    def create_module(self, spec):
        return None  # the default module object

    def exec_module(self, module):
        from torchvision.transforms import functional

        module.__doc__ = 'ddrsr alias: the functions basicsr 1.4.2 needs, taken from torchvision.transforms.functional.'
        module.rgb_to_grayscale = functional.rgb_to_grayscale


def install_alias_finder():
    """Put the alias finder at the end of ``sys.meta_path`` (idempotent; imports nothing heavy)."""
    if not any(isinstance(finder, _AliasFinder) for finder in sys.meta_path):
        sys.meta_path.append(_AliasFinder())


def install_torchvision_alias():
    """Make ``torchvision.transforms.functional_tensor`` importable now. Idempotent; returns the module."""
    install_alias_finder()
    return importlib.import_module(_ALIAS)


install_alias_finder()

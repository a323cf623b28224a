"""The repository's own scripts, imported by path, so that the release command reuses them instead of copying them."""
import importlib.util
import os

from ddrsr.release.stages import ROOT


def load_script(name):
    """Import ``scripts/<name>.py`` as a module."""
    path = os.path.join(ROOT, 'scripts', f'{name}.py')
    spec = importlib.util.spec_from_file_location(f'ddrsr_release_script_{name}', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

"""The typed public API (issue 24): annotated signatures, and mypy clean on the modules mypy.ini lists."""
import ast
import os
import subprocess
import sys

import pytest

from conftest import ROOT

#: module file -> the public functions and methods whose every parameter and return value must be annotated.
TYPED_API = {
    'ddrsr/loader.py': ['load', 'as_loaded', 'build_generator', 'detail_state', 'LoadedModel.to',
                        'LoadedModel.from_module', 'LoadedModel.has_clean_embedding'],
    'ddrsr/inference/upsampler.py': ['Upsampler.__init__', 'Upsampler.enhance', 'Upsampler.enhance_data',
                                     'Upsampler.enhance_tensor', 'Upsampler.upscale_file', 'Upsampler.output_path',
                                     'Upsampler.strength', 'Upsampler.half', 'Upsampler.model', 'check_strength',
                                     'choose_backend'],
    'ddrsr/data/degradations.py': ['degrade', 'degrade_with_spec', 'parse_spec'],
    'ddrsr/data/random_degradation.py': ['RandomDegradation.from_options', 'RandomDegradation.sample',
                                         'RandomDegradation.validate', 'RandomDegradation.__call__'],
    'ddrsr/analysis/ddr.py': ['analyze_layer'],
    'ddrsr/faig/attribution.py': ['attribute'],
    'ddrsr/faig/masking.py': ['mask', 'mask_filters', 'masking_table'],
    'ddrsr/cli/__init__.py': ['main', 'build_parser'],
    'ddrsr/cli/upscale.py': ['main', 'build_parser', 'add_arguments', 'cmd_upscale'],
    'ddrsr/utils/markdown.py': ['markdown_table', 'write_text'],
    'ddrsr/utils/cli_flags.py': ['add_hidden_aliases', 'is_house_spelling'],
}


def definitions(path):
    """``{'name' or 'Class.name': [FunctionDef, ...]}`` of a module's top-level functions and methods."""
    found = {}
    for node in ast.parse(open(os.path.join(ROOT, path), encoding='utf-8').read()).body:
        if isinstance(node, ast.FunctionDef):
            found.setdefault(node.name, []).append(node)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef):
                    found.setdefault(f'{node.name}.{item.name}', []).append(item)
    return found


@pytest.mark.parametrize('path', sorted(TYPED_API))
def test_public_api_is_annotated(path):
    found, missing = definitions(path), []
    for name in TYPED_API[path]:
        assert name in found, f'{path} has no {name}'
        for function in found[name]:  # a property and its setter
            arguments = function.args.posonlyargs + function.args.args + function.args.kwonlyargs
            bare = [a.arg for a in arguments if a.annotation is None and a.arg not in ('self', 'cls')]
            if bare or function.returns is None:
                missing.append(f'{name}: {", ".join(bare) or "return value"}')
    assert not missing, f'{path}: unannotated {missing}'


def test_mypy_is_clean_on_the_typed_modules():
    listed = open(os.path.join(ROOT, 'mypy.ini'), encoding='utf-8').read()
    assert all(path in listed for path in TYPED_API)  # every annotated module is also checked
    result = subprocess.run([sys.executable, '-m', 'mypy', '--config-file', 'mypy.ini'], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr

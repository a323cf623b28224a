"""The ``>>>`` examples of the public API run as written, and importing the library stays light."""
import doctest
import importlib
import os
import subprocess
import sys

import pytest

from conftest import ROOT

DOCUMENTED = ['ddrsr', 'ddrsr.loader', 'ddrsr.utils.device', 'ddrsr.data.patches', 'ddrsr.data.degradations',
              'ddrsr.archs.module_utils', 'ddrsr.archs.stylemod_rrdbnet_arch', 'ddrsr.inference.upsampler',
              'ddrsr.analysis.ddr', 'ddrsr.faig.attribution', 'ddrsr.faig.masking', 'ddrsr.faig.verdicts', 'ddrsr.analysis.verdicts',
              'ddrsr.analysis.ablation', 'ddrsr.analysis.scores']


@pytest.mark.parametrize('name', DOCUMENTED)
def test_docstring_examples_run(name):
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f'{name} has no >>> example'
    assert result.failed == 0


def test_importing_the_inference_api_loads_no_cli_plotting_or_sklearn():
    """``import ddrsr.inference`` (what ``Upsampler`` users pay) pulls in no CLI, matplotlib or sklearn."""
    code = ('import sys, ddrsr.inference, ddrsr.loader; '
            'print(sorted({m.split(".")[0] if not m.startswith("ddrsr.cli") else "ddrsr.cli" for m in sys.modules '
            'if m.startswith(("ddrsr.cli", "matplotlib", "sklearn", "argparse_", "gradio"))}))')
    out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True, check=True,
                         env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert out.stdout.strip() == '[]', out.stdout


def test_help_imports_no_torch():
    """`ddrsr --help`, `ddrsr upscale --help` and `python inference.py --help` build their parsers without torch,
    basicsr or kornia (issue 23: start-up <= 0.5 s; importing torch alone takes seconds on these CPUs)."""
    code = ('import sys\n'
            'import ddrsr.cli\n'
            'from ddrsr.cli import upscale\n'
            'parser = ddrsr.cli.build_parser()\n'
            'parser.format_help()\n'
            'upscale.build_parser().format_help()\n'
            'heavy = sorted({"torch", "torchvision", "basicsr", "kornia", "numpy", "cv2"} & set(sys.modules))\n'
            'assert not heavy, heavy\n')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_ddrsr_attributes_load_lazily():
    code = ('import sys, ddrsr\n'
            'assert "torch" not in sys.modules\n'
            'assert ddrsr.archs.RRDBNetDDR.__name__ == "RRDBNetDDR"\n'
            'from basicsr.utils.registry import ARCH_REGISTRY\n'
            'ARCH_REGISTRY.get("RRDBNetDDR")\n'
            'try:\n'
            '    ddrsr.no_such_module\n'
            'except AttributeError:\n'
            '    pass\n'
            'else:\n'
            '    raise SystemExit("no AttributeError")\n')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_loader_registers_what_it_builds_in_a_fresh_process():
    """`import ddrsr` no longer fills basicsr's registries; the loader must not depend on someone else doing it."""
    code = ('import sys\n'
            'from ddrsr.loader import load, build_generator\n'
            'assert "ddrsr.archs" not in sys.modules\n'
            'loaded = load("rrdb_ddr_real_x4_lite")\n'
            'net = build_generator({"type": "SRResNet", "num_feat": 4, "num_block": 1, "upscale": 4})\n'
            'print(loaded.scale, type(net).__name__)\n')
    out = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ['4', 'SRResNet']

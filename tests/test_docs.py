"""The ``>>>`` examples of the public API run as written, and importing the library stays light."""
import doctest
import importlib
import os
import subprocess
import sys

import pytest

from conftest import ROOT

DOCUMENTED = ['ddrsr.loader', 'ddrsr.utils.device', 'ddrsr.data.patches', 'ddrsr.data.degradations',
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

import subprocess
import sys


def test_import_ddrsr_then_basicsr_in_fresh_interpreter():
    """basicsr 1.4.2 imports torchvision.transforms.functional_tensor; ddrsr must alias it first."""
    code = ('import ddrsr, basicsr\n'
            'from basicsr.data.degradations import random_add_gaussian_noise_pt\n'
            'import torchvision.transforms.functional_tensor as ft\n'
            'assert callable(ft.rgb_to_grayscale)\n')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_alias_is_idempotent():
    from ddrsr.compat import install_torchvision_alias

    assert install_torchvision_alias() is install_torchvision_alias()


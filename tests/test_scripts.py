import os
import subprocess
import sys

import cv2
import numpy as np

from conftest import ROOT


def test_prepare_dataset_crops_skips_flat_and_excludes(tmp_path):
    hr = tmp_path / 'hr'
    hr.mkdir()
    rng = np.random.default_rng(0)
    textured = (rng.random((100, 130, 3)) * 255).astype(np.uint8)
    flat = np.full((100, 130, 3), 128, np.uint8)
    cv2.imwrite(str(hr / 'textured.png'), textured)
    cv2.imwrite(str(hr / 'flat.png'), flat)
    cv2.imwrite(str(hr / 'heldout.png'), textured)
    exclude = tmp_path / 'val.txt'
    exclude.write_text('heldout.png\n')
    out = tmp_path / 'sub'
    result = subprocess.run([sys.executable, os.path.join(ROOT, 'scripts', 'prepare_dataset.py'), '-i', str(hr), '-o',
                             str(out), '--crop_size', '48', '--step', '40', '--exclude', str(exclude)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    names = sorted(os.listdir(out))
    # 100x130 with 48-px crops every 40 px (plus one flush with each edge): 3 rows x 4 columns.
    assert len(names) == 12 and all(n.startswith('textured_s') for n in names)
    meta = (tmp_path / 'meta_info_sub.txt').read_text().splitlines()
    assert sorted(line.split(' ')[0] for line in meta) == names
    assert cv2.imread(str(out / names[-1])).shape == (48, 48, 3)


def test_thin_scripts_import_their_library_and_print_help():
    """Scripts whose logic lives in the library (tested there) still import it: each --help, in one subprocess."""
    scripts = ['compute_clean_embedding', 'control_report', 'inspect_report', 'make_bad_inputs', 'ship_weights']
    code = ('import runpy, sys\n'
            f'for name in {scripts!r}:\n'
            '    sys.argv = [name, "--help"]\n'
            '    try:\n'
            f'        runpy.run_path({os.path.join(ROOT, "scripts")!r} + "/" + name + ".py", run_name="__main__")\n'
            '    except SystemExit as stop:\n'
            '        assert stop.code == 0, (name, stop.code)\n'
            '    print("ok", name, flush=True)\n')
    result = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd=str(ROOT),
                            env=dict(os.environ, OMP_NUM_THREADS='1'), timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert [line for line in result.stdout.splitlines() if line.startswith('ok ')] == [f'ok {n}' for n in scripts]

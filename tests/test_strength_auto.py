"""``--strength auto``: ddrsr inspect's recommendation per photo, for the upscaler, the CLI and evaluate."""
import os

import pytest

from conftest import ROOT
from ddrsr.errors import DDRSRError
from ddrsr.inference import Upsampler, read_image
from ddrsr.loader import LoadedModel
from tiny_models import tiny_ddr_net, tiny_plain_net


def test_auto_applies_the_shipped_models_recommendation_per_photo():
    photo = read_image(os.path.join(ROOT, 'inputs', 'seeding_detail.jpg')).rgb[:64, :64]
    upsampler = Upsampler('rrdb_ddr_real_x4_lite', strength='auto', device='cpu', backend='torch')
    auto = upsampler.enhance(photo)
    assert 'PSNR-best' in upsampler.last_strength_basis and 0 <= upsampler.last_strength <= 1.5
    fixed = Upsampler('rrdb_ddr_real_x4_lite', strength=upsampler.last_strength, device='cpu', backend='torch')
    assert (fixed.enhance(photo) == auto).all()  # auto is exactly the recommended fixed strength


def test_auto_is_refused_where_it_cannot_apply():
    with pytest.raises(DDRSRError, match='needs a DDR model'):
        Upsampler(model=LoadedModel.from_module(tiny_plain_net()), strength='auto', device='cpu', backend='torch')
    with pytest.raises(DDRSRError, match='another DDR encoder'):  # the shipped regressors read another encoder
        Upsampler(model=LoadedModel.from_module(tiny_ddr_net()), strength='auto', device='cpu', backend='torch')


def test_cli_accepts_auto(tmp_path, capsys):
    from ddrsr.cli.upscale import main

    source = tmp_path / 'in'
    source.mkdir()
    from PIL import Image
    Image.open(os.path.join(ROOT, 'inputs', 'seeding_detail.jpg')).crop((0, 0, 40, 40)).save(source / 'a.png')
    assert main(['-i', str(source), '-o', str(tmp_path / 'out'), '--strength', 'auto', '--backend', 'torch']) == 0
    assert (tmp_path / 'out' / 'a_out.png').is_file()
    with pytest.raises(SystemExit):
        main(['--strength', 'strong'])
    assert 'or auto' in capsys.readouterr().err

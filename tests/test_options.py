import glob
import os

import pytest
import yaml

from conftest import ROOT
from ddrsr.errors import DDRSRError
from ddrsr.options import check_option_file, check_options, ema_leftover, option_warnings


@pytest.mark.parametrize('path', sorted(glob.glob(os.path.join(ROOT, 'options', '*.yml')) +
                                        glob.glob(os.path.join(ROOT, 'tests', 'data', '*_smoke.yml'))))
def test_shipped_option_files_pass(path):
    opt = check_option_file(path)
    assert ema_leftover(opt) < 0.01  # the saved params_ema must not be part random
    assert option_warnings(opt, path) == []


def smoke():
    with open(os.path.join(ROOT, 'tests', 'data', 'train_srgan_encoder_smoke.yml')) as f:
        return yaml.safe_load(f)


@pytest.mark.parametrize('section,bad,good', [
    (None, 'modle_type', 'model_type'),
    ('train', 'total_iters', 'total_iter'),
    ('network_g', 'num_blocks', 'num_block'),
    ('logger', 'print_frequency', 'print_freq'),
])
def test_misspelled_key_names_key_file_and_suggestion(section, bad, good):
    opt = smoke()
    target = opt if section is None else opt[section]
    target[bad] = target.pop(good) if good in target else 1
    with pytest.raises(DDRSRError) as info:
        check_options(opt, source='my_options.yml')
    message = str(info.value)
    assert 'my_options.yml' in message and bad in message and f"did you mean '{(section + '.') if section else ''}{good}'" in message


def test_unknown_dataset_key_and_arch_type():
    opt = smoke()
    opt['datasets']['train']['gt_szie'] = 64
    with pytest.raises(DDRSRError, match='gt_size'):
        check_options(opt)
    opt = smoke()
    opt['network_g']['type'] = 'SRResNett'
    with pytest.raises(DDRSRError, match='SRResNet'):
        check_options(opt)


def test_missing_key_basicsr_needs():
    opt = smoke()
    del opt['val']['save_img']
    with pytest.raises(DDRSRError, match='val.save_img'):
        check_options(opt)


def test_long_ema_horizon_for_a_short_run_warns():
    opt = smoke()
    opt['train'].update(ema_decay=0.999, total_iter=2500)
    assert 0.08 < ema_leftover(opt) < 0.09
    (message, ) = option_warnings(opt, 'short.yml')
    assert 'short.yml' in message and '8%' in message

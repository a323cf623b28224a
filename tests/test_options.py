import glob
import os

import pytest
import yaml

from conftest import ROOT
from ddrsr.errors import DDRSRError
from ddrsr.models.ema import auto_ema_decay, ema_leftover, resolve_ema_decay
from ddrsr.training.options import check_option_file, check_options


@pytest.mark.parametrize('path', sorted(glob.glob(os.path.join(ROOT, 'options', '*.yml')) +
                                        glob.glob(os.path.join(ROOT, 'tests', 'data', '*_smoke.yml'))))
def test_shipped_option_files_pass(path):
    opt = check_option_file(path, check_paths=False)  # the datasets are not in the repository
    assert ema_leftover(opt) < 0.01  # the saved params_ema must not be part random


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


def test_long_ema_horizon_for_a_short_run_is_refused():
    opt = smoke()
    opt['train'].update(ema_decay=0.999, total_iter=2500)
    assert 0.08 < ema_leftover(opt) < 0.09
    with pytest.raises(DDRSRError, match=r'short.yml: train.ema_decay 0.999 .* 8\.2% .*ema_decay: auto') as error:
        check_options(opt, 'short.yml')
    assert '0.996' in str(error.value)  # the largest decay allowed: horizon 250 = 10% of 2500


def test_ema_horizon_at_the_limit_passes_and_bad_values_fail():
    opt = smoke()
    opt['train'].update(ema_decay=0.996, total_iter=2500)  # horizon 0.996 / 0.004 = 249 iterations < 10%
    check_options(opt)
    for bad in (1.0, -0.1, 'fast', True):
        opt['train']['ema_decay'] = bad
        with pytest.raises(DDRSRError, match='ema_decay'):
            check_options(opt)


def test_ema_decay_auto_follows_total_iter():
    assert auto_ema_decay(2000) == pytest.approx(100 / 101) and auto_ema_decay(400000) == 0.999
    assert auto_ema_decay(10) == pytest.approx(1 / 3)
    opt = smoke()
    opt['train'].update(ema_decay='auto', total_iter=3000)
    check_options(opt)
    train = dict(opt['train'])
    assert resolve_ema_decay(train) == train['ema_decay'] == pytest.approx(150 / 151, abs=1e-6)
    assert ema_leftover(opt) < 1e-8


# ------------------------------------------------------------------------------- value types, paths
def _write(tmp_path, text):
    path = tmp_path / 'bad_options.yml'
    path.write_text(text)
    return str(path)


def _smoke_text():
    return open(os.path.join(ROOT, 'tests', 'data', 'train_srgan_encoder_smoke.yml')).read().replace(
        'dataroot_gt: tests/data/hr', f'dataroot_gt: {os.path.join(ROOT, "tests", "data", "hr")}')


@pytest.mark.parametrize('old,new,key,phrase', [
    ('lr: !!float 2e-4', 'lr: 2e-4', 'train.optim_g.lr', 'write 0.0002 or !!float 2e-4'),  # YAML 1.1: text
    ('save_img: false', "save_img: 'false'", 'val.save_img', 'without quotes'),
    ('network_g: {type: SRResNet, num_feat: 8,', "network_g: {type: SRResNet, num_feat: '8',", 'network_g.num_feat',
     'must be an integer'),
    ('batch_size_per_gpu: 2', 'batch_size_per_gpu: 2.5', 'datasets.train.batch_size_per_gpu', 'must be an integer'),
    ('total_iter: 4', 'total_iter: four', 'train.total_iter', 'must be a whole number'),
    ('milestones: [100]', 'milestones: 100', 'train.scheduler.milestones', 'list of iteration numbers'),
    ('num_gpu: 0', 'num_gpu: none', 'num_gpu', 'integer or auto'),
])
def test_wrong_value_type_names_key_and_file(tmp_path, old, new, key, phrase):
    text = _smoke_text()
    assert old in text
    path = _write(tmp_path, text.replace(old, new, 1))
    with pytest.raises(DDRSRError) as info:
        check_option_file(path)
    message = str(info.value)
    assert path in message and key in message and phrase in message


def test_basicsr_style_values_are_accepted(tmp_path):
    text = _smoke_text().replace('total_iter: 4', 'total_iter: !!float 4e3').replace('val_freq: 2', 'val_freq: 2.0e+3')
    check_option_file(_write(tmp_path, text))


@pytest.mark.parametrize('old,new,key', [
    ('dataroot_gt: ', 'dataroot_gt: /no/such/folder_', 'datasets.train.dataroot_gt'),
    ('    gt_size: 128', '    gt_size: 128\n    meta_info: missing_meta_info.txt', 'datasets.train.meta_info'),
])
def test_missing_dataset_path_fails_before_training(tmp_path, old, new, key):
    from ddrsr.training.pipeline import train

    path = _write(tmp_path, _smoke_text().replace(old, new, 1))
    with pytest.raises(DDRSRError) as info:
        train(root_path=tmp_path, argv=['-opt', path])
    assert path in str(info.value) and key in str(info.value) and 'does not exist' in str(info.value)
    assert not (tmp_path / 'experiments').exists()  # nothing was started
    check_option_file(path, check_paths=False)  # only the path is wrong

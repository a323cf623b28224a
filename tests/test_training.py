"""Smoke trainings on the CPU: encoder (pixel then GAN), resume, and RRDBNet-DDR from a plain RRDBNet."""
import glob
import os
import re

import torch
import yaml
from basicsr.archs.rrdbnet_arch import RRDBNet

from conftest import DATA
from ddrsr.training.pipeline import train


def write_options(tmp_path, name, **path_overrides):
    with open(os.path.join(DATA, name)) as f:
        opt = yaml.safe_load(f)
    for dataset in opt['datasets'].values():
        dataset['dataroot_gt'] = os.path.join(DATA, 'hr')
    opt['path'].update(path_overrides)
    out = tmp_path / name
    out.write_text(yaml.safe_dump(opt))
    return str(out), opt['name']


def test_encoder_smoke_train_and_resume_on_cpu(tmp_path):
    opt_path, name = write_options(tmp_path, 'train_srgan_encoder_smoke.yml')
    train(root_path=tmp_path, argv=['-opt', opt_path, '--force_yml', 'train:total_iter=2'])
    exp = tmp_path / 'experiments' / name
    assert (exp / 'training_states' / '2.state').exists()
    train(root_path=tmp_path, argv=['-opt', opt_path, '--auto_resume'])  # continues to total_iter: 4
    assert (exp / 'training_states' / '4.state').exists()
    logs = ''.join(open(p).read() for p in glob.glob(str(exp / '*.log')))
    assert re.search(r'Resuming training from epoch: \d+, iter: 2\.', logs)
    assert 'l_g_gan' in logs  # the GAN phase started after gan_start_iter
    checkpoint = torch.load(exp / 'models' / 'net_g_4.pth', weights_only=True)
    assert 'params_ema' in checkpoint


def test_ddr_smoke_train_from_plain_rrdbnet(tmp_path):
    from ddrsr.archs import SRResNet

    encoder_path = tmp_path / 'encoder.pth'
    encoder = SRResNet(num_feat=8, num_block=2).state_dict()
    torch.save({'params_ema': encoder}, encoder_path)
    plain_path = tmp_path / 'rrdbnet.pth'
    plain = RRDBNet(3, 3, scale=4, num_feat=8, num_block=2, num_grow_ch=4)
    torch.save({'params_ema': plain.state_dict()}, plain_path)
    opt_path, name = write_options(tmp_path, 'train_rrdb_ddr_smoke.yml', pretrain_network_encoder=str(encoder_path),
                                   pretrain_network_g=str(plain_path))  # holds only params_ema, like Real-ESRGAN
    train(root_path=tmp_path, argv=['-opt', opt_path])
    state = torch.load(tmp_path / 'experiments' / name / 'models' / 'net_g_latest.pth', weights_only=True)
    params = state['params_ema']
    assert any(k.startswith('style_mods.') for k in params)
    assert torch.equal(params['encoder.generator.conv_first.weight'], encoder['conv_first.weight'])  # frozen
    logs = ''.join(open(p).read() for p in glob.glob(str(tmp_path / 'experiments' / name / '*.log')))
    assert 'val_blur2' in logs and 'val_noise20' in logs  # PSNR per named spec

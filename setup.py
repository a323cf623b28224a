#!/usr/bin/env python
from setuptools import find_packages, setup

# Maintainer tooling: the release family, the DDR reproduction and the bad-input generator. They live in the repository
# (scripts/ and tests/ run them from a clone) and stay out of the wheel: nothing in the installed package imports them
# (tests/test_layers.py checks it).
MAINTAINER_PACKAGES = ['ddrsr.release', 'ddrsr.analysis.reproduction', 'ddrsr.testing']

setup(
    name='ddrsr',
    version='0.1.0',
    description='Blind super-resolution guided by deep degradation representations (DDR), on BasicSR',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(include=['ddrsr', 'ddrsr.*'],
                           exclude=[name + tail for name in MAINTAINER_PACKAGES for tail in ('', '.*')]),
    python_requires='>=3.10',
    install_requires=[
        'torch>=2.1', 'torchvision', 'basicsr==1.4.2', 'kornia>=0.7.3', 'timm', 'numpy', 'scipy', 'scikit-learn',
        'onnx', 'onnxscript', 'onnxruntime-gpu', 'safetensors', 'Pillow', 'opencv-python', 'matplotlib', 'tqdm', 'pyyaml',
        'scikit-image', 'PyWavelets',  # ddrsr inspect: skimage.restoration.estimate_sigma needs PyWavelets
    ],
    extras_require={
        'test': ['pytest>=7', 'spandrel>=0.4', 'playwright>=1.40', 'mypy>=1.8'],  # spandrel: tests that chaiNNer/ComfyUI load our files; mypy: tests/test_typing.py
        # playwright drives the system chromium in tests/test_serve_browser.py (skipped without one)
        'web': ['gradio>=5,<7'],  # ddrsr serve: the local web page (gr.ImageSlider needs 5)
    },
    entry_points={'console_scripts': ['ddrsr=ddrsr.cli:main']},
)

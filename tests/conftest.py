import os

import pytest
import torch

import ddrsr  # noqa: F401  (installs the basicsr alias and fills the registries)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, 'tests', 'data')



@pytest.fixture(scope='session', autouse=True)
def one_thread():
    """One torch thread: on a loaded 2-core machine, two OpenMP threads are ~50x slower for these tiny nets."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

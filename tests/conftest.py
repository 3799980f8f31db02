import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
sys.path.insert(0, str(TESTS))  # the toy adapter lives beside the tests, not in the library

SHARED = ROOT.parent / "shared"


@pytest.fixture
def shared_data() -> Path:
    """The real data beside the project root (only on the project's own machines): skip where absent."""
    path = SHARED / "data"
    if not path.is_dir():
        pytest.skip("../shared/data is not here")
    return path


@pytest.fixture
def one_torch_thread():
    """Torch on one thread, as the engine's executors train every job by default (`--cpus-per-job 1`):
    tiny policies and models are slower on more threads."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)

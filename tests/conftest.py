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

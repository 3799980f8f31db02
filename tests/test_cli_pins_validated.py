"""The pinned preset hashes (tests/test_cli.py's PINNED) are the ones the CLI writes: each preset parsed and
validated by the CLI's own `parse` (flags, preset, `validate()`, which may read data), not a config built by hand.
Vision presets read small generated files in torchvision's layout (the data folder stays out of the identity)."""

from __future__ import annotations

import pytest
from test_cli import NEEDS_DATA, PINNED

from benchmarks.fake_vision_files import write_cifar10, write_mnist
from benchmarks.run import parse
from lth_core.config import config_hash
from lth_core.errors import UsageError
from lth_core.imp_runner import run_identity

# presets that validate only on a CUDA device here: the exact line a CPU gets, and the flags that pass it
CUDA_ONLY = {("nlp", "yu2020-wmt14"): "--precision amp needs a CUDA device; use --precision fp32 on CPU"}


@pytest.fixture(scope="module")
def vision_data(tmp_path_factory):
    root = tmp_path_factory.mktemp("vision-data")
    write_mnist(root, n_train=60, n_test=20)
    write_cifar10(root, per_batch=10, n_test=10)
    return root


@pytest.mark.parametrize("domain,preset", [k for k in PINNED if k[0] != "toy"])
def test_the_pin_is_the_hash_of_the_cli_parse_with_validate(domain, preset, vision_data, request):
    pytest.importorskip({"vision": "torchvision", "rl": "stable_baselines3", "nlp": "fairseq"}[domain])
    argv = ["--domain", domain, "--preset", preset]
    if domain == "vision":
        argv += ["--data-dir", str(vision_data)]
    if (domain, preset) in NEEDS_DATA:
        argv += ["--data-dir", str(request.getfixturevalue("shared_data") / NEEDS_DATA[(domain, preset)])]
    if (domain, preset) in CUDA_ONLY:
        import torch

        if not torch.cuda.is_available():
            with pytest.raises(UsageError) as e:
                parse(argv, domain, preset)
            assert str(e.value) == CUDA_ONLY[(domain, preset)]
            pytest.skip("validates only on a CUDA device")
    plan = parse(argv, domain, preset)  # what benchmarks.run.main does before it opens the run folder
    assert config_hash(run_identity(domain, plan.imp, plan.config)) == PINNED[(domain, preset)]

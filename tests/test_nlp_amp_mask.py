"""Reduced precision keeps the mask: under fairseq's --amp (the one reduced precision a domain offers; fp16
autocast over fp32 master weights, scaled gradients) the masked gradients reach the master copies, so pruned
weights stay exactly zero. CUDA only (validate refuses amp on a CPU): skipped where there is none."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("fairseq")
if not torch.cuda.is_available():
    pytest.skip("--precision amp needs a CUDA device", allow_module_level=True)

from test_nlp_train import random_mask, tiny_config  # noqa: E402

from domains.nlp.adapter import NLPAdapter  # noqa: E402
from lth_core.job import Job  # noqa: E402


def test_pruned_weights_stay_zero_under_amp(tmp_path):
    adapter = NLPAdapter(tiny_config(tmp_path, precision="amp", device="cuda"))
    start = adapter.initial_weights(3)
    groups = adapter.prunable(adapter.build(0), biases=True)
    mask = random_mask(groups, start, keep=0.4)
    job = Job(
        level=1,
        kind="ticket",
        trial=0,
        seed=5,
        weights=start,
        mask=mask,
        budget=adapter.budget(),
        keep_final_weights=True,
    )
    out = adapter.train(job)
    assert out.status == "ok", out.error
    final = out.final_weights
    for name, m in mask.items():
        assert final[name].dtype == torch.float32, name  # the master copy, not an fp16 one
        assert torch.count_nonzero(final[name][~m]) == 0, name
    assert any((final[n][m] != start[n][m]).any() for n, m in mask.items())  # it did train

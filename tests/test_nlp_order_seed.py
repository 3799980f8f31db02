"""fairseq's data order and dropout follow `job.order_seed`, not the init seed: two trainings from one start can
differ in SGD noise only, and `data_seed=None` is the job's seed as before."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("fairseq")
pytest.importorskip("sentencepiece")
pytest.importorskip("sacrebleu")

from nlp_tiny import tiny_config  # noqa: E402

from domains.nlp.adapter import NLPAdapter  # noqa: E402
from lth_core.job import Job  # noqa: E402


def test_order_seed_drives_data_order_and_dropout(tmp_path):
    torch.set_num_threads(1)
    a = NLPAdapter(tiny_config(tmp_path, max_updates=4, eval_every=2, beam=1))
    start = a.initial_weights(0)

    def final(**kw) -> dict[str, torch.Tensor]:
        job = Job(
            level=0, kind="dense", trial=0, seed=1, weights=start, mask=None, budget=4, keep_final_weights=True, **kw
        )
        out = a.train(job)
        assert out.final_weights is not None
        return out.final_weights

    base = final()
    same = final(data_seed=1)
    other = final(data_seed=2)
    assert all(torch.equal(base[k], same[k]) for k in base)
    assert any(not torch.equal(base[k], other[k]) for k in base)

"""`--sparse` in the vision loop: `always` trains the masked Linear layers on CSR kernels and gives the masked
dense training's weights and scores within float tolerance, pruned weights exactly zero, the kernels in the row;
`never` (the default) leaves the loop and the run identity as they were; a bad value is one line, exit 2."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from benchmarks.run import main
from domains.vision.adapter import VisionAdapter
from domains.vision.config import VisionConfig
from lth_core.errors import UsageError
from lth_core.job import Job

BASE = dict(dataset="digits", model="lenet_300_100", iterations=12, eval_every=4, batch_size=32, threads=1)
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _job(adapter: VisionAdapter, density: float, **kw) -> Job:
    init = adapter.initial_weights(0)
    g = torch.Generator().manual_seed(3)
    names = adapter.prunable(adapter.build(0), False)
    mask = {n: torch.rand(init[n].shape, generator=g) < density for n in names}
    return Job(1, "ticket", 0, 0, init, mask, adapter.budget(), keep_final_weights=True, **kw)


@pytest.mark.parametrize(
    "opt", [dict(optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-3), dict(optimizer="adam", lr=3e-3)]
)
def test_always_trains_on_csr_and_matches_the_masked_dense_loop(opt) -> None:
    outs = {}
    for mode in ("never", "always"):
        adapter = VisionAdapter(VisionConfig(**BASE, **opt, sparse=mode))
        job = _job(adapter, 0.2)
        outs[mode] = (adapter.train(job), job.mask)
    (dense, mask), (sparse, _) = outs["never"], outs["always"]
    assert "sparse_kernels" not in dense.extras
    assert sparse.extras["sparse_kernels"] == "hidden.0.weight=csr,hidden.1.weight=csr,fc.weight=csr"
    assert dense.final_weights is not None and sparse.final_weights is not None
    assert list(sparse.final_weights) == list(dense.final_weights)
    for k, w in dense.final_weights.items():
        torch.testing.assert_close(sparse.final_weights[k], w, rtol=1e-4, atol=1e-5, msg=k)
        if k in mask:
            assert (sparse.final_weights[k][~mask[k]] == 0).all()
    assert sparse.val_at_stop == pytest.approx(dense.val_at_stop, rel=1e-4)
    assert [p.val for p in sparse.curve] == pytest.approx([p.val for p in dense.curve], rel=1e-4)


def test_jobs_that_sum_gradients_and_batched_passes_stay_dense() -> None:
    adapter = VisionAdapter(VisionConfig(**BASE, sparse="always"))
    out = adapter.train(_job(adapter, 0.2, grad_sums=("hidden.0.weight",)))
    assert "sparse_kernels" not in out.extras and out.grad_sums is not None
    assert adapter.train_batch([_job(adapter, 0.2), _job(adapter, 0.2)]) is None  # one by one, each on CSR


def test_sparse_joins_the_identity_only_when_set() -> None:
    assert "sparse" not in VisionConfig(**BASE).identity_extras()
    assert VisionConfig(**BASE, sparse="auto").identity_extras()["sparse"] == "auto"
    with pytest.raises(UsageError, match="--sparse 'sometimes': valid choices: never, auto, always"):
        dataclasses.replace(VisionConfig(**BASE), sparse="sometimes").validate()


def test_a_bad_sparse_value_is_one_line_and_nothing_written(tmp_path, capsys) -> None:
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        main(["--domain", "vision", "--sparse", "sometimes", "--out", str(out), "--noprogress"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "--sparse" in err and "sometimes" in err, err
    assert not out.exists()

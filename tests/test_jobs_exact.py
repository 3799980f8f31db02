"""What each job of a run really trains, tensor by tensor: a transferred ticket is the source's mask on the source's
rewind weights (not this run's own pruning, which gives the same counts), and each control differs from the ticket
exactly where its definition says and nowhere else."""

from __future__ import annotations

import pandas as pd
import torch
from toy_adapter import ToyAdapter, ToyConfig

from lth_core.config import ImpConfig, RunOptions
from lth_core.imp_runner import ImpRunner, derived_seed
from lth_core.masks import Mask
from lth_core.store import RunStore


class Recording(ToyAdapter):
    """The toy domain, keeping every job it is handed (by key) as the runner built it."""

    def __init__(self, cfg: ToyConfig) -> None:
        super().__init__(cfg)
        self.jobs: dict = {}

    def train(self, job):
        self.jobs[job.key] = job
        return super().train(job)


def run(tmp, imp, cfg=None, **opts):
    cfg = cfg or ToyConfig()
    adapter = Recording(cfg)
    path = ImpRunner(adapter, lambda: ToyAdapter(cfg), imp, RunOptions(out=str(tmp), progress=False, **opts)).run()
    return path, adapter.jobs


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_a_transferred_ticket_is_the_sources_mask_on_the_sources_rewind_weights(tmp_path):
    imp = ImpConfig(levels=2, trials=2, rewind_step="20")
    src, _ = run(tmp_path / "src", imp)
    dst, jobs = run(tmp_path / "dst", imp, cfg=ToyConfig(optimizer="sgd", lr=0.05), ticket_from=str(src))
    source, here = RunStore(src), RunStore(dst)
    for t in range(2):
        rewind = source.load_state(source.rewind_name(t))
        assert not same(rewind, source.load_state(source.init_name(t)))  # step 20, not the init
        assert same(jobs[f"L00-dense-t{t}"].weights, source.load_state(source.init_name(t)))  # the source's init
        for level in (1, 2):
            src_mask = source.load_state(source.mask_name(level, t))
            ticket = jobs[f"L{level:02d}-ticket-t{t}"]
            assert same(ticket.mask, {k: v.bool() for k, v in src_mask.items()}), (level, t)
            assert same(ticket.weights, rewind) and ticket.start_step == 20
            for c in ("random_reinit", "random_mask"):  # controls are drawn around the source's ticket
                assert Mask(jobs[f"L{level:02d}-{c}-t{t}"].mask).kept() == Mask(ticket.mask).kept()
    assert not any(here.state_path(here.mask_name(lv, t)).exists() for lv in (1, 2) for t in range(2))
    # the source's masks are not what this run's own pruning would draw (else the test above proves nothing)
    own, _ = run(tmp_path / "own", imp, cfg=ToyConfig(optimizer="sgd", lr=0.05))
    mine = RunStore(own).load_state(RunStore(own).mask_name(1, 0))
    assert not same(mine, source.load_state(source.mask_name(1, 0)))


def test_controls_differ_from_the_ticket_exactly_as_defined(tmp_path):
    imp = ImpConfig(levels=2, trials=1)
    path, jobs = run(tmp_path, imp)
    store = RunStore(path)
    rewind = store.load_state(store.rewind_name(0))
    for level in (1, 2):
        ticket = jobs[f"L{level:02d}-ticket-t0"]
        reinit, rmask = jobs[f"L{level:02d}-random_reinit-t0"], jobs[f"L{level:02d}-random_mask-t0"]
        assert same(ticket.weights, rewind)
        # random_reinit: the ticket's mask, every tensor, on a fresh init from the control's own seed
        assert same(reinit.mask, ticket.mask)
        fresh = ToyAdapter(ToyConfig()).initial_weights(derived_seed(imp.seed, "control", "random_reinit", level, 0))
        assert same(reinit.weights, fresh)
        assert all(not torch.equal(reinit.weights[k], rewind[k]) for k in rewind)
        # random_mask: the ticket's weights, every tensor, and per tensor the ticket's count at other positions
        assert same(rmask.weights, rewind)
        tm, rm = Mask(ticket.mask), Mask(rmask.mask)
        assert rm.kept() == tm.kept() and rm.sizes() == tm.sizes()
        assert all(not torch.equal(rm.tensors[k], tm.tensors[k]) for k in tm.tensors)
    # and what they train to: three different validation curves at every level
    df = pd.read_csv(path / "results.csv")
    for level in (1, 2):
        rows = df[df.level == level].set_index("kind")
        assert rows.val_at_stop.nunique() == 3, rows

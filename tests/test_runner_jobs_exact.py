"""The jobs the runner hands the domain, tensor by tensor, on tiny toy runs (~1 s each, tables not drawn): the
weights each job starts from (the trial's init, the dense run's rewind weights, a source run's), the masks it
draws (from which weights, under which mask, at which rates and seed) or reads back, and what each job keeps
(mutation testing of lth_core/imp_runner.py's masks, jobs and weights; tests/test_jobs_exact.py does the
same on longer runs)."""

from __future__ import annotations

import dataclasses
import shutil
import time

import pytest
import torch
from toy_adapter import ToyAdapter, ToyConfig

from lth_core import tables
from lth_core.adapter import Adapter
from lth_core.config import ImpConfig, RunOptions
from lth_core.controls import CONTROLS, ControlInput
from lth_core.errors import Diverged
from lth_core.imp_runner import ImpRunner, derived_seed
from lth_core.job import Job
from lth_core.masks import Mask
from lth_core.store import RunStore
from lth_core.strategies import STRATEGIES, PruneStep, ScoringHook

CFG = ToyConfig(hidden=4, steps=6, eval_every=3)
NAMES = ("0.weight", "2.weight", "4.weight")


class Recording(ToyAdapter):
    """The toy domain, keeping every job it is handed (by key) as the runner built it."""

    def __init__(self, cfg: ToyConfig) -> None:
        super().__init__(cfg)
        self.jobs: dict[str, Job] = {}

    def train(self, job):
        self.jobs[job.key] = job
        return super().train(job)


def run(out, imp: ImpConfig, cfg: ToyConfig = CFG, adapter: Recording | None = None, **opts):
    adapter = adapter or Recording(cfg)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(tables, "write_tables", lambda store, plots: None)  # imported where it is called
        r = ImpRunner(adapter, lambda: ToyAdapter(cfg), imp, RunOptions(out=str(out), progress=False, **opts))
        path = r.run()
    return r, path, adapter.jobs


def same(a, b) -> bool:
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)


def drawn(weights, mask: Mask, rate: float, seed: int) -> dict:
    """What magnitude_layerwise draws from `weights` under `mask` at `rate` per tensor, as a job's mask."""
    step = PruneStep({n: weights[n] for n in NAMES}, mask, {n: rate for n in NAMES}, frozenset(NAMES), seed=seed)
    return STRATEGIES.get("magnitude_layerwise")(step).to_state()


def full() -> Mask:
    return Mask({n: torch.ones_like(ToyAdapter(CFG).initial_weights(0)[n], dtype=torch.bool) for n in NAMES})


def test_iterative_jobs_start_from_the_init_and_the_rewind_weights_and_prune_the_level_before(tmp_path):
    imp = ImpConfig(levels=2, trials=1, controls="random_reinit,random_mask", rewind_step="3", seed=7)
    t0 = time.perf_counter()
    r, path, jobs = run(tmp_path, imp)
    elapsed = time.perf_counter() - t0
    store = RunStore(path)
    init, rewind = store.load_state("init-t0"), store.load_state("rewind-t0")
    # the seconds each mask took to draw: a part of the run's own time
    seconds = [store.load_state(f"scoring-L0{lv}-t0")["seconds"] for lv in (1, 2)]
    assert all(0 < float(s) < elapsed and s.dtype == torch.float64 for s in seconds)
    dense = jobs["L00-dense-t0"]
    assert same(dense.weights, ToyAdapter(CFG).initial_weights(7)) and same(init, dense.weights)
    assert (dense.mask, dense.budget, dense.start_step, dense.capture_steps) == (None, 6, 0, (3,))
    assert (dense.seed, dense.keep_final_weights, dense.early_bird, dense.grad_sums, dense.keep) == (
        7,
        True,
        None,
        (),
        None,
    )
    # the rewind weights are the dense training's own weights at step 3
    again = ToyAdapter(CFG).train(Job(0, "dense", 0, 7, init, None, 6, capture_steps=(3,)))
    assert same(rewind, again.captured[3]) and not same(rewind, init)
    mask1 = drawn(store.load_state("final-L00-t0"), full(), 0.2, derived_seed(7, 1, 0))
    mask2 = drawn(store.load_state("final-L01-t0"), Mask(mask1), 0.2, derived_seed(7, 2, 0))
    for level, mask, keeps in ((1, mask1, True), (2, mask2, False)):
        ticket = jobs[f"L{level:02d}-ticket-t0"]
        assert same(ticket.mask, mask) and same(ticket.weights, rewind), level
        assert same(store.load_state(f"mask-L{level:02d}-t0"), mask)
        assert (ticket.seed, ticket.budget, ticket.start_step, ticket.keep_final_weights) == (7, 6, 3, keeps)
        assert (ticket.capture_steps, ticket.early_bird, ticket.grad_sums, ticket.keep) == ((), None, (), None)
        reinit, rmask = jobs[f"L{level:02d}-random_reinit-t0"], jobs[f"L{level:02d}-random_mask-t0"]
        fresh = ToyAdapter(CFG).initial_weights(derived_seed(7, "control", "random_reinit", level, 0))
        assert same(reinit.weights, fresh) and same(reinit.mask, mask)
        c_seed = derived_seed(7, "control", "random_mask", level, 0)
        want_w, want_m = CONTROLS.build("random_mask", {})(
            ControlInput(Mask(mask), rewind, ToyAdapter(CFG).initial_weights, c_seed)
        )
        assert same(rmask.weights, want_w) and same(rmask.mask, want_m.to_state())
        for c in (reinit, rmask):
            assert (c.seed, c.budget, c.start_step, c.keep_final_weights, c.keep) == (7, 6, 3, False, None)
    assert Mask(mask2).num_kept < Mask(mask1).num_kept
    assert store.state_path("final-L01-t0").exists() and not store.state_path("final-L02-t0").exists()


def test_one_shot_prunes_every_level_from_the_dense_weights_at_its_own_density(tmp_path):
    imp = ImpConfig(levels=2, trials=1, controls="", schedule="one_shot", rewind_step="3", seed=7)
    r, path, jobs = run(tmp_path, imp)
    store = RunStore(path)
    dense_final = store.load_state("final-L00-t0")
    for level in (1, 2):
        want = drawn(dense_final, full(), 1 - 0.8**level, derived_seed(7, level, 0))
        ticket = jobs[f"L{level:02d}-ticket-t0"]
        assert same(ticket.mask, want) and not ticket.keep_final_weights, level
    assert jobs["L00-dense-t0"].keep_final_weights and not store.state_path("final-L01-t0").exists()


def test_at_init_draws_its_masks_from_the_rewind_weights_and_keeps_no_trained_weights(tmp_path):
    imp = ImpConfig(levels=1, trials=2, controls="", schedule="at_init", rewind_step="3", seed=7)
    r, path, jobs = run(tmp_path, imp)
    store = RunStore(path)
    for t in (0, 1):
        assert not jobs[f"L00-dense-t{t}"].keep_final_weights and not store.state_path(f"final-L00-t{t}").exists()
        rewind = store.load_state(f"rewind-t{t}")
        want = drawn(rewind, full(), 0.2, derived_seed(7, 1, t))
        assert same(jobs[f"L01-ticket-t{t}"].mask, want) and same(jobs[f"L01-ticket-t{t}"].weights, rewind)
        assert same(jobs[f"L00-dense-t{t}"].weights, ToyAdapter(CFG).initial_weights(7 + 1000 * t))


def test_magnitude_init_scores_the_trials_rewind_weights(tmp_path):
    """`PruneStep.rewind` is the trial's rewind weights (magnitude_init ranks them, not the weights it prunes
    from nor the init)."""
    imp = ImpConfig(levels=1, trials=1, controls="", strategy="magnitude_init", rewind_step="3", seed=7)
    r, path, jobs = run(tmp_path, imp)
    store = RunStore(path)
    init, rewind, final = (store.load_state(n) for n in ("init-t0", "rewind-t0", "final-L00-t0"))

    def ranked(initial, rewound):
        step = PruneStep(
            {n: final[n] for n in NAMES}, full(), {n: 0.2 for n in NAMES}, frozenset(NAMES), 0, initial, rewound
        )
        return STRATEGIES.get("magnitude_init")(step).to_state()

    assert same(jobs["L01-ticket-t0"].mask, ranked(init, rewind))
    assert not same(ranked(init, rewind), ranked(init, None))  # else the test proves nothing


def test_a_saved_mask_is_read_back_not_drawn_again_and_lost_trained_weights_retrain_their_job(tmp_path):
    imp = ImpConfig(levels=1, trials=1, controls="", rewind_step="3", seed=7)
    r, path, _ = run(tmp_path, imp)
    store = RunStore(path)
    mine = {n: torch.zeros_like(v) for n, v in store.load_state("mask-L01-t0").items()}  # stored as float 0/1
    for n in NAMES:
        mine[n].view(-1)[: n.count("2") + 3] = 1.0
    store.save_state("mask-L01-t0", {n: v.float() for n, v in mine.items()})
    (path / "jobs" / "L01-ticket-t0.json").unlink()
    _, _, jobs = run(tmp_path, imp)
    assert list(jobs) == ["L01-ticket-t0"]
    assert same(jobs["L01-ticket-t0"].mask, {n: v.bool() for n, v in mine.items()})
    # the dense job's trained weights are the next level's source: lost, the dense job trains again
    shutil.rmtree(path / "jobs")
    (path / "jobs").mkdir()
    _, _, jobs = run(tmp_path, imp)
    assert sorted(jobs) == ["L00-dense-t0", "L01-ticket-t0"]
    store.state_path("final-L00-t0").unlink()
    _, _, jobs = run(tmp_path, imp)
    assert list(jobs) == ["L00-dense-t0"]


def test_a_transferred_run_trains_the_sources_init_masks_and_rewind_weights(tmp_path):
    imp = ImpConfig(levels=1, trials=1, controls="random_reinit", rewind_step="3", seed=7)
    _, src, _ = run(tmp_path / "src", imp)
    other = ToyConfig(hidden=4, steps=6, eval_every=3, optimizer="sgd", lr=0.05)
    r, dst, jobs = run(tmp_path / "dst", imp, cfg=other, ticket_from=str(src))
    source, here = RunStore(src), RunStore(dst)
    dense, ticket = jobs["L00-dense-t0"], jobs["L01-ticket-t0"]
    assert same(dense.weights, source.load_state("init-t0")) and not dense.keep_final_weights
    assert dense.early_bird is None and dense.capture_steps == (3,)
    assert same(ticket.mask, {k: v.bool() for k, v in source.load_state("mask-L01-t0").items()})
    assert same(ticket.weights, source.load_state("rewind-t0")) and not ticket.keep_final_weights
    reinit = jobs["L01-random_reinit-t0"]
    assert same(reinit.mask, ticket.mask)
    assert same(reinit.weights, ToyAdapter(other).initial_weights(derived_seed(7, "control", "random_reinit", 1, 0)))
    names = {f.name for f in (dst / "state").iterdir()}
    assert not {"mask-L01-t0.pt", "init-t0.pt", "final-L00-t0.pt", "scoring-L01-t0.pt"} & names
    assert here.record("L01-ticket-t0")["row"]["status"] == "ok"


class FlowShaped(Recording):
    """A domain with one input shape and its own flow outputs (the first logit only), and no training loss."""

    training_loss = Adapter.training_loss  # type: ignore[assignment]

    def input_shape(self):
        return (10,)

    def flow_output(self, model, x):
        return model(x)[:, :1]


def test_the_scoring_hook_and_seed_a_strategy_draws_with(tmp_path):
    """SNIP scores the trained weights it prunes from with the domain's loss and the level's seed; SynFlow flows
    the domain's own outputs on its input shape; random draws from the level's seed."""
    base = dict(levels=1, trials=1, controls="", rewind_step="3", seed=7)
    seed = derived_seed(7, 1, 0)
    for strategy, adapter in (("snip", Recording(CFG)), ("synflow", FlowShaped(CFG)), ("random", Recording(CFG))):
        imp = ImpConfig(strategy=strategy, **base)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(tables, "write_tables", lambda store, plots: None)
            r = ImpRunner(
                adapter, lambda: ToyAdapter(CFG), imp, RunOptions(out=str(tmp_path / strategy), progress=False)
            )
            store = RunStore(r.run())
        init, rewind, final = (store.load_state(n) for n in ("init-t0", "rewind-t0", "final-L00-t0"))
        hook = ScoringHook(adapter.build, adapter.training_loss, seed, r.input_shape, adapter.flow_output)
        rates = {n: 0.2 for n in NAMES}
        step = PruneStep({n: final[n] for n in NAMES}, full(), rates, r.global_names, seed, init, rewind, hook, final)
        want = STRATEGIES.build(strategy, {})(step).to_state()
        assert same(adapter.jobs["L01-ticket-t0"].mask, want), strategy
        other = STRATEGIES.build(strategy, {})(dataclasses.replace(step, seed=seed + 1, state=rewind)).to_state()
        if strategy != "synflow":  # what the test tells apart: another seed, or the rewind weights scored
            assert not same(want, other), strategy
        else:  # ... or the whole output flowed
            plain = dataclasses.replace(step, score=dataclasses.replace(hook, output=None))
            assert not same(want, STRATEGIES.build(strategy, {})(plain).to_state())


class FailsTrialZero(Recording):
    """The toy domain whose dense training of trial 0 diverges."""

    def train(self, job):
        if job.level == 0 and job.trial == 0:
            self.jobs[job.key] = job
            raise Diverged("trial 0 diverges")
        return super().train(job)


def test_a_failed_dense_run_stops_its_trial_only_and_a_transfer_trains_its_tickets_anyway(tmp_path):
    imp = ImpConfig(levels=1, trials=2, controls="random_reinit,random_mask", rewind_step="3", seed=7)
    _, path, jobs = run(tmp_path / "own", imp, adapter=FailsTrialZero(CFG))
    assert sorted(jobs) == [
        "L00-dense-t0",
        "L00-dense-t1",
        "L01-random_mask-t1",
        "L01-random_reinit-t1",
        "L01-ticket-t1",
    ]
    assert RunStore(path).record("L00-dense-t0")["row"]["status"] == "diverged"
    _, src, _ = run(tmp_path / "src", imp)
    _, dst, jobs = run(tmp_path / "dst", imp, adapter=FailsTrialZero(CFG), ticket_from=str(src))
    assert {"L01-ticket-t0", "L01-random_mask-t0", "L01-random_reinit-t0"} <= set(jobs)
    # a control whose record is gone trains again, after a control that is done
    (src / "jobs" / "L01-random_mask-t1.json").unlink()
    _, _, jobs = run(tmp_path / "src", imp)
    assert list(jobs) == ["L01-random_mask-t1"]


def test_the_inverted_control_keeps_the_lowest_ranked_entries_of_the_tickets_own_step(tmp_path):
    imp = ImpConfig(levels=2, trials=1, controls="inverted", rewind_step="3", seed=7)
    r, path, jobs = run(tmp_path, imp)
    store = RunStore(path)
    rewind = store.load_state("rewind-t0")
    pruned_from = full()
    for level in (1, 2):
        final = store.load_state(f"final-L0{level - 1}-t0")
        ticket = Mask(jobs[f"L0{level}-ticket-t0"].mask)
        scores = {n: final[n].abs() for n in NAMES}  # magnitude's scores of the weights the ticket was drawn from
        seed = derived_seed(7, "control", "inverted", level, 0)
        inp = ControlInput(ticket, rewind, ToyAdapter(CFG).initial_weights, seed, lambda: (pruned_from, scores))
        want_w, want_m = CONTROLS.build("inverted", {})(inp)
        inv = jobs[f"L0{level}-inverted-t0"]
        assert same(inv.mask, want_m.to_state()) and same(inv.weights, want_w) and same(inv.weights, rewind)
        assert Mask(inv.mask).kept() == ticket.kept() and not same(inv.mask, ticket.to_state())
        pruned_from = ticket

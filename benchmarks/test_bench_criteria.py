"""Cost of the pruning-at-initialization criteria: SynFlow's 100 rounds on LeNet-300-100 (266k weights).

SynFlow is data-free, so no MNIST files are needed: the model is built from the MNIST shape alone and scored
in float64 on an all-ones input. The step prunes the initial weights to 1% density, as a level of a
`frankle2021-pai` run would (the runner records the same seconds per level as `scoring_s`).
"""

from __future__ import annotations

from domains.vision.adapter import VisionAdapter
from domains.vision.config import VisionConfig
from lth_core.masks import Mask
from lth_core.strategies import STRATEGIES, PruneStep, ScoringHook


def test_synflow_100_rounds_on_lenet_300_100(benchmark):
    adapter = VisionAdapter(VisionConfig(dataset="mnist", model="lenet_300_100"))
    model = adapter.build(0)
    names = adapter.prunable(model, False)
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    weights = {n: state[n] for n in names}
    step = PruneStep(
        weights=weights,
        mask=Mask.ones_like(weights),
        rates={n: 0.99 for n in names},
        global_names=frozenset(names),
        rewind=state,
        state=state,
        score=ScoringHook(adapter.build, adapter.training_loss, 0, adapter.input_shape()),
    )
    synflow = STRATEGIES.build("synflow", {"rounds": 100})
    mask = benchmark.pedantic(synflow, args=(step,), rounds=3, iterations=1)
    assert mask.num_kept == mask.num_total - round(0.99 * mask.num_total)
    assert all(k > 0 for k in mask.kept().values())  # SynFlow's claim: no layer collapses
    benchmark.extra_info.update({"parameters": mask.num_total, "rounds": 100, "density_after": mask.density})

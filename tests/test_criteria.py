"""The pruning criteria against hand computations on tiny models: SNIP, GraSP, SynFlow, magnitude at init; their
counts are exact, ties go by position, pruned entries never revive, and SynFlow stays finite where fp32 overflows."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from torch import nn

from lth_core.criteria import _snip_scores
from lth_core.errors import UsageError
from lth_core.masks import Mask
from lth_core.strategies import STRATEGIES, PruneStep, ScoringHook

X = torch.tensor([[1.0, -2.0, 0.5]])
Y = torch.tensor([[0.3]])
W = torch.tensor([[0.4, -0.7, 1.5]])


class OneLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 1, bias=False)

    def forward(self, x):
        return self.fc(x)


def half_squared_error(model: nn.Module, batches: int, seed: int) -> torch.Tensor:
    return 0.5 * ((model(X) - Y) ** 2).sum()


def one_layer_step(mask: torch.Tensor, rate: float = 0.5, **kw) -> PruneStep:
    state = {"fc.weight": W.clone()}
    return PruneStep(
        weights={"fc.weight": W.clone()},
        mask=Mask({"fc.weight": mask}),
        rates={"fc.weight": rate},
        global_names=frozenset(),
        initial=state,
        rewind=state,
        state=state,
        score=ScoringHook(lambda seed: OneLayer(), half_squared_error, 0, (3,)),
        **kw,
    )


def test_snip_is_abs_gradient_times_weight_of_the_masked_weights():
    mask = torch.tensor([[True, True, False]])
    w = W * mask
    r = float((w @ X.T - Y).squeeze())  # residual of L = r^2 / 2; dL/dw = r x
    expected = (r * X * w).abs()
    got = STRATEGIES.build("snip", {"scope": "layerwise"}).scores(one_layer_step(mask))["fc.weight"]
    assert torch.allclose(got, expected)


def test_grasp_ranks_by_w_times_hessian_gradient():
    mask = torch.ones(1, 3, dtype=torch.bool)
    r = float((W @ X.T - Y).squeeze())
    g = r * X  # dL/dw
    hg = X * float((X * g).sum())  # H = x x^T
    expected = W * hg  # the ranking is -S with S = -w * Hg: GraSP removes the highest S
    got = STRATEGIES.build("grasp", {"scope": "layerwise"}).scores(one_layer_step(mask))["fc.weight"]
    assert torch.allclose(got, expected)
    kept = STRATEGIES.build("grasp", {"scope": "layerwise"})(one_layer_step(mask, rate=1 / 3))["fc.weight"]
    s = -W * hg
    assert not kept.flatten()[int(torch.argmax(s))] and int(kept.sum()) == 2  # the highest S goes


class TwoLayer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 2, bias=False)
        self.b = nn.Linear(2, 1, bias=False)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


def two_layer_state() -> dict[str, torch.Tensor]:
    return {"a.weight": torch.tensor([[0.5, -1.0, 2.0], [-0.3, 0.2, 0.1]]), "b.weight": torch.tensor([[-1.5, 0.7]])}


def two_layer_step(rate: float, rounds_mask=None, **kw) -> PruneStep:
    state = two_layer_state()
    mask = rounds_mask or Mask({k: torch.ones_like(v, dtype=torch.bool) for k, v in state.items()})
    return PruneStep(
        weights=state,
        mask=mask,
        rates={k: rate for k in state},
        global_names=frozenset(state),
        initial=state,
        rewind=state,
        state=state,
        score=ScoringHook(lambda seed: TwoLayer(), half_squared_error, 0, (3,)),
        **kw,
    )


def test_synflow_is_the_path_flow_of_abs_weights_on_ones():
    a, b = (v.abs().double() for v in two_layer_state().values())
    # R = sum_j |b_j| sum_k |a_jk|; dR/da_jk = |b_j|, dR/db_j = sum_k |a_jk|
    expected = {"a.weight": b.T * a, "b.weight": b * a.sum(1)}
    got = STRATEGIES.get("synflow").scores(two_layer_step(0.5))
    assert all(got[k].dtype == torch.float64 and torch.allclose(got[k], expected[k]) for k in expected)


def test_synflow_rounds_rescore_with_the_mask_and_hit_the_exact_count():
    one = STRATEGIES.build("synflow", {"rounds": 1})(two_layer_step(0.5))
    scores = STRATEGIES.get("synflow").scores(two_layer_step(0.5))
    flat = torch.cat([scores[k].flatten() for k in scores])
    keep = torch.zeros(8, dtype=torch.bool)
    keep[torch.argsort(flat, descending=True)[:4]] = True
    assert torch.equal(torch.cat([one[k].flatten() for k in one]), keep)
    many = STRATEGIES.build("synflow", {"rounds": 5})(two_layer_step(0.75))
    assert many.num_kept == 2


def test_magnitude_init_reads_the_rewind_weights_not_the_trained_ones():
    state = two_layer_state()
    trained = {k: -v * torch.arange(v.numel()).view_as(v) for k, v in state.items()}
    step = two_layer_step(0.5)
    step = PruneStep(trained, step.mask, step.rates, frozenset(), rewind=state, initial=trained)
    got = STRATEGIES.build("magnitude_init", {"scope": "layerwise"})(step)
    for k, v in state.items():
        assert int(got[k].sum()) == v.numel() - round(0.5 * v.numel())
        assert bool((v.abs()[got[k]].min() >= v.abs()[~got[k]].max()))


def mlp(widths: list[int], seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers += [nn.Linear(a, b)] + ([nn.ReLU()] if i < len(widths) - 2 else [])
    return nn.Sequential(*layers)


def mlp_step(model: nn.Module, mask: Mask, rate: float, global_: bool) -> PruneStep:
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    widths = [model[0].in_features]
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, widths[0], generator=g), torch.randint(0, 5, (64,), generator=g)

    def loss(m, batches, seed):
        return nn.functional.cross_entropy(m(x), y)

    def build(seed):
        return mlp([widths[0], *[lin.out_features for lin in model if isinstance(lin, nn.Linear)]])

    return PruneStep(
        weights={n: state[n] for n in mask},
        mask=mask,
        rates={n: rate for n in mask},
        global_names=frozenset(mask.names()) if global_ else frozenset(),
        seed=3,
        initial=state,
        rewind=state,
        state=state,
        score=ScoringHook(build, loss, 3, (widths[0],)),
    )


@pytest.mark.parametrize("name", ["snip", "grasp", "synflow", "magnitude_init", "snip_iterative"])
@pytest.mark.parametrize("scope", ["layerwise", "global"])
def test_counts_are_exact_and_pruned_entries_never_revive(name, scope):
    model = mlp([10, 20, 12, 5])
    g = torch.Generator().manual_seed(1)
    names = [n for n, p in model.named_parameters() if n.endswith("weight")]
    start = Mask({n: torch.rand(model.get_parameter(n).shape, generator=g) < 0.8 for n in names})
    params = {"scope": scope, **({"rounds": 7} if name in ("synflow", "snip_iterative") else {})}
    out = STRATEGIES.build(name, params)(mlp_step(model, start, 0.7, scope == "global"))
    for n in names:
        assert not (out[n] & ~start[n]).any()  # a pruned entry stays pruned
        if scope == "layerwise":
            kept = int(start[n].sum())
            assert int(out[n].sum()) == kept - round(0.7 * kept), n
    total = start.num_kept
    assert out.num_kept == total - round(0.7 * total) or scope == "layerwise"


def test_ties_go_by_position():
    state = {"fc.weight": torch.ones(1, 6)}
    step = PruneStep(
        state,
        Mask({"fc.weight": torch.ones(1, 6, dtype=torch.bool)}),
        {"fc.weight": 0.5},
        frozenset(),
        rewind=state,
    )
    got = STRATEGIES.build("magnitude_init", {"scope": "layerwise"})(step)["fc.weight"]
    assert got.tolist() == [[False, False, False, True, True, True]]


def test_synflow_is_finite_on_a_deep_mlp_where_float32_overflows():
    model = mlp([100] * 21)
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(0.5, 1.5)
    r32 = model(torch.ones(1, 100)).sum()
    assert not torch.isfinite(r32)  # 20 layers of ~100x: past float32's 3.4e38
    names = [n for n, _ in model.named_parameters() if n.endswith("weight")]
    full = Mask({n: torch.ones(100, 100, dtype=torch.bool) for n in names})
    step = mlp_step(model, full, 0.9, True)
    scores = STRATEGIES.get("synflow").scores(step)
    assert all(torch.isfinite(s).all() and (s > 0).all() for s in scores.values())
    out = STRATEGIES.build("synflow", {"rounds": 10})(step)
    assert out.num_kept == full.num_kept - round(0.9 * full.num_kept)
    assert all(int(out[n].sum()) > 0 for n in names)  # and no layer collapses


@pytest.mark.parametrize("scope", ["layerwise", "global"])
def test_snip_iterative_rescores_the_masked_model_each_round(scope):
    model = mlp([10, 20, 12, 5])
    names = [n for n, p in model.named_parameters() if n.endswith("weight")]
    full = Mask({n: torch.ones(model.get_parameter(n).shape, dtype=torch.bool) for n in names})
    step = mlp_step(model, full, 0.91, scope == "global")
    one = STRATEGIES.build("snip_iterative", {"scope": scope, "rounds": 1})(step)
    snip = STRATEGIES.build("snip", {"scope": scope})(step)
    assert all(torch.equal(one[n], snip[n]) for n in names)  # one round is SNIP
    # two rounds by hand: SNIP to density 0.09^(1/2) = 0.3, then SNIP of the model masked so, to 0.09
    half = STRATEGIES.build("snip", {"scope": scope})(replace(step, rates={n: 0.7 for n in names}))
    rel = {n: 1 - 0.09 / (int(half[n].sum()) / full[n].numel()) for n in names}
    if scope == "global":
        rel = {n: 1 - 0.09 * full.num_total / half.num_kept for n in names}
    second = replace(step, mask=half, rates=rel)
    scores = _snip_scores(step, half, 1)
    assert not all(torch.allclose(scores[n], STRATEGIES.get("snip").scores(step)[n]) for n in names)  # re-scored
    expected = STRATEGIES.build("snip", {"scope": scope}).prune(second, scores)
    two = STRATEGIES.build("snip_iterative", {"scope": scope, "rounds": 2})(step)
    assert all(torch.equal(two[n], expected[n]) for n in names)
    assert two.num_kept == full.num_kept - round(0.91 * full.num_kept) or scope == "layerwise"


@pytest.mark.parametrize(
    "name,params,expected",
    [
        ("snip", {"batches": 0}, "--snip-batches 0 must be >= 1"),
        ("synflow", {"rounds": -1}, "--synflow-rounds -1 must be >= 1"),
        ("grasp", {"scope": "local"}, "--grasp-scope 'local': choose from global, layerwise"),
        ("snip_iterative", {"rounds": 0}, "--snip-iterative-rounds 0 must be >= 1"),
        ("snip_iterative", {"batches": 0}, "--snip-iterative-batches 0 must be >= 1"),
        ("movement", {"scope": "top"}, "--movement-scope 'top': choose from global, layerwise"),
    ],
)
def test_bad_parameters_name_the_flag(name, params, expected):
    with pytest.raises(UsageError, match=expected):
        STRATEGIES.build(name, params)

"""lth_core/criteria.py pinned on tiny models: the batches each criterion asks the domain's loss for, scores of
zero (never an error) for masked tensors the loss does not reach, which weights magnitude_init and movement
read, and the one-line refusals of a PruneStep that lacks what a criterion scores."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lth_core.criteria  # noqa: F401  (registers the criteria)
from lth_core.errors import UsageError
from lth_core.masks import Mask
from lth_core.strategies import STRATEGIES, PruneStep, ScoringHook

X = torch.tensor([[1.0, -2.0, 0.5]])


class WithUnused(nn.Module):
    """a -> relu -> b (+ bias c), and a Parameter `u` the forward never reads."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 2, bias=False)
        self.b = nn.Linear(2, 1)
        self.u = nn.Parameter(torch.zeros(2))

    def forward(self, x):
        return self.b(torch.relu(self.a(x)))


STATE = {
    "a.weight": torch.tensor([[0.5, -1.0, 2.0], [-0.3, 0.2, 0.1]]),
    "b.weight": torch.tensor([[-1.5, 0.7]]),
    "b.bias": torch.tensor([0.25]),
    "u": torch.tensor([1.0, -2.0]),
}


def step_for(names: list[str], calls: list, loss=None, **kw) -> PruneStep:
    """A PruneStep on WithUnused whose loss records the (batches, seed) it is asked for."""

    def training_loss(model: nn.Module, batches: int, seed: int) -> torch.Tensor:
        calls.append((batches, seed))
        return loss(model) if loss is not None else 0.5 * (model(X) - 0.3).pow(2).sum()

    w = {n: STATE[n].clone() for n in names}
    return PruneStep(
        weights=w,
        mask=Mask({n: torch.ones_like(v, dtype=torch.bool) for n, v in w.items()}),
        rates={n: 0.5 for n in names},
        global_names=frozenset(names),
        seed=4,
        initial=STATE,
        rewind=STATE,
        state=STATE,
        score=ScoringHook(lambda seed: WithUnused(), training_loss, 9, (3,)),
        **kw,
    )


@pytest.mark.parametrize("name", ["snip", "snip_iterative", "grasp"])
def test_gradient_criteria_ask_the_loss_for_their_batches(name: str) -> None:
    calls: list = []
    params = {"batches": 3, **({"rounds": 2} if name == "snip_iterative" else {})}
    crit = STRATEGIES.build(name, params)
    crit.scores(step_for(["a.weight", "b.weight"], calls))
    assert calls == [(3, 9)]
    calls.clear()
    crit(step_for(["a.weight", "b.weight"], calls))
    assert calls == [(3, 9)] * (2 if name == "snip_iterative" else 1)  # every round reads the same batches


def test_snip_iterative_scores_are_one_shot_snip_on_the_steps_mask() -> None:
    calls: list = []
    step = step_for(["a.weight", "b.weight"], calls)
    step.mask.tensors["a.weight"][0, 1] = False
    got = STRATEGIES.build("snip_iterative", {"rounds": 5}).scores(step)
    want = STRATEGIES.get("snip").scores(step)
    assert got.keys() == want.keys() and all(torch.equal(got[n], want[n]) for n in want)
    assert got["a.weight"][0, 1] == 0  # scored on the masked weights


@pytest.mark.parametrize("name", ["snip", "grasp"])
def test_a_masked_tensor_the_loss_never_reads_scores_zero(name: str) -> None:
    calls: list = []
    scores = STRATEGIES.get(name).scores(step_for(["a.weight", "u"], calls))
    assert torch.equal(scores["u"], torch.zeros(2)) and bool(scores["a.weight"].abs().sum() > 0)
    only = STRATEGIES.get(name).scores(step_for(["u"], calls))  # nothing reaches the loss at all
    assert torch.equal(only["u"], torch.zeros(2))


def test_grasp_scores_zero_where_the_gradient_has_no_second_derivative_in_the_weight() -> None:
    # loss = sum(out): linear in the output bias c, so dL/dc = 1 has no graph and H g never reaches c
    calls: list = []
    step = step_for(["a.weight", "b.weight", "b.bias"], calls, loss=lambda m: m(X).sum())
    scores = STRATEGIES.get("grasp").scores(step)
    assert torch.equal(scores["b.bias"], torch.zeros(1))
    # a constant gradient adds nothing to z = g . g (detached first factor): the others' scores are as without c
    without = STRATEGIES.get("grasp").scores(step_for(["a.weight", "b.weight"], calls, loss=lambda m: m(X).sum()))
    assert all(torch.equal(scores[n], without[n]) for n in without) and bool(scores["b.weight"].abs().sum() > 0)


def test_magnitude_init_reads_the_initial_weights_without_rewind_ones() -> None:
    calls: list = []
    step = step_for(["a.weight"], calls)
    initial = {"a.weight": torch.tensor([[0.1, -5.0, 0.2], [3.0, -0.05, 1.0]])}
    bare = PruneStep(step.weights, step.mask, step.rates, frozenset(), initial=initial)
    scores = STRATEGIES.get("magnitude_init").scores(bare)
    assert torch.equal(scores["a.weight"], initial["a.weight"].abs())
    with pytest.raises(
        RuntimeError, match="^magnitude_init: the PruneStep carries neither rewind nor initial weights$"
    ):
        STRATEGIES.get("magnitude_init").scores(PruneStep(step.weights, step.mask, step.rates, frozenset()))


def test_movement_without_gradient_sums_is_refused() -> None:
    calls: list = []
    step = step_for(["a.weight"], calls)
    with pytest.raises(RuntimeError, match="^movement: the PruneStep carries no gradient sums of its source training$"):
        STRATEGIES.get("movement").scores(step)


def synflow_step(names: list[str], output=None, input_shape=(3,), state=None) -> PruneStep:
    s = state or STATE
    w = {n: s[n].clone() for n in names}
    return PruneStep(
        weights=w,
        mask=Mask({n: torch.ones_like(v, dtype=torch.bool) for n, v in w.items()}),
        rates={n: 0.5 for n in names},
        global_names=frozenset(names),
        initial=s,
        rewind=s,
        state=s,
        score=ScoringHook(lambda seed: WithUnused(), lambda m, b, sd: m(X).sum(), 0, input_shape, output),
    )


def test_synflow_sums_the_hooks_outputs_and_scores_unreached_tensors_zero() -> None:
    a, b = STATE["a.weight"].abs().double(), STATE["b.weight"].abs().double()
    plain = STRATEGIES.get("synflow").scores(synflow_step(["a.weight", "b.weight", "u"]))
    # R = sum_j |b_j| sum_k |a_jk| + |c| on ones: dR/da_jk = |b_j|, dR/db_j = sum_k |a_jk|
    assert torch.allclose(plain["a.weight"], b.T * a) and torch.allclose(plain["b.weight"], b * a.sum(1))
    assert torch.equal(plain["u"], torch.zeros(2, dtype=torch.float64))
    # the hook's `output` says which outputs R sums (here three times the model's)
    tripled = STRATEGIES.get("synflow").scores(synflow_step(["a.weight"], output=lambda m, x: 3 * m(x)))
    assert torch.allclose(tripled["a.weight"], 3 * b.T * a)
    one = STRATEGIES.get("synflow").scores(synflow_step(["b.weight"]))  # a single masked tensor
    assert torch.allclose(one["b.weight"], b * a.sum(1))


def test_synflow_refuses_a_hook_without_input_shape_and_a_flow_that_overflows() -> None:
    with pytest.raises(RuntimeError, match="^synflow needs the input shape; the scoring hook carries none$"):
        STRATEGIES.get("synflow").scores(synflow_step(["a.weight"], input_shape=None))
    # eleven 1 -> 1 layers of weight 1e30 (finite in float32): R = 1e330, past float64
    chain = nn.Sequential(*[nn.Linear(1, 1, bias=False) for _ in range(11)])
    huge = {k: torch.full_like(v, 1e30) for k, v in chain.state_dict().items()}
    step = PruneStep(
        huge,
        Mask({k: torch.ones(1, 1, dtype=torch.bool) for k in huge}),
        {k: 0.5 for k in huge},
        frozenset(huge),
        state=huge,
        score=ScoringHook(
            lambda seed: nn.Sequential(*[nn.Linear(1, 1, bias=False) for _ in range(11)]),
            lambda m, b, sd: m(torch.ones(1, 1)).sum(),
            0,
            (1,),
        ),
    )
    msg = r"^synflow: the synaptic flow overflows even in float64 for this network \(too deep for an all-ones input\)$"
    with pytest.raises(UsageError, match=msg):
        STRATEGIES.get("synflow").scores(step)
    with pytest.raises(RuntimeError, match="cannot be empty"):  # no tensor to score: autograd refuses
        STRATEGIES.get("synflow").scores(synflow_step([]))


def test_the_scored_model_is_the_steps_state_else_its_rewind_else_its_initial_weights() -> None:
    def other(scale: float) -> dict[str, torch.Tensor]:
        return {k: v * scale for k, v in STATE.items()}

    def snip(**fields) -> torch.Tensor:
        step = step_for(["a.weight"], [])
        bare = PruneStep(step.weights, step.mask, step.rates, frozenset(), score=step.score, **fields)
        return STRATEGIES.get("snip").scores(bare)["a.weight"]

    # a.weight comes from the step's weights; b's weights (which a's gradient reads) from the chosen state
    s, r, i = other(1.0), other(-2.0), other(3.0)
    by_state, by_rewind, by_initial = snip(state=s), snip(rewind=r), snip(initial=i)
    assert not torch.equal(by_state, by_rewind) and not torch.equal(by_rewind, by_initial)
    assert torch.equal(snip(state=s, rewind=r, initial=i), by_state)
    assert torch.equal(snip(rewind=r, initial=i), by_rewind)
    with pytest.raises(RuntimeError, match="^this criterion scores a model: the PruneStep carries no full state dict$"):
        snip()
    step = step_for(["a.weight"], [])
    with pytest.raises(RuntimeError, match="^this criterion needs the domain's scoring hook; the runner gave none$"):
        STRATEGIES.get("snip").scores(PruneStep(step.weights, step.mask, step.rates, frozenset(), state=STATE))


def _iterative(scope: str, mask: dict[str, torch.Tensor], rate: float, glob: frozenset[str]) -> Mask:
    step = step_for(list(mask), [])
    step = PruneStep(
        step.weights, Mask(mask), {n: rate for n in mask}, glob, initial=STATE, state=STATE, score=step.score
    )
    return STRATEGIES.build("snip_iterative", {"scope": scope, "rounds": 2})(step)


@pytest.mark.parametrize("scope", ["layerwise", "global"])
def test_iterative_rounds_may_remove_the_last_entry_and_pass_over_empty_tensors(scope: str) -> None:
    # b.weight has 2 entries, rate .9: round 1 (density .316) keeps 1, round 2 (density .1 of 2 = .2) removes it
    ones = {"b.weight": torch.ones(1, 2, dtype=torch.bool)}
    out = _iterative(scope, ones, 0.9, frozenset(ones) if scope == "global" else frozenset())
    assert int(out["b.weight"].sum()) == 0
    # an empty tensor beside (nothing left to remove there): no error, nothing revives
    empty = {"a.weight": torch.zeros(2, 3, dtype=torch.bool), "b.weight": torch.ones(1, 2, dtype=torch.bool)}
    out = _iterative(scope, empty, 0.5, frozenset({"a.weight"}) if scope == "global" else frozenset())
    assert int(out["a.weight"].sum()) == 0 and int(out["b.weight"].sum()) == 1


def test_global_scope_with_every_tensor_overridden_is_layerwise() -> None:
    mask = {"a.weight": torch.ones(2, 3, dtype=torch.bool), "b.weight": torch.ones(1, 2, dtype=torch.bool)}
    glob = _iterative("global", dict(mask), 0.5, frozenset())
    layer = _iterative("layerwise", dict(mask), 0.5, frozenset())
    assert all(torch.equal(glob[n], layer[n]) for n in mask) and glob.kept() == {"a.weight": 3, "b.weight": 1}


@pytest.mark.parametrize(
    "name,params,expected",
    [
        ("grasp", {"batches": 0}, "--grasp-batches 0 must be >= 1"),
        ("magnitude_init", {"scope": "x"}, "--magnitude-init-scope 'x': choose from global, layerwise"),
        ("snip", {"scope": "x"}, "--snip-scope 'x': choose from global, layerwise"),
        ("snip_iterative", {"scope": "x"}, "--snip-iterative-scope 'x': choose from global, layerwise"),
        ("synflow", {"scope": "x"}, "--synflow-scope 'x': choose from global, layerwise"),
    ],
)
def test_every_criterions_bad_parameter_names_its_own_flag(name: str, params: dict, expected: str) -> None:
    with pytest.raises(UsageError, match=f"^{expected}$"):
        STRATEGIES.build(name, params)


def test_layerwise_ignores_the_global_names_and_global_lets_a_tensor_collapse() -> None:
    w = {"a": torch.tensor([[0.1, 0.2, 0.3, 0.4]]), "b": torch.tensor([[5.0, 6.0, 7.0, 8.0]])}
    mask = Mask({n: torch.ones(1, 4, dtype=torch.bool) for n in w})
    step = PruneStep(w, mask, {"a": 0.5, "b": 0.5}, frozenset(w), rewind=w)
    layer = STRATEGIES.build("magnitude_init", {"scope": "layerwise"})(step)
    assert layer["a"].tolist() == [[False, False, True, True]] and layer["b"].tolist() == [[False, False, True, True]]
    glob = STRATEGIES.build("magnitude_init", {"scope": "global"})(step)
    assert glob["a"].tolist() == [[False] * 4] and glob["b"].tolist() == [[True] * 4]  # no tensor protected

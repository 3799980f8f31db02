"""The NLP adapter's capabilities beyond training: evaluate arbitrary weights as training scores them, fairseq's
criterion as a differentiable scoring loss, and attention heads / FFN neurons as coupled groups."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

pytest.importorskip("fairseq")
pytest.importorskip("sentencepiece")
pytest.importorskip("sacrebleu")

from nlp_tiny import tiny_config  # noqa: E402

from domains.nlp.adapter import NLPAdapter  # noqa: E402
from lth_core.errors import UsageError  # noqa: E402
from lth_core.job import Job  # noqa: E402
from lth_core.structure import GroupFamily, group_masks  # noqa: E402


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    torch.set_num_threads(1)
    return NLPAdapter(tiny_config(tmp_path_factory.mktemp("nlp-cap")))


@pytest.fixture(scope="module")
def lm(adapter):
    return NLPAdapter(
        tiny_config(
            adapter.config.cache_dir,
            task="language_modeling",
            arch="lstm_lm_lth_small",
            tokenizer="word",
            tokens_per_sample=16,
            max_tokens=256,
            max_updates=4,
            eval_every=2,
        )
    )


def test_capabilities_are_declared(adapter):
    assert adapter.capabilities() == {"evaluate", "training_loss", "structure", "compact"}


def _trained(a: NLPAdapter, masked: bool):
    start = a.initial_weights(2)
    mask = None
    if masked:
        g = torch.Generator().manual_seed(0)
        mask = {n: torch.rand(start[n].shape, generator=g) < 0.5 for n in a.prunable(a.build(0), biases=False)}
    out = a.train(
        Job(
            level=1,
            kind="ticket",
            trial=0,
            seed=3,
            weights=start,
            mask=mask,
            budget=a.budget(),
            keep_final_weights=True,
        )
    )
    assert out.status == "ok"
    return out


def test_evaluate_reproduces_a_jobs_recorded_bleu_and_validation(adapter):
    out = _trained(adapter, masked=True)
    metric = adapter.metric()
    val = adapter.evaluate(out.final_weights, "val")
    test = adapter.evaluate(out.final_weights, "test")
    assert val[metric.val_name] == pytest.approx(out.curve[-1].val, rel=1e-9, abs=1e-12)
    assert test[metric.name] == pytest.approx(out.final_score, rel=1e-9, abs=1e-12)
    # 'loss' is the training criterion: label smoothing makes it differ from the plain cross-entropy
    assert math.isfinite(val["loss"]) and math.isfinite(test["loss"]) and val["loss"] != val[metric.val_name]
    with pytest.raises(UsageError):
        adapter.evaluate(out.final_weights, "train")


def test_evaluate_reproduces_a_language_models_perplexity(lm):
    out = _trained(lm, masked=False)
    test = lm.evaluate(out.final_weights, "test")
    assert test["perplexity"] == pytest.approx(out.final_score, rel=1e-9)
    assert test["loss"] == pytest.approx(math.log(out.final_score), rel=1e-6)  # unsmoothed: log perplexity
    assert lm.evaluate(out.final_weights, "val")["val_loss"] == pytest.approx(out.curve[-1].val, rel=1e-9)


def test_training_loss_is_differentiable_and_a_function_of_the_seed(adapter):
    model = adapter.build(0)
    loss = adapter.training_loss(model, batches=2, seed=5)
    assert loss.requires_grad and math.isfinite(loss.item())
    loss.backward()
    for name in adapter.prunable(model, biases=False):
        grad = model.get_parameter(name).grad
        assert grad is not None and torch.count_nonzero(grad) > 0, name
    with torch.no_grad():
        again = adapter.training_loss(model, batches=2, seed=5)
        other = adapter.training_loss(model, batches=2, seed=6)
        many = adapter.training_loss(model, batches=1000, seed=5)  # more batches than one epoch holds
    assert again.item() == loss.item() and other.item() != loss.item() and math.isfinite(many.item())
    assert model.training  # the mode it came in with


def _families(adapter, model) -> dict[str, GroupFamily]:
    fams = adapter.structure(model)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    for fam in fams:
        fam.check(shapes)
    return {f.name: f for f in fams}


def test_structure_names_every_head_and_ffn_neuron(adapter):
    model = adapter.build(0)
    fams = _families(adapter, model)
    heads = [f for f in fams.values() if f.kind == "head"]
    ffns = [f for f in fams.values() if f.kind == "ffn"]
    assert len(heads) == 2 + 2 * 2 and all(f.count == 4 for f in heads)  # enc self; dec self + cross
    assert len(ffns) == 4 and all(f.count == 128 for f in ffns)
    fam = fams["decoder.layers.1.encoder_attn"]
    assert {(m.tensor.rsplit(".", 2)[-2], m.dim, m.width) for m in fam.members} == {
        ("q_proj", 0, 16),
        ("k_proj", 0, 16),
        ("v_proj", 0, 16),
        ("out_proj", 1, 16),
    }


def test_lstm_has_no_groups(lm):
    assert lm.structure(lm.build(0)) == []


def _zeroed(model, fam: GroupFamily, group: int):
    """A copy of the model's state with one group of `fam` zeroed, through group_masks."""
    state = {k: v.clone() for k, v in model.state_dict().items()}
    keep = torch.ones(fam.count, dtype=torch.bool)
    keep[group] = False
    for name, m in group_masks([fam], {fam.name: keep}, {k: tuple(v.shape) for k, v in state.items()}).items():
        state[name] = state[name] * m
    return state


def _attention_by_hand(mha, x, kv, drop: int | None = None):
    """Scaled dot-product attention head by head, from the module's weights; head `drop` contributes nothing."""
    (t, b, c), s, h, hd = x.shape, kv.shape[0], mha.num_heads, mha.head_dim
    q = F.linear(x, mha.q_proj.weight, mha.q_proj.bias).view(t, b, h, hd) * hd**-0.5
    k = F.linear(kv, mha.k_proj.weight, mha.k_proj.bias).view(s, b, h, hd)
    v = F.linear(kv, mha.v_proj.weight, mha.v_proj.bias).view(s, b, h, hd)
    heads = torch.einsum("bhts,sbhd->tbhd", torch.einsum("tbhd,sbhd->bhts", q, k).softmax(-1), v)
    if drop is not None:
        heads[:, :, drop] = 0.0
    return F.linear(heads.reshape(t, b, c), mha.out_proj.weight, mha.out_proj.bias)


@pytest.mark.parametrize("module", ["encoder.layers.0.self_attn", "decoder.layers.1.encoder_attn"])
def test_zeroing_a_head_group_removes_exactly_that_heads_contribution(adapter, module):
    model, pruned = adapter.build(0).eval(), adapter.build(0).eval()
    fam = _families(adapter, model)[module]
    g = torch.Generator().manual_seed(0)
    x, kv = torch.randn(5, 3, 64, generator=g), torch.randn(7, 3, 64, generator=g)
    mha = model.get_submodule(module)
    with torch.no_grad():
        full = mha(query=x, key=kv, value=kv, need_weights=False)[0]
        assert torch.allclose(full, _attention_by_hand(mha, x, kv), atol=1e-5)  # the reference is fairseq's math
        for head in (0, 2):
            pruned.load_state_dict(_zeroed(model, fam, head))
            out = pruned.get_submodule(module)(query=x, key=kv, value=kv, need_weights=False)[0]
            assert torch.allclose(out, _attention_by_hand(mha, x, kv, drop=head), atol=1e-5)
            assert not torch.allclose(out, full, atol=1e-3)  # the head did contribute


def test_zeroing_an_ffn_neuron_removes_exactly_that_neuron(adapter):
    model, pruned = adapter.build(0).eval(), adapter.build(0).eval()
    fam = _families(adapter, model)["encoder.layers.1.ffn"]
    pruned.load_state_dict(_zeroed(model, fam, 7))
    layer, cut = model.encoder.layers[1], pruned.encoder.layers[1]
    x = torch.randn(4, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        hidden = layer.activation_fn(layer.fc1(x))
        assert torch.count_nonzero(hidden[:, 7]) > 0  # the neuron is active on this input
        hidden[:, 7] = 0.0
        assert torch.allclose(cut.fc2(cut.activation_fn(cut.fc1(x))), layer.fc2(hidden), atol=1e-6)

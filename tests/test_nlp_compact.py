"""NLP compaction (`NLPAdapter.compact`): a fairseq Transformer with attention heads (encoder self-attention,
decoder self-attention, encoder-decoder attention) and FFN neurons removed computes the masked model's decoder
outputs within 1e-5, beam search through fairseq's SequenceGenerator (incremental decoding) finds the same
hypotheses, the weights save and reload with `weights_only=True`, and fairseq's Trainer trains it."""

from __future__ import annotations

import copy

import pytest
import torch

pytest.importorskip("fairseq")
pytest.importorskip("sentencepiece")
pytest.importorskip("sacrebleu")

from nlp_tiny import tiny_config  # noqa: E402

from domains.nlp.adapter import NLPAdapter  # noqa: E402
from domains.nlp.compact import fit  # noqa: E402
from domains.nlp.tasks import _batches  # noqa: E402
from lth_core.job import Job  # noqa: E402
from lth_core.structure import group_masks  # noqa: E402

TOL = 1e-5
WHERE = {  # which families a case cuts
    "encoder_self_attn": lambda f: f.name.startswith("encoder.") and f.kind == "head",
    "decoder_self_attn": lambda f: f.name.endswith("self_attn") and f.name.startswith("decoder."),
    "encoder_decoder_attn": lambda f: f.name.endswith("encoder_attn"),
    "ffn": lambda f: f.kind == "ffn",
    "all": lambda f: True,
}


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    torch.set_num_threads(1)
    return NLPAdapter(tiny_config(tmp_path_factory.mktemp("nlp-compact"), beam=3))


@pytest.fixture(scope="module")
def trained(adapter):
    """Weights after a few updates (an untrained model's heads are too alike to tell apart)."""
    job = Job(0, "dense", 0, 0, adapter.initial_weights(0), None, adapter.budget(), keep_final_weights=True)
    return adapter.train(job).final_weights


def keeps(adapter, model, where: str, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for fam in adapter.structure(model):
        keep = torch.ones(fam.count, dtype=torch.bool)
        if WHERE[where](fam):
            keep = torch.rand(fam.count, generator=gen) < 0.5
            keep[int(torch.randint(fam.count, (1,), generator=gen))] = True  # never emptied
            keep[(keep.nonzero()[0] + 1) % fam.count] = False  # always cut
        out[fam.name] = keep
    return out


def masked_model(adapter, weights, keep):
    model = adapter.build(0)
    model.load_state_dict(weights)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    with torch.no_grad():
        for name, m in group_masks(adapter.structure(model), keep, shapes).items():
            model.get_parameter(name).mul_(m)
    return model.eval()


def batch(adapter, split: str = "valid"):
    return next(iter(_batches(adapter.session, adapter.build(0), split, 400)))


def decoder_out(model, sample) -> torch.Tensor:
    with torch.no_grad():
        return model(**sample["net_input"])[0]


@pytest.mark.parametrize("where", list(WHERE))
def test_compacted_transformer_computes_the_masked_decoder_outputs(adapter, trained, where):
    keep = keeps(adapter, adapter.build(0), where)
    masked = masked_model(adapter, trained, keep)
    small = adapter.compact(copy.deepcopy(masked), keep).eval()
    cut = [f for f in adapter.structure(masked) if not bool(keep[f.name].all())]
    assert cut and all(WHERE[where](f) for f in cut)
    for fam in cut:  # physically smaller, and fairseq's bookkeeping follows
        m = fam.members[0]
        assert small.state_dict()[m.tensor].shape[m.dim] == int(keep[fam.name].sum()) * m.width
        if fam.kind == "head":
            mha = small.get_submodule(fam.name)
            assert mha.num_heads == int(keep[fam.name].sum()) and mha.embed_dim == mha.num_heads * mha.head_dim
    assert set(small.state_dict()) == set(masked.state_dict())
    sample = batch(adapter)
    want, got = decoder_out(masked, sample), decoder_out(small, sample)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=TOL, rtol=0)
    dense = adapter.build(0).eval()
    dense.load_state_dict(trained)
    assert not torch.allclose(want, decoder_out(dense, sample), atol=1e-3)  # the cut groups did contribute


def test_beam_search_finds_the_same_hypotheses(adapter, trained):
    """fairseq's SequenceGenerator decodes incrementally (cached keys / values per head, static encoder-decoder
    keys, beam reordering): the compacted model's hypotheses are the masked model's, scores within 1e-5."""
    keep = keeps(adapter, adapter.build(0), "all", seed=1)
    masked = masked_model(adapter, trained, keep)
    small = adapter.compact(copy.deepcopy(masked), keep).eval()
    session = adapter.session
    sample = batch(adapter, "test")

    def hypotheses(model):
        generator = session.task.build_generator([model], session.cfg.generation)
        with torch.no_grad():
            return session.task.inference_step(generator, [model], sample)

    want, got = hypotheses(masked), hypotheses(small)
    assert len(want) == len(got) == len(sample["id"]) and len(want[0]) == 3  # beam 3: three hypotheses each
    for beams_w, beams_g in zip(want, got):
        for w, g in zip(beams_w, beams_g):
            assert torch.equal(w["tokens"], g["tokens"])
            torch.testing.assert_close(g["positional_scores"], w["positional_scores"], atol=TOL, rtol=0)
            assert abs(float(g["score"]) - float(w["score"])) <= TOL


def test_compacted_weights_save_reload_and_rebuild(adapter, trained, tmp_path):
    keep = keeps(adapter, adapter.build(0), "all", seed=2)
    small = adapter.compact(masked_model(adapter, trained, keep), keep)
    torch.save(small.state_dict(), tmp_path / "w.pt")
    state = torch.load(tmp_path / "w.pt", weights_only=True)
    rebuilt = adapter.compact(adapter.build(4), keep)  # rebuild = build + compact + load_state_dict
    rebuilt.load_state_dict(state)
    fitted = fit(adapter.build(5), state)  # or from the shapes alone, as train / evaluate do
    sample = batch(adapter)
    want = decoder_out(small.eval(), sample)
    for other in (rebuilt, fitted):
        assert torch.equal(decoder_out(other.eval(), sample), want)
    with pytest.raises(RuntimeError, match="size mismatch"):
        adapter.build(0).load_state_dict(state)  # the check can fail: a dense model does not take them


def test_fairseq_trainer_trains_the_compacted_model_under_a_mask(adapter, trained):
    keep = keeps(adapter, adapter.build(0), "all", seed=3)
    small = adapter.compact(masked_model(adapter, trained, keep), keep)
    weights = {k: v.detach().clone() for k, v in small.state_dict().items()}
    name = "encoder.layers.0.fc1.weight"
    mask = {n: torch.ones_like(weights[n], dtype=torch.bool) for n in adapter.prunable(small, biases=False)}
    mask[name][0, :5] = False  # an unstructured mask inside the compacted model
    out = adapter.train(Job(1, "ticket", 0, 1, weights, mask, adapter.budget(), keep_final_weights=True))
    assert out.status == "ok" and out.steps == adapter.budget()
    final = out.final_weights
    assert {k: v.shape for k, v in final.items()} == {k: v.shape for k, v in weights.items()}
    assert torch.count_nonzero(final[name][0, :5]) == 0 and not torch.equal(final[name], weights[name])
    val = adapter.evaluate(final, "val")[adapter.metric().val_name]
    assert val == pytest.approx(out.curve[-1].val, rel=1e-9, abs=1e-12)

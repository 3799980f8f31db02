"""The tiny NLP configuration the NLP tests train (synthetic data, a few updates on the CPU): one declaration, each
test overriding only what it measures."""

from __future__ import annotations

from domains.nlp.config import NLPConfig


def tiny_config(cache, **kw) -> NLPConfig:
    values = dict(
        synthetic_size=600,
        synthetic_eval_size=24,
        vocab_size=200,
        max_updates=6,
        eval_every=3,
        warmup=2,
        lr=3e-3,
        max_tokens=512,
        beam=2,
        dropout=0.1,
        cache_dir=str(cache),
        device="cpu",
    )
    values.update(kw)
    cfg = NLPConfig(**values)
    cfg.validate()
    return cfg

"""fairseq Transformers with attention heads and FFN neurons physically removed.

`lth_core.compaction.shrink` cuts q/k/v rows, out_proj columns and fc1 rows / fc2 columns and fixes the
Linear sizes. fairseq's `MultiheadAttention` carries more, the traps its own head pruning
(`_adaptive_prune_heads`) also meets: `num_heads` (the reshape into heads), `embed_dim` (the width of the
concatenated heads, `num_heads * head_dim`, which its forward asserts equal to the query's width unless
`skip_embed_dim_check`) and the fast path through `F.multi_head_attention_forward`, which needs the heads to
span the query's width. A module that lost heads therefore gets fairseq's own `_set_skip_embed_dim_check()`,
which also routes it off the fast path onto fairseq's own attention code (the one incremental decoding
always uses). `head_dim` and `scaling` stay; `kdim` / `vdim` (k_proj / v_proj input widths) are untouched.
Not handled: `add_bias_kv` (a learned key / value row per head that no family names) is refused.
"""

from __future__ import annotations

from typing import Mapping

from torch import Tensor, nn

from domains.nlp.models import structure_families
from lth_core.compaction import keep_for_shapes, shrink
from lth_core.job import StateDict


def compact_transformer(model: nn.Module, keep: Mapping[str, Tensor]) -> nn.Module:
    """Cut `model` in place to the kept heads and FFN neurons of `structure_families(model)`; returns it."""
    from fairseq.modules import MultiheadAttention

    families = structure_families(model)
    heads = {f.name: model.get_submodule(f.name) for f in families if f.kind == "head"}
    for name, mha in heads.items():
        if mha.bias_k is not None or mha.bias_v is not None:
            raise ValueError(f"{name}: cannot remove heads of attention with add_bias_kv")
    shrink(model, families, keep)
    for name, mha in heads.items():
        assert isinstance(mha, MultiheadAttention)
        kept = int(keep[name].sum())
        if kept == mha.num_heads:
            continue
        mha.num_heads = kept
        mha.embed_dim = kept * mha.head_dim
        mha._set_skip_embed_dim_check()  # the query stays model-wide; also bypasses F.multi_head_attention_forward
    return model


def keep_for(model: nn.Module, state: StateDict) -> dict[str, Tensor] | None:
    """A keep that gives `model` the shapes of `state` (a compacted model's weights), or None when they agree."""
    return keep_for_shapes(model, structure_families(model), state)


def fit(model: nn.Module, state: StateDict) -> nn.Module:
    """`model` (freshly built) cut to the shapes of `state` where they are smaller, then loaded with it."""
    keep = keep_for(model, state)
    if keep is not None:
        compact_transformer(model, keep)
    model.load_state_dict(state)
    return model

"""fairseq architectures: the paper-sized ones fairseq ships, plus small ones that train on a CPU.

Registered in fairseq's own registry (`@register_model_architecture`), so `--arch NAME` reaches them
like any fairseq model. Also: which tensors of these models are prunable, and under which group name
(the keys `--rate-overrides` accepts).
"""

from __future__ import annotations

import re

from domains.nlp.fairseq_quiet import import_fairseq

import_fairseq()

from fairseq.models import (
    ARCH_MODEL_REGISTRY,
    FairseqEncoderDecoderModel,
    FairseqLanguageModel,
    register_model_architecture,
)
from fairseq.models.lstm_lm import base_architecture as lstm_lm_base
from fairseq.models.transformer.transformer_legacy import base_architecture as transformer_base
from torch import nn  # noqa: E402

from lth_core.errors import UsageError  # noqa: E402
from lth_core.structure import Coupled, GroupFamily  # noqa: E402

SUGGESTED = {
    "translation": (
        "transformer_lth_tiny",
        "transformer_lth_small",
        "transformer_iwslt_de_en",
        "transformer",
        "transformer_vaswani_wmt_en_de_big",
    ),
    "language_modeling": ("lstm_lm_lth_small", "lstm_lm_lth_medium", "lstm_lm"),
}
MODEL_KIND = {"translation": FairseqEncoderDecoderModel, "language_modeling": FairseqLanguageModel}


def _setdefaults(args, **values) -> None:
    for k, v in values.items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)


@register_model_architecture("transformer", "transformer_lth_tiny")
def transformer_lth_tiny(args):
    """2+2 layers, 64 wide: learns the synthetic language in a few hundred CPU updates."""
    _setdefaults(
        args,
        encoder_embed_dim=64,
        encoder_ffn_embed_dim=128,
        encoder_layers=2,
        encoder_attention_heads=4,
        decoder_embed_dim=64,
        decoder_ffn_embed_dim=128,
        decoder_layers=2,
        decoder_attention_heads=4,
        max_source_positions=512,
        max_target_positions=512,
    )
    transformer_base(args)


@register_model_architecture("transformer", "transformer_lth_small")
def transformer_lth_small(args):
    """3+3 layers, 128 wide, pre-norm (stable with a short warm-up): Multi30k-sized data on a CPU."""
    _setdefaults(
        args,
        encoder_embed_dim=128,
        encoder_ffn_embed_dim=512,
        encoder_layers=3,
        encoder_attention_heads=4,
        decoder_embed_dim=128,
        decoder_ffn_embed_dim=512,
        decoder_layers=3,
        decoder_attention_heads=4,
        encoder_normalize_before=True,
        decoder_normalize_before=True,
        max_source_positions=512,
        max_target_positions=512,
    )
    transformer_base(args)


@register_model_architecture("lstm_lm", "lstm_lm_lth_small")
def lstm_lm_lth_small(args):
    """2 layers of 256 units, tied input/output embeddings: a CPU-sized LSTM language model."""
    _setdefaults(args, decoder_embed_dim=256, decoder_hidden_size=256, decoder_out_embed_dim=256, decoder_layers=2)
    lstm_lm_base(args)


@register_model_architecture("lstm_lm", "lstm_lm_lth_medium")
def lstm_lm_lth_medium(args):
    """2 layers of 650 units (the 'medium' LSTM of Zaremba et al. 2014, the usual Wikitext-2 baseline)."""
    _setdefaults(args, decoder_embed_dim=650, decoder_hidden_size=650, decoder_out_embed_dim=650, decoder_layers=2)
    lstm_lm_base(args)


def check_arch(arch: str, task: str) -> None:
    """UsageError unless `arch` is a fairseq architecture whose model does `task`."""
    cls = ARCH_MODEL_REGISTRY.get(arch)
    if cls is None or not issubclass(cls, MODEL_KIND[task]):
        raise UsageError(
            f"--arch {arch!r} is not a fairseq {task} architecture; valid choices include "
            f"{', '.join(SUGGESTED[task])} (any fairseq {task} arch works)"
        )


# Prunable tensors: (pattern on the parameter name, group). Biases follow their weight's group.
PRUNABLE_PATTERNS: tuple[tuple[str, str], ...] = (
    (r".*\.(self_attn|encoder_attn)\.(q_proj|k_proj|v_proj|out_proj)\.(weight|bias)", "attention"),
    (r".*\.fc[12]\.(weight|bias)", "ffn"),
    (r".*\.layers\.\d+\.(weight_ih|weight_hh|bias_ih|bias_hh)", "recurrent"),
    (r".*\.additional_fc\.(weight|bias)", "ffn"),
)
EMBEDDING_PATTERNS: tuple[tuple[str, str], ...] = (
    (r".*embed_tokens\.weight", "embedding"),
    (r".*(output_projection|fc_out)\.weight", "output"),
)


def prunable_groups(model: nn.Module, biases: bool, embeddings: bool) -> dict[str, str]:
    """Name -> group for each prunable Parameter, once per Parameter (a tied tensor under its first name)."""
    patterns = PRUNABLE_PATTERNS + (EMBEDDING_PATTERNS if embeddings else ())
    out: dict[str, str] = {}
    for name, _ in model.named_parameters():  # named_parameters() already yields a tied Parameter once
        if name.endswith("bias") or "bias_" in name.rsplit(".", 1)[-1]:
            if not biases:
                continue
        for pattern, group in patterns:
            if re.fullmatch(pattern, name):
                out[name] = group
                break
    return out


def structure_families(model: nn.Module) -> list[GroupFamily]:
    """Attention heads and FFN neurons of fairseq Transformers, named by their state-dict tensors.

    Head h of an attention module: rows [h*head_dim, (h+1)*head_dim) of q/k/v_proj's weight and bias (the
    layout fairseq's own head pruning, `MultiheadAttention._get_reserve_head_index`, reads) and the same
    columns of out_proj.weight (out_proj.bias is shared by all heads, so no group owns it). FFN neuron i of a
    layer: row i of fc1.weight, entry i of fc1.bias, column i of fc2.weight.

    LSTMs have no families here: a hidden unit's four gate rows are strided (j, H+j, 2H+j, 3H+j), not one
    block a `GroupFamily` can name, and the last layer's units feed the embedding tied to the output.
    """
    from fairseq.modules import MultiheadAttention

    families: list[GroupFamily] = []
    for name, module in model.named_modules():
        if isinstance(module, MultiheadAttention):
            hd = module.head_dim
            members = [
                Coupled(f"{name}.{proj}.{kind}", 0, hd)
                for proj in ("q_proj", "k_proj", "v_proj")
                for kind in ("weight", "bias")
                if getattr(getattr(module, proj), kind) is not None
            ]
            families.append(
                GroupFamily(name, "head", module.num_heads, (*members, Coupled(f"{name}.out_proj.weight", 1, hd)))
            )
        elif all(isinstance(getattr(module, fc, None), nn.Linear) for fc in ("fc1", "fc2")):
            fc1 = module.fc1
            members = [Coupled(f"{name}.fc1.weight", 0)]
            members += [Coupled(f"{name}.fc1.bias", 0)] if fc1.bias is not None else []
            families.append(
                GroupFamily(f"{name}.ffn", "ffn", fc1.out_features, (*members, Coupled(f"{name}.fc2.weight", 1)))
            )
    return families

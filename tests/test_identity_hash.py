"""The run identity and its hash by exact values: what joins it, in which spelling, and the hash of it
(mutation testing found the parts unpinned by the fast subset; tests/test_cli.py pins the domains' presets)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from toy_adapter import ToyConfig

from lth_core.config import DomainConfig, ImpConfig, config_hash, identity_dict, opt
from lth_core.imp_runner import run_identity

DEFAULT_IMP = {
    "controls": "random_reinit,random_mask",
    "levels": 8,
    "prune_biases": False,
    "rate": 0.2,
    "rate_overrides": "",
    "rewind_step": "0",
    "schedule": "iterative",
    "seed": 0,
    "strategy": "magnitude_layerwise",
    "trials": 2,
}
TOY = {"budget_scale": 1.0, "eval_every": 20, "hidden": 32, "lr": 0.01, "nan_at": -1, "optimizer": "adam"}
TOY = {**TOY, "steps": 60, "tied": False}


def test_the_default_toy_identity_and_its_hash():
    ident = run_identity("toy", ImpConfig(), ToyConfig())
    assert ident == {"domain": "toy", "imp": DEFAULT_IMP, "domain_config": TOY, "ticket_from": None}
    assert list(ident["imp"]) == sorted(DEFAULT_IMP) and list(ident["domain_config"]) == sorted(TOY)
    assert config_hash(ident) == "3bfa4712fea8cdc0b571995989fed03e0ddc4248fb67832f16d414083f4a4497"


def test_chosen_parameters_compaction_a_scale_and_a_source_join_the_identity():
    imp = ImpConfig(strategy="snip", params={"snip": {"batches": 2}, "random_mask": {}}, compact=True)
    ident = run_identity("toy", imp, ToyConfig(budget_scale=0.5, device="cpu", threads=3, eval_points=4), "ab")
    assert ident["imp"] == {
        **DEFAULT_IMP,
        "strategy": "snip",
        "params": {"snip": {"batches": 2, "scope": "global"}},
        "compact": True,
    }
    assert ident["domain_config"] == {**TOY, "budget_scale": 0.5, "scaled_evaluation": {"eval_points": 4}}
    assert ident["ticket_from"] == "ab"
    assert config_hash(ident) == "f283e3cb5fd6ee3ec3ec31ca5f81e857a33631508d2aad433abb37dfcb6b107d"


def test_params_of_several_components_are_sorted_by_name():
    imp = ImpConfig(strategy="snip", controls="inverted", params={"snip": {"batches": 3}})
    assert list(imp.identity()["params"]) == ["snip"]
    assert ImpConfig(compact=False).identity() == DEFAULT_IMP  # no params key, no compact key


def test_the_hash_is_sha256_of_sorted_json_with_the_format_and_strings_for_other_types():
    blob = '{"a": [1, 2], "format": 1, "p": "x/y", "z": null}'
    assert config_hash({"z": None, "p": Path("x/y"), "a": [1, 2]}) == hashlib.sha256(blob.encode()).hexdigest()


@dataclass
class Cfg:
    b: tuple = opt((1, 2), "a tuple field")
    a: int = opt(3, "an identity field")
    where: str = opt("here", "not identity", identity=False)


def test_identity_dict_drops_non_identity_fields_lists_tuples_and_sorts():
    out = identity_dict(Cfg())
    assert out == {"a": 3, "b": [1, 2]} and list(out) == ["a", "b"] and type(out["b"]) is list


def test_controls_spell_in_the_registrys_order_then_unknown_names_by_name():
    imp = ImpConfig(controls=" inverted, zz, random_mask,aa ,inverted,, random_reinit")
    assert imp.control_names() == ["inverted", "zz", "random_mask", "aa", "inverted", "random_reinit"]
    assert imp.canonical_controls() == "random_reinit,random_mask,inverted,aa,zz"
    assert ImpConfig(controls="").canonical_controls() == ""


def test_rewind_spellings():
    spell = lambda t: ImpConfig(rewind_step=t).canonical_rewind()  # noqa: E731
    assert [spell(t) for t in (" 007 ", "5E-2", "1e3", "2.50", "-0", "half", " 1_0 ")] == [
        "7",
        "0.05",
        "1000.0",
        "2.5",
        "0",
        "half",
        "10",
    ]


@dataclass
class Plain:
    c: int = 5  # a field declared without opt(): part of the identity, as every field not marked otherwise


def test_a_field_without_metadata_joins_the_identity():
    assert identity_dict(Plain()) == {"c": 5}


@dataclass
class Sized(DomainConfig):
    val_size: int = opt(0, "validation items (0 = all)", eval_floor=10)
    test_size: int = opt(1000, "test items", eval_floor=20)


def test_a_scale_below_one_records_each_declared_evaluation_size_or_its_rule():
    assert Sized().scaled_evaluation() == {} and Sized().identity_extras() == {}
    out = Sized(budget_scale=0.01, eval_points=3).identity_extras()
    assert out == {
        "scaled_evaluation": {"eval_points": 3, "val_size": "max(10, ceil(n x scale)) of n", "test_size": 20}
    }
    assert list(out["scaled_evaluation"]) == ["eval_points", "val_size", "test_size"]
    assert Sized(budget_scale=0.5).scaled_evaluation()["scaled_evaluation"]["test_size"] == 500

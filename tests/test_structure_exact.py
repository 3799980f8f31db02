"""lth_core/structure.py: a family's shape check and its messages, the element masks of group keeps (blocks of
`width` along `dim`, writable, intersected where a tensor is in two families) and the groups' L2 norms."""

from __future__ import annotations

import pytest
import torch

from lth_core.structure import Coupled, GroupFamily, group_masks, group_norms

FAMS = [
    GroupFamily("a", "neuron", 3, (Coupled("w1", 0), Coupled("w2", 1, 2))),
    GroupFamily("b", "head", 2, (Coupled("w2", 0),)),
]
SHAPES = {"w1": (3, 2), "w2": (2, 6)}


def test_check_names_the_family_the_tensor_and_the_sizes() -> None:
    FAMS[0].check(SHAPES)  # no error
    with pytest.raises(ValueError, match="^group family 'a': no tensor 'w2'$"):
        FAMS[0].check({"w1": (3, 2)})
    msg = r"^group family 'a': w2 has 5 entries along dim 1, expected 3 groups x 2$"
    with pytest.raises(ValueError, match=msg):
        FAMS[0].check({"w1": (3, 2), "w2": (2, 5)})
    with pytest.raises(ValueError, match="^group family 'a': w1 has 4 entries along dim 0, expected 3 groups x 1$"):
        FAMS[0].check({"w1": (4, 2), "w2": (2, 6)})


def test_member_masks_are_width_blocks_along_dim_and_writable() -> None:
    keep = torch.tensor([True, False, True])
    m = FAMS[0].member_mask(FAMS[0].members[1], keep, (2, 6))
    assert m.tolist() == [[True, True, False, False, True, True]] * 2
    m[0, 0] = False  # its own storage, not a broadcast view
    assert m.tolist() == [[False, True, False, False, True, True], [True, True, False, False, True, True]]
    rows = FAMS[0].member_mask(FAMS[0].members[0], keep, (3, 2))
    assert rows.tolist() == [[True, True], [False, False], [True, True]]


def test_group_masks_intersect_where_a_tensor_is_in_two_families() -> None:
    keep = {"a": torch.tensor([True, False, True]), "b": torch.tensor([False, True])}
    out = group_masks(FAMS, keep, SHAPES)
    assert out["w1"].tolist() == [[True, True], [False, False], [True, True]]
    assert out["w2"].tolist() == [[False] * 6, [True, True, False, False, True, True]]
    assert set(out) == {"w1", "w2"}


def test_group_norms_are_the_l2_norm_over_all_members() -> None:
    w = {"w1": torch.tensor([[3.0, 0.0], [1.0, 1.0], [0.0, 0.0]]), "w2": torch.arange(12.0).view(2, 6)}
    got = group_norms(FAMS, w)
    # a_i: row i of w1 and columns 2i, 2i+1 of w2 (rows 0 and 1)
    want_a = [(9 + 0 + 1 + 36 + 49) ** 0.5, (2 + 4 + 9 + 64 + 81) ** 0.5, (0 + 16 + 25 + 100 + 121) ** 0.5]
    assert got["a"].dtype == torch.float64 and torch.allclose(got["a"], torch.tensor(want_a, dtype=torch.float64))
    want_b = [sum(x * x for x in range(6)) ** 0.5, sum(x * x for x in range(6, 12)) ** 0.5]
    assert torch.allclose(got["b"], torch.tensor(want_b, dtype=torch.float64))

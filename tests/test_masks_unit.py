"""Mask's small contracts, each one a mutant that survived the suite (mutation testing, README): the nesting check
over different tensor names, and loading a mask file as plain tensors only."""

from __future__ import annotations

import pickle

import pytest
import torch

from lth_core.masks import Mask


def test_masks_over_other_tensors_do_not_nest():
    a = Mask({"w": torch.tensor([True, False])})
    assert a.is_subset_of(Mask({"w": torch.tensor([True, True])}))
    assert not a.is_subset_of(Mask({"v": torch.tensor([True, True])}))
    assert not a.is_subset_of(Mask({"w": torch.tensor([True, True]), "v": torch.tensor([True])}))
    assert not Mask({"w": torch.tensor([True, True])}).is_subset_of(a)


class Payload:
    """Not a tensor: a mask file holding it is not one this tool wrote."""

    def __reduce__(self):
        return (print, ("unpickled code ran",))


def test_a_mask_file_is_read_as_plain_tensors_only(tmp_path):
    good = Mask({"w": torch.tensor([[True, False]])})
    good.save(tmp_path / "m.pt")
    back = Mask.load(tmp_path / "m.pt")
    assert back.tensors.keys() == {"w"} and torch.equal(back["w"], good["w"]) and back["w"].dtype == torch.bool
    torch.save({"w": Payload()}, tmp_path / "bad.pt")
    with pytest.raises(pickle.UnpicklingError):
        Mask.load(tmp_path / "bad.pt")


class _Pickled:
    """Any object that is not a tensor: a weights-only load must refuse it."""


def test_a_mask_file_holding_a_pickled_object_is_refused(tmp_path):
    path = tmp_path / "mask.pt"
    torch.save({"w": _Pickled()}, path)
    with pytest.raises(Exception, match="Weights only load failed|weights_only"):
        Mask.load(path)

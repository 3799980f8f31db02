"""Vision datasets: offline loading from torchvision's layout, a validation split that never touches test,
one-line errors for missing files, and the batched augmentation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks.fake_vision_files import write_cifar10, write_cifar100, write_mnist
from domains.vision.augment import crop_flip
from domains.vision.config import VisionConfig
from domains.vision.data import DATASETS, load
from lth_core.errors import UsageError


def _rows(x: torch.Tensor) -> set[bytes]:
    return {r.numpy().tobytes() for r in x.reshape(len(x), -1)}


def _check_split(data, n_source_train: int, val_size: int) -> None:
    assert len(data.val) == val_size
    tr, va = set(data.train_index.tolist()), set(data.val_index.tolist())
    assert not tr & va and tr | va <= set(range(n_source_train))
    assert not _rows(data.val.x) & _rows(data.test.x)  # no test example in validation
    assert not _rows(data.train.x) & _rows(data.test.x)


def test_mnist_from_data_dir_offline_with_a_split_carved_from_training(tmp_path):
    write_mnist(tmp_path, n_train=600, n_test=200)
    data = load(VisionConfig(dataset="mnist", data_dir=str(tmp_path), val_size=100))
    assert data.train.x.shape == (500, 1, 28, 28) and data.train.x.dtype == torch.float32
    assert data.test.x.shape == (200, 1, 28, 28) and len(data.test.y) == 200
    _check_split(data, 600, 100)
    assert abs(data.train.x.mean().item()) < 3 and data.train.y.dtype == torch.int64


def test_fashion_mnist_uses_its_own_folder(tmp_path):
    write_mnist(tmp_path, folder="FashionMNIST", n_train=300, n_test=50)
    data = load(VisionConfig(dataset="fashion-mnist", data_dir=str(tmp_path), val_size=50))
    assert len(data.train) == 250 and len(data.test) == 50


def test_cifar10_and_cifar100_from_python_pickles(tmp_path):
    write_cifar10(tmp_path, per_batch=40, n_test=30)
    data = load(VisionConfig(dataset="cifar10", model="conv2", data_dir=str(tmp_path), val_size=50))
    assert data.train.x.shape == (150, 3, 32, 32) and data.test.x.shape == (30, 3, 32, 32)
    assert data.augment == "crop_flip"
    _check_split(data, 200, 50)
    write_cifar100(tmp_path, n_train=120, n_test=20)
    data = load(VisionConfig(dataset="cifar100", model="resnet20", data_dir=str(tmp_path), val_size=20, augment="none"))
    assert len(data.train) == 100 and data.classes == 100 and data.augment == "none"


def test_training_subset_and_validation_sizes(tmp_path):
    write_mnist(tmp_path, n_train=600, n_test=100)
    data = load(VisionConfig(dataset="mnist", data_dir=str(tmp_path), val_size=100, train_size=250))
    assert len(data.train) == 250 and len(data.val) == 100
    with pytest.raises(UsageError, match="--train-size 900 exceeds the 500"):
        load(VisionConfig(dataset="mnist", data_dir=str(tmp_path), val_size=100, train_size=900))
    with pytest.raises(UsageError, match="--val-size 600 leaves no training data"):
        load(VisionConfig(dataset="mnist", data_dir=str(tmp_path), val_size=600))


def test_split_is_fixed_across_loads_and_trials(tmp_path):
    write_mnist(tmp_path)
    a = load(VisionConfig(dataset="mnist", data_dir=str(tmp_path), val_size=100))
    b = load(VisionConfig(dataset="mnist", data_dir=str(tmp_path), val_size=100))
    assert torch.equal(a.val_index, b.val_index)


@pytest.mark.parametrize(
    "dataset,looked_for",
    [
        ("mnist", "MNIST/raw"),
        ("fashion-mnist", "FashionMNIST/raw"),
        ("cifar10", "cifar-10-batches-py"),
        ("cifar100", "cifar-100-python"),
    ],
)
def test_missing_files_are_one_line_usage_errors_naming_where_and_how(tmp_path, dataset, looked_for):
    with pytest.raises(UsageError) as err:
        load(VisionConfig(dataset=dataset, model="conv2", data_dir=str(tmp_path / "nowhere")))
    msg = str(err.value)
    assert "\n" not in msg and looked_for in msg and str(tmp_path) in msg and "--download" in msg


def test_a_partial_cifar_folder_names_the_missing_batches(tmp_path):
    write_cifar10(tmp_path, per_batch=10, n_test=10)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(UsageError, match="no data_batch_3 under"):
        load(VisionConfig(dataset="cifar10", model="conv2", data_dir=str(tmp_path)))


def test_unknown_dataset_lists_choices():
    from domains.vision.data import DATASETS

    assert {"cifar10", "cifar100", "digits", "mnist", "mnist1d"} <= set(DATASETS.names())
    with pytest.raises(UsageError) as e:
        VisionConfig(dataset="svhn").validate()
    assert str(e.value) == f"unknown dataset 'svhn'; valid choices: {', '.join(DATASETS.names())}"


def test_help_lists_every_registered_choice():
    from dataclasses import fields

    from domains.vision.models import MODELS
    from domains.vision.optim import OPTIMIZERS

    helps = {f.name: f.metadata["help"] for f in fields(VisionConfig)}
    for field, reg in (("dataset", DATASETS), ("model", MODELS), ("optimizer", OPTIMIZERS)):
        assert all(name in helps[field] for name in reg.names()), field


def test_digits_embedded_with_fixed_test_split():
    data = load(VisionConfig(dataset="digits", model="mlp"))
    assert len(data.test) == 1797 // 5 and len(data.val) == 300 and len(data.train) == 1797 - 359 - 300
    _check_split(data, 1797 - 359, 300)


def test_mnist1d_generated_offline_without_touching_global_rngs():
    np_state = np.random.get_state()[1].copy()
    data = load(VisionConfig(dataset="mnist1d", mnist1d_samples=1000, val_size=100))
    assert np.array_equal(np.random.get_state()[1], np_state)
    assert data.train.x.shape == (700, 1, 40) and data.test.x.shape == (200, 1, 40)
    _check_split(data, 800, 100)
    assert set(data.train.y.unique().tolist()) == set(range(10))


def test_crop_flip_moves_pixels_but_keeps_shape_and_content():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float32).view(2, 3, 32, 32) + 1
    out = crop_flip(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    # every output pixel is either padding (0) or a pixel of the same image and channel
    for b in range(2):
        for c in range(3):
            vals = set(out[b, c].flatten().tolist()) - {0.0}
            assert vals <= set(x[b, c].flatten().tolist())
    outs = [crop_flip(x, torch.Generator().manual_seed(s)) for s in range(8)]
    assert any(not torch.equal(o, x) for o in outs)
    # a centred, unflipped crop is the identity: offsets 4,4 occur among seeds for a large batch
    big = x[:1].expand(400, -1, -1, -1)
    assert any(torch.equal(o, x[0]) for o in crop_flip(big, torch.Generator().manual_seed(1)))

"""No code from data: a crafted CIFAR pickle in --data-dir is refused before it can run, and damaged MNIST /
CIFAR files are one line naming the file, exit 2, nothing written (checked when the config is validated)."""

from __future__ import annotations

import io
import pickle
import struct
from pathlib import Path

import numpy as np
import pytest

from benchmarks.run import main
from domains.vision.config import VisionConfig
from domains.vision.data import ArraysOnly, load
from lth_core.errors import UsageError


class Payload:
    """Unpickling this writes `marker`: what a crafted `data_batch_1` would do to a plain `pickle.load`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({str(self.marker)!r}, 'w').write('ran')",)


def _batch(n: int, seed: int, label_key: str = "labels") -> dict:
    rng = np.random.default_rng(seed)
    labels = [int(v) for v in rng.integers(0, 10, n)]
    return {"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8), label_key: labels}


def write_cifar10(root: Path, n: int = 20) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate([f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]):
        (folder / name).write_bytes(pickle.dumps(_batch(n, i)))
    return folder


def _idx(path: Path, array: np.ndarray) -> None:
    path.write_bytes(
        struct.pack(">I", 0x0800 | array.ndim)
        + b"".join(struct.pack(">I", d) for d in array.shape)
        + array.astype(np.uint8).tobytes()
    )


def write_mnist(root: Path, n: int = 120) -> Path:
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for prefix in ("train", "t10k"):
        _idx(raw / f"{prefix}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28)))
        _idx(raw / f"{prefix}-labels-idx1-ubyte", rng.integers(0, 10, n))
    return raw


def run_cli(capsys, tmp_path: Path, *argv: str) -> str:
    """`benchmarks.run` on the vision domain: exit 2, one line on stderr, no --out folder; the line."""
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as e:
        main(["--domain", "vision", *argv, "--levels", "1", "--trials", "1", "--out", str(out), "--noprogress"])
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1, err
    assert not out.exists()
    return err


def test_the_payload_is_real_a_plain_unpickle_runs_it(tmp_path):
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps({"data": Payload(marker)}))
    assert marker.read_text() == "ran"  # so the refusal below is a refusal of code that would have run


def test_a_crafted_cifar_batch_is_refused_naming_the_file_and_never_runs(tmp_path, capsys):
    folder = write_cifar10(tmp_path / "data")
    marker = tmp_path / "ran"
    evil = {**_batch(20, 0), "filenames": Payload(marker)}
    (folder / "data_batch_1").write_bytes(pickle.dumps(evil))
    before = {p: p.read_bytes() for p in folder.iterdir()}
    err = run_cli(
        capsys,
        tmp_path,
        "--dataset",
        "cifar10",
        "--model",
        "conv2",
        "--data-dir",
        str(tmp_path / "data"),
        "--val-size",
        "10",
        "--batch-size",
        "10",
    )
    assert str(folder / "data_batch_1") in err and "builtins.exec" in err and "refused" in err, err
    assert not marker.exists()
    assert {p: p.read_bytes() for p in folder.iterdir()} == before


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_genuine_batches_load_at_every_pickle_protocol(tmp_path, protocol):
    folder = write_cifar10(tmp_path)
    for f in folder.iterdir():
        f.write_bytes(pickle.dumps(pickle.loads(f.read_bytes()), protocol=protocol))
    data = load(VisionConfig(dataset="cifar10", model="conv2", data_dir=str(tmp_path), val_size=10))
    assert len(data.train) == 90 and data.test.x.shape == (20, 3, 32, 32)


def test_a_python2_batch_as_cifar_ships_it_reads_without_any_other_global():
    """cPickle protocol 2 from Python 2: str keys, the array's bytes as a str, numpy.core's reconstruct."""
    py2 = (
        b"\x80\x02}q\x00(U\x04dataq\x01cnumpy.core.multiarray\n_reconstruct\nq\x02cnumpy\nndarray\nq\x03K\x00"
        b"\x85U\x01b\x87Rq\x04(K\x01K\x02K\x02\x86cnumpy\ndtype\nq\x05U\x02u1K\x00K\x01\x87Rq\x06(K\x03U\x01|NNN"
        b"J\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tbI00\nU\x04\x01\x02\x03\x04tbu."
    )
    assert ArraysOnly(io.BytesIO(py2), encoding="latin1").load()["data"].tolist() == [[1, 2], [3, 4]]


def test_only_latin1_is_decoded_at_protocol_2():
    b = pickle.dumps(b"\xff", protocol=2).replace(b"latin1", b"rot_13")
    with pytest.raises(pickle.UnpicklingError, match="rot_13"):
        ArraysOnly(io.BytesIO(b), encoding="latin1").load()


DAMAGE = {
    "truncated": lambda f: f.write_bytes(f.read_bytes()[:100]),
    "garbage": lambda f: f.write_bytes(b"\x00" * 4096),
    "not a dict": lambda f: f.write_bytes(pickle.dumps([1, 2, 3])),
    "float data": lambda f: f.write_bytes(pickle.dumps({"data": np.zeros((20, 3072)), "labels": [0] * 20})),
    "short labels": lambda f: f.write_bytes(pickle.dumps({**_batch(20, 0), "labels": [0] * 19})),
}


@pytest.mark.parametrize("damage", DAMAGE, ids=list(DAMAGE))
def test_a_damaged_cifar_batch_is_one_line_naming_it(tmp_path, damage):
    folder = write_cifar10(tmp_path)
    DAMAGE[damage](folder / "data_batch_3")
    with pytest.raises(UsageError) as e:
        load(VisionConfig(dataset="cifar10", model="conv2", data_dir=str(tmp_path), val_size=10))
    assert str(folder / "data_batch_3") in str(e.value) and "\n" not in str(e.value)


IDX_DAMAGE = {
    "zeros": lambda f: f.write_bytes(b"\x00" * f.stat().st_size),
    "empty": lambda f: f.write_bytes(b""),
    "truncated": lambda f: f.write_bytes(f.read_bytes()[:-7]),
    "wrong magic": lambda f: f.write_bytes(b"\x00\x00\x0d\x02" + f.read_bytes()[4:]),
}


@pytest.mark.parametrize("damage", IDX_DAMAGE, ids=list(IDX_DAMAGE))
@pytest.mark.parametrize("name", ["train-images-idx3-ubyte", "t10k-labels-idx1-ubyte"])
def test_a_damaged_mnist_file_is_one_line_naming_it_from_the_cli(tmp_path, capsys, damage, name):
    raw = write_mnist(tmp_path / "data")
    IDX_DAMAGE[damage](raw / name)
    err = run_cli(
        capsys,
        tmp_path,
        "--dataset",
        "mnist",
        "--model",
        "lenet_300_100",
        "--data-dir",
        str(tmp_path / "data"),
        "--val-size",
        "20",
        "--batch-size",
        "10",
    )
    assert str(raw / name) in err, err


def test_mnist_labels_of_another_count_are_refused(tmp_path):
    raw = write_mnist(tmp_path)
    _idx(raw / "train-labels-idx1-ubyte", np.zeros(119))
    with pytest.raises(UsageError, match="120 images but 119 labels"):
        load(VisionConfig(dataset="mnist", data_dir=str(tmp_path), val_size=20))


def test_mnist_is_parsed_without_pickle(tmp_path, monkeypatch):
    write_mnist(tmp_path)
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("pickle.load on an IDX file"))
    assert len(load(VisionConfig(dataset="mnist", data_dir=str(tmp_path), val_size=20)).train) == 100

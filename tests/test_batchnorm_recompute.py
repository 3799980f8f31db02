"""`--bn recompute`: BatchNorm statistics recomputed on training batches (lth_core/batchnorm.py and the vision
adapter's `recompute_norm_stats`), on a Conv+BN net (ResNet-20 on the 8x8 digits) trained twice from one init."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from domains.vision.adapter import VisionAdapter
from domains.vision.config import VisionConfig
from domains.vision.train import Batches
from lth_core.batchnorm import recompute
from lth_core.interpolation import alphas, evaluate_path, interpolate
from lth_core.job import Job

CONFIG = VisionConfig(
    dataset="digits", model="resnet20", optimizer="sgd", lr=0.05, momentum=0.9, iterations=40, eval_every=20,
    batch_size=32,
)  # fmt: skip


def test_recompute_is_the_plain_mean_of_batch_statistics_and_leaves_the_rest():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 3, 3), nn.BatchNorm2d(3), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 36, 2))
    net.eval()
    batches = [torch.randn(5, 1, 8, 8) * (i + 1) + i for i in range(4)]
    weights = {k: v.clone() for k, v in net.state_dict().items() if "running" not in k and "tracked" not in k}
    assert recompute(net, batches, lambda m, x: m(x)) == 1
    bn = net[1]
    conv = [net[0](x).detach() for x in batches]
    mean = torch.stack([c.mean(dim=(0, 2, 3)) for c in conv]).mean(0)
    var = torch.stack([c.var(dim=(0, 2, 3), unbiased=True) for c in conv]).mean(0)
    assert torch.allclose(bn.running_mean, mean, atol=1e-5) and torch.allclose(bn.running_var, var, atol=1e-4)
    assert bn.momentum == 0.1 and not net.training and int(bn.num_batches_tracked) == 4
    assert all(torch.equal(net.state_dict()[k], v) for k, v in weights.items())
    assert recompute(nn.Linear(2, 2), batches, lambda m, x: None) == 0  # no BatchNorm: nothing to do


@pytest.fixture(scope="module")
def pair():
    torch.set_num_threads(1)
    adapter = VisionAdapter(CONFIG)
    init = adapter.initial_weights(0)
    out = []
    for seed in (1, 2):
        job = Job(0, "dense", 0, 0, {k: v.clone() for k, v in init.items()}, None, 40, keep_final_weights=True)
        job.data_seed = seed
        o = adapter.train(job)
        assert o.status == "ok" and o.final_weights is not None
        out.append(o.final_weights)
    return adapter, out[0], out[1]


def test_recomputed_statistics_differ_from_interpolated_ones_and_are_the_training_batches(pair):
    adapter, a, b = pair
    mid = interpolate(a, b, 0.5)
    fresh = adapter.recompute_norm_stats(mid, 3, seed=7)
    key = "bn.running_mean"
    assert not torch.allclose(fresh[key], mid[key], atol=1e-3)  # statistics of the mixed network, not a mix
    assert all(torch.equal(fresh[k], mid[k]) for k in mid if "running" not in k and "tracked" not in k)
    # by hand: the stem's batch means over the first 3 batches of order 7
    data = adapter.data()
    model = adapter.build(0)
    model.load_state_dict(mid)
    order = Batches(len(data.train), CONFIG.batch_size, 7)
    with torch.no_grad():
        means = [model.conv(data.train.x[order(s)]).mean(dim=(0, 2, 3)) for s in range(3)]
    assert torch.allclose(fresh[key], torch.stack(means).mean(0), atol=1e-5)
    assert adapter.recompute_norm_stats(mid, 3, seed=7)[key].equal(fresh[key])  # the seed fixes the batches


def test_path_ends_under_recompute_score_as_the_trained_models_after_recompute(pair):
    """Under recompute the ends are the trained copies with their statistics recomputed, so they score as those
    do, not exactly as the trained copies with their running averages (the two differ only a little)."""
    adapter, a, b = pair
    prep = lambda w: adapter.recompute_norm_stats(w, 10, seed=3)  # noqa: E731
    path = evaluate_path(adapter.evaluate, a, b, alphas(3), ("test",), prep)
    for row, w in ((path[0], a), (path[-1], b)):
        assert row["test_accuracy"] == adapter.evaluate(prep(w), "test")["test_accuracy"]
        trained = adapter.evaluate(w, "test")["test_accuracy"]
        assert abs(row["test_accuracy"] - trained) < 0.1, (row["test_accuracy"], trained)
    plain = evaluate_path(adapter.evaluate, a, b, alphas(3), ("test",))
    assert plain[1]["test_loss"] != path[1]["test_loss"]  # the midpoint's statistics are not the mix

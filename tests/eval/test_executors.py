import os
import sys

import pytest

from inrkit import InputError
from inrkit.eval.executors import PoolExecutor, SerialExecutor, make_executor, worker_threads


def square_and_threads(x):
    import torch

    if x < 0:
        raise InputError(f"negative input {x}")
    return x * x, torch.get_num_threads(), os.getpid()


def _tasks(values):
    return ((f"k{v}", (v,)) for v in values)


def test_make_executor_picks_by_name():
    assert isinstance(make_executor("local", 1), SerialExecutor)
    with pytest.raises(InputError, match="'local' or 'ray'"):
        make_executor("slurm", 1)
    with pytest.raises(InputError, match="--jobs"):
        make_executor("local", 0)


def test_serial_executor_yields_every_result():
    runner = SerialExecutor()
    assert {k: r[0] for k, r in runner.run(square_and_threads, _tasks(range(4)))} == {
        "k0": 0, "k1": 1, "k2": 4, "k3": 9}


def test_process_pool_runs_in_spawned_workers_with_shared_threads():
    runner = make_executor("local", 2)
    assert isinstance(runner, PoolExecutor)
    try:
        results = dict(runner.run(square_and_threads, _tasks(range(6))))
        assert {k: r[0] for k, r in results.items()} == {f"k{v}": v * v for v in range(6)}
        assert {r[1] for r in results.values()} == {worker_threads(2)}
        assert os.getpid() not in {r[2] for r in results.values()}
        with pytest.raises(InputError, match="negative input -1"):
            dict(runner.run(square_and_threads, _tasks([1, -1, 2])))
    finally:
        runner.close()


def test_ray_executor_runs_the_same_items():
    ray = pytest.importorskip("ray")
    # Ray workers cannot import a test module by name: ship this one by value
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    runner = make_executor("ray", 2)
    try:
        results = dict(runner.run(square_and_threads, _tasks(range(5))))
        assert {k: r[0] for k, r in results.items()} == {f"k{v}": v * v for v in range(5)}
        assert {r[1] for r in results.values()} == {1}
        with pytest.raises(InputError, match="negative input -3"):
            dict(runner.run(square_and_threads, _tasks([-3])))
    finally:
        runner.close()
    assert not ray.is_initialized()


def test_missing_ray_is_an_input_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray":
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    with pytest.raises(InputError, match=r"pip install inrkit\[ray\]"):
        make_executor("ray", 1)


@pytest.mark.slow
def test_ray_sweep_matches_the_local_sweep(tmp_path):
    pytest.importorskip("ray")
    from inrkit.datasets import load_sample_image, save
    from inrkit.eval.rd import sweep

    save(load_sample_image((100, 150, 48, 64)), tmp_path / "face.png")
    local = sweep([tmp_path / "face.png"], ["jpeg"], tmp_path / "local", points=2, progress=False)
    remote = sweep([tmp_path / "face.png"], ["jpeg"], tmp_path / "ray", points=2, progress=False,
                   executor="ray", jobs=2)
    assert local.computed == remote.computed == 2
    a = (tmp_path / "local" / "jpeg.json").read_text()
    b = (tmp_path / "ray" / "jpeg.json").read_text()
    import json

    ra, rb = json.loads(a)["results"], json.loads(b)["results"]
    assert ra["bpp"] == rb["bpp"] and ra["psnr-rgb"] == rb["psnr-rgb"]

"""tf.distribute on a CPU: two logical devices, two worker processes, batch checks.

Each test starts fresh processes: logical CPU devices and multi-worker collectives
must be set up before TensorFlow runs anything, which this pytest process did long ago.
"""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

# Trains, starts processes or drives a browser: not in the fast tier.
pytestmark = pytest.mark.integration

HERE = Path(__file__).parent
TINY = (
    "[model]\nresolution = 16\nwidth = 8\nmax_width = 32\nlatent_dim = 16\n"
    "[train]\nbatch_size = 8\nlog_every = 2\nsample_every = 100\n"
    "checkpoint_every = {checkpoint_every}\n"
)


def _last_json(text: str) -> dict:
    return json.loads(text.strip().splitlines()[-1])


def test_two_logical_devices_train_the_same_weights_as_one(tmp_path):
    """(a) MirroredStrategy over two logical CPUs vs the default strategy, same global batch."""
    result = subprocess.run(
        [sys.executable, str(HERE / "equivalence_script.py"), str(tmp_path), "5"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = _last_json(result.stdout)
    assert report["replicas"] == 2 and report["same_keys"] and report["step"] == 5
    assert report["weights"] >= 20  # kernels, biases, batch-norm scales and statistics
    # G and D weights (batch-norm statistics included): synchronized batch norm makes
    # the two runs the same computation up to float summation order.
    assert report["max_relative_difference_weights"] <= 1e-5, report
    assert report["max_relative_difference_all"] <= 1e-5, report  # Adam moments too


def test_a_nan_batch_on_one_replica_skips_the_update_on_all(tmp_path):
    result = subprocess.run(
        [sys.executable, str(HERE / "equivalence_script.py"), "--nan"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = _last_json(result.stdout)
    assert report == {"skipped": 1.0, "unchanged": True, "next_step_trains": True, "iterations": 2}


def test_a_global_batch_the_replicas_cannot_share_is_refused_before_training(tmp_path):
    """(c)"""
    result = subprocess.run(
        [
            "facegan",
            "train",
            "--strategy",
            "mirrored",
            "--cpu-replicas",
            "2",
            "--batch-size",
            "7",
            "--steps",
            "2",
            "--run-dir",
            str(tmp_path / "run"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    # (the last line: this test's environment sets TF_CPP_MIN_LOG_LEVEL, so the CLI does
    # not mute TensorFlow's start-up lines)
    assert result.stderr.strip().splitlines()[-1] == (
        "facegan: error: `train.batch_size` (the global batch) must be a multiple of the 2 "
        "replicas of the MirroredStrategy; received 7 (try 6 or 8)"
    )
    assert not (tmp_path / "run").exists()


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def _start_workers(
    tmp_path: Path, steps: int, checkpoint_every: int, ports: list[int], tag: str
) -> list[tuple[subprocess.Popen, Path]]:
    config = tmp_path / "tiny.toml"
    config.write_text(TINY.format(checkpoint_every=checkpoint_every))
    workers = []
    for index in range(len(ports)):
        scratch = tmp_path / f"tmp-{index}"
        scratch.mkdir(exist_ok=True)
        env = dict(
            os.environ,
            TMPDIR=str(scratch),
            TF_CONFIG=json.dumps(
                {
                    "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
                    "task": {"type": "worker", "index": index},
                }
            ),
        )
        log = tmp_path / f"worker-{index}-{tag}.log"
        with open(log, "w") as err:
            process = subprocess.Popen(
                [
                    "facegan",
                    "train",
                    "--config",
                    str(config),
                    "--strategy",
                    "multiworker",
                    "--steps",
                    str(steps),
                    "--run-dir",
                    str(tmp_path / "run"),
                    "--auto-resume",
                    "--no-progress",
                ],
                stdout=subprocess.DEVNULL,
                stderr=err,
                env=env,
            )
        workers.append((process, log))
    return workers


def _wait(workers, timeout: float = 240) -> list[int]:
    deadline = time.monotonic() + timeout
    try:
        return [
            process.wait(timeout=max(1.0, deadline - time.monotonic())) for process, _ in workers
        ]
    finally:
        for process, _ in workers:
            process.kill()


def _listed(run: Path) -> list[int]:
    state = run / "checkpoints" / "checkpoint"
    return (
        [int(n) for n in re.findall(r'all_model_checkpoint_paths: "ckpt-(\d+)"', state.read_text())]
        if state.exists()
        else []
    )


def test_two_workers_leave_one_checkpoint_that_generate_uses(tmp_path):
    """(b) MultiWorkerMirroredStrategy, two processes on 127.0.0.1, 5 steps."""
    workers = _start_workers(tmp_path, steps=5, checkpoint_every=100, ports=_free_ports(2), tag="a")
    codes = _wait(workers)
    logs = [log.read_text() for _, log in workers]
    assert codes == [0, 0], "\n".join(text[-2000:] for text in logs)
    assert "MultiWorkerMirroredStrategy with 2 replica(s)" in logs[0]
    assert "worker 0 of 2 workers (chief)" in logs[0] and "[worker 1] " in logs[1]
    run = tmp_path / "run"
    # exactly one checkpoint, written once, by the chief; the other worker's share of
    # the save went to its temporary folder and is gone
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "checkpoint",
        "ckpt-5.data-00000-of-00001",
        "ckpt-5.index",
    ]
    assert list((tmp_path / "tmp-1").iterdir()) == []
    steps_logged = [json.loads(line)["step"] for line in (run / "metrics.jsonl").open()]
    assert steps_logged == [2, 4, 5]  # one writer
    out = tmp_path / "faces.png"
    result = subprocess.run(
        ["facegan", "generate", "--run", str(run), "-n", "4", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    grid = np.asarray(Image.open(out))
    assert grid.std() > 0


def test_a_lost_worker_stops_the_job_and_a_restart_continues_from_the_checkpoint(tmp_path):
    ports = _free_ports(2)
    workers = _start_workers(tmp_path, steps=100000, checkpoint_every=4, ports=ports, tag="a")
    run = tmp_path / "run"
    try:
        deadline = time.monotonic() + 240
        while not [s for s in _listed(run) if s >= 8]:
            assert time.monotonic() < deadline, workers[0][1].read_text()[-3000:]
            assert all(p.poll() is None for p, _ in workers), workers[0][1].read_text()[-3000:]
            time.sleep(0.2)
        workers[1][0].send_signal(signal.SIGKILL)  # a machine lost
        chief_code = workers[0][0].wait(timeout=180)
    finally:
        for process, _ in workers:
            process.kill()
    chief_log = workers[0][1].read_text()
    assert chief_code == 5, chief_log[-3000:]
    last = chief_log.strip().splitlines()[-1]
    assert last.startswith("facegan: error: a worker of this 2-worker job stopped answering")
    assert "restart every worker" in last and "Traceback" not in chief_log
    listed = _listed(run)[-1]
    # the same command, run again on every worker, continues from that checkpoint
    workers = _start_workers(tmp_path, steps=listed + 4, checkpoint_every=4, ports=ports, tag="b")
    codes = _wait(workers)
    logs = [log.read_text() for _, log in workers]
    assert codes == [0, 0], "\n".join(text[-2000:] for text in logs)
    assert f"resumed from {run / 'checkpoints' / f'ckpt-{listed}'} at step {listed}" in logs[0]
    assert f"at step {listed}" in logs[1]
    assert _listed(run)[-1] == listed + 4


def test_two_workers_stream_disjoint_shards_of_a_pack_that_cover_each_epoch(tmp_path, face_folder):
    """MultiWorkerMirroredStrategy, two processes on 127.0.0.1, a pack of 24 images in 4 shards."""
    from facegan.data import packing

    pack = tmp_path / "pack"
    packing.pack(
        str(face_folder),
        pack,
        16,
        images_per_shard=6,
        report=lambda line: None,
        show_progress=False,
    )
    ports = _free_ports(2)
    processes = []
    for index in range(2):
        env = dict(
            os.environ,
            TF_CONFIG=json.dumps(
                {
                    "cluster": {"worker": [f"127.0.0.1:{port}" for port in ports]},
                    "task": {"type": "worker", "index": index},
                }
            ),
        )
        log = open(tmp_path / f"worker-{index}.log", "w")
        processes.append(
            subprocess.Popen(
                [
                    sys.executable,
                    str(HERE / "packed_workers_script.py"),
                    str(pack),
                    str(tmp_path / f"seen-{index}.json"),
                    "6",
                ],
                stdout=log,
                stderr=log,
                env=env,
            )
        )
    codes = _wait([(process, None) for process in processes])
    assert codes == [0, 0], "\n".join(
        (tmp_path / f"worker-{i}.log").read_text()[-2000:] for i in range(2)
    )
    seen = [json.loads((tmp_path / f"seen-{i}.json").read_text()) for i in range(2)]
    assert [s["replicas"] for s in seen] == [2, 2]
    # 12 images per worker and epoch, 4 per step: steps 1-3 are the first epoch
    first = [sorted(sum(s["seen"][:3], [])) for s in seen]
    assert not set(first[0]) & set(first[1])  # disjoint
    assert sorted(first[0] + first[1]) == list(range(24))  # together: the whole epoch
    second = [sorted(sum(s["seen"][3:], [])) for s in seen]
    assert second == first  # each worker keeps its own shards, in a new order
    assert [sum(s["seen"][3:], []) for s in seen] != [sum(s["seen"][:3], []) for s in seen]

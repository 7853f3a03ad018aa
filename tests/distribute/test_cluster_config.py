"""TF_CONFIG roles, strategy names, --auto-resume: the parts that need no second process."""

import json

import pytest

from facegan.cli import main
from facegan.errors import UserError
from facegan.training.distribute import cluster_role


def _tf_config(cluster: dict, task_type: str, index: int) -> dict:
    return {
        "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": task_type, "index": index}})
    }


def test_without_tf_config_this_process_is_the_chief():
    role = cluster_role({})
    assert role.is_chief and role.num_workers == 1 and role.describe() == "single process"


@pytest.mark.parametrize(
    "cluster, task, index, chief",
    [
        ({"worker": ["a:1", "b:1"]}, "worker", 0, True),  # worker 0 leads when there is no chief
        ({"worker": ["a:1", "b:1"]}, "worker", 1, False),
        ({"chief": ["c:1"], "worker": ["a:1"]}, "chief", 0, True),
        ({"chief": ["c:1"], "worker": ["a:1"]}, "worker", 0, False),
    ],
)
def test_the_chief_is_the_chief_task_or_else_worker_0(cluster, task, index, chief):
    role = cluster_role(_tf_config(cluster, task, index))
    assert role.is_chief is chief and role.num_workers == sum(map(len, cluster.values()))


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "TF_CONFIG must be JSON like"),
        (json.dumps({"cluster": {"worker": ["a:1"]}}), "TF_CONFIG must be JSON like"),
        (
            json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "worker", "index": 3}}),
            "names task worker 3, which its cluster (worker: 1) does not have",
        ),
    ],
)
def test_a_bad_tf_config_is_one_clear_error(text, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        cluster_role({"TF_CONFIG": text})


def test_auto_resume_needs_a_run_dir(capsys):
    assert main(["train", "--auto-resume"]) == 2
    assert "--auto-resume goes with --run-dir DIR" in capsys.readouterr().err


@pytest.mark.integration
def test_auto_resume_starts_then_continues_and_refuses_other_settings(tmp_path, capsys, tiny):
    toml = tmp_path / "tiny.toml"
    toml.write_text(
        "[model]\nresolution = 16\nwidth = 8\nmax_width = 32\nlatent_dim = 16\n"
        "[train]\nbatch_size = 8\nlog_every = 2\nsample_every = 100\n"
    )
    run = str(tmp_path / "run")
    argv = ["train", "--config", str(toml), "--run-dir", run, "--auto-resume", "--no-progress"]
    assert main([*argv, "--steps", "2"]) == 0  # a new run
    assert main([*argv, "--steps", "4"]) == 0  # the same command continues it
    log = (tmp_path / "run" / "train.log").read_text()
    assert "resumed from" in log and "at step 2" in log
    capsys.readouterr()
    assert main([*argv, "--steps", "6", "--seed", "9"]) == 2
    err = capsys.readouterr().err
    assert "holds a run with other settings (train.seed)" in err and err.count("\n") == 1


@pytest.mark.integration
def test_resume_may_change_the_strategy_but_not_what_is_trained(tmp_path, capsys):
    toml = tmp_path / "tiny.toml"
    toml.write_text(
        "[model]\nresolution = 16\nwidth = 8\nmax_width = 32\nlatent_dim = 16\n"
        "[train]\nbatch_size = 8\nlog_every = 2\nsample_every = 100\n"
    )
    run = tmp_path / "run"
    assert (
        main(
            ["train", "--config", str(toml), "--run-dir", str(run), "--steps", "2", "--no-progress"]
        )
        == 0
    )
    assert (
        main(
            [
                "train",
                "--resume",
                str(run),
                "--steps",
                "3",
                "--strategy",
                "default",
                "--no-progress",
            ]
        )
        == 0
    )
    saved = json.loads((run / "config.json").read_text())["train"]
    assert saved["strategy"] == "default" and saved["steps"] == 3
    capsys.readouterr()
    assert main(["train", "--resume", str(run), "--batch-size", "16"]) == 2
    assert "it takes only --steps, --minutes, --strategy, --cpu-replicas" in capsys.readouterr().err

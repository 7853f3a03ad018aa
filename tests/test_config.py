import json

import pytest

from facegan.config import Config, ConfigError, ModelConfig, TrainConfig
from facegan.presets import get_preset, preset_names


@pytest.mark.parametrize("value", [100, 8, 512, 0, -32])
def test_resolution_must_be_power_of_two_in_range(value):
    with pytest.raises(ConfigError) as err:
        ModelConfig(resolution=value)
    message = str(err.value)
    assert "`model.resolution`" in message and "power of two from 16 to 256" in message
    assert f"received {value}" in message


@pytest.mark.parametrize("value", [16, 32, 64, 128, 256])
def test_resolution_accepts_powers_of_two(value):
    assert ModelConfig(resolution=value).resolution == value


def test_error_names_field_value_and_allowed():
    with pytest.raises(
        ConfigError, match=r"`train\.batch_size` must be an integer from 1 .*received 0"
    ):
        TrainConfig(batch_size=0)
    with pytest.raises(
        ConfigError, match=r"`model\.channels` must be 1 \(grayscale\) or 3.*received 2"
    ):
        ModelConfig(channels=2)


def test_overrides_parse_strings_by_field_type():
    config = Config().with_overrides(
        {
            "model.width": "32",
            "optim.g_lr": "1e-4",
            "train.jit": "true",
            "data.source": "/x",
            "model.channels": "auto",
            "train.steps": "1e3",
        }
    )
    assert config.model.width == 32
    assert config.optim.g_lr == pytest.approx(1e-4)
    assert config.train.jit is True
    assert config.data.source == "/x"
    assert config.model.channels is None
    assert config.train.steps == 1000


@pytest.mark.parametrize(
    "overrides, pattern",
    [
        ({"model.widht": "3"}, r"unknown config key `model\.widht`; allowed: .*width"),
        ({"modle.width": "3"}, r"override `modle\.width` must be SECTION\.KEY"),
        ({"model.width": "wide"}, r"`model\.width` must be an integer; received 'wide'"),
        ({"train.jit": "maybe"}, r"`train\.jit` must be true or false; received 'maybe'"),
        ({"optim.g_lr": "-1"}, r"`optim\.g_lr` must be a number in \(0, 1\]; received -1\.0"),
    ],
)
def test_bad_overrides_are_named(overrides, pattern):
    with pytest.raises(ConfigError, match=pattern):
        Config().with_overrides(overrides)


def test_types_are_checked_for_file_values():
    with pytest.raises(ConfigError, match=r"`train\.steps` must be an integer; received 2\.5"):
        Config.from_dict({"train": {"steps": 2.5}})
    with pytest.raises(ConfigError, match=r"`train\.jit` must be true or false; received 1"):
        Config.from_dict({"train": {"jit": 1}})
    with pytest.raises(ConfigError, match="unknown config section `trian`"):
        Config.from_dict({"trian": {}})


@pytest.mark.parametrize("name", preset_names())
def test_toml_and_json_round_trip(name, tmp_path):
    config = get_preset(name).with_overrides({"model.channels": "3", "data.source": "/a/b c"})
    toml = tmp_path / "c.toml"
    toml.write_text(config.to_toml())
    assert Config.from_file(toml) == config
    js = tmp_path / "c.json"
    js.write_text(config.to_json())
    assert Config.from_file(js) == config
    assert json.loads(config.to_json())["model"]["channels"] == 3


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        Config.from_file(tmp_path / "missing.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\nwidth = 3")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        Config.from_file(bad)
    yaml = tmp_path / "c.yaml"
    yaml.write_text("model: {}")
    with pytest.raises(ConfigError, match=r"must end in \.toml or \.json"):
        Config.from_file(yaml)


def test_presets():
    classic = get_preset("dcgan-64")
    assert (classic.model.resolution, classic.model.width, classic.train.batch_size) == (64, 64, 64)
    assert (classic.optim.g_lr, classic.optim.d_lr, classic.optim.beta1) == (2e-4, 2e-4, 0.5)
    assert classic.loss.kind == "nonsaturating"
    assert get_preset("quick-32").model.resolution == 32
    assert get_preset("quick-32").data.source == "embedded:lfw"
    with pytest.raises(
        ConfigError,
        match="`preset` must be one of dcgan-64, dcgan-128, quick-32, faces-64, faces-64-long, faces-128, stylegan2-128, stylegan2-256; received 'x'",
    ):
        get_preset("x")


@pytest.mark.integration
def test_config_module_does_not_import_tensorflow():
    import subprocess
    import sys

    code = (
        "import sys, facegan, facegan.cli, facegan.config, facegan.presets; "
        "sys.exit(1 if 'tensorflow' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0

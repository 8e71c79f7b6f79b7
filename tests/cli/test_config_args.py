"""Flags generated from config dataclasses and from ``CodeBrain``'s signature
(``codebrain.cli._config_args``, ``codebrain.cli._arch_args``)."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from typing import ClassVar, Literal

import pytest

from _cli_helpers import run_cli
from codebrain.cli import CLIError
from codebrain.cli._arch_args import (
    add_architecture_arguments,
    architecture_from_args,
    architecture_parameters,
)
from codebrain.cli._config_args import (
    add_config_arguments,
    coerce_value,
    config_from_args,
    config_overrides,
    field_docs,
)


@dataclasses.dataclass
class Toy:
    """A toy training config.

    Parameters
    ----------
    steps : int
        Optimizer steps (100% of them).
    lr, min_lr : float
        Peak and final learning rate.
    precision : {"fp32", "bf16"}
        Autocast dtype.
    betas : tuple of float
        AdamW betas.
    resume : bool or str
        Continue a run.
    device : str or None
        ``"cpu"``, ``"cuda"``.
    progress : bool
        Progress bar.
    """

    steps: int = 10
    lr: float = 1e-3
    min_lr: float = 0.0
    precision: Literal["fp32", "bf16"] = "fp32"
    betas: tuple[float, float] = (0.9, 0.99)
    resume: bool | str = False
    device: str | None = None
    progress: bool = True
    _deprecated_fields: ClassVar[dict[str, str]] = {"max_steps": "steps", "lr_x1000": "lr"}

    @classmethod
    def from_dict(cls, d):
        """Old names, as the project's configs take them: renamed or converted."""
        d = dict(d)
        if "max_steps" in d:
            if "steps" in d:
                raise TypeError("give steps or max_steps, not both")
            d["steps"] = d.pop("max_steps")
        if "lr_x1000" in d:
            d["lr"] = d.pop("lr_x1000") / 1000
        return cls(**d)


def _parser(**kwargs) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="toy")
    p.add_argument("--config")
    add_config_arguments(p.add_argument_group("training"), Toy, **kwargs)
    return p


def _config(argv: list[str], **kwargs) -> Toy:
    args = _parser().parse_args(argv)
    return config_from_args(Toy, args, args.config, **kwargs)


def test_flags_follow_the_field_types():
    p = _parser()
    text = p.format_help()
    for flag in ("--steps N", "--lr X", "--min-lr X", "--precision {fp32,bf16}",
                 "--betas BETAS BETAS", "--resume [RESUME]", "--no-resume", "--device DEVICE",
                 "--progress, --no-progress"):  # fmt: skip
        assert flag in text, flag
    assert "--max-steps" not in text  # deprecated spellings are hidden
    assert "Optimizer steps (100% of them). (default: 10)" in " ".join(text.split())
    assert "'cpu', 'cuda'. (default: none)" in " ".join(text.split())
    cfg = _config(["--steps", "3", "--betas", "0.5", "0.6", "--no-progress", "--device", "none",
                   "--precision", "bf16", "--resume"])  # fmt: skip
    assert cfg == Toy(steps=3, betas=(0.5, 0.6), progress=False, precision="bf16", resume=True)
    assert _config(["--resume", "ckpt.pt"]).resume == "ckpt.pt"
    assert _config(["--resume", "--no-resume"]).resume is False
    assert _config([]) == Toy()  # nothing given: the config's own defaults
    with pytest.raises(SystemExit):
        p.parse_args(["--precision", "fp64"])
    with pytest.raises(SystemExit):
        p.parse_args(["--steps", "1.5"])
    with pytest.raises(SystemExit):
        p.parse_args(["--lr", "nan"])


def test_not_given_is_told_apart_from_given_at_the_default():
    args = _parser().parse_args(["--steps", "10"])
    assert config_overrides(Toy, args) == {"steps": 10}  # given, although equal to the default
    assert config_overrides(Toy, _parser().parse_args([])) == {}


def test_include_exclude_rename_aliases():
    p = argparse.ArgumentParser()
    add_config_arguments(
        p,
        Toy,
        exclude=("device",),
        rename={"steps": "iters"},
        aliases={"lr": ["--learning-rate"]},
        hidden_aliases={"min_lr": ["--final-lr"]},
        help={"lr": "the peak"},
    )
    text = p.format_help()
    assert "--device" not in text and "--iters N" in text and "--final-lr" not in text
    assert "--lr X, --learning-rate X" in text and "the peak (default: 0.001)" in text
    args = p.parse_args(["--iters", "4", "--learning-rate", "0.5", "--final-lr", "0.1"])
    assert config_overrides(Toy, args) == {"steps": 4, "lr": 0.5, "min_lr": 0.1}
    q = argparse.ArgumentParser()
    add_config_arguments(q, Toy, include=("steps", "lr"))
    assert config_overrides(Toy, q.parse_args(["--lr", "2"])) == {"lr": 2.0}
    with pytest.raises(SystemExit):
        q.parse_args(["--min-lr", "0"])


def test_precedence_defaults_then_file_then_flags(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"steps": 50, "lr": 0.1, "betas": [0.1, 0.2]}))
    cfg = _config(["--config", str(path), "--lr", "0.5"])
    assert (cfg.steps, cfg.lr, cfg.betas, cfg.min_lr) == (50, 0.5, (0.1, 0.2), 0.0)
    # a base (a recipe) sits below the file, and values the command derives on top
    cfg = _config(["--config", str(path)], base={"steps": 7, "min_lr": 0.01}, extra={"lr": 9.0})
    assert (cfg.steps, cfg.min_lr, cfg.lr) == (50, 0.01, 9.0)


def test_yaml_file(tmp_path):
    pytest.importorskip("yaml")
    path = tmp_path / "cfg.yaml"
    path.write_text("steps: 5\nprecision: bf16\nbetas: [0.8, 0.9]\ndevice: null\n")
    cfg = _config(["--config", str(path), "--steps", "6"])
    assert (cfg.steps, cfg.precision, cfg.betas, cfg.device) == (6, "bf16", (0.8, 0.9), None)


def test_yaml_without_pyyaml_says_so(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "yaml", None)  # import yaml -> ImportError
    path = tmp_path / "cfg.yml"
    path.write_text("steps: 5\n")
    with pytest.raises(CLIError, match="is YAML but PyYAML is not installed"):
        _config(["--config", str(path)])


def test_file_errors_are_one_line_naming_the_key(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"steps": 5, "stpes": 6, "warmup": 1}))
    with pytest.raises(CLIError) as err:
        _config(["--config", str(path)])
    msg = str(err.value)
    assert "unknown keys 'stpes', 'warmup' for Toy" in msg and "steps" in msg and "\n" not in msg
    for bad, needle in (
        ({"steps": "5"}, "key 'steps': expected an integer, got '5' (str)"),
        ({"steps": True}, "key 'steps': expected an integer"),
        ({"lr": [1]}, "key 'lr': expected a number"),
        ({"precision": "fp64"}, "key 'precision': expected one of 'fp32', 'bf16'"),
        ({"betas": [0.9]}, "key 'betas': expected a list of 2 values"),
        ({"progress": 1}, "key 'progress': expected true or false"),
    ):
        path.write_text(json.dumps(bad))
        with pytest.raises(CLIError) as err:
            _config(["--config", str(path)])
        assert needle in str(err.value), str(err.value)
    path.write_text("{not json")
    with pytest.raises(CLIError, match="is not valid JSON"):
        _config(["--config", str(path)])
    path.write_text("[1, 2]")
    with pytest.raises(CLIError, match="must hold a JSON mapping"):
        _config(["--config", str(path)])
    with pytest.raises(CLIError, match="does not exist"):
        _config(["--config", str(tmp_path / "missing.json")])


def test_a_value_the_config_refuses_is_a_cli_error():
    @dataclasses.dataclass
    class Checked:
        steps: int = 1

        def __post_init__(self):
            if self.steps < 1:
                raise ValueError(f"steps must be >= 1, got {self.steps}.")

    p = argparse.ArgumentParser()
    add_config_arguments(p, Checked)
    with pytest.raises(CLIError, match="steps must be >= 1, got 0"):
        config_from_args(Checked, p.parse_args(["--steps", "0"]))


def test_deprecated_field_is_a_hidden_working_flag(caplog, tmp_path):
    assert "--lr-x1000" not in _parser().format_help()
    args = _parser().parse_args(["--max-steps", "4", "--lr-x1000", "2"])
    with caplog.at_level(logging.WARNING, logger="codebrain"):
        # the old names go to the config, which renames or converts them itself
        assert config_overrides(Toy, args) == {"max_steps": 4, "lr_x1000": 2.0}
    assert "--max-steps is deprecated; use --steps" in caplog.text
    assert "--lr-x1000 is deprecated; use --lr" in caplog.text
    assert (
        _config(["--max-steps", "4", "--lr-x1000", "2"]).steps,
        Toy.from_dict({"lr_x1000": 2}).lr,
    ) == (4, 0.002)
    # a flag beats the file whatever the spelling of either; both spellings as flags: an error
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"max_steps": 7, "lr": 0.5}))
    assert _config(["--config", str(path)]).steps == 7
    assert _config(["--config", str(path), "--steps", "8"]).steps == 8
    assert _config(["--config", str(path), "--lr-x1000", "3"]).lr == 0.003
    with pytest.raises(CLIError, match="not both"):
        _config(["--steps", "1", "--max-steps", "2"])


def test_section_of_a_saved_run_and_dropped_keys(tmp_path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"pretrain": {"steps": 3, "resume": "x.pt"}, "world_size": 2}))
    cfg = _config(["--config", str(path)], sections=("pretrain",), ignore_file_keys=("resume",))
    assert cfg == Toy(steps=3)


def test_coerce_value():
    assert coerce_value(3, float) == 3.0 and isinstance(coerce_value(3, float), float)
    assert coerce_value(None, int | None) is None
    assert coerce_value([1, 2], tuple[float, float]) == (1.0, 2.0)
    assert coerce_value("balanced", None | str | list[float]) == "balanced"
    assert coerce_value([1, 2], None | str | list[float]) == [1.0, 2.0]
    with pytest.raises(TypeError, match="expected an integer or null"):
        coerce_value("x", int | None)


def test_field_docs_reads_numpydoc_entries():
    docs = field_docs(Toy)
    assert docs["lr"] == docs["min_lr"] == "Peak and final learning rate."
    assert docs["device"] == '``"cpu"``, ``"cuda"``.'


# ------------------------------------------------------------------------- architecture


def test_architecture_flags_come_from_the_codebrain_signature():
    import inspect

    from codebrain import CodeBrain

    params = architecture_parameters()
    signature = inspect.signature(CodeBrain.__init__).parameters
    assert set(params) == set(signature) - {
        "self", "n_outputs", "n_chans", "chs_info", "n_times", "input_window_seconds",
        "sfreq", "activation", "pretrain_mode",
    }  # fmt: skip
    assert all(params[n][1] == signature[n].default for n in params)
    p = argparse.ArgumentParser()
    add_architecture_arguments(p)
    text = p.format_help()
    assert "--patch-size N" in text and "--pos-kernel POS_KERNEL POS_KERNEL" in text
    args = p.parse_args(["--width", "16", "--out-channels", "8", "--layers", "2",
                         "--no-s4-bidirectional", "--pos-kernel", "3", "5"])  # fmt: skip
    arch = architecture_from_args(args)
    assert arch == dict(res_channels=16, skip_channels=16, out_channels=8, num_res_layers=2,
                        s4_bidirectional=False, pos_kernel=(3, 5))  # fmt: skip
    assert architecture_from_args(p.parse_args(["--num-res-layers", "3"])) == {"num_res_layers": 3}
    assert architecture_from_args(p.parse_args([])) == {}
    with pytest.raises(CLIError, match="--width must be a positive integer, got 0"):
        architecture_from_args(p.parse_args(["--width", "0"]))


# ------------------------------------------------------------------------------ commands


@pytest.mark.parametrize(
    "command, config, module",
    [
        ("pretrain", "PretrainConfig", "codebrain.training.pretrain"),
        ("tokenizer-train", "TokenizerTrainConfig", "codebrain.training.tokenizer_trainer"),
        ("finetune", "FinetuneConfig", "codebrain.training.finetune"),
    ],
)
def test_training_help_lists_every_config_field(command, config, module):
    import importlib

    cls = getattr(importlib.import_module(module), config)
    res = run_cli(command, "--help")
    assert res.returncode == 0
    text = res.stdout
    assert "--config FILE" in text
    renamed = {"max_steps": "--steps"}
    skipped = {"task"} if command == "finetune" else set()  # finetune --task adds "auto"
    for f in dataclasses.fields(cls):
        if f.name in skipped:
            continue
        flag = renamed.get(f.name, "--" + f.name.replace("_", "-"))
        assert flag in text, (command, flag)
    for old in getattr(cls, "_deprecated_fields", {}):
        assert "--" + old.replace("_", "-") + " " not in text  # hidden


@pytest.mark.parametrize("command", ["finetune", "pretrain", "demo", "info", "convert"])
def test_commands_share_the_architecture_flags(command):
    text = run_cli(command, "--help").stdout
    for flag in ("--res-channels", "--num-res-layers", "--patch-size", "--width", "--layers"):
        assert flag in text, (command, flag)


def _parse(*argv: str) -> argparse.Namespace:
    from codebrain.cli import build_parser

    return build_parser().parse_args(list(argv))


def test_training_commands_apply_file_then_flags(tmp_path):
    from codebrain.cli import cmd_finetune, cmd_pretrain, cmd_tokenizer_train

    run = ["--corpus", "c", "--tokenizer", "t", "--out", "o"]
    saved = tmp_path / "config.json"  # a pretrain run's own config: its resume is not reused
    saved.write_text(json.dumps({"pretrain": {"steps": 40, "lr": 0.01, "resume": True},
                                 "world_size": 1}))  # fmt: skip
    cfg = cmd_pretrain._config_from_args(
        _parse("pretrain", *run, "--config", str(saved), "--lr", "0.02", "--accum", "2", "--bf16")
    )
    assert (cfg.steps, cfg.lr, cfg.accum_steps, cfg.precision) == (40, 0.02, 2, "bf16")
    assert cfg.resume in (None, False)
    assert cmd_pretrain._config_from_args(_parse("pretrain", *run)) == type(cfg)()

    yml = tmp_path / "tok.yaml"
    yml.write_text("batch_size: 4\nlr: 0.001\n")
    _, tcfg = cmd_tokenizer_train._configs(
        _parse("tokenizer-train", "--corpus", "c", "--out", "o", "--config", str(yml),
               "--batch-size", "8", "--no-resume"),
        3, 400,
    )  # fmt: skip
    steps = getattr(tcfg, "steps", getattr(tcfg, "max_steps", None))
    assert (tcfg.batch_size, tcfg.lr, tcfg.resume, steps) == (8, 0.001, False, 100_000)

    ft = tmp_path / "ft.json"
    ft.write_text(json.dumps({"epochs": 3, "label_smoothing": 0.1, "task": "regression"}))
    args = _parse("finetune", "x.npz", "-o", "m", "--config", str(ft), "--epochs", "4",
                  "--grad-clip", "0", "--class-weight", "balanced")  # fmt: skip
    assert cmd_finetune._task_hint(args) == "regression"
    fcfg = cmd_finetune._finetune_config(args, "classification")
    assert (fcfg.epochs, fcfg.label_smoothing, fcfg.task) == (4, 0.1, "classification")
    assert not fcfg.grad_clip and fcfg.class_weight == "balanced"


def test_paper_recipes_are_checked_before_the_data_and_sized_by_it(monkeypatch):
    from codebrain.cli import CLIError, cmd_pretrain, cmd_tokenizer_train
    from codebrain.training.pretrain import PretrainConfig
    from codebrain.training.tokenizer_trainer import TokenizerTrainConfig

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    args = _parse("pretrain", "--corpus", "c", "--tokenizer", "t", "--out", "o",
                  "--recipe", "paper", "--lr", "2e-4")  # fmt: skip
    early = cmd_pretrain._config_from_args(args)  # no corpus yet: a stand-in size
    cfg = cmd_pretrain._config_from_args(args, 512)
    paper = PretrainConfig.paper(512)
    assert (cfg.steps, cfg.schedule_steps, cfg.lr) == (paper.steps, paper.schedule_steps, 2e-4)
    assert dataclasses.replace(early, steps=cfg.steps, schedule_steps=cfg.schedule_steps) == cfg
    with pytest.raises(CLIError, match="--recipe paper: the paper recipe's global batch"):
        cmd_pretrain._config_from_args(args, 10)  # the data decides what the data decides

    args = _parse("tokenizer-train", "--corpus", "c", "--out", "o", "--recipe", "paper",
                  "--device", "cpu", "--weight-decay", "0.01")  # fmt: skip
    explicit = cmd_tokenizer_train._train_overrides(args)
    early = cmd_tokenizer_train._train_config(args, explicit)
    tcfg = cmd_tokenizer_train._train_config(args, explicit, 512)
    paper = TokenizerTrainConfig.paper(512, precision="fp32", device="cpu", weight_decay=0.01)
    assert tcfg == paper
    assert dataclasses.replace(early, steps=tcfg.steps) == tcfg
    with pytest.raises(CLIError, match="--recipe paper: the paper recipe's batch"):
        cmd_tokenizer_train._train_config(args, explicit, 10)


def test_a_bad_config_file_is_one_line_from_the_command(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"stpes": 3}))
    res = run_cli("-q", "pretrain", "--corpus", tmp_path, "--tokenizer", tmp_path, "--out",
                  tmp_path / "o", "--config", bad)  # fmt: skip
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("codebrain pretrain: error: --config")
    assert "unknown key 'stpes' for PretrainConfig" in lines[0]


_BAD_CONFIGS = {
    "bad-json": ('{"lr": 0.1,', "is not valid JSON"),
    "unknown-key": ('{"lrr": 0.1}', "unknown key 'lrr' for "),
    "wrong-type": ('{"lr": "fast"}', "key 'lr': expected a number, got 'fast' (str)"),
}


def _training_argv(command: str, root, data: str) -> list:
    """``command``'s arguments with its data under ``root`` (absent, or big and present)."""
    if data == "big":  # a 1 GiB sparse file in each data path: reading it would take long
        for name in ("windows.npz", "corpus/windows.npy", "tokenizer/model.safetensors"):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            with open(root / name, "wb") as fh:
                fh.truncate(1 << 30)
    windows, corpus, tok = root / "windows.npz", root / "corpus", root / "tokenizer"
    out = root / "out"
    return {
        "finetune": ["finetune", windows, "-o", out],
        "pretrain": ["pretrain", "--corpus", corpus, "--tokenizer", tok, "--out", out],
        "pretrain-paper": ["pretrain", "--recipe", "paper", "--corpus", corpus, "--tokenizer",
                           tok, "--out", out],
        "tokenizer-train": ["tokenizer-train", "--corpus", corpus, "--out", out],
        "tokenizer-train-paper": ["tokenizer-train", "--recipe", "paper", "--corpus", corpus,
                                  "--out", out],
    }[command]  # fmt: skip


@pytest.mark.parametrize("kind", sorted(_BAD_CONFIGS))
@pytest.mark.parametrize("data", ["missing", "big"])
@pytest.mark.parametrize(
    "command",
    ["finetune", "pretrain", "pretrain-paper", "tokenizer-train", "tokenizer-train-paper"],
)
def test_a_training_command_reads_its_config_before_the_data(
    command, data, kind, tmp_path, monkeypatch
):
    """A bad ``--config`` is the error, in well under a second, whatever the data path holds.

    The data readers are replaced by ones that fail the test: a command that opened its data
    before reading its config file would report that instead.
    """
    import time

    import codebrain.cli._data_args
    import codebrain.data

    def touched(*args, **kwargs):
        raise AssertionError(f"{command} read its data before its --config")

    monkeypatch.setattr(codebrain.cli._data_args, "load_data_arg", touched)
    monkeypatch.setattr(codebrain.cli._data_args, "load_windows", touched)
    monkeypatch.setattr(codebrain.data, "CorpusDataset", touched)
    text, expected = _BAD_CONFIGS[kind]
    config = tmp_path / "bad.json"
    config.write_text(text)
    argv = _training_argv(command, tmp_path, data)
    start = time.perf_counter()
    res = run_cli("-q", *argv, "--config", config)
    seconds = time.perf_counter() - start
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith(f"codebrain {argv[0]}: error: --config {str(config)!r}")
    assert expected in lines[0]
    assert not (tmp_path / "out").exists()
    assert seconds < 5.0  # well under a second alone; a loaded test machine gets slack


@pytest.mark.parametrize(
    "command",
    ["finetune", "pretrain", "pretrain-paper", "tokenizer-train", "tokenizer-train-paper"],
)
def test_a_value_the_config_refuses_names_the_file_it_came_from(command, tmp_path, monkeypatch):
    """``{"lr": -1}`` passes the file's type checks; the config's own check refuses it, and the
    one-line error names the file (and the field), exit code 2. The same value given as a flag
    is the flag's: the file is not named."""
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    config = tmp_path / "bad.json"
    config.write_text('{"lr": -1}')
    argv = _training_argv(command, tmp_path, "missing")
    res = run_cli("-q", *argv, "--config", config)
    assert res.returncode == 2, res.stderr
    errors = [line for line in res.stderr.splitlines() if not line.startswith("WARNING")]
    assert len(errors) == 1, res.stderr
    assert errors[0].startswith(f"codebrain {argv[0]}: error: --config {str(config)!r}: ")
    assert errors[0].endswith("Config.lr must be a finite number > 0, got -1.0.")
    config.write_text("{}")
    res = run_cli("-q", *argv, "--config", config, "--lr", "-1")
    assert res.returncode == 2, res.stderr
    assert "Config.lr must be a finite number > 0" in res.stderr
    assert str(config) not in res.stderr


def test_benchmark_budget_flags_come_from_the_dataclasses(tmp_path):
    from codebrain.benchmark.pretrain_on_train import PretrainOnTrain
    from codebrain.training.finetune import FinetuneConfig

    args = _parse("benchmark", "eegmat", "--tokenizer-steps", "5", "--epochs", "2", "--width", "8")
    assert config_overrides(PretrainOnTrain, args) == {"tokenizer_steps": 5}
    assert config_overrides(FinetuneConfig, args) == {"epochs": 2}
    assert architecture_from_args(args) == dict.fromkeys(
        ("res_channels", "skip_channels", "out_channels"), 8
    )
    text = run_cli("benchmark", "--help").stdout
    assert f"(default: {PretrainOnTrain().pretrain_steps})" in " ".join(text.split())
    res = run_cli("-q", "benchmark", "eegmat", "--data", tmp_path, "--tokenizer-steps", "0")
    assert res.returncode == 2
    assert "--tokenizer-steps must be a positive integer, got 0" in res.stderr

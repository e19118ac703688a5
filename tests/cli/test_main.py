"""The `gdcld-zoo` command itself: version, help, mistyped flags, error prefixes, quiet TensorFlow."""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gdcld_zoo.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[2]


def subcommands(parser, path=("gdcld-zoo",)):
    """(path, parser) of every command and subcommand."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from subcommands(child, path + (name,))


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("gdcld-zoo 0.1.0 (keras ")


def test_every_command_has_examples_and_every_argument_a_help_text():
    for path, parser in subcommands(build_parser()):
        assert parser.epilog and parser.epilog.startswith("examples:\n  gdcld-zoo"), path
        for action in parser._actions:
            assert action.help, (path, action.dest)


def test_evaluate_help_shows_a_plain_percent_sign(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "--help"])
    text = capsys.readouterr().out
    assert "(%)" in text and "%%" not in text


def test_a_mistyped_flag_gets_the_subcommand_usage_and_the_closest_flag(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["predict", "demo", "scene.tif", "--out", "maps", "--tile-sise", "512"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: gdcld-zoo predict ")
    assert err.strip().endswith("gdcld-zoo predict: error: unrecognized arguments: --tile-sise 512 "
                                "(did you mean --tile-size?)")


def test_errors_name_the_full_subcommand(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path / "nowhere")]) == 2
    assert capsys.readouterr().err.startswith("gdcld-zoo data check: error: ")


@pytest.mark.parametrize("argv", [["--verbose", "models"], ["models", "--verbose"], ["train", "unet", "--out", "r", "--verbose"],
                                  ["--verbose", "train", "unet", "--out", "r"]])
def test_verbose_before_or_after_the_subcommand(argv):
    assert build_parser().parse_args(argv).verbose is True
    quiet = [a for a in argv if a != "--verbose"]
    assert build_parser().parse_args(quiet).verbose is False


def run_cli(args, env=None, **kwargs):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    return subprocess.run([sys.executable, "-m", "gdcld_zoo", *args], env=env, capture_output=True, text=True,
                          timeout=300, **kwargs)


def test_the_model_table_prints_no_tensorflow_log_line():
    result = run_cli(["models"])
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert "segformer_b4" in result.stdout


def test_the_demo_prints_no_tensorflow_log_line(tmp_path):
    result = run_cli(["demo", "--size", "64", "--out", str(tmp_path / "demo"), "--quiet"],
                     env={"GDCLD_ZOO_HOME": str(tmp_path / "home"), "GDCLD_ZOO_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert "Landslides:" in result.stdout

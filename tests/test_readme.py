"""README.md opens with the two commands, CI runs exactly those, every other code block runs, and its
backend table is what each backend does."""

import os
import pathlib
import re
import shlex
import subprocess
import sys

import pytest

from gdcld_zoo.cli import build_parser

ROOT = pathlib.Path(__file__).resolve().parents[1]
# Lines the test leaves to others: installs and the test run (.ci/run), the viewer (the browser test).
NOT_RUN_HERE = ("pip install", "pytest", "bash ", "streamlit run")


def _readme_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("```bash")
    return lines[start + 1 : start + 3]


def code_blocks(language):
    """Every fenced block of `language` after the first block (the two install commands)."""
    blocks = re.findall(r"^```(\w+)\n(.*?)^```$", (ROOT / "README.md").read_text(), flags=re.S | re.M)
    return [code for lang, code in blocks[1:] if lang == language]


def test_readme_opens_with_the_two_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert lines[0].startswith("# ") and lines[2] == "```bash"
    demo, tests = _readme_commands()
    assert demo.startswith("pip install .") and "gdcld-zoo" in demo
    assert tests.endswith("pytest")


def test_ci_runs_the_readme_commands():
    ci_lines = (ROOT / ".ci" / "run").read_text().splitlines()
    for command in _readme_commands():
        assert command in ci_lines


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    """A folder where the README's first command has run (`gdcld_demo/`), with an isolated home."""
    folder = tmp_path_factory.mktemp("readme")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GDCLD_ZOO_HOME": str(folder / ".home"), "GDCLD_ZOO_OFFLINE": "1"}
    env.pop("GDCLD_ZOO_REGISTRY", None)
    run(f"{sys.executable} -m gdcld_zoo demo --size 256 --quiet", folder, env)
    return folder, env


def run(command, folder, env):
    result = subprocess.run(command, shell=True, cwd=folder, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{command}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result


def test_every_python_block_runs(demo_folder):
    folder, env = demo_folder
    blocks = code_blocks("python")
    assert len(blocks) >= 3
    for index, code in enumerate(blocks):
        script = folder / f"readme_block_{index}.py"
        script.write_text(code)
        run(f"{sys.executable} {script.name}", folder, env)


def test_every_command_runs_or_parses(demo_folder):
    folder, env = demo_folder
    ran = parsed = 0
    for block in code_blocks("bash"):
        for line in block.splitlines():
            command = line.split("  #")[0].strip()
            if not command or command.startswith(NOT_RUN_HERE):
                continue
            assert command.startswith("gdcld-zoo "), command
            if "/data/" in command:  # stands for the reader's GDCLD copy: the options must be right
                build_parser().parse_args(shlex.split(command)[1:])
                parsed += 1
            else:
                run(f"{sys.executable} -m gdcld_zoo {command[len('gdcld-zoo '):]}", folder, env)
                ran += 1
    assert ran >= 4 and parsed >= 3
    assert (folder / "maps" / "demo_scene_summary.json").is_file()
    assert (folder / "maps_onnx" / "demo_scene_summary.json").is_file()


def _backend_table():
    """README's backend table as {row: {backend: bool}}."""
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("| | TensorFlow | JAX | PyTorch |")
    table = {}
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        row, *cells = [cell.strip() for cell in line.strip("|").split("|")]
        assert set(cells) <= {"yes", "no"}, line
        table[row] = dict(zip(("tensorflow", "jax", "torch"), (cell == "yes" for cell in cells)))
    return table


def _works(action):
    """True if `action` runs, False if gdcld_zoo refuses it with its one-line error."""
    from gdcld_zoo.errors import GdcldZooError

    try:
        action()
    except GdcldZooError as error:
        assert "\n" not in str(error)
        return False
    return True


@pytest.mark.backend
def test_backend_table_is_what_this_backend_does(tmp_path):
    import keras
    import numpy as np

    from gdcld_zoo import build_model, predict_tile
    from gdcld_zoo.data import write_synthetic_dataset
    from gdcld_zoo.evaluation import evaluate
    from gdcld_zoo.export import export_onnx
    from gdcld_zoo.training import TrainConfig
    from gdcld_zoo.training.backends import check_strategy
    from gdcld_zoo.training.trainer import build_training_model
    from tests.training.helpers import TEST_MODEL, squares

    model = build_model("unet_tiny")
    root = write_synthetic_dataset(tmp_path / "data", n_train=1, n_val=1, tile_size=32, seed=0)
    images, masks = squares(2)

    def train_a_step():
        trainer = build_training_model(TrainConfig(TEST_MODEL, augment=True, tile_size=32), 1)
        assert np.isfinite(trainer.fit(images, masks, batch_size=2, verbose=0).history["loss"][0])

    probes = {
        "models": lambda: model(np.zeros((1, 32, 32, 3), "float32")),
        "train": train_a_step,
        "predict": lambda: predict_tile(model, np.zeros((1, 32, 32, 3), "uint8")),
        "evaluate": lambda: evaluate(model, root, "val", jobs=1),
        "export": lambda: export_onnx(model, tmp_path / "unet.onnx", tile_size=32),
        "strategy": lambda: check_strategy("mirrored"),
    }
    table = _backend_table()
    assert set(table) == set(probes)
    backend = keras.backend.backend()
    assert {row: _works(probe) for row, probe in probes.items()} == {row: table[row][backend] for row in table}

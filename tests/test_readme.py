"""README.md opens with the two commands, CI runs exactly those, and its backend table is what each backend does."""

import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _readme_commands():
    lines = (ROOT / "README.md").read_text().splitlines()
    start = lines.index("```bash")
    return lines[start + 1 : start + 3]


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

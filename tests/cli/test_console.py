"""Warnings and log records as one line each; TensorFlow imported without its start-up lines."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

WARN_AND_LOG = """
import logging, warnings
from gdcld_zoo.cli.console import one_line_messages
warnings.simplefilter("always")
with one_line_messages("gdcld-zoo predict", {verbose}):
    warnings.warn("The scene has no CRS;\\n  areas are in pixels.")
    logging.getLogger("rasterio._env").error("GDAL signalled an error: err_no=4, msg='not recognized'")
    logging.getLogger("rasterio._env").warning("TIFFReadDirectory: unknown field with tag 33550")
    logging.getLogger("gdcld_zoo.scene").info("scene.tif: 3 landslides")
"""


def stderr_of(code):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120).stderr


def test_warnings_and_gdal_messages_are_one_line_each():
    assert stderr_of(WARN_AND_LOG.format(verbose=False)).splitlines() == [
        "gdcld-zoo predict: warning: The scene has no CRS; areas are in pixels.",
        "gdcld-zoo predict: warning: TIFFReadDirectory: unknown field with tag 33550",
    ]


def test_verbose_adds_where_a_warning_comes_from_and_info_lines():
    lines = stderr_of(WARN_AND_LOG.format(verbose=True)).splitlines()
    assert lines[0].startswith("gdcld-zoo predict: warning: The scene has no CRS; areas are in pixels. (UserWarning, ")
    assert lines[1:] == ["gdcld-zoo predict: warning: TIFFReadDirectory: unknown field with tag 33550",
                         "scene.tif: 3 landslides"]


def test_a_users_own_tensorflow_log_level_is_kept():
    code = ("import os; from gdcld_zoo.cli.console import quiet_tensorflow; quiet_tensorflow(False); "
            "import sys; print(os.environ['TF_CPP_MIN_LOG_LEVEL'], 'tensorflow' in sys.modules)")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "0"}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["0", "False"]


def test_warnings_outside_the_block_keep_pythons_format():
    import warnings

    from gdcld_zoo.cli.console import one_line_messages

    with one_line_messages("gdcld-zoo predict", False):
        pass
    assert "gdcld-zoo" not in warnings.formatwarning("plain", UserWarning, "f.py", 1)


def test_tensorflows_python_warnings_stay_quiet_when_it_was_imported_first():
    code = """
import logging, tensorflow as tf
from gdcld_zoo.cli.console import one_line_messages, quiet_tensorflow
with one_line_messages("gdcld-zoo predict", {verbose}):
    quiet_tensorflow({verbose})
    tf.get_logger().warning("5 out of the last 28 calls triggered tf.function retracing.")
"""
    env_code = "import os; os.environ['TF_CPP_MIN_LOG_LEVEL'] = '3'\n"
    assert "retracing" not in stderr_of(env_code + code.format(verbose=False))
    assert "gdcld-zoo predict: warning: 5 out of the last 28 calls" in stderr_of(env_code + code.format(verbose=True))

import numpy as np
import pytest

import gdcld_zoo.scene.onnx_engine
from gdcld_zoo.errors import GdcldZooError, UnknownNameError
from gdcld_zoo.scene import D4Engine, predict_scene
from gdcld_zoo.scene.engines import make_engine
from tests.scene.scenes import PixelEngine, random_scene, write_scene


def test_onnx_engine_plugs_in_through_its_module(tmp_path, monkeypatch):
    onnx_file = tmp_path / "model.onnx"
    onnx_file.write_bytes(b"onnx")
    opened = []

    class FakeOnnxEngine(PixelEngine):
        def __init__(self, path):
            super().__init__()
            opened.append(path)

    monkeypatch.setattr(gdcld_zoo.scene.onnx_engine, "OnnxEngine", FakeOnnxEngine)
    scene = write_scene(tmp_path / "scene.tif", random_scene(64, 96))
    result = predict_scene(str(onnx_file), scene, tmp_path / "out", engine="onnx", tile_size=64, tta=True,
                           progress=False)
    assert opened == [onnx_file]
    assert result.summary["engine"] == "D4Engine" and result.summary["tta"] is True


def test_engine_choice_errors_are_clear(tmp_path):
    with pytest.raises(GdcldZooError, match="needs an existing .onnx file"):
        make_engine(tmp_path / "missing.onnx", engine="onnx")
    with pytest.raises(GdcldZooError, match="engine='onnx'"):
        make_engine("model.onnx", engine="keras")
    with pytest.raises(UnknownNameError, match="Unknown engine"):
        make_engine("demo", engine="tensorrt")


def test_engine_instances_are_used_as_given_and_wrapped_for_tta():
    engine = PixelEngine()
    assert make_engine(engine) is engine
    wrapped = make_engine(engine, tta=True)
    assert isinstance(wrapped, D4Engine) and wrapped.tag == engine.tag
    raw = np.zeros((1, 32, 32, 3), "uint8")
    assert wrapped.predict(raw).shape == (1, 32, 32)
    assert engine.calls == 8

"""`OnnxEngine`: metadata from the file, the fastest CPU session settings, raw pixels in."""

import os
from types import SimpleNamespace

import numpy as np

from gdcld_zoo.export import INPUT_NAME, OUTPUT_NAME
from gdcld_zoo.scene.onnx_engine import OnnxEngine, usable_cores
from tests.extras import require

onnx = require("onnx")
onnxruntime = require("onnxruntime")


def brightness_graph(path):
    """A hand-made exported file: probability = mean band value / 255, with gdcld_zoo metadata."""
    from onnx import TensorProto, helper

    from gdcld_zoo.export import _export_settings

    shapes = SimpleNamespace(input_shape=(None, None, None, 3), output_shape=(None, None, None, 1), name="brightness")
    _, metadata = _export_settings(shapes, None, None)
    nodes = [helper.make_node("ReduceMean", [INPUT_NAME, "axes"], ["mean"], keepdims=1),
             helper.make_node("Div", ["mean", "scale"], [OUTPUT_NAME])]
    graph = helper.make_graph(
        nodes, "brightness",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [None, None, None, 3])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [None, None, None, 1])],
        [helper.make_tensor("axes", TensorProto.INT64, [1], [-1]),
         helper.make_tensor("scale", TensorProto.FLOAT, [], [255.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    helper.set_model_props(model, {**metadata, "precision": "float32"})
    onnx.save(model, path)
    return path


def test_the_session_uses_every_usable_core_sequentially_with_all_optimisations(tmp_path):
    engine = OnnxEngine(brightness_graph(tmp_path / "b.onnx"), providers=["CPUExecutionProvider"])
    options = engine.session.get_session_options()
    assert usable_cores() == len(os.sched_getaffinity(0))
    assert options.intra_op_num_threads == usable_cores()
    assert options.execution_mode == onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    assert options.graph_optimization_level == onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
    raw = np.full((2, 32, 64, 3), 51, "uint8")
    np.testing.assert_allclose(engine.predict(raw), np.full((2, 32, 64), 0.2, "float32"), rtol=1e-6)
    assert engine.tag == "brightness" and engine.precision == "float32"

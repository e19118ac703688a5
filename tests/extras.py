"""Optional packages some tests need: missing ones skip the module with the extra that installs them."""

import pytest

EXTRAS = {"torch": "dev", "transformers": "dev", "onnx": "onnx", "onnxruntime": "onnx", "tf2onnx": "onnx",
          "streamlit": "viewer", "streamlit_folium": "viewer", "folium": "viewer", "keras_hub": "keras-hub"}


def require(module):
    """`module`, or skip: torch and transformers are reference implementations, the others extras."""
    return pytest.importorskip(module, reason=f'{module} is not installed: pip install ".[{EXTRAS[module]}]"')

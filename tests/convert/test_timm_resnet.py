"""The timm ResNet converter, tested without timm.

timm needs torchvision, which has no CPU wheel here. So the tests write
checkpoints with the parameter names and shapes of timm's `ResNet` (documented
in timm/models/resnet.py: deep stem `conv1.{0,1,3,4,6}` + `bn1`, blocks
`layer{s}.{b}.conv{k}/bn{k}`, shortcuts `downsample.{0: AvgPool2d, 1: conv,
2: bn}`, head `fc`), and compare the encoder with a torch functional
re-implementation of the forward pass: timm's at output stride 32, PaddleSeg's
`ResNet_vd` dilation at output stride 8. A full-size `resnet50d` layout with a
distinct value per tensor checks that every tensor lands in one Keras weight.
"""

import numpy as np
import pytest

from tests.extras import require

torch = require("torch")
import torch.nn.functional as F  # noqa: E402
from safetensors.numpy import save_file  # noqa: E402

from gdcld_zoo import build_model  # noqa: E402
from gdcld_zoo.convert import ConversionError  # noqa: E402
from gdcld_zoo.convert.timm_resnet import load_encoder_weights  # noqa: E402
from gdcld_zoo.models.resnet import ResNetEncoder  # noqa: E402

TINY = dict(depths=(1, 2, 1, 3), widths=(4, 8, 8, 16), stem_widths=(8, 8, 16), avg_down=True)


def timm_resnet_shapes(depths, widths, stem_widths, avg_down, in_chans=3, num_classes=1000):
    """Parameter names and shapes of timm's `ResNet(Bottleneck, layers=depths, ...)`."""
    shapes = {}

    def conv(name, out_ch, in_ch, k):
        shapes[f"{name}.weight"] = (out_ch, in_ch, k, k)

    def bn(name, ch):
        for param in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{name}.{param}"] = (ch,)
        shapes[f"{name}.num_batches_tracked"] = ()

    if len(stem_widths) == 3:  # stem_type="deep": conv, bn, act, conv, bn, act, conv; then bn1
        conv("conv1.0", stem_widths[0], in_chans, 3)
        bn("conv1.1", stem_widths[0])
        conv("conv1.3", stem_widths[1], stem_widths[0], 3)
        bn("conv1.4", stem_widths[1])
        conv("conv1.6", stem_widths[2], stem_widths[1], 3)
    else:
        conv("conv1", stem_widths[0], in_chans, 7)
    bn("bn1", stem_widths[-1])
    in_ch = stem_widths[-1]
    for s, (depth, width) in enumerate(zip(depths, widths), start=1):
        for b in range(depth):
            block = f"layer{s}.{b}"
            conv(f"{block}.conv1", width, in_ch, 1)
            bn(f"{block}.bn1", width)
            conv(f"{block}.conv2", width, width, 3)
            bn(f"{block}.bn2", width)
            conv(f"{block}.conv3", width * 4, width, 1)
            bn(f"{block}.bn3", width * 4)
            if b == 0:
                first = 1 if avg_down else 0
                conv(f"{block}.downsample.{first}", width * 4, in_ch, 1)
                bn(f"{block}.downsample.{first + 1}", width * 4)
            in_ch = width * 4
    shapes["fc.weight"] = (num_classes, in_ch)
    shapes["fc.bias"] = (num_classes,)
    return shapes


def random_state(shapes, seed=0):
    rng = np.random.default_rng(seed)
    state = {}
    for name, shape in shapes.items():
        if name.endswith("num_batches_tracked"):
            state[name] = np.array(7, "int64")
        elif name.endswith("running_var"):
            state[name] = (np.abs(rng.normal(size=shape)) * 0.5 + 0.5).astype("float32")
        else:
            state[name] = (rng.normal(size=shape) * 0.5).astype("float32")
    return state


def reference_features(state, images, depths, avg_down, stage_dilations=(1, 1, 1, 1), multi_grid=None):
    """Forward pass of timm's ResNet-D (PaddleSeg's dilation rules when dilated), torch functional."""
    t = {k: torch.from_numpy(v) for k, v in state.items()}

    def conv_bn(x, conv, bn, stride=1, dilation=1, relu=True):
        weight = t[f"{conv}.weight"]
        x = F.conv2d(x, weight, stride=stride, padding=dilation * (weight.shape[-1] // 2), dilation=dilation)
        x = F.batch_norm(
            x, t[f"{bn}.running_mean"], t[f"{bn}.running_var"], t[f"{bn}.weight"], t[f"{bn}.bias"], eps=1e-5
        )
        return F.relu(x) if relu else x

    x = torch.from_numpy(images.transpose(0, 3, 1, 2))
    x = conv_bn(x, "conv1.0", "conv1.1", stride=2)
    x = conv_bn(x, "conv1.3", "conv1.4")
    x = conv_bn(x, "conv1.6", "bn1")
    features = {"stride_2": x}
    x = F.max_pool2d(x, 3, stride=2, padding=1)
    stride = 4
    for s, depth in enumerate(depths, start=1):
        dilation = stage_dilations[s - 1]
        stage_stride = 2 if s > 1 and dilation == 1 else 1
        stride *= stage_stride
        for b in range(depth):
            block, block_stride = f"layer{s}.{b}", stage_stride if b == 0 else 1
            block_dilation = dilation * (multi_grid[b] if multi_grid and s == len(depths) else 1)
            shortcut = x
            if b == 0:
                if avg_down and block_stride > 1:
                    shortcut = F.avg_pool2d(x, 2, block_stride, ceil_mode=True, count_include_pad=False)
                shortcut = conv_bn(shortcut, f"{block}.downsample.1", f"{block}.downsample.2", relu=False)
            y = conv_bn(x, f"{block}.conv1", f"{block}.bn1")
            y = conv_bn(y, f"{block}.conv2", f"{block}.bn2", stride=block_stride, dilation=block_dilation)
            y = conv_bn(y, f"{block}.conv3", f"{block}.bn3", relu=False)
            x = F.relu(y + shortcut)
        features[f"stride_{stride}"] = x
    return {k: v.numpy().transpose(0, 2, 3, 1) for k, v in features.items()}


@pytest.fixture(scope="module")
def state():
    return random_state(timm_resnet_shapes(**TINY))


@pytest.fixture
def checkpoint(state, tmp_path):
    path = tmp_path / "model.safetensors"
    save_file(state, str(path))
    return path


def _compare(encoder, expected, images):
    features = encoder(images, training=False)
    assert sorted(features) == sorted(expected)
    for key, value in expected.items():
        np.testing.assert_allclose(np.asarray(features[key]), value, atol=1e-4, err_msg=key)


def test_features_match_resnet_d_forward(state, checkpoint):
    encoder = ResNetEncoder(**TINY)
    load_encoder_weights(encoder, checkpoint)
    images = np.random.default_rng(1).normal(size=(2, 64, 96, 3)).astype("float32")
    with torch.no_grad():
        expected = reference_features(state, images, TINY["depths"], avg_down=True)
    _compare(encoder, expected, images)


def test_dilated_features_match_paddleseg_rules(state, checkpoint):
    encoder = ResNetEncoder(output_stride=8, multi_grid=(1, 2, 4), **TINY)
    load_encoder_weights(encoder, checkpoint)
    images = np.random.default_rng(2).normal(size=(1, 64, 64, 3)).astype("float32")
    with torch.no_grad():
        expected = reference_features(
            state, images, TINY["depths"], avg_down=True, stage_dilations=(1, 1, 2, 4), multi_grid=(1, 2, 4)
        )
    _compare(encoder, expected, images)


def test_full_resnet50d_layout_lands_one_tensor_per_weight(tmp_path):
    shapes = timm_resnet_shapes(depths=(3, 4, 6, 3), widths=(64, 128, 256, 512), stem_widths=(32, 32, 64), avg_down=True)
    converted = [n for n in shapes if not n.endswith("num_batches_tracked") and not n.startswith("fc.")]
    value_of = {name: float(i + 1) for i, name in enumerate(converted)}
    state = {name: np.full(shape, value_of.get(name, -1.0), "float32") for name, shape in shapes.items()}
    state.update({name: np.zeros((), "int64") for name in shapes if name.endswith("num_batches_tracked")})
    path = tmp_path / "resnet50d.safetensors"
    save_file(state, str(path))
    model = build_model("deeplabv3_r50", encoder_weights=path)
    encoder = model.get_layer("encoder")
    read_back = []
    for weight in encoder.weights:
        values = np.unique(np.asarray(weight))
        assert values.size == 1, f"{weight.path} holds parts of several tensors"
        read_back.append(float(values[0]))
    assert sorted(read_back) == sorted(value_of.values())  # a bijection: each tensor in exactly one weight
    name_of = {v: k for k, v in value_of.items()}

    def source(layer, index=0):
        return name_of[float(np.asarray(encoder.get_layer(layer).weights[index]).flat[0])]

    assert source("stem_conv1") == "conv1.0.weight"
    assert source("stem_bn3", 3) == "bn1.running_var"
    assert source("stage1_block1_downsample_conv") == "layer1.0.downsample.1.weight"
    assert source("stage3_block6_bn2", 2) == "layer3.5.bn2.running_mean"
    assert source("stage4_block3_conv2") == "layer4.2.conv2.weight"


def test_plain_resnet50_layout_maps_too(tmp_path):
    config = dict(depths=(1, 1, 1, 1), widths=(4, 8, 8, 16), stem_widths=(8,), avg_down=False)
    path = tmp_path / "model.safetensors"
    save_file(random_state(timm_resnet_shapes(**config)), str(path))
    encoder = ResNetEncoder(**config)
    load_encoder_weights(encoder, path)
    assert encoder.get_layer("stem_conv1").kernel.shape == (7, 7, 3, 8)


def test_mismatched_checkpoint_lists_every_problem(state, tmp_path):
    state = dict(state)
    del state["layer2.0.downsample.1.weight"]
    state["layer5.0.conv1.weight"] = np.zeros((1,), "float32")
    state["conv1.3.weight"] = np.zeros((8, 8, 1, 1), "float32")
    path = tmp_path / "broken.safetensors"
    save_file(state, str(path))
    with pytest.raises(ConversionError) as error:
        load_encoder_weights(ResNetEncoder(**TINY), path)
    message = str(error.value)
    assert "1 missing" in message and "layer2.0.downsample.1.weight" in message
    assert "1 unexpected" in message and "layer5.0.conv1.weight" in message
    assert "1 mis-shaped" in message and "conv1.3.weight" in message

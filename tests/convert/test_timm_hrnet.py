"""The timm HRNet converter against a torch reference of timm's module layout.

timm itself needs torchvision, which has no CPU wheel for the installed torch,
so `TimmHRNet` below re-implements timm's `HighResolutionNet` backbone
(timm/models/hrnet.py, with timm.models.resnet's BasicBlock and Bottleneck) in
plain torch.nn: the same module tree and attribute names, hence the same
state-dict keys, and the same forward pass (nearest upsampling in the fuse
layers, PyTorch `padding=1`). Its W48 layout is pinned to numbers read from
timm 1.0.31 (key count and parameter count of `hrnet_w48`).
"""

import numpy as np
import pytest

from tests.extras import require

torch = require("torch")
from safetensors.numpy import save_file  # noqa: E402
from torch import nn  # noqa: E402

from gdcld_zoo import build_model  # noqa: E402
from gdcld_zoo.convert import ConversionError  # noqa: E402
from gdcld_zoo.convert.timm_hrnet import encoder_mapping, load_timm_hrnet_state  # noqa: E402

# timm 1.0.31, `hrnet_w48`, classification head excluded: state-dict entries
# (parameters and batch-norm buffers, `num_batches_tracked` included) and
# trainable parameters. Read once from timm itself, where the reference's keys,
# shapes and key order were also checked to equal timm's one by one.
TIMM_W48_BACKBONE_KEYS = 1830
TIMM_W48_BACKBONE_PARAMS = 65_325_120

# A few tensors of timm's ImageNet classification head, which the converter skips.
HEAD_TENSORS = {
    "incre_modules.0.0.conv1.weight": np.zeros((32, 48, 1, 1), "float32"),
    "downsamp_modules.0.0.weight": np.zeros((128, 128, 3, 3), "float32"),
    "final_layer.1.running_var": np.ones((2048,), "float32"),
    "classifier.weight": np.zeros((1000, 2048), "float32"),
}


def _conv_bn(in_channels, out_channels, kernel_size, stride=1, relu=False):
    modules = [
        nn.Conv2d(in_channels, out_channels, kernel_size, stride, kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
    ]
    return nn.Sequential(*modules, nn.ReLU()) if relu else nn.Sequential(*modules)


class BasicBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(y)) + x)


class Bottleneck(nn.Module):
    def __init__(self, in_channels, planes):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, 4 * planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * planes)
        self.downsample = _conv_bn(in_channels, 4 * planes, 1) if in_channels != 4 * planes else None

    def forward(self, x):
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return torch.relu(y + (x if self.downsample is None else self.downsample(x)))


class HighResolutionModule(nn.Module):
    def __init__(self, channels, num_blocks):
        super().__init__()
        self.branches = nn.ModuleList(
            nn.Sequential(*[BasicBlock(c) for _ in range(num_blocks)]) for c in channels
        )
        fuse_layers = []
        for i, c_i in enumerate(channels):
            row = []
            for j, c_j in enumerate(channels):
                if j > i:
                    upsample = nn.Upsample(scale_factor=2 ** (j - i), mode="nearest")
                    row.append(nn.Sequential(*_conv_bn(c_j, c_i, 1), upsample))
                elif j == i:
                    row.append(nn.Identity())
                else:
                    row.append(nn.Sequential(*[
                        _conv_bn(c_j, c_i if k == i - j - 1 else c_j, 3, 2, relu=k < i - j - 1) for k in range(i - j)
                    ]))
            fuse_layers.append(nn.ModuleList(row))
        self.fuse_layers = nn.ModuleList(fuse_layers)

    def forward(self, xs):
        xs = [branch(x) for branch, x in zip(self.branches, xs)]
        return [torch.relu(sum(f(x) for f, x in zip(row, xs))) for row in self.fuse_layers]


class TimmHRNet(nn.Module):
    """timm's `HighResolutionNet` without its classification head."""

    def __init__(self, stem_channels, stage1_channels, stage1_blocks, branch_channels, num_modules, num_blocks):
        super().__init__()
        self.conv1 = nn.Conv2d(3, stem_channels, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem_channels)
        self.conv2 = nn.Conv2d(stem_channels, 64, 3, 2, 1, bias=False)  # 64 wide in timm, whatever the stem
        self.bn2 = nn.BatchNorm2d(64)
        stage1_out = 4 * stage1_channels
        self.layer1 = nn.Sequential(
            *[Bottleneck(64 if b == 0 else stage1_out, stage1_channels) for b in range(stage1_blocks)]
        )
        self.transition1 = nn.ModuleList([
            _conv_bn(stage1_out, branch_channels[0], 3, relu=True),
            nn.Sequential(_conv_bn(stage1_out, branch_channels[1], 3, 2, relu=True)),
        ])
        for s in range(3):
            channels = branch_channels[: s + 2]
            if s > 0:
                new_branch = nn.Sequential(_conv_bn(channels[-2], channels[-1], 3, 2, relu=True))
                setattr(self, f"transition{s + 1}", nn.ModuleList([nn.Identity()] * (s + 1) + [new_branch]))
            modules = [HighResolutionModule(channels, num_blocks[s]) for _ in range(num_modules[s])]
            setattr(self, f"stage{s + 2}", nn.Sequential(*modules))

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        xs = [t(self.layer1(x)) for t in self.transition1]
        for s in (2, 3, 4):
            if s > 2:
                xs = [t(xs[-1]) if i == len(xs) else xs[i] for i, t in enumerate(getattr(self, f"transition{s - 1}"))]
            for module in getattr(self, f"stage{s}"):
                xs = module(xs)
        return xs


def _numpy_state(model):
    return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


def _perturbed(model):
    """Random weights, random batch-norm statistics, eval mode."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, tensor in model.state_dict().items():
            if not tensor.is_floating_point():
                continue
            noise = torch.randn(tensor.shape, generator=generator) * 0.1
            if name.endswith("running_var"):
                tensor.copy_(noise.abs() + 0.5)
            elif name.endswith("weight") and tensor.ndim == 1:
                tensor.copy_(noise + 0.5)
            elif tensor.ndim == 1:
                tensor.copy_(noise)
            else:  # convolutions keep a fan-in scale so activations stay O(1)
                tensor.copy_(noise * 10 / np.sqrt(tensor[0].numel()))
    return model.eval()


TINY = dict(
    stem_channels=64, stage1_channels=4, stage1_blocks=2,
    branch_channels=(4, 8, 12, 16), num_modules=(1, 2, 1), num_blocks=(1, 1, 2),
)


def test_tiny_encoder_matches_torch_reference(tmp_path):
    reference = _perturbed(TimmHRNet(**TINY))
    path = tmp_path / "hrnet.safetensors"
    save_file({**_numpy_state(reference), **HEAD_TENSORS}, str(path))

    model = build_model("hrnet_tiny", encoder_weights=path, **TINY)

    images = np.random.default_rng(0).normal(size=(2, 64, 96, 3)).astype("float32")
    ours = model.encoder(images, training=False)
    with torch.no_grad():
        theirs = reference(torch.from_numpy(images.transpose(0, 3, 1, 2)))
    for i, expected in enumerate(theirs):
        expected = expected.numpy().transpose(0, 2, 3, 1)
        assert np.abs(expected).max() > 0.1
        np.testing.assert_allclose(np.asarray(ours[f"stride_{4 * 2**i}"]), expected, atol=1e-4, rtol=0)


def _distinct(state):
    """Tensor k holds k + (position mod 997) / 1024: exact in float32 and unique
    per tensor, so a tensor in the wrong layer or wrongly transposed shows."""
    return {
        name: (k + (np.arange(value.size) % 997) / 1024).astype("float32").reshape(value.shape)
        for k, (name, value) in enumerate(sorted(state.items()))
        if value.dtype.kind == "f"
    }


W48 = dict(
    stem_channels=64, stage1_channels=64, stage1_blocks=4,
    branch_channels=(48, 96, 192, 384), num_modules=(1, 4, 3), num_blocks=(4, 4, 4),
)


def test_reference_w48_layout_is_timms():
    reference = TimmHRNet(**W48)
    assert len(reference.state_dict()) == TIMM_W48_BACKBONE_KEYS
    assert sum(p.numel() for p in reference.parameters()) == TIMM_W48_BACKBONE_PARAMS


@pytest.mark.parametrize("name, layout", [("hrnet_tiny", TINY), ("hrnet_w48", W48)])
def test_every_tensor_lands_in_its_keras_weight(name, layout):
    state = _distinct(_numpy_state(TimmHRNet(**layout)))
    encoder = build_model(name, **layout).encoder
    load_timm_hrnet_state(encoder, state, "test checkpoint")

    to_torch = {"conv": lambda w: np.transpose(w, (3, 2, 0, 1)), "batch_norm": lambda w: w}
    torch_names = {"conv": ("weight",), "batch_norm": ("weight", "bias", "running_mean", "running_var")}
    seen = set()
    for prefix, layer, kind in encoder_mapping(encoder):
        assert len(layer.weights) == len(torch_names[kind])
        for param, variable in zip(torch_names[kind], layer.weights):
            key = f"{prefix}.{param}"
            np.testing.assert_array_equal(to_torch[kind](np.asarray(variable)), state[key], err_msg=key)
            seen.add(key)
    assert seen == set(state)
    assert len(seen) == sum(len(layer.weights) for layer in encoder.layers)


@pytest.fixture(scope="module")
def tiny_state():
    return _numpy_state(TimmHRNet(**TINY))


def _load_tiny(state, **overrides):
    encoder = build_model("hrnet_tiny", **{**TINY, **overrides}).encoder
    load_timm_hrnet_state(encoder, state, "test checkpoint")


def test_missing_tensors_are_listed(tiny_state):
    state = dict(tiny_state)
    del state["stage3.1.fuse_layers.2.0.1.0.weight"]
    del state["layer1.0.downsample.1.running_var"]
    with pytest.raises(ConversionError, match=r"2 missing tensors .*stage3\.1\.fuse_layers\.2\.0\.1\.0\.weight"):
        _load_tiny(state)


def test_unexpected_tensors_are_listed(tiny_state):
    state = {**tiny_state, "stage2.0.branches.0.0.se.fc1.weight": np.zeros((2, 4, 1, 1), "float32")}
    with pytest.raises(ConversionError, match=r"1 unexpected tensors \(stage2\.0\.branches\.0\.0\.se\.fc1\.weight\)"):
        _load_tiny(state)


def test_mis_shaped_tensors_are_listed(tiny_state):
    # A checkpoint of another width, and an RGB checkpoint for a 4-band model.
    with pytest.raises(ConversionError, match=r"mis-shaped tensors \(transition1\.0\.0\.weight"):
        _load_tiny(tiny_state, branch_channels=(6, 8, 12, 16))
    encoder = build_model("hrnet_tiny", input_shape=(None, None, 4), **TINY).encoder
    with pytest.raises(ConversionError, match=r"conv1\.weight: checkpoint \(3, 3, 3, 64\) vs model \(3, 3, 4, 64\)"):
        load_timm_hrnet_state(encoder, tiny_state, "test checkpoint")


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConversionError, match="No checkpoint at .*safetensors"):
        build_model("hrnet_tiny", encoder_weights=tmp_path / "absent.safetensors")

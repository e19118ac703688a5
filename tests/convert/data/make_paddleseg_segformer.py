"""Write the PaddleSeg reference fixture of `test_paddleseg_segformer.py`.

Builds a tiny SegFormer with PaddleSeg's own classes (MiT-B-style blocks:
qkv bias, layer-norm epsilon 1e-6, patch sizes 7/3/3/3), gives every parameter
and batch-norm statistic distinct values, saves it with `paddle.save` and
records PaddleSeg's logits for a fixed input:

- `paddleseg_segformer_tiny.pdparams`: the checkpoint, exactly as PaddleSeg writes it;
- `paddleseg_segformer_tiny_io.npz`: `images` (N, C, H, W) and `logits` (N, K, H, W).

Not run by the tests (they need no Paddle). Regenerate with
`pip install paddlepaddle==3.3.1 paddleseg==2.8.0 opencv-python-headless scikit-learn`
in a separate environment, then `python tests/convert/data/make_paddleseg_segformer.py`.
"""

from functools import partial
from pathlib import Path

import numpy as np
import paddle
from paddleseg.models.backbones.mix_transformer import MixVisionTransformer
from paddleseg.models.segformer import SegFormer

HERE = Path(__file__).parent


def main():
    paddle.seed(0)
    rng = np.random.default_rng(0)
    backbone = MixVisionTransformer(
        embed_dims=[8, 16, 20, 32],
        num_heads=[1, 2, 5, 8],
        mlp_ratios=[4, 4, 4, 4],
        qkv_bias=True,
        norm_layer=partial(paddle.nn.LayerNorm, epsilon=1e-6),
        depths=[1, 2, 1, 1],
        sr_ratios=[8, 4, 2, 1],
    )
    model = SegFormer(num_classes=2, backbone=backbone, embedding_dim=16)
    state = {}
    for name, value in model.state_dict().items():
        noise = rng.normal(size=value.shape).astype("float32") * 0.1
        state[name] = np.abs(noise) + 0.5 if name.endswith("_variance") else value.numpy() + noise
    model.set_state_dict({k: paddle.to_tensor(v) for k, v in state.items()})
    model.eval()
    paddle.save(model.state_dict(), str(HERE / "paddleseg_segformer_tiny.pdparams"))
    images = rng.normal(size=(1, 3, 64, 96)).astype("float32")
    with paddle.no_grad():
        logits = model(paddle.to_tensor(images))[0].numpy()
    np.savez_compressed(HERE / "paddleseg_segformer_tiny_io.npz", images=images, logits=logits)


if __name__ == "__main__":
    main()

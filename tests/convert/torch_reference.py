"""Reference PyTorch models for the converter tests, with every weight randomised."""

import torch


def perturbed(model, scale=0.5):
    """Random weights everywhere, floating buffers (batch-norm statistics) included, eval mode.

    Fresh models have ones and zeros in norms and biases, which hide layout
    mistakes; at scale 0.5 activations are large enough that a transposed
    kernel or the tanh approximation of GELU shows (about 1.6e-3 on SegFormer)
    while float32 round-off stays near 1e-5. Running variances stay positive.
    """
    generator = torch.Generator().manual_seed(0)
    tensors = list(model.named_parameters()) + [(n, b) for n, b in model.named_buffers() if b.is_floating_point()]
    with torch.no_grad():
        for name, tensor in tensors:
            noise = torch.randn(tensor.shape, generator=generator) * scale
            tensor.copy_(noise.abs() + 0.5 if "running_var" in name else noise)
    return model.eval()

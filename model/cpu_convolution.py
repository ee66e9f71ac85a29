"""3D convolutions on the CPU through oneDNN, which PyTorch's own choice skips for the VAE's shapes.

For a float32 CPU convolution PyTorch picks oneDNN (mkldnn) or its im2col fallback by a size heuristic, and
the VAE's batch-1 causal convolutions over a few frames get the fallback (`slow_conv3d`, seen in the
profiler: 71-79 % of the mini VAE's encode and decode time). Measured on the 2-core machine, one thread, a
16->16 3x3x3 convolution on 5 x 98 x 170: 0.163 s through slow_conv3d, 0.018 s through oneDNN (9x), the same
values within 3e-6. Gradients flow through oneDNN too, so training takes the same path.
"""

from __future__ import annotations

import types

import torch
from torch import nn


def _onednn_conv_forward(
    self: nn.Conv3d, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> torch.Tensor:
    if input.device.type == "cpu" and input.dtype == torch.float32 and weight.dtype == torch.float32:
        return torch.ops.aten.mkldnn_convolution(
            input.contiguous(),
            weight,
            bias,
            list(self.padding),  # numeric: string paddings are never bound here
            list(self.stride),
            list(self.dilation),
            self.groups,
        )
    return nn.Conv3d._conv_forward(self, input, weight, bias)


def use_onednn_convolutions(model: nn.Module) -> nn.Module:
    """Route `model`'s zero-padded 3D convolutions through oneDNN on the CPU (other devices unchanged).

    Idempotent; returns `model`. A convolution with string padding ('same') or another padding mode keeps
    PyTorch's own path.
    """
    if not torch.backends.mkldnn.is_available():
        return model
    for module in model.modules():
        if (
            isinstance(module, nn.Conv3d)
            and module.padding_mode == "zeros"
            and not isinstance(module.padding, str)
        ):
            module._conv_forward = types.MethodType(_onednn_conv_forward, module)  # type: ignore[method-assign]
    return model

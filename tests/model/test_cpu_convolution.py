"""The VAE's 3D convolutions run through oneDNN on the CPU, with PyTorch's own values and gradients."""

from __future__ import annotations

import torch
from torch import nn
from torch.profiler import profile

from model.checkpoints import build_pipeline
from model.cpu_convolution import use_onednn_convolutions


def _kernels(run: object) -> set[str]:
    with profile() as profiler:
        run()  # type: ignore[operator]
    return {event.key for event in profiler.key_averages() if "conv" in event.key}


def test_values_and_gradients_match_pytorchs_own_path() -> None:
    torch.manual_seed(0)
    plain = nn.Conv3d(4, 6, 3, stride=(1, 2, 2), padding=1)
    fast = use_onednn_convolutions(nn.Conv3d(4, 6, 3, stride=(1, 2, 2), padding=1))
    fast.load_state_dict(plain.state_dict())
    inputs = torch.randn(1, 4, 5, 20, 24, requires_grad=True)
    expected = plain(inputs)
    expected_grads = torch.autograd.grad(expected.square().sum(), [inputs, plain.weight, plain.bias])
    got = fast(inputs)
    got_grads = torch.autograd.grad(got.square().sum(), [inputs, fast.weight, fast.bias])
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    for mine, theirs in zip(got_grads, expected_grads, strict=True):
        torch.testing.assert_close(mine, theirs, rtol=1e-4, atol=1e-4)
    assert "aten::slow_conv3d_forward" in _kernels(lambda: plain(inputs))
    assert "aten::slow_conv3d_forward" not in _kernels(lambda: fast(inputs))


def test_every_pipeline_takes_the_onednn_path_for_its_vae() -> None:
    pipeline = build_pipeline("tiny", seed=0)
    frames = torch.rand(1, 3, 5, 32, 32) * 2 - 1
    with torch.inference_mode():
        kernels = _kernels(lambda: pipeline.vae.encode(frames))
    assert "aten::mkldnn_convolution" in kernels
    assert "aten::slow_conv3d_forward" not in kernels


def test_other_padding_keeps_pytorchs_path() -> None:
    same = use_onednn_convolutions(nn.Conv3d(2, 2, 3, padding="same"))
    assert "_conv_forward" not in vars(same)
    circular = use_onednn_convolutions(nn.Conv3d(2, 2, 3, padding=1, padding_mode="circular"))
    assert "_conv_forward" not in vars(circular)

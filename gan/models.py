"""The networks: StarGAN, CycleGAN (ResNet) and pix2pix (U-Net) generators, and their critics.

At their default sizes the generators' state_dicts have exactly the keys and shapes of the
original fashion_gan checkpoints (see ../shared/reference/original_assets.md), so those files
load unchanged. Training code lives in gan/train.py, not here.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "Discriminator",
    "Generator",
    "InstanceNorm",
    "PatchDiscriminator",
    "ResidualBlock",
    "ResnetBlock",
    "ResnetGenerator",
    "UnetGenerator",
    "UnetSkipConnectionBlock",
    "with_residual",
]


def with_residual(x: torch.Tensor, out: torch.Tensor, residual: bool) -> torch.Tensor:
    """`out`, or with `residual` the input plus `out` as a change, kept in [-1, 1].

    A residual generator starts as the identity (its last conv is zeroed) and only learns
    what an edit changes, which is what lets small editors train on a CPU.
    """
    return (x + out).clamp(-1, 1) if residual else out


# ---------------------------------------------------------------- StarGAN (shape edits)


class ResidualBlock(nn.Module):
    """StarGAN residual block: two 3x3 convs with affine instance norm."""

    def __init__(self, dim: int):
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(dim, dim, 3, 1, 1, bias=False),
            nn.InstanceNorm2d(dim, affine=True),
            nn.ReLU(inplace=True),
            nn.Conv2d(dim, dim, 3, 1, 1, bias=False),
            nn.InstanceNorm2d(dim, affine=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.main(x)


class Generator(nn.Module):
    """StarGAN generator: an image plus a target label vector in, the edited image out."""

    def __init__(self, conv_dim: int = 64, c_dim: int = 5, repeat_num: int = 6, residual: bool = False):
        super().__init__()
        dim = conv_dim
        layers = [
            nn.Conv2d(3 + c_dim, dim, 7, 1, 3, bias=False),
            nn.InstanceNorm2d(dim, affine=True),
            nn.ReLU(inplace=True),
        ]
        for _ in range(2):
            layers += [
                nn.Conv2d(dim, dim * 2, 4, 2, 1, bias=False),
                nn.InstanceNorm2d(dim * 2, affine=True),
                nn.ReLU(inplace=True),
            ]
            dim *= 2
        layers += [ResidualBlock(dim) for _ in range(repeat_num)]
        # fashion_gan upsamples bilinearly then smooths with a stride-1 7x7 transposed conv.
        for _ in range(2):
            layers += [
                nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
                nn.ConvTranspose2d(dim, dim // 2, 7, 1, 3, bias=False),
                nn.InstanceNorm2d(dim // 2, affine=True),
                nn.ReLU(inplace=True),
            ]
            dim //= 2
        layers += [nn.Conv2d(dim, 3, 7, 1, 3, bias=False), nn.Tanh()]
        self.main = nn.Sequential(*layers)
        self.c_dim, self.residual = c_dim, residual
        if residual:
            nn.init.zeros_(layers[-2].weight)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        c = c.view(c.size(0), c.size(1), 1, 1).expand(-1, -1, x.size(2), x.size(3))
        return with_residual(x, self.main(torch.cat([x, c.to(x.dtype)], dim=1)), self.residual)


class Discriminator(nn.Module):
    """StarGAN critic: a patch real/fake map and domain logits."""

    def __init__(
        self, image_size: int = 128, conv_dim: int = 64, c_dim: int = 5, repeat_num: int = 6
    ):
        super().__init__()
        if image_size % 2**repeat_num:
            raise ValueError(
                f"image_size {image_size} must be divisible by 2**repeat_num ({2**repeat_num})."
            )
        dim = conv_dim
        layers = [nn.Conv2d(3, dim, 4, 2, 1), nn.LeakyReLU(0.01)]
        for _ in range(1, repeat_num):
            layers += [nn.Conv2d(dim, dim * 2, 4, 2, 1), nn.LeakyReLU(0.01)]
            dim *= 2
        self.main = nn.Sequential(*layers)
        self.conv1 = nn.Conv2d(dim, 1, 3, 1, 1, bias=False)
        self.conv2 = nn.Conv2d(dim, c_dim, image_size // 2**repeat_num, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.main(x)
        return self.conv1(h), self.conv2(h).view(x.size(0), -1)


# ---------------------------------------------------------------- CycleGAN (pattern edits)


class InstanceNorm(nn.InstanceNorm2d):
    """Instance norm that always uses the input's own statistics.

    fashion_gan's CycleGAN files carry running_mean/var buffers (track_running_stats=True), so
    they exist here for the keys to match; they are never read or updated, which keeps
    inference free of shared mutable state and matches how instance norm is meant to work.
    """

    def __init__(self, num_features: int):
        super().__init__(num_features, affine=False, track_running_stats=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.instance_norm(x, eps=self.eps)


class ResnetBlock(nn.Module):
    """CycleGAN residual block with reflection padding."""

    def __init__(self, dim: int):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            InstanceNorm(dim),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            InstanceNorm(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """CycleGAN generator: two downsamplings, `n_blocks` residual blocks, two upsamplings."""

    def __init__(
        self, input_nc: int = 3, output_nc: int = 3, ngf: int = 64, n_blocks: int = 9,
        residual: bool = False,
    ):
        super().__init__()
        layers = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, 7),
            InstanceNorm(ngf),
            nn.ReLU(True),
        ]
        dim = ngf
        for _ in range(2):
            layers += [nn.Conv2d(dim, dim * 2, 3, 2, 1), InstanceNorm(dim * 2), nn.ReLU(True)]
            dim *= 2
        layers += [ResnetBlock(dim) for _ in range(n_blocks)]
        for _ in range(2):
            layers += [
                nn.ConvTranspose2d(dim, dim // 2, 3, 2, 1, output_padding=1),
                InstanceNorm(dim // 2),
                nn.ReLU(True),
            ]
            dim //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(dim, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)
        self.residual = residual and input_nc == output_nc
        if self.residual:
            nn.init.zeros_(layers[-2].weight)
            nn.init.zeros_(layers[-2].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return with_residual(x, self.model(x), self.residual)


class PatchDiscriminator(nn.Module):
    """PatchGAN critic (70x70 receptive field at n_layers=3): one real/fake logit per patch."""

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3, norm: str = "instance"):
        super().__init__()
        if norm not in ("instance", "batch"):
            raise ValueError(f"norm must be 'instance' or 'batch', not {norm!r}.")
        Norm = nn.InstanceNorm2d if norm == "instance" else nn.BatchNorm2d
        layers = [nn.Conv2d(input_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            stride = 2 if n < n_layers else 1
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=norm == "instance"),
                Norm(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        layers += [nn.Conv2d(ndf * mult, 1, 4, 1, 1)]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


# ---------------------------------------------------------------- pix2pix (model view)


class UnetSkipConnectionBlock(nn.Module):
    """One U-Net level: down, the inner levels, up, then concatenated with its input."""

    def __init__(
        self,
        outer_nc: int,
        inner_nc: int,
        input_nc: int | None = None,
        submodule: nn.Module | None = None,
        outermost: bool = False,
        innermost: bool = False,
        use_dropout: bool = False,
    ):
        super().__init__()
        self.outermost = outermost
        input_nc = outer_nc if input_nc is None else input_nc
        # BatchNorm has its own shift, so convs before it carry no bias (as in the originals).
        downconv = nn.Conv2d(input_nc, inner_nc, 4, 2, 1, bias=False)
        downrelu, uprelu = nn.LeakyReLU(0.2, True), nn.ReLU(True)
        if outermost:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1)
            layers = [downconv, submodule, uprelu, upconv, nn.Tanh()]
        elif innermost:
            upconv = nn.ConvTranspose2d(inner_nc, outer_nc, 4, 2, 1, bias=False)
            layers = [downrelu, downconv, uprelu, upconv, nn.BatchNorm2d(outer_nc)]
        else:
            upconv = nn.ConvTranspose2d(inner_nc * 2, outer_nc, 4, 2, 1, bias=False)
            layers = [downrelu, downconv, nn.BatchNorm2d(inner_nc), submodule]
            layers += [uprelu, upconv, nn.BatchNorm2d(outer_nc)]
            layers += [nn.Dropout(0.5)] if use_dropout else []
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """pix2pix U-Net generator; inputs must be divisible by 2**num_downs pixels."""

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        num_downs: int = 8,
        ngf: int = 64,
        use_dropout: bool = False,
    ):
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"num_downs must be at least 5, not {num_downs}.")
        block = UnetSkipConnectionBlock(ngf * 8, ngf * 8, innermost=True)
        for _ in range(num_downs - 5):
            block = UnetSkipConnectionBlock(
                ngf * 8, ngf * 8, submodule=block, use_dropout=use_dropout
            )
        for mult in (4, 2, 1):
            block = UnetSkipConnectionBlock(ngf * mult, ngf * mult * 2, submodule=block)
        self.model = UnetSkipConnectionBlock(output_nc, ngf, input_nc, block, outermost=True)
        self.num_downs = num_downs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

"""TagUnet: the bundled editors' generator, a U-Net conditioned on the target tags.

The target tags (and the garment's ground colour, gan.prints.ground_colour: its commonest
colour, so a striped garment's ground and not a mix of ground and stripes) enter as constant
planes beside the image and again at the bottleneck; the skip connections carry the garment's
own colour and texture to the output. The generator predicts the change to its input plus two
blend weights per pixel: towards the ground colour (a sleeve or hem the edit adds) and towards
the backdrop (one it removes); group norm washes absolute colours out of the features, so these
paths keep them exact. A pattern TagUnet (`prints` names its label's patterns) has a third
weight, towards the target's house print on the ground colour (gan.prints), so flowers and
stripes come out crisp. Its last convolution starts at zero, so it starts as the identity,
which is what lets it learn an edit on a CPU.

`FixedTags` wraps one with a fixed target, so one pattern TagUnet serves as all four
CycleGAN-style directions ('floral_add', 'stripes_remove', ...) of a StyleEditor.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .prints import backdrop_colour, ground_colour, house_print

__all__ = ["FixedTags", "TagUnet", "backdrop_colour", "ground_colour", "widen_output"]


def _block(cin: int, cout: int) -> nn.Sequential:
    """Two 3x3 convolutions with group norm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.GroupNorm(math.gcd(8, cout), cout), nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False), nn.GroupNorm(math.gcd(8, cout), cout), nn.ReLU(inplace=True),
    )


OUTPUTS = 5  # change (RGB), weight towards the ground colour, weight towards the backdrop


def widen_output(state: dict, outputs: int = OUTPUTS) -> dict:
    """A state dict from a TagUnet with fewer output channels, the missing blend weights at zero (same function)."""
    for name, value in state.items():
        if (name in ("out.weight", "out.bias") or name.endswith((".out.weight", ".out.bias"))) and len(value) < outputs:
            state[name] = torch.cat([value, value.new_zeros((outputs - len(value), *value.shape[1:]))])
    return state


def _planes(c: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The (N, c_dim) label as constant planes of `like`'s height and width."""
    return c[:, :, None, None].to(like.dtype).expand(-1, -1, like.shape[2], like.shape[3])


class TagUnet(nn.Module):
    """Image and target label in, edited image out; inputs divisible by 2**levels pixels.

    `prints`: the pattern of each of the label's first entries (e.g. solid, floral, stripes);
    given, the network also blends towards the house print of its target pattern.
    """

    def __init__(self, c_dim: int, ngf: int = 32, levels: int = 4, prints: Sequence[str] | None = None):
        super().__init__()
        self.c_dim, self.ngf, self.levels = c_dim, ngf, levels
        self.prints = tuple(prints or ())
        widths = [ngf * min(2**n, 8) for n in range(levels + 1)]
        self.down = nn.ModuleList([_block(6 + c_dim, widths[0])] + [
            _block(widths[n], widths[n + 1]) for n in range(levels - 1)])
        self.middle = _block(widths[levels - 1] + c_dim + 3, widths[levels])
        self.up = nn.ModuleList([_block(widths[n + 1] + widths[n], widths[n]) for n in reversed(range(levels))])
        self.out = nn.Conv2d(widths[0], OUTPUTS + bool(self.prints), 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    @property
    def config(self) -> dict:
        return {"c_dim": self.c_dim, "ngf": self.ngf, "levels": self.levels,
                **({"prints": list(self.prints)} if self.prints else {})}

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        colour, tags = ground_colour(x.float()), c
        c = torch.cat([c.to(x.dtype), colour.to(x.dtype)], 1)  # target tags + colour
        skips, h = [], torch.cat([x, _planes(c, x)], 1)
        for n, block in enumerate(self.down):
            h = block(h if n == 0 else F.avg_pool2d(h, 2))
            skips.append(h)
        h = F.avg_pool2d(h, 2)
        h = self.middle(torch.cat([h, _planes(c, h)], 1))
        for block, skip in zip(self.up, reversed(skips), strict=True):
            h = block(torch.cat([F.interpolate(h, scale_factor=2, mode="nearest"), skip], 1))
        z = self.out(h).float()
        out = x + z[:, :3]
        out = out + z[:, 3:4] * (colour[:, :, None, None] - out)
        out = out + z[:, 4:5] * (backdrop_colour(x.float())[:, :, None, None] - out)
        if self.prints:
            target = house_print(colour, tags[:, : len(self.prints)], self.prints, *x.shape[2:])
            out = out + z[:, 5:6] * (target - out)
        return out.clamp(-1, 1)


class FixedTags(nn.Module):
    """A TagUnet with its target label fixed: `forward(x)` edits towards `label`."""

    def __init__(self, net: TagUnet, label: list[float]):
        super().__init__()
        self.net = net
        self.register_buffer("label", torch.tensor([label], dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, self.label.expand(len(x), -1))

"""The GANs' losses and one training step per family (critic update, then generator update)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .editor import SHAPE_LAYOUT

__all__ = [
    "classification_loss",
    "cyclegan_step",
    "gan_loss",
    "paired_l1",
    "pix2pix_step",
    "stargan_step",
    "tagunet_step",
]


def gan_loss(logits: torch.Tensor, real: bool) -> torch.Tensor:
    """Least-squares GAN loss towards 1 (real) or 0 (fake)."""
    return F.mse_loss(logits, torch.full_like(logits, float(real)))


def classification_loss(
    logits: torch.Tensor, labels: torch.Tensor, layout=SHAPE_LAYOUT
) -> torch.Tensor:
    """Cross-entropy per one-hot group; all-zero groups (a top's length) are skipped."""
    total, start = logits.new_zeros(()), 0
    for _, values in layout:
        group = slice(start, start + len(values))
        present = labels[:, group].sum(1) > 0
        if present.any():
            total = total + F.cross_entropy(
                logits[present, group], labels[present, group].argmax(1)
            )
        start += len(values)
    return total


def paired_l1(fake: torch.Tensor, truth: torch.Tensor, source: torch.Tensor, focus: float) -> torch.Tensor:
    """L1 to the true edited render, the pixels the edit changes weighted 1 + `focus`.

    An edit changes a small part of the image (a sleeve, a neckline), so a plain mean lets the
    identity look almost right; the weight makes the changed part count from the first step.
    """
    changed = ((truth - source).abs().amax(1, keepdim=True) > 0.05).to(fake.dtype)
    return ((fake - truth).abs() * (1 + focus * changed)).mean()


def set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    """Freeze or unfreeze critics while the generator is updated."""
    for net in nets:
        net.requires_grad_(flag)


def update(loss: torch.Tensor, *optimizers: torch.optim.Optimizer) -> None:
    for optimizer in optimizers:
        optimizer.zero_grad(set_to_none=True)
    loss.backward()
    for optimizer in optimizers:
        optimizer.step()


# ---------------------------------------------------------------- training steps


def stargan_step(nets, optims, batch, opt) -> dict[str, float]:
    """One critic and one generator update: adversarial + domain class + cycle (+ paired L1)."""
    G, D = nets["G"], nets["D"]
    x, y, c_org, c_trg = batch["x"], batch["y"], batch["c_org"], batch["c_trg"]
    fake = G(x, c_trg)

    set_requires_grad([D], True)
    src_real, cls_real = D(x)
    src_fake, _ = D(fake.detach())
    d_cls = classification_loss(cls_real, c_org)
    d_loss = gan_loss(src_real, True) + gan_loss(src_fake, False) + opt.lambda_cls * d_cls
    update(d_loss, optims["D"])

    set_requires_grad([D], False)
    src_fake, cls_fake = D(fake)
    g_adv, g_cls = gan_loss(src_fake, True), classification_loss(cls_fake, c_trg)
    g_rec, g_l1 = F.l1_loss(G(fake, c_org), x), paired_l1(fake, y, x, opt.l1_focus)
    g_loss = g_adv + opt.lambda_cls * g_cls + opt.lambda_rec * g_rec + opt.lambda_l1 * g_l1
    update(g_loss, optims["G"])
    return {
        "D": d_loss.item(),
        "D_cls": d_cls.item(),
        "G_adv": g_adv.item(),
        "G_cls": g_cls.item(),
        "G_rec": g_rec.item(),
        "G_l1": g_l1.item(),
    }


def cyclegan_step(nets, optims, batch, opt) -> dict[str, float]:
    """One update of both generators (adversarial + cycle + identity (+ paired L1)), then both critics."""
    G_add, G_remove, D_b, D_a = nets["G_add"], nets["G_remove"], nets["D_b"], nets["D_a"]
    a, b = batch["a"], batch["b"]
    fake_b, fake_a = G_add(a), G_remove(b)

    set_requires_grad([D_a, D_b], False)
    g_adv = gan_loss(D_b(fake_b), True) + gan_loss(D_a(fake_a), True)
    g_cycle = F.l1_loss(G_remove(fake_b), a) + F.l1_loss(G_add(fake_a), b)
    g_idt = F.l1_loss(G_add(b), b) + F.l1_loss(G_remove(a), a)
    g_l1 = paired_l1(fake_b, b, a, opt.l1_focus) + paired_l1(fake_a, a, b, opt.l1_focus)
    g_loss = g_adv + opt.lambda_rec * (g_cycle + opt.lambda_idt * g_idt) + opt.lambda_l1 * g_l1
    update(g_loss, optims["G_add"], optims["G_remove"])

    set_requires_grad([D_a, D_b], True)
    d_b = 0.5 * (gan_loss(D_b(b), True) + gan_loss(D_b(fake_b.detach()), False))
    d_a = 0.5 * (gan_loss(D_a(a), True) + gan_loss(D_a(fake_a.detach()), False))
    update(d_a + d_b, optims["D_a"], optims["D_b"])
    return {
        "D_a": d_a.item(),
        "D_b": d_b.item(),
        "G_adv": g_adv.item(),
        "G_cycle": g_cycle.item(),
        "G_idt": g_idt.item(),
        "G_l1": g_l1.item(),
    }


def pix2pix_step(nets, optims, batch, opt) -> dict[str, float]:
    """One conditional-critic update, then one generator update: adversarial + L1."""
    G, D = nets["G"], nets["D"]
    x, y = batch["x"], batch["y"]
    fake = G(x)

    set_requires_grad([D], True)
    d_loss = 0.5 * (
        gan_loss(D(torch.cat([x, y], 1)), True)
        + gan_loss(D(torch.cat([x, fake.detach()], 1)), False)
    )
    update(d_loss, optims["D"])

    set_requires_grad([D], False)
    g_adv, g_l1 = gan_loss(D(torch.cat([x, fake], 1)), True), F.l1_loss(fake, y)
    update(g_adv + opt.lambda_l1 * g_l1, optims["G"])
    return {"D": d_loss.item(), "G_adv": g_adv.item(), "G_l1": g_l1.item()}




def tag_planes(c: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """The (N, c_dim) label as constant planes of `like`'s size (the critic's condition)."""
    return c[:, :, None, None].to(like.dtype).expand(-1, -1, like.shape[2], like.shape[3])


def tagunet_step(nets, optims, batch, opt) -> dict[str, float]:
    """A conditional critic that sees (input, output, target tags), then the generator.

    The critic also learns that a true edit under the wrong tags is fake, so it judges whether
    the requested change was made, not only whether the image looks real. The generator's
    L1 to the true edit weights the changed pixels (`l1_focus`); `lambda_low` (off by default)
    adds an L1 of 4x-pooled images, which asks for the right colours and layout without asking
    a texture to match the true one pixel by pixel (pattern truths use fixed house prints, so
    plain L1 fits them).
    """
    G, D = nets["G"], nets["D"]
    x, y, c = batch["x"], batch["y"], batch["c_trg"]
    fake = G(x, c)
    planes = tag_planes(c, x)
    wrong = tag_planes(c.roll(1, 0), x)

    set_requires_grad([D], True)
    d_real = gan_loss(D(torch.cat([x, y, planes], 1)), True)
    d_fake = gan_loss(D(torch.cat([x, fake.detach(), planes], 1)), False)
    d_wrong = gan_loss(D(torch.cat([x, y, wrong], 1)), False)
    d_loss = 0.5 * d_real + 0.25 * (d_fake + d_wrong)
    update(d_loss, optims["D"])

    set_requires_grad([D], False)
    g_adv = gan_loss(D(torch.cat([x, fake, planes], 1)), True)
    g_l1 = paired_l1(fake, y, x, opt.l1_focus)
    g_low = F.l1_loss(F.avg_pool2d(fake, 4), F.avg_pool2d(y, 4))
    g_loss = opt.lambda_adv * g_adv + opt.lambda_l1 * g_l1 + opt.lambda_low * g_low
    update(g_loss, optims["G"])
    return {"D": d_loss.item(), "G_adv": g_adv.item(), "G_l1": g_l1.item(), "G_low": g_low.item()}

"""numbpie.training.loop: resume, size checks, val-best export and history, on a tiny torch task."""

import json

import numpy as np
import pytest
import torch

from numbpie.errors import TrainingError, UserError
from numbpie.training import loop
from numbpie.training.torch_state import load_modules, load_optimizers, module_state, optimizer_state


class LineTask:
    """Fit y = 3x with one weight; the data of a step is a function of the step only."""

    batch_size = 4

    def __init__(self, width: int = 1, scores=None):
        self.fixed = {"width": width}
        self.net = torch.nn.Linear(1, width, bias=False)
        torch.nn.init.zeros_(self.net.weight)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=0.1)
        self.scores = list(scores or [])
        self.exported = []

    def state(self):
        return {**module_state({"net": self.net}), **optimizer_state({"adam": self.optimizer})[0]}

    def extra(self):
        return {"groups": optimizer_state({"adam": self.optimizer})[1]}

    def load_state(self, tensors, extra):
        load_modules({"net": self.net}, tensors)
        load_optimizers({"adam": self.optimizer}, tensors, extra["groups"])

    def init_from(self, source):
        with torch.no_grad():
            self.net.weight.fill_(float(source))

    def train_step(self, step):
        x = torch.from_numpy(np.random.default_rng(step).normal(size=(4, 1)).astype(np.float32))
        loss = ((self.net(x) - 3 * x) ** 2).mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return {"loss": loss.item()}

    def evaluate(self):
        score = self.scores.pop(0) if self.scores else -abs(self.net.weight.item() - 3)
        return {"weight": self.net.weight.item(), "score": score}

    def export(self, folder):
        (folder / "w.json").write_text(json.dumps(self.net.weight.item()))
        self.exported.append(self.net.weight.item())


def quiet(**kw):
    return loop.LoopOptions(**{"checkpoint_every": 1, "log_every": 1, **kw})


def test_a_resumed_run_ends_where_an_unbroken_one_does(tmp_path):
    whole = LineTask()
    loop.train(whole, quiet(out=str(tmp_path / "a"), steps=6), log=lambda *_: None, progress=False)
    first = LineTask()
    loop.train(first, quiet(out=str(tmp_path / "b"), steps=3), log=lambda *_: None, progress=False)
    second, lines = LineTask(), []
    loop.train(second, quiet(out=str(tmp_path / "b"), steps=6), log=lines.append, progress=False)
    assert lines[0] == f"resumed {tmp_path / 'b'} at step 3"
    assert second.net.weight.item() == pytest.approx(whole.net.weight.item(), abs=1e-7)
    assert loop.checkpoint_step(tmp_path / "b") == 6
    assert whole.net.weight.item() != 0.0  # it trained


def test_resuming_with_other_sizes_is_a_user_error(tmp_path):
    loop.train(LineTask(width=1), quiet(out=str(tmp_path), steps=1), log=lambda *_: None, progress=False)
    with pytest.raises(TrainingError, match="width=1 \\(now 2\\)") as error:
        loop.train(LineTask(width=2), quiet(out=str(tmp_path), steps=2), log=lambda *_: None, progress=False)
    assert isinstance(error.value, UserError)


def test_init_applies_only_to_a_fresh_run_folder(tmp_path):
    task = LineTask()
    loop.train(task, quiet(out=str(tmp_path), steps=1, init="5", eval_every=0), log=lambda *_: None, progress=False)
    assert 4.0 < task.net.weight.item() < 5.0  # started at 5, one Adam step of 0.1 towards 3
    again = LineTask()
    loop.train(again, quiet(out=str(tmp_path), steps=2, init="-7"), log=lambda *_: None, progress=False)
    assert again.net.weight.item() > 3.5  # resumed from the checkpoint; --init ignored


def test_best_weights_are_exported_only_when_the_score_improves(tmp_path):
    task = LineTask(scores=[0.5, 0.2, 0.9])
    loop.train(task, quiet(out=str(tmp_path), steps=3, eval_every=1), log=lambda *_: None, progress=False)
    history = loop.read_history(tmp_path)
    assert [row["step"] for row in history] == [1, 2, 3]
    assert [row["images"] for row in history] == [4, 8, 12]
    assert len(task.exported) == 2  # steps 1 and 3, not 2
    best = json.loads((tmp_path / "best.json").read_text())
    assert best["step"] == 3 and best["score"] == 0.9
    assert json.loads((tmp_path / "best" / "w.json").read_text()) == task.exported[-1]


def test_lr_factor_warms_up_then_decays_to_zero():
    factors = [loop.lr_factor(s, 100) for s in range(100)]
    assert factors[0] < factors[4] == 1.0 and factors[-1] < 0.01
    assert all(a >= b for a, b in zip(factors[5:], factors[6:], strict=False))


def test_precision_auto_follows_the_cpu(monkeypatch):
    monkeypatch.setattr(loop, "cpu_has_bf16", lambda: True)
    assert loop.resolve_precision("auto") == "bf16"
    monkeypatch.setattr(loop, "cpu_has_bf16", lambda: False)
    assert loop.resolve_precision("auto") == "fp32"
    assert loop.resolve_precision("bf16") == "bf16"
    with pytest.raises(TrainingError, match="auto, bf16 or fp32"):
        loop.resolve_precision("fp8")


def test_an_optimiser_resumed_from_an_unfused_checkpoint_stays_fused_and_goes_on_where_it_stopped():
    def adam(weight, **kw):
        return torch.optim.Adam([weight], lr=0.1, **kw)

    def step(optimizer, weight, k):
        weight.grad = torch.full_like(weight, float(k))
        optimizer.step()

    w = torch.nn.Parameter(torch.zeros(3))
    old = adam(w, foreach=True)
    for k in (1, 2):
        step(old, w, k)
    tensors, groups = optimizer_state({"adam": old})
    groups = json.loads(json.dumps(groups))  # as the checkpoint's JSON holds them
    resumed_w = torch.nn.Parameter(w.detach().clone())
    resumed = adam(resumed_w, fused=True)
    load_optimizers({"adam": resumed}, tensors, groups)
    assert resumed.param_groups[0]["fused"] is True and resumed.param_groups[0]["foreach"] is None
    step(old, w, 3)
    step(resumed, resumed_w, 3)
    assert torch.allclose(resumed_w, w, atol=1e-6)
    assert float(resumed.state[resumed_w]["step"]) == 3

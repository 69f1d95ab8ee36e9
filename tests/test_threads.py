"""The product's one thread policy: every framework's pool sized together, NUMBPIE_THREADS overrides."""

import os
import sys
import types

import faiss
import pytest
import torch
from threadpoolctl import threadpool_info

from numbpie.app import threads
from numbpie.errors import OptionError


@pytest.fixture
def policy(monkeypatch):
    """Runs the policy from scratch and puts the pools back as they were afterwards."""
    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "_applied", None)
    yield threads
    threads._applied = None
    threads.configure(before)


def test_numbpie_threads_sizes_torch_faiss_and_blas_together(policy, monkeypatch):
    monkeypatch.setenv("NUMBPIE_THREADS", "1")
    assert policy.configure() == 1
    assert torch.get_num_threads() == 1 and faiss.omp_get_max_threads() == 1
    assert {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"} == {1}


def test_without_the_override_every_usable_core_is_used(policy, monkeypatch):
    monkeypatch.delenv("NUMBPIE_THREADS", raising=False)
    assert policy.thread_count() == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5"])
def test_a_bad_override_is_one_clear_sentence(policy, monkeypatch, value):
    monkeypatch.setenv("NUMBPIE_THREADS", value)
    with pytest.raises(OptionError, match="NUMBPIE_THREADS must be a whole number"):
        policy.configure()


def test_numbpie_index_applies_the_policy_before_it_loads_the_embedder(monkeypatch, tmp_path, capsys):
    from numbpie import cli
    from numbpie.errors import WeightsError

    calls = []
    monkeypatch.setattr(cli.threads, "configure", lambda: calls.append("threads"))

    def load(name, precision=None):
        calls.append("embedder")
        raise WeightsError("stop here")

    monkeypatch.setattr(cli.embedders, "load", load)
    assert cli.main(["index", str(tmp_path), "--catalog", str(tmp_path / "catalog")]) == 2
    assert calls == ["threads", "embedder"]


def test_tensorflow_runs_the_detector_on_one_thread_whatever_the_pool(policy, monkeypatch):
    """Sized through its environment before it is imported, through tf.config after."""
    monkeypatch.setenv("TF_NUM_INTRAOP_THREADS", "")
    monkeypatch.setenv("TF_NUM_INTEROP_THREADS", "")
    monkeypatch.delitem(sys.modules, "tensorflow", raising=False)
    assert policy.configure(2) == 2 and torch.get_num_threads() == 2
    assert (os.environ["TF_NUM_INTRAOP_THREADS"], os.environ["TF_NUM_INTEROP_THREADS"]) == ("1", "1")

    calls = {}
    threading = types.SimpleNamespace(set_intra_op_parallelism_threads=lambda n: calls.update(intra=n),
                                      set_inter_op_parallelism_threads=lambda n: calls.update(inter=n))
    monkeypatch.setitem(sys.modules, "tensorflow", types.SimpleNamespace(config=types.SimpleNamespace(
        threading=threading)))
    policy._applied = None
    policy.configure(2)
    assert calls == {"intra": policy.TF_THREADS, "inter": 1} and policy.TF_THREADS == 1

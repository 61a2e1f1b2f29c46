"""The recipe base's validation buffer: every rank's items gathered once, in item order, ragged items whole."""

import types

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from radlab.core.engine.recipe import ValidationBuffer


def _module(world_size):
    return types.SimpleNamespace(_trainer=types.SimpleNamespace(world_size=world_size))


def test_one_process_gets_its_own_items_sorted_by_index_and_the_buffer_empties():
    buffer = ValidationBuffer()
    buffer.add(torch.tensor([2, 0]), probs=torch.tensor([0.2, 0.0]), boxes=[np.zeros((2, 4)), np.zeros((0, 4))])
    buffer.add(np.array([1]), probs=np.array([0.1]), boxes=[np.ones((1, 4))])
    found = buffer.gather(_module(1))
    assert found.index.tolist() == [0, 1, 2] and np.allclose(found["probs"], [0.0, 0.1, 0.2])
    assert [len(b) for b in found["boxes"]] == [0, 1, 2]  # ragged items stay whole
    assert len(buffer.gather(_module(1))) == 0


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16, torch.float32])
def test_mixed_precision_values_are_kept_as_float32_and_indices_as_integers(dtype):
    buffer = ValidationBuffer()
    buffer.add(torch.tensor([1, 0]), logits=torch.tensor([[0.5, -1.0], [2.0, 0.25]], dtype=dtype))
    found = buffer.gather(_module(1))
    assert found["logits"].dtype == np.float32 and found.index.dtype.kind == "i"
    assert found["logits"].tolist() == [[2.0, 0.25], [0.5, -1.0]]  # exact in every one of the three types


def _rank(rank, port, results):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    # DistributedSampler shards 5 items over 2 ranks as [0, 2, 4] and [1, 3, 0]: item 0 repeats as padding.
    shard = np.array([[0, 2, 4], [1, 3, 0]][rank])
    buffer = ValidationBuffer()
    buffer.add(shard, values=shard * 10.0, rank=[rank] * len(shard))
    found = buffer.gather(_module(2))
    results[rank] = (found.index.tolist(), found["values"].tolist(), found["rank"].tolist())
    dist.destroy_process_group()


def test_two_gloo_processes_gather_the_whole_split_once():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with mp.Manager() as manager:
        results = manager.dict()
        mp.spawn(_rank, args=(port, results), nprocs=2, join=True)
        for rank in (0, 1):
            assert results[rank] == ([0, 1, 2, 3, 4], [0.0, 10.0, 20.0, 30.0, 40.0], [0, 1, 0, 1, 0])

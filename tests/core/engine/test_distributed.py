import types

import numpy as np
import torch.distributed as dist
import torch.multiprocessing as mp

from radlab.core.engine.distributed import gather_by_index, gather_dict


def _module(world_size):
    return types.SimpleNamespace(_trainer=types.SimpleNamespace(world_size=world_size))


def test_one_process_returns_its_own_results_sorted_by_index():
    index, values = gather_by_index(_module(1), np.array([2, 0, 1]), np.array([20.0, 0.0, 10.0]))
    assert index.tolist() == [0, 1, 2] and values.tolist() == [0.0, 10.0, 20.0]
    assert gather_dict(_module(1), {3: "x"}) == {3: "x"}


def _rank(rank, port, results):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    # DistributedSampler shards 5 items over 2 ranks as [0, 2, 4] and [1, 3, 0]: item 0 repeats as padding.
    shard = np.array([[0, 2, 4], [1, 3, 0]][rank])
    index, values = gather_by_index(_module(2), shard, shard * 10.0)
    found = gather_dict(_module(2), {int(i): rank for i in shard})
    results[rank] = (index.tolist(), values.tolist(), sorted(found))
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
            assert results[rank] == ([0, 1, 2, 3, 4], [0.0, 10.0, 20.0, 30.0, 40.0], [0, 1, 2, 3, 4])

import pytest

from radlab.core.engine.scaling import scaling_overrides


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, []),
        ({"devices": "8", "strategy": "ddp"}, ["train.devices=8", "train.strategy=ddp"]),
        ({"devices": "0,1", "num_nodes": 2}, ["train.devices=0,1", "train.num_nodes=2"]),
        ({"accelerator": "cpu", "section": "sequence"}, ["sequence.accelerator=cpu"]),
    ],
)
def test_launch_flags_become_overrides_of_the_engine_section(kwargs, expected):
    assert scaling_overrides(**kwargs) == expected


def test_overrides_reach_the_validated_config():
    from radlab.core.task import get_task

    config = get_task("mura").load_config("cpu-small", scaling_overrides("0,1", "ddp", 2, "gpu"))
    assert (config.train.devices, config.train.strategy, config.train.num_nodes, config.train.accelerator) == (
        "0,1",
        "ddp",
        2,
        "gpu",
    )


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({}, (1, 1, False)),
        ({"devices": 2, "strategy": "ddp", "sync_batchnorm": True}, (2, 1, True)),
        ({"devices": 1, "num_nodes": 2, "strategy": "ddp"}, (1, 2, False)),
    ],
)
def test_the_trainer_gets_the_engine_settings(tmp_path, settings, expected):
    from radlab.core.engine.config import EngineConfig
    from radlab.core.engine.run_dir import RunDir
    from radlab.core.engine.trainer import build_trainer

    engine = EngineConfig(accelerator="cpu", progress="quiet", **settings)
    trainer = build_trainer(engine, RunDir(tmp_path), monitor="val/loss", mode="min")
    synced = trainer._accelerator_connector._layer_sync is not None  # Lightning's SyncBatchNorm converter
    assert (len(trainer.device_ids), trainer.num_nodes, synced) == expected

import torch

from radlab.core.task import get_task
from radlab.core.transforms import VolumeTransform
from radlab.tasks.mrnet.data import MRNetDataset, collate_exams
from radlab.tasks.mrnet.model import build_unit_model, units_for

load_mrnet_config = get_task("mrnet").load_config


def test_paper_layout_is_nine_networks_per_plane_layout_three():
    assert [u.name for u in units_for(load_mrnet_config("paper"))][:3] == [
        "abnormal-axial",
        "acl-axial",
        "meniscus-axial",
    ]
    assert len(units_for(load_mrnet_config("paper"))) == 9
    assert [u.name for u in units_for(load_mrnet_config("per-plane"))] == ["axial", "coronal", "sagittal"]
    subset = load_mrnet_config("paper", ["train.planes=[sagittal]", "train.tasks=[acl, meniscus]"])
    assert [u.name for u in units_for(subset)] == ["acl-sagittal", "meniscus-sagittal"]


def test_packed_exams_give_the_same_logits_as_one_at_a_time(tiny_mrnet):
    config = load_mrnet_config("cpu-small")
    unit = units_for(config)[2]
    model = build_unit_model(config, unit).eval()
    dataset = MRNetDataset(tiny_mrnet, "valid", VolumeTransform(32), planes=(unit.plane,))
    items = [dataset[i] for i in range(3)]
    assert len({len(item["series"][unit.plane]) for item in items}) > 1  # variable slice counts packed together
    packed = collate_exams(items)["planes"][unit.plane]
    with torch.no_grad():
        together = model(packed["slices"], packed["lengths"])
        alone = torch.cat([model(i["series"][unit.plane], torch.tensor([len(i["series"][unit.plane])])) for i in items])
    assert torch.allclose(together, alone, atol=1e-5)


def test_an_unreadable_series_is_flagged_not_raised(tiny_mrnet, tmp_path):
    dataset = MRNetDataset(tiny_mrnet, "valid", VolumeTransform(32), planes=("axial",))
    dataset.paths["axial"][0] = tmp_path / "missing.npy"
    item = dataset[0]
    assert "missing.npy: file not found" in item["errors"]["axial"]
    batch = collate_exams([item, dataset[1]])
    assert batch["planes"]["axial"]["readable"].tolist() == [False, True]

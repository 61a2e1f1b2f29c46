import pickle

import pytest
import torch

from radlab.core.errors import RadlabConfigError, RadlabDataError, RadlabError
from radlab.core.models import ImageClassifier, create_backbone, load_weights, save_weights


def test_creates_a_timm_backbone_with_the_requested_outputs():
    model = create_backbone("test_resnet", num_classes=1)
    assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 1)


def test_unknown_backbone_is_a_config_error():
    with pytest.raises(RadlabConfigError, match="unknown backbone 'resnet_nope'"):
        create_backbone("resnet_nope", num_classes=1)


def test_pretrained_weights_from_a_local_safetensors_file(tmp_path):
    source = create_backbone("test_resnet", num_classes=10)
    path = tmp_path / "imagenet.safetensors"
    save_weights(path, source.state_dict())
    model = create_backbone("test_resnet", num_classes=1, weights_file=path)
    stem = next(k for k in source.state_dict() if k.endswith("weight"))
    assert torch.equal(model.state_dict()[stem], source.state_dict()[stem])
    assert model.get_classifier().out_features == 1


def test_pickled_weights_are_refused_unless_trusted(tmp_path):
    path = tmp_path / "weights.pth"
    torch.save(create_backbone("test_resnet", num_classes=1).state_dict(), path)
    with pytest.raises(RadlabDataError, match="pickle"):
        create_backbone("test_resnet", num_classes=1, weights_file=path)
    assert create_backbone("test_resnet", num_classes=1, weights_file=path, trust_pickle=True) is not None


def test_missing_hub_weights_give_a_hint(monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(RadlabError, match=r"model\.weights_file"):
        create_backbone("resnet10t", num_classes=1, pretrained=True)


def test_weights_round_trip_and_pickle_refusal(tmp_path):
    state = {"a": torch.arange(4.0), "b": torch.ones(2, 2, dtype=torch.int64)}
    save_weights(tmp_path / "w.safetensors", state, {"task": "x"})
    loaded = load_weights(tmp_path / "w.safetensors")
    assert torch.equal(loaded["a"], state["a"]) and torch.equal(loaded["b"], state["b"])
    (tmp_path / "w.pt").write_bytes(pickle.dumps(state))
    with pytest.raises(RadlabDataError, match="refusing"):
        load_weights(tmp_path / "w.pt")


def test_classifier_normalises_raw_pixels_and_repeats_gray():
    backbone = torch.nn.Flatten()
    model = ImageClassifier(backbone, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    out = model(torch.full((1, 1, 1, 1), 255, dtype=torch.uint8))
    assert out.tolist() == [[2.0, 2.0, 2.0]]  # (1.0 - 0.5) / 0.25 in each of the 3 channels


@pytest.mark.parametrize(("name", "features"), [("alexnet", 256), ("resnet18", 512), ("test_resnet", 96)])
def test_feature_extractors_from_timm_or_torchvision(name, features):
    from radlab.core.models import create_feature_extractor

    model = create_feature_extractor(name)
    assert model.num_features == features
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, features)


def test_torchvision_weights_from_a_local_file(tmp_path):
    import torchvision

    from radlab.core.models import create_feature_extractor

    source = torchvision.models.alexnet()
    save_weights(tmp_path / "alexnet.safetensors", source.state_dict())
    model = create_feature_extractor("alexnet", weights_file=tmp_path / "alexnet.safetensors")
    assert torch.equal(model.trunk[0].weight, source.features[0].weight)


def test_unknown_feature_extractor():
    from radlab.core.models import create_feature_extractor

    with pytest.raises(RadlabConfigError, match="unknown backbone"):
        create_feature_extractor("alexnet_nope")

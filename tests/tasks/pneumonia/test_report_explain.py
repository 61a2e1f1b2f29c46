"""Pneumonia's report and explain: validation detections kept, boxes drawn on the original image."""

from __future__ import annotations

import json

import numpy as np

from radlab.core.engine.run_dir import RunDir
from radlab.core.io.dicom import read_dicom_image
from radlab.tasks.pneumonia.views import explain, sections


def test_validation_detections_hold_every_validation_image(tiny_pneumonia_run):
    split = json.loads((tiny_pneumonia_run / "split.json").read_text())
    detections = json.loads((tiny_pneumonia_run / "valid_detections.json").read_text())
    assert sorted(d["input"].rsplit("/", 1)[-1][:-4] for d in detections) == sorted(split["valid"])
    for item in detections:
        assert len(item["boxes"]) == len(item["scores"])
        assert all(len(box) == 4 for box in item["boxes"] + item["truth"])


def test_sections_hold_the_sweep_and_the_box_gallery(tiny_pneumonia_run):
    metrics = json.loads((tiny_pneumonia_run / "metrics.json").read_text())
    titles = [section.title for section in sections(RunDir(tiny_pneumonia_run), metrics, None)]
    assert titles == ["mAP against score threshold", "Predicted (red) against true (green) boxes, validation"]


def test_explain_draws_the_predicted_boxes_on_the_original(tiny_pneumonia, tiny_pneumonia_run, monkeypatch):
    path = sorted((tiny_pneumonia / "stage_2_test_images").glob("*.dcm"))[0]
    from radlab.tasks.pneumonia import views as module

    box = np.array([[10.0, 20.0, 30.0, 40.0]])
    monkeypatch.setattr(module.PneumoniaExplainer, "detect", lambda self, pixels: (box, np.array([0.8]), 0.5))
    (item,) = explain(path, tiny_pneumonia_run)
    original = read_dicom_image(path)
    assert item.image.shape == (*original.shape, 3)
    assert tuple(item.image[20, 25]) == module.PREDICTED  # the top edge of x 10..40, y 20..60
    assert item.details["boxes_xywh"] == box.tolist() and item.details["scores"] == [0.8]


def test_detect_returns_boxes_inside_the_image(tiny_pneumonia, tiny_pneumonia_run):
    from radlab.tasks.pneumonia.views import PneumoniaExplainer

    path = sorted((tiny_pneumonia / "stage_2_test_images").glob("*.dcm"))[0]
    pixels = read_dicom_image(path)
    boxes, scores, weight = PneumoniaExplainer(tiny_pneumonia_run).detect(pixels)
    assert len(boxes) == len(scores) and 0.0 <= weight <= 1.1
    assert np.all(boxes[:, :2] >= -1) and np.all(boxes[:, 0] + boxes[:, 2] <= pixels.shape[1] + 1)

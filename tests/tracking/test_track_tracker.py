import numpy as np
import torch

import kpr
from kpr.pose import Person
from kpr.predictor import KPRPredictor
from kpr.tracking.config import TrackerConfig
from kpr.tracking.tracker import KPRTracker

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)
LEFT, RIGHT = (10, 10, 50, 90), (140, 10, 180, 90)


def _ids(tracked):
    return [t.track_id for t in tracked]


def test_ids_follow_appearance_not_position(colour_predictor, scene):
    tracker = KPRTracker(colour_predictor)
    assert _ids(tracker.update(*scene([(RED, LEFT), (GREEN, RIGHT)]))) == [1, 2]
    swapped = tracker.update(*scene([(GREEN, LEFT), (RED, RIGHT)]))
    assert _ids(swapped) == [2, 1]
    assert swapped[0].distance is not None and swapped[0].distance < 1e-6


def test_new_appearance_starts_a_track_and_one_embed_call_per_frame(colour_predictor, scene):
    tracker = KPRTracker(colour_predictor)
    tracker.update(*scene([(RED, LEFT)]))
    out = tracker.update(*scene([(RED, LEFT), (BLUE, RIGHT)]))
    assert _ids(out) == [1, 2]
    assert out[1].distance is None
    assert [c["n"] for c in colour_predictor.calls] == [1, 2]


def test_max_age(colour_predictor, scene):
    tracker = KPRTracker(colour_predictor, TrackerConfig(max_age=2))
    tracker.update(*scene([(RED, LEFT)]))
    for _ in range(2):
        assert tracker.update(np.zeros((100, 200, 3), np.uint8), []) == []
    assert _ids(tracker.update(*scene([(RED, LEFT)]))) == [1]  # after 2 missed frames: kept
    for _ in range(3):
        tracker.update(np.zeros((100, 200, 3), np.uint8), [])
    assert _ids(tracker.update(*scene([(RED, LEFT)]))) == [2]  # after 3: a new track
    assert tracker.started == 2


def test_min_confidence_and_iou_gate(colour_predictor, scene):
    frame, people = scene([(RED, LEFT), (GREEN, RIGHT)])
    weak = [people[0], Person(people[1].keypoints, people[1].box, 0.1)]
    tracker = KPRTracker(colour_predictor, TrackerConfig(min_confidence=0.5))
    out = tracker.update(frame, weak)
    assert [t.detection for t in out] == [0]
    gated = KPRTracker(colour_predictor, TrackerConfig(iou_gate=0.3))
    gated.update(*scene([(RED, LEFT)]))
    assert _ids(gated.update(*scene([(RED, RIGHT)]))) == [2]  # same look, but no overlap


def test_prompts_are_own_keypoints_and_others_inside_the_box(colour_predictor, scene):
    frame = np.zeros((100, 200, 3), np.uint8)
    a_box, b_box, c_box = (10, 10, 90, 90), (60, 20, 120, 90), (150, 10, 190, 90)
    b_kps = np.zeros((17, 3))
    b_kps[:3] = [[70, 30, 1], [80, 40, 1], [110, 50, 1]]  # two inside A's box, one outside
    people = [
        Person(np.tile([[20, 20, 1.0]], (17, 1)), a_box, 1.0),
        Person(b_kps, b_box, 1.0),
        Person(np.zeros((17, 3)), c_box, 1.0),  # no keypoints: empty prompt
    ]
    KPRTracker(colour_predictor).update(frame, people)
    call = colour_predictor.calls[0]
    np.testing.assert_allclose(call["keypoints"][0][:, :2], np.full((17, 2), 10.0))  # crop coords
    negatives = call["negatives"][0]
    assert negatives.shape == (1, 17, 3)
    np.testing.assert_allclose(negatives[0, :3], [[60, 20, 1], [70, 30, 1], [0, 0, 0]])
    assert call["keypoints"][2] is None and call["negatives"][2] is None
    KPRTracker(colour_predictor, TrackerConfig(prompts=False)).update(frame, people)
    assert colour_predictor.calls[1]["keypoints"] is None


def test_real_tiny_model_changes_with_prompts(scene):
    torch.manual_seed(0)
    model = kpr.create_model("kpr_tiny_128x64")
    for p in model.prompt_encoder.parameters():
        torch.nn.init.normal_(p, std=0.5)
    predictor = KPRPredictor(model, device="cpu")
    frame, people = scene([(RED, LEFT), (GREEN, (30, 10, 80, 90))])
    with_prompts = KPRTracker(predictor).embed_people(frame, people)
    without = KPRTracker(predictor, TrackerConfig(prompts=False)).embed_people(frame, people)
    assert with_prompts.embeddings.shape == (
        2,
        1 + model.config.num_parts,
        model.config.embedding_dim,
    )
    assert with_prompts.prompted.tolist() == [True, True]
    assert without.prompted.tolist() == [False, False]
    assert (with_prompts.embeddings - without.embeddings).abs().max() > 1e-3

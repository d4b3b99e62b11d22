"""OpenCV's HOG + linear SVM people detector: boxes only, no extra dependency, loose boxes."""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray

from kpr.imaging import to_rgb_array


class HOGPersonDetector:
    """Person boxes from ``cv2.HOGDescriptor_getDefaultPeopleDetector`` (Dalal–Triggs).

    It finds upright, mostly unoccluded people at least 64×128 px (smaller images are upscaled
    so the window fits). ``score`` is the raw SVM margin, not a probability. Overlapping windows
    are merged by non-maximum suppression at ``nms_iou``.

    Parameters
    ----------
    min_score : float
        Boxes with a lower SVM margin are dropped.
    nms_iou : float
    scale : float
        Image pyramid step of ``detectMultiScale``.
    """

    _WINDOW = (64, 128)

    def __init__(self, min_score: float = 0.3, nms_iou: float = 0.4, scale: float = 1.05) -> None:
        self.min_score = min_score
        self.nms_iou = nms_iou
        self.scale = scale
        self._hog = cv2.HOGDescriptor()
        self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())

    def detect(self, image: NDArray[np.uint8]) -> NDArray[np.float64]:
        """Boxes [N, 5] of (x0, y0, x1, y1, score) in the image's pixels, best first."""
        rgb = to_rgb_array(image)
        h, w = rgb.shape[:2]
        up = max(1.0, self._WINDOW[0] / w, self._WINDOW[1] / h)
        if up > 1.0:
            rgb = cv2.resize(
                rgb, (int(np.ceil(w * up)), int(np.ceil(h * up))), interpolation=cv2.INTER_LINEAR
            )
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        rects, weights = self._hog.detectMultiScale(
            grey, winStride=(8, 8), padding=(8, 8), scale=self.scale
        )
        if len(rects) == 0:
            return np.zeros((0, 5))
        scores = np.asarray(weights, dtype=np.float64).reshape(-1)
        keep = cv2.dnn.NMSBoxes(
            [list(map(int, r)) for r in rects], scores.tolist(), self.min_score, self.nms_iou
        )
        keep = np.asarray(keep, dtype=int).reshape(-1)
        boxes = np.asarray(rects, dtype=np.float64)[keep] / up
        out = np.column_stack([boxes[:, :2], boxes[:, :2] + boxes[:, 2:], scores[keep]])
        out[:, [0, 2]] = out[:, [0, 2]].clip(0, w)
        out[:, [1, 3]] = out[:, [1, 3]].clip(0, h)
        return out[np.argsort(-out[:, 4], kind="stable")]

"""Reading the words written in pictures: PP-OCR's detector and recogniser (rapidocr's ONNX models).

rapidocr's own call is made for scanned pages: it runs the detector on the whole picture at up to 2000 pixels
a side, which for a 12-megapixel photo is a 2016×1504 input and over a second of one CPU core, even when the photo
holds no text at all, as most photos do. TextReader composes rapidocr's pieces differently:

1. a *probe*: the detector on a small copy of the picture (longer side `probe_side`). Where its text probability
   stays below `probe_threshold` everywhere, the picture holds no text, and reading it is done;
2. the detector again, at full sensitivity (the scale rapidocr itself would use) but only on the *regions* where
   the probe saw any hint of text, with a margin; the whole picture only when those regions cover most of it;
3. every text line found, cut out of the picture (the recogniser needs the detail), turned upright by the angle
   classifier, and recognised in batches: the lines of all pictures of one `read` call together, sorted by
   width so that a batch pads little.

The models ship inside rapidocr's wheel and are loaded from there by path, so nothing is ever downloaded.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import ModelUnavailable

log = logging.getLogger(__name__)

#: The model files inside rapidocr's wheel (rapidocr 3.10: PP-OCRv6 small detector and recogniser, the PP-OCR
#: mobile angle classifier). Loading them by path keeps rapidocr from ever trying to download a model.
DETECTOR_FILE = "PP-OCRv6_det_small.onnx"
RECOGNISER_FILE = "PP-OCRv6_rec_small.onnx"
CLASSIFIER_FILE = "ch_ppocr_mobile_v2.0_cls_mobile.onnx"


@dataclass(frozen=True)
class TextLine:
    """One line of text read in a picture.

    `box` is its four corners (top-left, top-right, bottom-right, bottom-left as the text reads) in the pixel
    coordinates of the full-size picture: the array passed to `TextReader.read`, or the photo file as a viewer
    shows it (EXIF orientation applied) when the pool decoded it. `confidence` is the recogniser's, in 0..1.
    """

    text: str
    box: tuple[tuple[float, float], ...]
    confidence: float


@dataclass(frozen=True)
class ReadSettings:
    """How TextReader looks; the defaults are measured (docs/benchmarks.md, `glimpse bench read`)."""

    #: Shorter side a photo file is decoded to for reading: 1500 is the scale rapidocr reads a 12-megapixel
    #: photo at, and JPEG draft mode decodes a 4032×3024 photo at half size for almost nothing.
    photo_side: int = 1500
    #: Longer side of the probe's detector input.
    probe_side: int = 640
    #: A picture whose text probability stays below this everywhere in the probe holds no text.
    probe_threshold: float = 0.3
    #: Where the probe's text probability exceeds this, the detector looks closely.
    region_threshold: float = 0.05
    #: Margin around each such region, in the probe's pixels.
    region_margin: int = 12
    #: Regions covering more than this share of the picture: the detector looks at all of it.
    max_region_share: float = 0.5
    #: Longest side of the detector's view of a picture (a larger one is detected shrunk to this).
    detect_side: int = 2048
    #: Shortest side of the detector's view: a smaller picture is enlarged to it, as rapidocr does.
    min_detect_side: int = 736
    #: Lines the recogniser is less sure of than this are dropped (rapidocr's default).
    min_confidence: float = 0.5
    #: Turn upside-down lines right way up (PP-OCR's angle classifier) before recognising them.
    upright_lines: bool = True
    #: Lines recognised in one batch.
    batch_lines: int = 24
    #: onnxruntime's threads per model; one keeps the reading pass to one core, whatever the machine.
    threads: int = 1


class TextReader:
    """Loads the OCR models once; `read` reads RGB pictures (H, W, 3) uint8. Not thread-safe: one per thread."""

    def __init__(self, settings: ReadSettings | None = None) -> None:
        self.settings = settings or ReadSettings()
        self._detector, self._classifier, self._recogniser = _load_models(self.settings)

    def read(self, pictures: Sequence[np.ndarray]) -> list[list[TextLine]]:
        """The lines of text in each picture, top to bottom; boxes in each picture's own pixel coordinates."""
        return self.read_scaled(pictures, [(1.0, 1.0)] * len(pictures))

    def read_scaled(
        self, pictures: Sequence[np.ndarray], scales: Sequence[tuple[float, float]]
    ) -> list[list[TextLine]]:
        """As `read`, with each picture's boxes multiplied by its (x, y) scale: a photo decoded smaller than
        its file reports its lines in the file's full-size coordinates."""
        import cv2

        crops: list[np.ndarray] = []
        owners: list[tuple[int, np.ndarray]] = []  # (picture index, box in that picture's coordinates)
        for index, picture in enumerate(pictures):
            _check(picture)
            if picture.shape[0] < 2 or picture.shape[1] < 2:
                continue  # nothing to read; the detector cannot take an empty input
            bgr = cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)  # PP-OCR's models were trained on OpenCV's BGR
            for box in self._detect(bgr):
                crops.append(_crop(bgr, box))
                owners.append((index, box))
        results: list[list[TextLine]] = [[] for _ in pictures]
        if not crops:
            return results
        for (index, box), (text, confidence) in zip(owners, self._recognise(crops), strict=True):
            text = text.strip()
            if not text or confidence < self.settings.min_confidence:
                continue
            sx, sy = scales[index]
            corners = tuple((round(float(x) * sx, 1), round(float(y) * sy, 1)) for x, y in box)
            results[index].append(TextLine(text=text, box=corners, confidence=round(float(confidence), 4)))
        return results

    def _detect(self, bgr: np.ndarray) -> list[np.ndarray]:
        """Boxes of the text lines (float32 4×2, in `bgr`'s coordinates), in reading order."""
        settings = self.settings
        height, width = bgr.shape[:2]
        # rapidocr's own scale: small pictures enlarged (text in them is small), none larger than detect_side.
        scale = max(1.0, settings.min_detect_side / min(height, width))
        scale = min(scale, settings.detect_side / max(height, width))
        found = []
        for x0, y0, x1, y1 in self._probe(bgr):
            boxes = self._detect_in(bgr[y0:y1, x0:x1], scale)
            if len(boxes):
                found.append(boxes + np.array([x0, y0], np.float32))
        if not found:
            return []
        return list(self._detector.sorted_boxes(np.concatenate(found)))

    def _probe(self, bgr: np.ndarray) -> list[tuple[int, int, int, int]]:
        """Where the detector should look closely, as (x0, y0, x1, y1) regions of `bgr`; none: no text."""
        import cv2

        settings = self.settings
        height, width = bgr.shape[:2]
        whole = [(0, 0, width, height)]
        if max(height, width) <= settings.probe_side * 1.5:
            return whole  # a small picture: looking at all of it costs little more than the probe would
        scale = settings.probe_side / max(height, width)
        probability = self._detector.session(_detector_input(bgr, scale))[0, 0]
        if float(probability.max()) < settings.probe_threshold:
            return []
        # Every hint of text, widened by the margin; nearby hints merge into one region.
        margin = 2 * settings.region_margin + 1
        hints = cv2.dilate(
            (probability > settings.region_threshold).astype(np.uint8), np.ones((margin, margin))
        )
        count, _, stats, _ = cv2.connectedComponentsWithStats(hints, connectivity=8)
        sx, sy = width / probability.shape[1], height / probability.shape[0]
        regions = _merged(
            [
                (
                    int(x * sx),
                    int(y * sy),
                    min(width, math.ceil((x + w) * sx)),
                    min(height, math.ceil((y + h) * sy)),
                )
                for x, y, w, h, _ in stats[1:count]
            ]
        )
        covered = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in regions)
        return whole if covered > settings.max_region_share * width * height else regions

    def _detect_in(self, bgr: np.ndarray, scale: float) -> np.ndarray:
        """Text line boxes (N, 4, 2) in `bgr`'s coordinates, the detector seeing it enlarged by `scale`."""
        if bgr.shape[0] < 2 or bgr.shape[1] < 2:
            return np.zeros((0, 4, 2), np.float32)
        probability = self._detector.session(_detector_input(bgr, scale))
        boxes, _ = self._detector.postprocess_op(probability, bgr.shape[:2])
        return np.asarray(boxes, np.float32).reshape(-1, 4, 2)

    def _recognise(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        from rapidocr.ch_ppocr_rec import TextRecInput

        if self._classifier is not None:
            crops = self._classifier(crops).img_list
        output = self._recogniser(TextRecInput(img=crops))
        return list(zip(output.txts, output.scores, strict=True))


def _merged(regions: list[tuple[int, int, int, int]]) -> list[tuple[int, int, int, int]]:
    """The regions, overlapping ones replaced by their common bounding box until none overlap."""
    regions = list(regions)
    merged = True
    while merged:
        merged = False
        for i in range(len(regions)):
            for j in range(i + 1, len(regions)):
                a, b = regions[i], regions[j]
                if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
                    regions[i] = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
                    del regions[j]
                    merged = True
                    break
            if merged:
                break
    return regions


def _check(picture: np.ndarray) -> None:
    if not isinstance(picture, np.ndarray) or picture.dtype != np.uint8 or picture.ndim != 3:
        raise TypeError("a picture to read must be a uint8 numpy array of shape (height, width, 3)")
    if picture.shape[2] != 3:
        raise TypeError(f"a picture to read must have 3 channels (RGB), not {picture.shape[2]}")


def _detector_input(bgr: np.ndarray, scale: float) -> np.ndarray:
    """The picture resized by about `scale`, both sides multiples of 32 as the network needs, normalised to
    -1..1 and laid out (1, 3, H, W)."""
    import cv2

    height, width = bgr.shape[:2]
    size = (max(32, round(width * scale / 32) * 32), max(32, round(height * scale / 32) * 32))
    # INTER_AREA averages the pixels a shrink drops; bilinear would alias small text into noise.
    small = cv2.resize(bgr, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    normalised = small.astype(np.float32) * (1 / 127.5) - 1.0
    return np.ascontiguousarray(normalised.transpose(2, 0, 1)[None])


def _crop(bgr: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The text line inside `box`, straightened (rapidocr's perspective crop)."""
    from rapidocr.utils.process_img import get_rotate_crop_image

    width = max(np.linalg.norm(box[0] - box[1]), np.linalg.norm(box[2] - box[3]))
    height = max(np.linalg.norm(box[0] - box[3]), np.linalg.norm(box[1] - box[2]))
    if width < 2 or height < 2:
        return np.zeros(
            (2, 2, 3), np.uint8
        )  # a degenerate box reads as nothing, it must not fail the picture
    return get_rotate_crop_image(bgr, box.copy())


def model_dir() -> Path:
    """The folder inside rapidocr's installed package that holds its shipped models."""
    import rapidocr

    return Path(rapidocr.__file__).resolve().parent / "models"


def _load_models(settings: ReadSettings):
    try:
        import cv2
        from rapidocr import RapidOCR
    except ImportError as error:
        raise ModelUnavailable(
            f"the text reader is not installed ({error.name} is missing); reinstall Glimpse"
        ) from None
    cv2.setNumThreads(1)  # resizing and cropping are small next to the models; more threads only contend
    folder = model_dir()
    files = {"Det": DETECTOR_FILE, "Rec": RECOGNISER_FILE, "Cls": CLASSIFIER_FILE}
    missing = [name for name in files.values() if not (folder / name).is_file()]
    if missing:
        raise ModelUnavailable(
            f"the text reader's model files are missing from {folder} ({', '.join(missing)}); reinstall Glimpse"
        )
    threads = max(1, int(settings.threads))
    params = {f"{part}.model_path": str(folder / name) for part, name in files.items()}
    params |= {
        "Global.log_level": "error",
        "EngineConfig.onnxruntime.intra_op_num_threads": threads,
        "EngineConfig.onnxruntime.inter_op_num_threads": 1,
        "Rec.rec_batch_num": max(1, int(settings.batch_lines)),
        "Cls.cls_batch_num": max(1, int(settings.batch_lines)),
    }
    try:
        ocr = RapidOCR(params=params)
        # rapidocr builds each stage's session from its own configuration on first use; these are its loaders.
        detector = ocr._load_det_model()
        recogniser = ocr._load_rec_model()
        classifier = ocr._load_cls_model() if settings.upright_lines else None
    except Exception as error:  # onnxruntime reports a broken model file as anything from RuntimeError on
        raise ModelUnavailable(
            f"the text reader's models could not be loaded ({type(error).__name__}: {error}); reinstall Glimpse"
        ) from None
    log.debug("text reader loaded from %s with %d thread(s)", folder, threads)
    return detector, classifier, recogniser

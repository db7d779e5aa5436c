"""Reading the words written in pictures: PP-OCR's detector and recogniser (rapidocr's ONNX models).

rapidocr's own call is made for scanned pages: it runs the detector on the whole picture at up to 2000 pixels
a side, which for a 12-megapixel photo is a 2016×1504 input and over a second of one CPU core, even when the photo
holds no text at all, as most photos do. TextReader composes rapidocr's pieces differently:

1. a *probe*: the detector on a small copy of the picture (longer side `probe_side`), with a lower box threshold
   than the detector's own. A picture in which it finds no box holds no text, and reading it is done;
2. the detector again, at full sensitivity (the scale rapidocr itself would use) but only on the *regions* of the
   probe's boxes, with a margin; on the whole picture only when those regions cover most of it;
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
    #: The probe's box threshold (mean text probability inside a box); lower than the detector's own 0.5, so
    #: that small text, a blur at the probe's scale, still counts.
    probe_box_threshold: float = 0.3
    #: Share of strong-edge pixels (Sobel |dx|+|dy| of the grey level over 200) a probe box needs. PP-OCRv6's
    #: detector also answers flat skies and walls, at the probe's scale, with big boxes: they have no edges.
    probe_min_edges: float = 0.02
    #: Margin around each box the probe found, in the probe's pixels: where the detector looks closely.
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
        from rapidocr.ch_ppocr_det.utils import DBPostProcess

        detector = self._detector.postprocess_op
        self._probe_boxes = DBPostProcess(
            thresh=detector.thresh,
            box_thresh=self.settings.probe_box_threshold,
            max_candidates=detector.max_candidates,
            unclip_ratio=detector.unclip_ratio,
            use_dilation=detector.dilation_kernel is not None,
            score_mode=detector.score_mode,
        )

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
        probability = self._detector.session(_detector_input(bgr, scale))
        boxes = _boxes(self._probe_boxes, probability, (height, width))
        if len(boxes) == 0:
            return []
        margin = settings.region_margin / scale
        grey = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        regions = []
        for box in boxes:
            x, y, w, h = cv2.boundingRect(box)
            if _edge_share(grey[y : y + h, x : x + w]) < settings.probe_min_edges:
                continue  # a flat patch of colour, not text
            regions.append(
                (
                    max(0, int(x - margin)),
                    max(0, int(y - margin)),
                    min(width, math.ceil(x + w + margin)),
                    min(height, math.ceil(y + h + margin)),
                )
            )
        if not regions:
            return []
        regions = _merged(regions)
        covered = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in regions)
        return whole if covered > settings.max_region_share * width * height else regions

    def _detect_in(self, bgr: np.ndarray, scale: float) -> np.ndarray:
        """Text line boxes (N, 4, 2) in `bgr`'s coordinates, the detector seeing it enlarged by `scale`."""
        if bgr.shape[0] < 2 or bgr.shape[1] < 2:
            return np.zeros((0, 4, 2), np.float32)
        probability = self._detector.session(_detector_input(bgr, scale))
        return _boxes(self._detector.postprocess_op, probability, bgr.shape[:2])

    def _recognise(self, crops: list[np.ndarray]) -> list[tuple[str, float]]:
        from rapidocr.ch_ppocr_rec import TextRecInput

        if self._classifier is not None:
            crops = self._classifier(crops).img_list
        output = self._recogniser(TextRecInput(img=crops))
        return list(zip(output.txts, output.scores, strict=True))


def _boxes(post, probability: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """rapidocr's DB post-processing (`post`, a DBPostProcess) of the detector's output, as boxes (N, 4, 2) in a
    picture of `shape`, without the specks.

    PP-OCRv6's detector answers a flat patch of colour (a clear sky, a wall) with a fine speckle around the
    binarisation threshold: thousands of blobs a few pixels wide, each of which rapidocr's Python loop measures and
    then drops for being under 3 pixels across (a flat 2000×1500 picture: seconds). They are dropped here first, in
    one pass; a blob whose bounding box is at most 3 pixels wide or high is always dropped by that loop too, so
    the boxes are the same (more of them, where rapidocr would have stopped at `max_candidates` blobs).
    """
    import cv2

    height, width = shape
    prediction = probability[0, 0]
    mask = (prediction > post.thresh).astype(np.uint8)
    if post.dilation_kernel is not None:
        mask = cv2.dilate(mask, post.dilation_kernel)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    speck = (stats[:, cv2.CC_STAT_WIDTH] <= 3) | (stats[:, cv2.CC_STAT_HEIGHT] <= 3)
    speck[0] = False  # the background
    if speck.any():
        mask[speck[labels]] = 0
    boxes, scores = post.boxes_from_bitmap(prediction, mask, width, height)
    boxes, _ = post.filter_det_res(boxes, scores, height, width)
    return np.asarray(boxes, np.float32).reshape(-1, 4, 2)


def _edge_share(grey: np.ndarray) -> float:
    """The share of a grey picture's pixels on a strong edge, as text strokes are and a sky is not."""
    import cv2

    if grey.shape[0] < 3 or grey.shape[1] < 3:
        return 0.0
    dx = cv2.Sobel(grey, cv2.CV_16S, 1, 0)
    dy = cv2.Sobel(grey, cv2.CV_16S, 0, 1)
    strong = (np.abs(dx.astype(np.int32)) + np.abs(dy.astype(np.int32))) > 200
    return float(strong.mean())


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

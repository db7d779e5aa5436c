"""Write the video `glimpse bench video` is measured on: 1080p30 H.264, a keyframe every 2 s, moving content.

.venv/bin/python benchmarks/make_test_video.py OUT.mp4 [SECONDS]
"""

import sys

import av
import numpy as np


def main(out: str, seconds: int = 60) -> None:
    width, height, fps = 1920, 1080, 30
    rng = np.random.default_rng(0)
    texture = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)
    with av.open(out, "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        # A keyframe every 2 s, as phones write them; no extra ones at scene cuts (there are none).
        stream.options = {"preset": "veryfast", "crf": "23", "g": str(2 * fps), "keyint_min": str(2 * fps)}
        for i in range(seconds * fps):
            shift = (i * 6) % width
            picture = np.roll(texture, shift, axis=1)
            picture[:, :, 0] = (picture[:, :, 0].astype(np.uint16) + i) % 256
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 60)

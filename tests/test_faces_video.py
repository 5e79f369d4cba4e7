"""Video frames in and out (PyAV), face boxes (Haar / LBP cascades), and the embedded paired tasks."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from deepfake_lab.data import DataError
from deepfake_lab.data.faces import (Box, carphone_clip, carphone_faces, carphone_path, crop_box, detect_faces,
                                     square_box, track_box)
from deepfake_lab.data.paired import CarphoneEdges2Face, PhotoColorization, canny_edges, make_task, pencil_sketch
from deepfake_lab.data.video import read_video, video_info, write_video


# --------------------------------------------------------------------------------------------
# Video
# --------------------------------------------------------------------------------------------
def test_carphone_clip_is_the_real_talking_head():
    clip = carphone_clip()
    assert clip.frames.shape == (120, 144, 176, 3) and clip.frames.dtype == np.uint8
    assert clip.fps == pytest.approx(30000 / 1001)
    assert clip.size == (176, 144) and len(clip) == 120
    assert not clip.frames.flags.writeable  # shared cache: read-only
    info = video_info(carphone_path())
    assert (info["width"], info["height"], info["frames"]) == (176, 144, 120)


def test_read_a_window_of_frames():
    clip = read_video(carphone_path(), max_frames=3, start=10)
    assert clip.frames.shape == (3, 144, 176, 3)
    assert np.array_equal(clip.frames, carphone_clip().frames[10:13])


def test_write_then_read_round_trip(tmp_path):
    t = np.linspace(0, 1, 8)[:, None, None, None]
    frames = (np.broadcast_to(t, (8, 32, 48, 3)) * 255).astype(np.uint8)  # a fade: easy to compress
    path = write_video(tmp_path / "fade.mp4", frames, fps=12.5)
    clip = read_video(path)
    assert clip.frames.shape == (8, 32, 48, 3) and clip.fps == pytest.approx(12.5)
    assert np.abs(clip.frames.astype(int) - frames).mean() < 3  # crf 18: visually lossless
    odd = write_video(tmp_path / "odd.mp4", np.zeros((2, 31, 45, 3), np.uint8), fps=25)
    assert read_video(odd).frames.shape == (2, 32, 46, 3)  # yuv420p needs even sizes: padded by one pixel


def test_bad_video_files_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match="no such video file"):
        read_video(tmp_path / "missing.mp4")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.mp4: empty file \(0 bytes\)"):
        read_video(tmp_path / "empty.mp4")
    (tmp_path / "junk.mp4").write_bytes(np.random.default_rng(0).bytes(4000))
    with pytest.raises(DataError, match=r"junk\.mp4: not a readable video"):
        read_video(tmp_path / "junk.mp4")
    data = carphone_path().read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 3])  # the index (moov) is at the end: unreadable
    with pytest.raises(DataError, match=r"cut\.mp4"):
        read_video(tmp_path / "cut.mp4")
    with pytest.raises(DataError, match="no frames after frame 500"):
        read_video(carphone_path(), start=500)
    with pytest.raises(DataError, match="frame 1 is 8x8, frame 0 is 16x16"):
        write_video(tmp_path / "x.mp4", [np.zeros((16, 16, 3), np.uint8), np.zeros((8, 8, 3), np.uint8)])


# --------------------------------------------------------------------------------------------
# Faces
# --------------------------------------------------------------------------------------------
def test_haar_and_lbp_find_the_speakers_face():
    frame = carphone_clip().frames[0]
    for method in ("haar", "lbp"):
        boxes = detect_faces(frame, method)
        assert boxes, method
        cx, cy = boxes[0].center
        assert 60 < cx < 110 and 40 < cy < 90 and 40 <= boxes[0].w <= 80, (method, boxes[0])
    assert detect_faces(np.full((144, 176, 3), 128, np.uint8)) == []
    with pytest.raises(ValueError, match="method"):
        detect_faces(frame, "dlib")


def test_one_box_for_the_whole_clip():
    crops, box = carphone_faces(64)
    assert crops.shape == (120, 64, 64, 3)
    assert box.w == box.h and 0 <= box.x and box.x + box.w <= 176 and 0 <= box.y and box.y + box.h <= 144
    with pytest.raises(DataError, match="no face found in 3 frame"):
        track_box(np.zeros((3, 64, 64, 3), np.uint8))


def test_square_box_stays_inside_the_image():
    assert square_box(Box(0, 0, 20, 10), 2.0, (100, 80)) == Box(0, 0, 40, 40)  # shifted, not shrunk
    assert square_box(Box(90, 70, 10, 10), 2.0, (100, 80)) == Box(80, 60, 20, 20)
    assert square_box(Box(10, 10, 60, 60), 3.0, (100, 80)).w == 80  # larger than the image: its short side
    with pytest.raises(DataError, match="not inside"):
        crop_box(np.zeros((10, 10, 3), np.uint8), Box(5, 5, 10, 10))


# --------------------------------------------------------------------------------------------
# The embedded paired tasks
# --------------------------------------------------------------------------------------------
def test_face_task_holds_out_later_frames():
    train = CarphoneEdges2Face("train", crop_size=64, load_size=72)
    test = CarphoneEdges2Face("test", crop_size=64)
    assert len(train) == 100 and len(test) == 20
    assert set(train.frames).isdisjoint(test.frames) and test.frames == list(range(100, 120))
    item = train[0]
    assert item["A"].shape == item["B"].shape == (3, 64, 64)
    A, B = test.stacked()
    assert A.shape == (20, 3, 64, 64)
    white = (A == 1.0).float().mean().item()
    assert 0.7 < white < 0.99  # thin black edges on white
    assert torch.equal(A[:, 0], A[:, 1])  # an edge map is gray
    with pytest.raises(DataError, match="split"):
        CarphoneEdges2Face("val")
    with pytest.raises(DataError, match="jitter=False"):
        train.stacked()


def test_sketches_and_colorization_task():
    rgb = np.zeros((32, 32, 3), np.uint8)
    rgb[8:24, 8:24] = 200
    edges = canny_edges(rgb)
    assert edges.shape == (32, 32, 3) and set(np.unique(edges)) == {0, 255}
    assert pencil_sketch(rgb).shape == (32, 32, 3)
    test = PhotoColorization("test", crop_size=64)
    item = test[0]
    assert torch.equal(item["A"][0], item["A"][2]) and not torch.equal(item["B"][0], item["B"][2])
    assert set(PhotoColorization.TRAIN).isdisjoint(PhotoColorization.TEST)
    with pytest.raises(DataError, match="task 'shoes'"):
        make_task("shoes")

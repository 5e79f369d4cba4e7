"""Lesson 4: image animation with the First Order Motion Model (Siarohin et al., NeurIPS 2019).

A still photo is made to move like the face in a driving video. The model, read in the paper's order:

* :mod:`.grids`: coordinate grids in [-1, 1], warping with ``grid_sample``, Gaussian heatmaps,
  anti-aliased downsampling (and the official code's numerical conventions);
* :mod:`.hourglass`: the encoder-decoder blocks both networks are made of;
* :mod:`.keypoints`: keypoints by soft-argmax of heatmaps, plus a Jacobian per keypoint (§3.1);
* :mod:`.dense_motion`: sparse motions near each keypoint, masks that blend them into one dense
  flow, and the occlusion map (§3.2);
* :mod:`.generator`: the occlusion-aware generator that warps encoder features (§3.3);
* :mod:`.equivariance`: random affine + thin-plate-spline warps and the equivariance losses (§3.4);
* :mod:`.model`: the configuration (official vox-256 defaults, a CPU ``demo`` preset), the losses
  and one training step on the shared loop;
* :mod:`.transfer`: relative/absolute keypoint transfer, adapt-scale, find-best-frame, ``animate``;
* :mod:`.evaluate`: the paper's self-reconstruction metric against the no-motion baseline;
* :mod:`.importer`: the demo weights and official ``vox-cpk.pth.tar`` checkpoints;
* :mod:`.media`: labelled MP4/GIF output with a "synthetic" metadata comment;

The small API the app and the notebook use::

    model = load_animation_model()                      # the demo weights (None), or a path
    frames = animate(model, photo, driving_frames)      # list of (S, S, 3) uint8
    parts = motion_details(model, photo, one_frame)     # keypoints, masks, flow, occlusion ...
"""
from .evaluate import ReconstructionScores, evaluate_carphone, evaluate_transfer, reconstruction_scores
from .importer import DEMO_WEIGHTS, load_animation_model, load_official_checkpoint, save_animation_model
from .media import read_video_metadata, write_labelled_video
from .model import (LOOP_PRESETS, OFFICIAL_PARAMETER_COUNTS, PRESETS, AnimationConfig, AnimationModel,
                    FirstOrderModel, build_networks, gpu_check_generator)
from .transfer import (animate, crop_driving, crop_source, draw_keypoints, flow_to_rgb, mask_to_rgb, motion_details,
                       normalize_kp)

__all__ = ["AnimationConfig", "AnimationModel", "FirstOrderModel", "PRESETS", "LOOP_PRESETS", "OFFICIAL_PARAMETER_COUNTS",
           "build_networks", "load_animation_model", "load_official_checkpoint", "save_animation_model", "DEMO_WEIGHTS",
           "animate", "motion_details", "normalize_kp", "crop_source", "crop_driving", "draw_keypoints", "flow_to_rgb",
           "mask_to_rgb", "reconstruction_scores", "evaluate_carphone", "evaluate_transfer", "ReconstructionScores",
           "write_labelled_video", "read_video_metadata", "gpu_check_generator"]

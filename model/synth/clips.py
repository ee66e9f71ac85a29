"""Rendering one clip of a scene: the speaker's mouth driven by a (T, K) articulation, frame by frame.

Order per frame: the scene (background, people, blinks) -> the speaker's mouth (mesh warp + inside of the
mouth) -> the condition's layers in front (occluders) -> the condition's whole-frame effects (shadow, low
light and noise, motion blur). Everything but the mouth step is the same for any articulation, so two
clips of one scene differ only inside the lower-face masks.
"""

from __future__ import annotations

import numpy as np

from model.synth.conditions import Effects
from model.synth.data import SynthClip
from model.synth.mouth import draw_interior
from model.synth.scene import Scene
from model.synth.warp import warp_region
from worker.engine.analysis.face_landmarks import KEPT
from worker.engine.analysis.masks import draw_mask, lower_face_polygon

_KEPT = list(KEPT)


def mouth_openness(landmarks: np.ndarray) -> np.ndarray:
    """Inner-lip gap over the outer-eye-corner distance, as FaceTrack.mouth_openness() measures it."""
    gap = np.linalg.norm(landmarks[..., 14, :] - landmarks[..., 13, :], axis=-1)
    scale = np.linalg.norm(landmarks[..., 263, :] - landmarks[..., 33, :], axis=-1)
    return (gap / np.maximum(scale, 1.0)).astype(np.float32)


def draw_engine_mask(mask: np.ndarray, landmarks: np.ndarray) -> None:
    """Draw the engine's lower-face mask for one face's 478 points (mapped to its kept subset first)."""
    polygon, sigma = lower_face_polygon(landmarks[_KEPT].astype(np.float32))
    draw_mask(mask, polygon, sigma)


def engine_mask(landmarks: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(size, np.float32)
    draw_engine_mask(mask, landmarks)
    return mask


def render_clips(
    scene: Scene, effects: Effects, takes: list[tuple[np.ndarray, np.ndarray]]
) -> list[SynthClip]:
    """One clip per (mouth (T, K), audio) take of one scene, which is drawn once per frame for all takes."""
    count = scene.count
    height, width = scene.size
    rig = scene.speaker.rig
    clips = []
    for mouth, audio in takes:
        clips.append(
            SynthClip(
                frames=np.empty((count, height, width, 3), np.uint8),
                audio=audio.astype(np.float32),
                frame_rate=scene.frame_rate,
                opening=np.empty(count, np.float32),
                mouth=mouth.astype(np.float32),
                landmarks=np.empty((count, 478, 2), np.float32),
                masks=np.empty((count, height, width), np.float32),
                occluder=np.zeros((count, height, width), bool) if effects.has_occluder else None,
                listener=np.zeros((count, height, width), bool) if effects.has_listener else None,
            )
        )
    for index in range(count):
        base = scene.draw(index)
        neutral = scene.place_speaker(rig.mesh, index)
        ring = scene.place_speaker(rig.ring, index)
        listener = effects.listener_pixels(index) if effects.has_listener else None
        for clip in clips:
            frame = clip.frames[index]  # drawn in place: no full-frame temporaries at 720p and up
            frame[:] = base
            articulated = rig.articulate(clip.mouth[index])
            moved = scene.speaker_mesh(articulated, index)  # this frame's blink too (outside the warp)
            warp_region(
                frame,
                np.concatenate([neutral[rig.warped], ring]),
                np.concatenate([scene.place_speaker(articulated[rig.warped], index), ring]),
                rig.triangles,
            )
            draw_interior(frame, moved, clip.mouth[index], scene.mouth_shade)
            covered = effects.front(frame, index)
            if clip.occluder is not None and covered is not None:
                clip.occluder[index] = covered
            if clip.listener is not None and listener is not None:
                clip.listener[index] = listener
            effects.finish(frame, index)
            clip.landmarks[index] = moved
            clip.masks[index] = 0.0
            draw_engine_mask(clip.masks[index], moved)
    for clip in clips:
        clip.opening[:] = mouth_openness(clip.landmarks)
    return clips


def render_clip(scene: Scene, effects: Effects, mouth: np.ndarray, audio: np.ndarray) -> SynthClip:
    return render_clips(scene, effects, [(mouth, audio)])[0]

"""Face engine: detection, alignment, quality, landmarks, anti-spoof, embeddings, liveness.

Knows nothing of HTTP or the database.  Typical use by the certification service::

    engine = FaceEngine(FaceConfig())                 # once per worker
    obs = engine.analyze(jpeg_bytes, embed=True)      # FaceError subclasses carry .code / .hint
    template = engine.enroll([jpeg1, jpeg2])          # template.to_bytes() -> encrypt at rest
    result = engine.verify(FaceTemplate.from_bytes(b), [obs], age=83)
    challenge = engine.new_challenge()                # store challenge.to_dict() in Redis
    tracker = engine.tracker(challenge, template=template, age=83)
    progress = tracker.feed(frame_bytes, t=time.time())
    verdict = tracker.verdict()
"""

from .config import FaceConfig
from .engine import FaceEngine, FaceObservation
from .errors import (
    BadImageError,
    FaceError,
    ImageTooLargeError,
    ModelError,
    ModelIntegrityError,
    MultipleFacesError,
    NoFaceError,
    NotAnImageError,
    TemplateError,
)
from .liveness import ACTIONS, Challenge, ChallengeTracker, Progress, Verdict
from .matching import FaceTemplate, MatchResult
from .quality import Guidance, Quality

__all__ = [
    "ACTIONS",
    "BadImageError",
    "Challenge",
    "ChallengeTracker",
    "FaceConfig",
    "FaceEngine",
    "FaceError",
    "FaceObservation",
    "FaceTemplate",
    "Guidance",
    "ImageTooLargeError",
    "MatchResult",
    "ModelError",
    "ModelIntegrityError",
    "MultipleFacesError",
    "NoFaceError",
    "NotAnImageError",
    "Progress",
    "Quality",
    "TemplateError",
    "Verdict",
]

"""`ganedit align`: photos in, a folder of FFHQ-aligned faces and alignment.json out.

The geometry and the choice of face are `ganedit.inversion.align`; this module is the job
around them (reading images as inversion reads them, writing atomically, the record).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from PIL import Image

from ganedit.inversion.align import UPSTREAM, align_photo, parse_face
from ganedit.utils.context import RunContext


@dataclass(frozen=True)
class AlignConfig:
    """What `ganedit align` runs; recorded in alignment.json."""

    size: int = 1024  # FFHQ's own size; `-g` gives a generator's resolution instead
    face: str | int = "largest"
    upsample: int = 1
    detector: str = "hog"

    def __post_init__(self):
        from ganedit.models.face_landmarks import DETECTORS
        from ganedit.utils.params import Integer, OneOf, check_fields

        parse_face(self.face)
        limits = {
            "size": Integer(1, 16384),
            "upsample": Integer(0, 4),
            "detector": OneOf(DETECTORS),
        }
        check_fields(self, limits, "align")


def run_align(
    cfg: AlignConfig,
    images: list,
    out,
    *,
    ctx: RunContext = RunContext(),
) -> dict:
    """Align the faces of every image (files, folders, LMDBs) into a new folder `out`:
    `{i:05d}.png` per image (`{i:05d}_{k}.png` per face k with `all`) and alignment.json
    (the settings, and per image its source, sha256, faces found, quad and landmarks).
    A photo without a face (or the face asked for) stops the run before anything is written."""
    import hashlib
    import json

    from ganedit.inversion.images import image_files, read_images
    from ganedit.models.face_landmarks import require_dlib
    from ganedit.utils.files import atomic_dir, check_output
    from ganedit.utils.progress import progress_bar

    require_dlib()
    out = check_output(out, overwrite=ctx.overwrite, kind="dir")
    items = image_files(images)
    records = []
    with (
        atomic_dir(out, overwrite=ctx.overwrite, what="alignment") as tmp,
        progress_bar(len(items), "align", ctx.progress) as bar,
    ):  # a refused photo leaves nothing behind: the folder appears only when all are done
        for i, (array, data, where) in enumerate(read_images(items)):
            faces = align_photo(array, cfg.size, cfg.face, cfg.upsample, cfg.detector, where)
            entries = []
            for found in faces:
                name = f"{i:05d}.png" if cfg.face != "all" else f"{i:05d}_{found.index}.png"
                Image.fromarray(found.image).save(tmp / name)
                entries.append({"file": name, **found.record()})
            digest = hashlib.sha256(data).hexdigest()
            records.append(
                {"image": items[i][0], "path": where, "sha256": digest, "faces": entries}
            )
            bar.advance()
        n = sum(len(r["faces"]) for r in records)
        summary = {"procedure": UPSTREAM, **asdict(cfg), "n": n, "images": records}
        (tmp / "alignment.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary

"""Where a direction came from, checked before it is used.

A boundary's sidecar records the generator it was learned on (its name and the sha256 of its
weights, and the class of a class-conditional one) and the latent space. A `w` direction of one generator has the same shape as a `z`
direction of it, or as a `w` direction of another generator, so shapes alone cannot catch a
mix-up: this module compares the records and refuses a mismatch unless forced, in which case
the mismatch is returned so the caller records it in its output.
"""

from __future__ import annotations

import logging

from ganedit.errors import ProvenanceError

log = logging.getLogger(__name__)

# A [D] direction of w is applied to every ws row by broadcasting (InterFaceGAN's advice for
# W+), so using it in ws is not a mix-up; every other pair of spaces is.
COMPATIBLE_SPACES = {("w", "ws")}


def mismatches(sidecar: dict, identity: dict, space: str) -> list[str]:
    """What differs between a boundary's record and the generator and space it is used with."""
    problems = []
    learned_space = sidecar.get("space")
    mixed = learned_space is not None and learned_space != space
    if mixed and (learned_space, space) not in COMPATIBLE_SPACES:
        problems.append(f"learned in {learned_space!r}, used in {space!r}")
    theirs, ours = sidecar.get("generator_sha256"), identity.get("sha256")
    name_then, name_now = sidecar.get("generator"), identity.get("name")
    parent = identity.get("parent") or {}
    class_then, class_now = sidecar.get("generator_class"), identity.get("class")
    if class_then is not None and class_now is not None and class_then != class_now:
        problems.append(f"learned on class {class_then}, used on class {class_now}")
    if theirs and theirs == parent.get("sha256"):
        return problems  # learned on the generator this one was tuned from (PTI): it applies
    if theirs and ours:
        if theirs != ours:
            problems.append(
                f"learned on {name_then!r} (weights sha256 {theirs[:12]}), used on {name_now!r} "
                f"(sha256 {ours[:12]})"
            )
    elif name_then and name_now and str(name_then) != str(name_now):
        problems.append(f"learned on {name_then!r}, used on {name_now!r}")
    return problems


def check_boundary_use(
    sidecar: dict,
    identity: dict,
    space: str,
    where: str,
    force: bool = False,
    what: str = "a boundary learned",
) -> dict:
    """Refuse a boundary learned on another generator or space (ProvenanceError), unless
    `force`; returns what the caller records about the check."""
    problems = mismatches(sidecar, identity, space)
    if not sidecar.get("generator") and not sidecar.get("space"):
        log.warning("%s records no generator or space: its origin cannot be checked", where)
        return {"boundary": where, "checked": False}
    if problems and not force:
        raise ProvenanceError(
            f"expected {what} on {identity.get('name')!r} in {space!r}, received "
            f"{where}, {'; '.join(problems)} (pass --force to use it anyway)"
        )
    if problems:
        log.warning("using %s despite: %s (--force)", where, "; ".join(problems))
        return {"boundary": where, "checked": True, "forced": True, "mismatches": problems}
    return {"boundary": where, "checked": True, "forced": False, "mismatches": []}

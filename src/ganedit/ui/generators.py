"""What the editor says about a generator: the ones it can offer, and one loaded."""

from pathlib import Path

from ganedit.editing.service import EditingService
from ganedit.errors import GaneditError


def available_generators() -> list[str]:
    """Registered generator names whose weights are here (the optional one if installed)."""
    from ganedit.models import registry

    names = [n for n in registry.EMBEDDED_GENERATORS if registry.generator_folder(n)]
    try:
        from ganedit.models.dcgan import weights_path

        if Path(weights_path()).is_file():
            names += list(registry.OPTIONAL_GENERATORS)
    except (GaneditError, OSError, ImportError):  # the optional package is absent: not offered
        pass
    return names


def describe_generator(service: EditingService, generator: str) -> dict:
    source = service.source(generator)
    usable, refused = service.directions(generator)
    g = getattr(source, "generator", None)
    num_ws = g.num_ws if "ws" in source.spaces else 0
    return {
        "generator": generator,
        "identity": {"name": source.identity["name"], "sha256": source.identity["sha256"]},
        "space": service.editing_space(source),
        "resolution": source.resolution,
        "num_ws": num_ws,
        "modes": source.mode_attributes,
        "directions": [d.describe() for d in usable],
        "refused": [{"path": r.path, "reason": r.reason} for r in refused],
        "readout": service.readout_kinds,
    }

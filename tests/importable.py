"""Make stand-in modules importable for a while: pickle writes a GLOBAL only for a name it can
look up, so the test stand-ins of NVIDIA's pickles register their upstream module paths here."""

import contextlib
import sys
import types


@contextlib.contextmanager
def importable(modules: dict[str, types.ModuleType]):
    """`modules` (dotted name -> module) in sys.modules while it lasts; removed afterwards.
    Refuses to shadow a module that is really there."""
    assert not set(modules) & set(sys.modules), sorted(set(modules) & set(sys.modules))
    sys.modules.update(modules)
    try:
        yield
    finally:
        for name in modules:
            sys.modules.pop(name, None)

"""The package's layer rules (docs/guide/architecture.md), read from the source with ``ast``: every
import of one emjax module by another points down (or across within a layer), and no module imports
another module's private (underscore) names. A new upward import fails here, not in review."""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "emjax"

# layer -> the layers its modules may import (their own included). The top-level package
# (emjax/__init__.py, __main__.py) re-exports everything; emjax.sklearn is a shell that stays at the
# top because users import it by that name.
ALLOWED = {
    "core": {"core"},
    "components": {"core", "components"},
    "inference": {"core", "components", "inference"},
    "models": {"core", "components", "inference", "models"},
    "engine": {"core", "engine"},
    "extensions": {"core", "engine", "extensions"},
    "selection": {"core", "components", "models", "engine", "selection"},
    "shells": {"core", "components", "inference", "models", "engine", "extensions", "selection",
               "shells", "top"},
    "top": {"core", "components", "inference", "models", "engine", "extensions", "selection",
            "shells"},
}


def module_name(path: pathlib.Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1 or parts[1] == "__main__":
        return "top"
    return "shells" if parts[1] == "sklearn" else parts[1]


def imports(module: str, source: str | None = None, is_package: bool = False):
    """(imported module, imported name or None) for every import of emjax in ``module``."""
    if source is None:
        path = MODULES[module]
        source, is_package = path.read_text(), path.name == "__init__.py"
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("emjax"):
                    yield alias.name, None
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("emjax"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield (sub, None) if sub in MODULES else (target, alias.name)


def test_every_module_is_in_a_known_layer():
    unknown = sorted(m for m in MODULES if layer(m) not in ALLOWED)
    assert not unknown, f"modules outside the layers {sorted(ALLOWED)}: {unknown}"


def upward_imports(module, **source):
    return sorted({target for target, _ in imports(module, **source)
                   if layer(target) not in ALLOWED[layer(module)]})


def private_imports(module, **source):
    return sorted(f"{target}.{name}" for target, name in imports(module, **source)
                  if name and name.startswith("_") and not name.startswith("__") and target != module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    upward = upward_imports(module)
    assert not upward, (f"{module} (layer {layer(module)!r}) imports {upward}; the layer may "
                        f"import only {sorted(ALLOWED[layer(module)])}")


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_private_names_from_other_modules(module):
    private = private_imports(module)
    assert not private, f"{module} imports private names {private}: make them public or move them"


def test_the_checks_can_fail():
    """A model importing the engine (relative and absolute), the engine importing a model, and a
    private name taken from another module are all caught."""
    source = "from ...engine.driver import em\nfrom ..seeding import _kmeans\n"
    assert upward_imports("emjax.models.hmm.model", source=source) == ["emjax.engine.driver"]
    assert private_imports("emjax.models.hmm.model", source=source) == ["emjax.models.seeding._kmeans"]
    assert upward_imports("emjax.engine.driver", source="import emjax.models.plsa\n") == [
        "emjax.models.plsa"]
    assert upward_imports("emjax.core.plan", source="from ..core import tree\n") == []

"""The package's layering: a module imports only modules of its own layer or below (README, "Development"),
so that `gsasrec data ...` never loads the model and the lower layers stay usable alone."""

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "gsasrec"

# Bottom to top. A module not listed fails the test: place every new module here.
LAYERS = [
    ["__init__", "errors", "items", "files", "figures", "runtime", "metrics", "runstate", "progress"],
    ["config"],
    ["data", "data.folder", "data.split", "data.times", "data.interactions", "data.streaming", "data.download",
     "data.recipes", "data.stats"],
    ["native", "mersenne", "dropout", "attention", "model", "loss", "batches", "scoring", "objectives",
     "transition_term"],
    ["checkpoint", "runs", "inference"],
    ["evaluation", "calibration", "baselines"],
    ["step", "distributed", "export", "recommender", "derive"],
    ["training", "serve", "tuning", "every_user"],
    ["cli", "cli.train", "cli.tune", "cli.evaluate", "cli.data", "cli.serving", "cli.runs", "__main__"],
]
LAYER = {name: index for index, names in enumerate(LAYERS) for name in names}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1]) if parts[-1] == "__init__" and len(parts) > 1 else ".".join(parts)


def imported(path: Path) -> set[str]:
    """The gsasrec modules `path` imports, at the top or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "gsasrec":
            base = node.module.removeprefix("gsasrec").lstrip(".") or "__init__"
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in LAYER)
        elif isinstance(node, ast.Import):
            names.update(a.name.removeprefix("gsasrec.") for a in node.names if a.name.startswith("gsasrec."))
    return names


def test_every_module_imports_only_its_own_layer_or_below():
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    assert not set(modules) - set(LAYER), f"place these modules in LAYERS: {sorted(set(modules) - set(LAYER))}"
    upward = [f"{name} (layer {LAYER[name]}) imports {other} (layer {LAYER[other]})"
              for name, path in modules.items() for other in imported(path)
              if other in LAYER and LAYER[other] > LAYER[name]]
    assert not upward, "\n".join(upward)


def test_data_commands_do_not_load_the_model():
    probe = ("import sys\nfrom gsasrec.cli import main\ntry:\n    main(['data', 'stats', 'nothing-here', "
             "'--datasets-dir', '/nonexistent'])\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in sys.modules if m in ('gsasrec.model', 'gsasrec.step', 'gsasrec.loss')))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr

"""The set-up files agree with each other: environment.yml (for conda users) lists what pyproject.toml does."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(spec: str) -> str:
    return re.split(r"[<>=!~\[; ]", spec.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_specs() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"]) + list(project["optional-dependencies"]["dev"])
    return {_name(s): s.replace(" ", "") for s in specs}


def _environment_specs() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    specs: dict[str, str] = {}
    for dep in env["dependencies"]:
        if isinstance(dep, dict):
            specs.update({_name(s): s.replace(" ", "") for s in dep["pip"] if not s.startswith("-")})
        elif not dep.startswith(("python", "pip")):
            specs[_name(dep)] = dep.replace(" ", "")
    return specs


def test_environment_yml_lists_the_same_dependencies_as_pyproject():
    assert _environment_specs() == _pyproject_specs()


def test_environment_yml_installs_the_package_itself():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert any(p.startswith("-e .") for p in pip) or "-e ." in (ROOT / "environment.yml").read_text()


def test_ci_calls_make_test_and_notebooks_have_no_outputs():
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        assert '"output_type"' not in nb.read_text(), f"{nb.name} is stored with outputs: strip them"

"""The rendered tutorial (tutorial/deepfake-generation.md, written by `make tutorial-figures`) renders.

Fast: nothing is regenerated; these tests read the files the command wrote.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

TUTORIAL = Path(__file__).resolve().parent.parent / "tutorial"
RENDERED = TUTORIAL / "deepfake-generation.md"
TEMPLATE = TUTORIAL / "deepfake-generation.template.md"
NUMBERS = TUTORIAL / "assets" / "numbers.json"
IMAGE_LINK = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")
PLACEHOLDER = re.compile(r"\{\{\s*[A-Za-z_][A-Za-z0-9_]*\s*\}\}")
REFERENCES = ["Goodfellow", "Zhu", "Isola", "Siarohin", "Tolosana", "Zhang", "faceswap"]
SECTIONS = ["Introduction", "What is a deepfake?", "GAN basics", "Cycle-Consistent Adversarial Networks",
            "Conditional Adversarial Networks", "Image animation", "Face swap", "Responsible use", "Demo",
            "References"]


@pytest.fixture(scope="module")
def text() -> str:
    if not RENDERED.exists():
        pytest.fail(f"{RENDERED} is missing: run `make tutorial-figures`")
    return RENDERED.read_text()


def prose(text: str) -> str:
    """The text without fenced code blocks (code excerpts may hold braces and dollar signs)."""
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


def front_matter(text: str) -> dict[str, str]:
    m = re.match(r"---\n(.*?)\n---\n", text, re.S)
    assert m, "the tutorial must start with a --- front matter block"
    fields = {}
    for line in m.group(1).splitlines():
        key, sep, value = line.partition(":")
        assert sep, f"front matter line without 'key: value': {line!r}"
        fields[key.strip()] = value.strip()
    return fields


def test_front_matter_is_jekyll_post(text):
    fields = front_matter(text)
    assert fields["layout"] == "post"
    assert fields["title"].strip('"') == "Deep Fake Generation"
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", fields["date"])
    assert fields["usemathjax"] == "true"
    assert fields["tags"].startswith("[") and fields["tags"].endswith("]")


def test_outline_sections_and_references_present(text):
    headings = re.findall(r"^##+ (.+)$", prose(text), re.M)
    for section in SECTIONS:
        assert any(h.startswith(section) for h in headings), f"section {section!r} missing; have {headings}"
    references = text.split("## References", 1)[1]
    for author in REFERENCES:
        assert author in references


def test_every_image_link_points_to_an_existing_asset(text):
    links = IMAGE_LINK.findall(text)
    for link in links:
        assert link.startswith("assets/"), f"image {link} is not under tutorial/assets/"
        path = (TUTORIAL / link).resolve()
        assert path.is_file(), f"image link {link}: {path} does not exist"
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{link} is not a PNG"


def test_generated_figures_are_labelled_synthetic(text):
    from deepfake_lab.provenance import read_provenance

    for link in IMAGE_LINK.findall(text):
        name = Path(link).name
        if name.startswith(("demo-", "chart-")):  # screenshots of the app and charts of measured numbers
            continue
        info = read_provenance(TUTORIAL / link)
        assert info.get("synthetic") == "true", f"{link}: a generated figure without provenance metadata ({info})"


def test_equation_blocks_are_closed(text):
    body = prose(text)
    delimiters = [ln for ln in body.splitlines() if ln.strip() == "$$"]
    assert delimiters, "the tutorial has no $$ equation blocks"
    assert len(delimiters) % 2 == 0, "an unclosed $$ block"
    blocks = re.findall(r"^\$\$\n(.*?)\n\$\$$", body, re.S | re.M)
    assert len(blocks) == len(delimiters) // 2
    for block in blocks:
        assert block.count("{") == block.count("}"), f"unbalanced braces in equation:\n{block}"
        lefts = len(re.findall(r"\\left(?![a-zA-Z])", block))
        rights = len(re.findall(r"\\right(?![a-zA-Z])", block))
        assert lefts == rights, f"unbalanced \\left/\\right:\n{block}"
    inline = re.sub(r"^\$\$\n.*?\n\$\$$", "", body, flags=re.S | re.M)
    assert inline.count("$") % 2 == 0, "an unclosed inline $...$"


def test_no_placeholder_or_template_marker_left(text):
    body = prose(text)
    assert not PLACEHOLDER.findall(body), PLACEHOLDER.findall(body)
    assert "<!-- if:" not in text and "<!-- else:" not in text and "<!-- end:" not in text


def test_every_number_in_numbers_json_appears_in_the_text(text):
    record = json.loads(NUMBERS.read_text())
    assert record["numbers"], "numbers.json holds no numbers"
    for name, value in record["numbers"].items():
        assert str(value) in text, f"number {name}={value} is not in the tutorial"
    for name, state in record["sections"].items():
        assert state == "ok" or state.startswith("skipped:"), (name, state)


def test_skipped_sections_say_how_to_make_their_data(text):
    record = json.loads(NUMBERS.read_text())
    if record["sections"].get("cyclegan") != "ok":
        assert "deepfake-lab train cyclegan" in text
    if record["sections"].get("pix2pix") != "ok":
        assert "deepfake-lab train pix2pix" in text
    if record["sections"].get("animation") != "ok":
        assert "deepfake-lab train animation" in text


def test_code_excerpts_match_the_package_source(text):
    """Each excerpt names its object; its first line of code is that object's current source."""
    import importlib
    import inspect

    excerpts = re.findall(r"^```python\n# ([\w.]+)\n(.+?)\n", text, re.M)
    assert excerpts, "no code excerpts from the package"
    for where, first_line in excerpts:
        parts = where.split(".")
        for cut in range(len(parts) - 1, 0, -1):  # the longest importable module prefix
            try:
                obj = importlib.import_module(".".join(parts[:cut]))
                break
            except ImportError:
                continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        assert first_line.strip() in inspect.getsource(obj), f"excerpt of {where} drifted from the package"


def test_template_and_renderer_agree():
    """Every placeholder of the template is one the renderer can fill or a block hides."""
    template = TEMPLATE.read_text()
    opened = re.findall(r"<!-- if:([a-z0-9_]+) -->", template)
    closed = re.findall(r"<!-- end:([a-z0-9_]+) -->", template)
    assert sorted(opened) == sorted(closed)

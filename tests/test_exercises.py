"""The notebook exercises: answers start empty, checks say how an answer does, and the reference solutions pass.

The notebooks themselves run in CI under nbval with the solutions filled in; here the checks run without
a kernel: ``deepfake_lab.exercises`` on its own, every notebook's exercise cells read as Python, and every
reference solution checked against the package on small inputs.
"""
from __future__ import annotations

import ast
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from deepfake_lab import exercises
from deepfake_lab.exercises import answer, check

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture
def student(monkeypatch):
    """A student's run: neither quick mode nor solutions requested."""
    monkeypatch.delenv("DEEPFAKE_LAB_QUICK", raising=False)
    monkeypatch.delenv("DEEPFAKE_LAB_SOLUTIONS", raising=False)


@pytest.fixture
def solutions(monkeypatch):
    """A test run of a notebook: solutions requested."""
    monkeypatch.delenv("DEEPFAKE_LAB_QUICK", raising=False)
    monkeypatch.setenv("DEEPFAKE_LAB_SOLUTIONS", "1")


# --------------------------------------------------------------------------------------------
# exercises.check and exercises.answer
# --------------------------------------------------------------------------------------------
def test_an_empty_answer_says_not_yet_and_the_notebook_runs_on(student, capsys):
    assert check("exercise 1", ..., torch.tensor(1.5)) is False
    assert "exercise 1: not yet: fill in the answer above" in capsys.readouterr().out


def test_an_empty_function_says_not_yet(student, capsys):
    def swap(faces):
        ...

    def documented(faces):
        """What it should do."""
        ...

    for fn in (swap, documented):
        assert check("exercise 1", fn, torch.zeros(2), args=(torch.zeros(2),)) is False
        assert "not yet" in capsys.readouterr().out


def test_a_right_answer_passes(student, capsys):
    assert check("exercise 3", 384, 384) is True
    assert check("exercise 1", torch.tensor(0.5), 0.5 + 1e-9) is True
    assert check("exercise 2", (16, 286), (16, 286)) is True
    assert check("exercise 4", np.float64(20.0), torch.tensor(20.0, dtype=torch.float64)) is True
    assert check("exercise 1", lambda x: x * 2, torch.tensor([2.0, 4.0]), args=(torch.tensor([1.0, 2.0]),)) is True
    out = capsys.readouterr().out
    assert out.count("correct") == 5 and "not" not in out


def test_a_wrong_answer_is_shown_with_what_was_expected(student, capsys):
    assert check("exercise 3", 256, 384, hint="weights plus biases") is False
    out = capsys.readouterr().out
    assert "exercise 3: not quite: got 256, expected 384" in out and "Hint: weights plus biases." in out


def test_a_wrong_tensor_names_its_shape_or_its_largest_difference(student, capsys):
    assert check("exercise 2", torch.zeros(8), torch.zeros(9)) is False
    assert "shape (8,), expected shape (9,)" in capsys.readouterr().out
    expected = torch.zeros(4, 4)
    wrong = expected.clone()
    wrong[1, 2] = 0.5
    assert check("exercise 2", wrong, expected) is False
    assert "largest difference 0.5 at index (1, 2)" in capsys.readouterr().out


def test_integer_answers_must_be_exact_unless_a_tolerance_is_given(student, capsys):
    assert check("exercise 2", 33_570_817, 33_570_816) is False
    assert "got 33,570,817, expected 33,570,816" in capsys.readouterr().out
    image = np.full((4, 4, 3), 100, dtype=np.uint8)
    assert check("exercise 3", image + 0.9, image, atol=1.0, rtol=0) is True


def test_a_function_that_forgets_to_return_is_wrong_not_empty(student, capsys):
    def swap(faces):
        faces * 2

    assert check("exercise 1", swap, torch.zeros(2), args=(torch.zeros(2),)) is False
    assert "swap returned None" in capsys.readouterr().out


def test_under_solutions_a_wrong_or_empty_answer_fails_the_cell(solutions):
    with pytest.raises(AssertionError, match="not quite: got 3, expected 4"):
        check("exercise 1", 3, 4)
    with pytest.raises(AssertionError, match="still empty"):
        check("exercise 1", ..., 4)


def test_answer_keeps_the_students_answer_without_solutions(student):
    assert answer("01", "ex3_first_layer_parameters", ...) is Ellipsis
    assert answer("01", "ex3_first_layer_parameters", 1000) == 1000


@pytest.mark.parametrize("env", [{"DEEPFAKE_LAB_QUICK": "1"}, {"DEEPFAKE_LAB_SOLUTIONS": "1"},
                                 {"DEEPFAKE_LAB_QUICK": "0", "DEEPFAKE_LAB_SOLUTIONS": "true"}])
def test_answer_fills_in_the_solution_in_quick_mode_or_on_request(student, monkeypatch, tmp_path, capsys, env):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)  # the solutions are found beside the package, not from the working directory
    assert answer("01", "ex3_first_layer_parameters", ...) == 2 * 128 + 128
    assert "ex3_first_layer_parameters from notebooks/solutions/01_gan_basics.py" in capsys.readouterr().out
    assert answer("01", "ex3_first_layer_parameters", 1000) == 1000  # an answer of one's own stays


def test_solutions_can_be_turned_off_in_quick_mode(student, monkeypatch):
    monkeypatch.setenv("DEEPFAKE_LAB_QUICK", "1")
    monkeypatch.setenv("DEEPFAKE_LAB_SOLUTIONS", "0")
    assert answer("01", "ex3_first_layer_parameters", ...) is Ellipsis


def test_an_empty_function_gets_the_solution_with_the_notebook_values_bound(solutions):
    def swap_to_A(faces):
        ...

    nets = {"encoder": torch.nn.Identity(), "decoder_A": torch.nn.Identity()}
    filled = answer("05", "ex1_swap_to_A", swap_to_A, nets)
    assert torch.equal(filled(torch.ones(2)), torch.ones(2))


def test_unknown_lessons_and_names_say_what_there_is(solutions):
    with pytest.raises(FileNotFoundError, match="lesson '09'"):
        answer("09", "ex1", ...)
    with pytest.raises(LookupError, match="no solution function 'ex9_nothing'.*ex1_nonsaturating_loss"):
        answer("01", "ex9_nothing", ...)


# --------------------------------------------------------------------------------------------
# The notebooks: every answer starts empty, every answer has its solution
# --------------------------------------------------------------------------------------------
def _is_ellipsis(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and node.value is Ellipsis


def _starts_empty(binding: ast.AST | None) -> bool:
    """``x = ...``, or ``def f(...): ...`` (a docstring allowed)."""
    if isinstance(binding, ast.FunctionDef):
        body = [s for s in binding.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                                and isinstance(s.value.value, str))]
        return len(body) == 1 and isinstance(body[0], ast.Expr) and _is_ellipsis(body[0].value)
    return isinstance(binding, ast.Assign) and _is_ellipsis(binding.value)


def _calls(tree: ast.AST, function: str) -> list[ast.Call]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", None) == function]


def _exercise_answers(notebook: Path) -> list[dict]:
    """Every ``answer(lesson, name, variable, ...)`` call in the notebook, with how ``variable`` starts."""
    found = []
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    for index, cell in enumerate(cells):
        source = "".join(cell["source"])
        if cell["cell_type"] != "code" or "answer(" not in source:
            continue
        tree = ast.parse(source)
        bindings = {}  # variable -> the statements that bind it in this cell
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef):
                bindings.setdefault(node.name, []).append(node)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        bindings.setdefault(target.id, []).append(node)
        checked = {c.args[1].id for c in _calls(tree, "check") if isinstance(c.args[1], ast.Name)}
        passed = set()
        for call in _calls(tree, "answer"):
            lesson, name, variable = call.args[0].value, call.args[1].value, call.args[2].id
            first = min(bindings.get(variable, []), key=lambda n: n.lineno, default=None)
            found.append({"cell": index, "lesson": lesson, "name": name, "variable": variable,
                          "empty": _starts_empty(first), "before": first is not None and first.lineno < call.lineno,
                          "checked": variable in checked})
            passed.add(variable)
        bare = {n.targets[0].id for n in ast.walk(tree) if isinstance(n, ast.Assign) and _is_ellipsis(n.value)
                and len(n.targets) == 1 and isinstance(n.targets[0], ast.Name)}
        assert bare <= passed, f"{notebook.name} cell {index}: {sorted(bare - passed)} never go through answer(...)"
    return found


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_exercise_answer_starts_empty_and_is_checked(notebook):
    answers = _exercise_answers(notebook)
    assert answers, f"{notebook.name} has no exercises"
    for a in answers:
        where = f"{notebook.name} cell {a['cell']}: {a['variable']}"
        assert a["lesson"] == notebook.name[:2], f"{where}: answer(...) names lesson {a['lesson']!r}"
        assert a["before"] and a["empty"], f"{where} must start as `...` (reference answers go in notebooks/solutions/)"
        assert a["checked"], f"{where} is never checked"
    text = notebook.read_text(encoding="utf-8")
    assert "reference answer" not in text and "notebooks/solutions/" in text


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.stem)
def test_the_solutions_file_has_exactly_the_solutions_the_notebook_names(notebook):
    named = {a["name"] for a in _exercise_answers(notebook)}
    module = exercises.load_solutions(notebook.name[:2])
    defined = {n for n, v in vars(module).items() if n.startswith("ex") and callable(v)}
    assert named == defined, f"{notebook.name}: missing {sorted(named - defined)}, unused {sorted(defined - named)}"


# --------------------------------------------------------------------------------------------
# Every reference solution passes its check (small inputs; the notebooks use the lessons' own)
# --------------------------------------------------------------------------------------------
CASES = {}


def case(lesson, name):
    """Register the inputs of one exercise: a function returning (context, expected, check options)."""
    def register(make):
        CASES[(lesson, name)] = make
        return make
    return register


@case("01", "ex1_nonsaturating_loss")
def _():
    from deepfake_lab import losses
    s = torch.tensor([-2.0, 0.0, 3.0])
    return (s,), losses.g_loss("nonsaturating", s), {}


@case("01", "ex2_linear_path_norms")
def _():
    from deepfake_lab import gan
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(100, generator=g), torch.randn(100, generator=g)
    return (z0, z1), torch.linalg.vector_norm(gan.interpolate_latents(z0, z1, 9, "linear"), dim=1), {}


@case("01", "ex3_first_layer_parameters")
def _():
    from deepfake_lab import gan
    net = gan.build_discriminator(gan.preset("default", "ring8")[0])
    first = next(m for m in net.modules() if isinstance(m, torch.nn.Linear))
    return (), sum(p.numel() for p in first.parameters()), {}


@case("02", "ex1_lsgan_d_loss")
def _():
    from deepfake_lab import cyclegan
    s_real, s_fake = torch.tensor([[0.5, 1.5], [1.0, 0.0]]), torch.tensor([[0.2, -0.4], [0.6, 0.0]])
    return (s_real, s_fake), 0.5 * (cyclegan.lsgan_loss(s_real, True) + cyclegan.lsgan_loss(s_fake, False)), {}


@case("02", "ex2_receptive_field")
def _():
    from deepfake_lab import cyclegan
    return (), cyclegan.patch_receptive_field(2), {}


@case("02", "ex2_score_map_side")
def _():
    from deepfake_lab import cyclegan
    with torch.device("meta"):
        return (), cyclegan.NLayerDiscriminator(n_layers=2)(torch.zeros(1, 3, 256, 256)).shape[-1], {}


@case("02", "ex3_resnet_block_parameters")
def _():
    from deepfake_lab import blocks
    return (), blocks.count_parameters(blocks.ResidualBlock(256)), {}


@case("02", "ex4_cycle_loss")
def _():
    from deepfake_lab import cyclegan, losses
    torch.manual_seed(0)
    G, F = cyclegan.ResnetGenerator(ngf=8, n_blocks=1).eval(), cyclegan.ResnetGenerator(ngf=8, n_blocks=1).eval()
    x, y = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        expected = losses.l1_loss(F(G(x)), x) + losses.l1_loss(G(F(y)), y)
    return (G, F, x, y), expected, {"atol": 1e-6}


@case("03", "ex1_outermost_up_channels")
def _():
    from deepfake_lab import pix2pix
    demo_config = pix2pix.PRESETS["demo"][0]
    G = pix2pix.build_generator(demo_config)
    up = next(m for m in G.model.model if isinstance(m, torch.nn.ConvTranspose2d))
    return (demo_config,), up.in_channels, {}


@case("03", "ex2_receptive_fields")
def _():
    from deepfake_lab import cyclegan
    return (), (cyclegan.patch_receptive_field(1), cyclegan.patch_receptive_field(5)), {}


@case("03", "ex3_generator_loss")
def _():
    from deepfake_lab import pix2pix
    s = torch.tensor([[0.3, -1.2], [2.0, 0.0]])
    y_true = torch.rand(1, 3, 16, 16) * 2 - 1
    y_hat = y_true * 0.9
    return (s, y_hat, y_true), pix2pix.generator_loss(s, y_hat, y_true, 100.0)[0], {"atol": 1e-5}


@case("03", "ex4_psnr")
def _():
    from deepfake_lab import metrics
    torch.manual_seed(0)
    fake, real = torch.rand(1, 3, 16, 16) * 2 - 1, torch.rand(1, 3, 16, 16) * 2 - 1
    mse = (fake.double() - real.double()).pow(2).mean()
    return (mse,), metrics.psnr(fake, real), {"atol": 1e-6, "rtol": 0}


@case("04", "ex1_soft_argmax")
def _():
    from deepfake_lab.animation.keypoints import soft_argmax
    g = torch.Generator().manual_seed(0)
    heat = torch.softmax(torch.randn(1, 1, 8 * 8, generator=g) / 0.1, dim=-1).view(1, 1, 8, 8)
    return (heat,), soft_argmax(heat)[0, 0], {"atol": 1e-6}


def _squares():
    square = torch.tensor([[-1.0, -1.0], [1.0, -1.0], [1.0, 1.0], [-1.0, 1.0]])
    p_s, p_d1 = 0.2 * square, 0.4 * square
    p_dt = p_d1.clone()
    p_dt[0] += torch.tensor([0.1, 0.0])
    return p_s, p_dt, p_d1


@case("04", "ex2_alpha")
def _():
    from deepfake_lab.animation.transfer import adapt_scale_factor
    p_s, _, p_d1 = _squares()
    return (), adapt_scale_factor(p_s, p_d1), {"atol": 1e-6, "rtol": 0}


@case("04", "ex2_new_p0")
def _():
    from deepfake_lab import animation as fomm
    p_s, p_dt, p_d1 = _squares()
    new = fomm.normalize_kp({"value": p_s[None]}, {"value": p_dt[None]}, {"value": p_d1[None]},
                            adapt_movement_scale=True, use_relative_movement=True)
    return (p_s, p_dt, p_d1), new["value"][0, 0], {}


@case("04", "ex3_affine_jacobian")
def _():
    from deepfake_lab.animation.equivariance import RandomTransform
    T_affine = RandomTransform(1, sigma_affine=0.1, sigma_tps=0.0, generator=torch.Generator().manual_seed(1))
    points = torch.rand(1, 5, 2, generator=torch.Generator().manual_seed(2)) * 2 - 1
    J = T_affine.jacobian(points)[0]
    assert torch.allclose(J, J[:1].expand_as(J), atol=1e-6)
    return (T_affine,), J[0], {"atol": 1e-6}


@case("04", "ex4_no_motion_l1")
def _():
    from deepfake_lab import animation as fomm
    model = fomm.load_animation_model(fomm.DEMO_WEIGHTS)
    size = model.config.image_size
    frames = np.random.default_rng(0).integers(0, 256, (5, size, size, 3), dtype=np.uint8)
    clip5 = frames.astype(np.float64) / 255
    return (clip5,), fomm.reconstruction_scores(model, frames).baseline_l1, {"atol": 1e-4, "rtol": 0}


@case("05", "ex1_swap_to_A")
def _():
    from deepfake_lab import faceswap as fs
    torch.manual_seed(0)
    config = fs.PRESETS["demo"][0]
    nets = {"encoder": fs.Encoder(config).eval(), "decoder_A": fs.Decoder(config).eval(),
            "decoder_B": fs.Decoder(config).eval()}
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        expected = fs.swap_faces(nets, x, "A")
    return (nets,), expected, {"args": (x,), "atol": 1e-5}


@case("05", "ex2_bottleneck_parameters")
def _():
    from deepfake_lab import faceswap as fs
    with torch.device("meta"):
        return (), fs.count_parameters(fs.Encoder(fs.FaceSwapConfig()).dense), {}


@case("05", "ex3_match_rgb")
def _():
    from deepfake_lab.compositing import colour_match
    rng = np.random.default_rng(0)
    face = rng.integers(0, 200, (64, 64, 3), dtype=np.uint8)
    reference = rng.integers(50, 256, (64, 64, 3), dtype=np.uint8)
    return (), colour_match(face, reference, None, "rgb"), {"args": (face, reference), "atol": 1.0, "rtol": 0}


@case("05", "ex4_balanced_accuracy")
def _():
    from deepfake_lab import detect
    torch.manual_seed(0)
    net = detect.RealFakeDetector()
    real, fake = torch.rand(12, 3, 64, 64) * 2 - 1, torch.rand(12, 3, 64, 64) * 2 - 1
    return (net, real, fake), detect.evaluate(net, real, fake)["accuracy"], {"atol": 1e-9, "rtol": 0}


def test_every_solution_named_in_the_notebooks_has_a_case_here():
    named = {(a["lesson"], a["name"]) for nb in NOTEBOOKS for a in _exercise_answers(nb)}
    assert named == set(CASES), f"no case for {sorted(named - set(CASES))}; stale {sorted(set(CASES) - named)}"


@pytest.mark.parametrize("lesson, name", sorted(CASES), ids=lambda v: v)
def test_the_reference_solution_passes_its_check(solutions, capsys, lesson, name):
    context, expected, options = CASES[(lesson, name)]()
    if "args" in options:  # the answer is a function, still empty
        def empty(*args):
            ...
    else:
        empty = ...
    filled = answer(lesson, name, empty, *context)
    assert not exercises.is_empty(filled)
    assert check(f"{lesson} {name}", filled, expected, **options) is True  # a wrong solution raises here
    assert "correct" in capsys.readouterr().out


def test_a_wrong_reference_solution_fails_its_check(solutions, monkeypatch, tmp_path):
    (tmp_path / "01_gan_basics.py").write_text("def ex3_first_layer_parameters():\n    return 2 * 128\n")
    monkeypatch.setattr(exercises, "SOLUTIONS_DIR", tmp_path)
    with pytest.raises(AssertionError, match="got 256, expected 384"):
        check("exercise 3", answer("01", "ex3_first_layer_parameters", ...), 384)

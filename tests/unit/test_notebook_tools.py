"""Parameter injection and output stripping of tools.notebooks (no kernel started)."""

from __future__ import annotations

import base64
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tools.notebooks import (
    INJECTED_TAG,
    inject_parameters,
    is_stripped,
    main,
    parameter_names,
    read_notebook,
    strip,
    to_markdown,
    write_notebook,
)


def notebook(
    parameters: str = 'size = "large"\nsteps: int = 10\na, b = 1, 2',
) -> nbformat.NotebookNode:
    return new_notebook(
        cells=[
            new_markdown_cell("# title"),
            new_code_cell(parameters, metadata={"tags": ["parameters"]}),
            new_code_cell("result = (size, steps)"),
        ],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )


def run_cells(nb: nbformat.NotebookNode) -> dict:
    namespace: dict = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            exec(cell.source, namespace)
    return namespace


def test_parameter_names_are_the_top_level_assignments() -> None:
    # Tuple targets are not parameters one can inject by name; a name assigned twice counts once.
    assert parameter_names("x = 1\ny: int = 2\na, b = 1, 2\nx = 3\nif x:\n    z = 1") == ["x", "y"]


def test_injected_values_override_the_defaults_and_keep_the_rest() -> None:
    nb = notebook()
    injected = inject_parameters(nb, {"size": "tiny", "steps": 3})
    assert run_cells(injected)["result"] == ("tiny", 3)
    assert run_cells(nb)["result"] == ("large", 10)  # the original is left alone
    cell = injected.cells[1]
    assert cell.source.startswith('size = "large"') and INJECTED_TAG in cell.metadata["tags"]
    assert run_cells(inject_parameters(nb, {"size": Path("/tmp/x")}))["size"] == "/tmp/x"
    assert inject_parameters(nb, {}).cells[1].source == nb.cells[1].source


def test_bad_parameters_name_the_problem() -> None:
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) sise; .* assigns size, steps"):
        inject_parameters(notebook(), {"sise": "tiny"})
    with pytest.raises(ValueError, match="only Python literals"):
        inject_parameters(notebook(), {"size": object()})
    with pytest.raises(ValueError, match="nb.ipynb: 0 cells are tagged 'parameters'"):
        inject_parameters(new_notebook(cells=[new_code_cell("x = 1")]), {}, name="nb.ipynb")


def executed() -> nbformat.NotebookNode:
    nb = notebook()
    nb.metadata["language_info"] = {"name": "python", "version": "3.11.2"}
    cell = nb.cells[2]
    cell.execution_count = 3
    cell.outputs = [new_output("stream", name="stdout", text="hello\n")]
    cell.metadata["execution"] = {"iopub.status.idle": "2026-01-01T00:00:00Z"}
    return nb


def test_strip_removes_outputs_counts_timings_and_volatile_metadata() -> None:
    nb = executed()
    assert not is_stripped(nb)
    assert strip(nb) is True
    assert is_stripped(nb) and strip(nb) is False
    assert nb.cells[2].outputs == [] and nb.cells[2].execution_count is None
    assert "execution" not in nb.cells[2].metadata
    assert list(nb.metadata) == ["kernelspec"]
    assert nb.cells[1].metadata["tags"] == ["parameters"]  # tags are content, not noise
    nbformat.validate(nb)


def test_command_line_check_and_strip(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "a.ipynb"
    write_notebook(executed(), path)
    assert main(["check", str(path)]) == 1
    assert f"python -m tools.notebooks strip {path}" in capsys.readouterr().err
    assert main(["strip", str(path)]) == 0
    assert main(["check", str(path)]) == 0
    assert is_stripped(read_notebook(path))


def test_render_takes_python_literals_and_names_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    path = tmp_path / "nb.ipynb"
    write_notebook(notebook(), path)
    for bad, fix in (("size=tiny", "quote strings: size='\"...\"'"), ("size", "give NAME=VALUE")):
        with pytest.raises(SystemExit):
            main(["render", str(path), "--set", bad])
        assert fix in capsys.readouterr().err


def test_an_executed_notebook_becomes_a_page_with_its_outputs(tmp_path: Path) -> None:
    nb = notebook()
    png = base64.b64encode(b"\x89PNG fake").decode()
    nb.cells[2].outputs = [
        new_output("stream", name="stdout", text="\x1b[31mhello\x1b[0m\n"),
        new_output("display_data", data={"text/markdown": "| a |\n| --- |", "text/plain": "x"}),
        new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"}),
        new_output("error", ename="E", evalue="bad", traceback=["\x1b[31mE\x1b[0m: bad"]),
    ]
    page = to_markdown(nb, tmp_path / "nb_files")
    assert page.startswith("# title\n\n```python\nsize = ")
    assert "```text\nhello\n```\n\n| a |\n| --- |\n\n![output 1](nb_files/output_1.png)" in page
    assert page.endswith("```text\nE: bad\n```\n") and "<Figure>" not in page
    assert (tmp_path / "nb_files" / "output_1.png").read_bytes() == b"\x89PNG fake"

"""Run notebooks headless with injected parameters, and keep them stripped of outputs in git.

``execute_notebook(path, {"overrides": [...]})`` replaces the notebook's cell tagged
``parameters`` (papermill's convention, without papermill) and runs every cell in a fresh kernel
of the *current* interpreter, so a notebook run from the tests sees the same bioner install.
From the command line::

    python -m tools.notebooks strip notebooks/*.ipynb   # drop outputs before committing
    python -m tools.notebooks check notebooks/*.ipynb   # exit 1 if any has outputs
    # an executed copy for readers, as docs/notebooks/<name>.md (parameters as Python literals):
    python -m tools.notebooks render notebooks/01_quickstart.ipynb --set run_folder='"<run>"'

``nbformat``, ``nbclient`` and ``ipykernel`` come with the ``dev`` extra (``pip install -e
".[dev]"``).
"""

from __future__ import annotations

import argparse
import ast
import base64
import copy
import re
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nbformat import NotebookNode

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
# Notebook-level metadata worth keeping in git; the rest (language_info with the Python version,
# widget state) changes with every machine that runs the notebook.
KEPT_METADATA = ("kernelspec",)


def _nbformat() -> Any:
    try:
        import nbformat
    except ImportError as err:  # only the dev extra installs it
        raise ImportError(
            'notebook tools need nbformat and nbclient: pip install -e ".[dev]"'
        ) from err
    return nbformat


def read_notebook(path: str | Path) -> NotebookNode:
    """Read a notebook (nbformat 4)."""
    return _nbformat().read(str(path), as_version=4)


def write_notebook(nb: NotebookNode, path: str | Path) -> None:
    """Write ``nb`` to ``path`` in nbformat's canonical layout (one-space indent, sorted keys)."""
    _nbformat().write(nb, str(path))


def parameter_names(source: str) -> list[str]:
    """The names that a parameters cell assigns at top level, in order."""
    names: list[str] = []
    for node in ast.parse(source).body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        names += [t.id for t in targets if isinstance(t, ast.Name) and t.id not in names]
    return names


def _literal(name: str, value: Any) -> str:
    """``repr(value)`` when it reads back as the same value (``Path`` becomes ``str``)."""
    if isinstance(value, Path):
        value = str(value)
    text = repr(value)
    try:
        same = ast.literal_eval(text) == value
    except (ValueError, SyntaxError):
        same = False
    if not same:
        raise ValueError(
            f"parameter {name}={text}: only Python literals (str, numbers, bool, None, and lists, "
            "tuples or dicts of them) can be injected into a notebook"
        )
    return text


def inject_parameters(
    nb: NotebookNode, parameters: Mapping[str, Any], name: str = "notebook"
) -> NotebookNode:
    """A copy of ``nb`` whose ``parameters`` cell also assigns ``parameters``.

    The cell keeps its defaults and gets one assignment per injected value after them (tagged
    ``injected-parameters`` as well), so the executed notebook shows both.

    Args:
        nb: the notebook.
        parameters: name -> value; each name must be assigned in the parameters cell (a typo
            would otherwise be silently ignored).
        name: the notebook's name, for messages.

    Raises:
        ValueError: the notebook has no cell tagged ``parameters``, or several; a name is not a
            parameter of the notebook; a value is not a Python literal.
    """
    nb = copy.deepcopy(nb)
    cells = [c for c in nb.cells if PARAMETERS_TAG in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise ValueError(
            f"{name}: {len(cells)} cells are tagged {PARAMETERS_TAG!r}; tag exactly one code cell "
            '(cell metadata: {"tags": ["parameters"]}) to take injected parameters'
        )
    cell = cells[0]
    known = parameter_names(cell.source)
    unknown = [key for key in parameters if key not in known]
    if unknown:
        raise ValueError(
            f"{name}: unknown parameter(s) {', '.join(unknown)}; its parameters cell assigns "
            f"{', '.join(known) or 'nothing'}"
        )
    if parameters:
        lines = [f"{key} = {_literal(key, value)}" for key, value in parameters.items()]
        cell.source = cell.source.rstrip() + "\n\n# Injected parameters\n" + "\n".join(lines)
        cell.metadata["tags"] = [*cell.metadata.get("tags", []), INJECTED_TAG]
    return nb


def execute_notebook(
    path: str | Path,
    parameters: Mapping[str, Any] | None = None,
    cwd: str | Path | None = None,
    timeout: int = 1800,
    output: str | Path | None = None,
) -> NotebookNode:
    """Run a notebook headless in a kernel of the running Python and return it with outputs.

    Args:
        path: the ``.ipynb`` file.
        parameters: values for its parameters cell (:func:`inject_parameters`).
        cwd: the kernel's working folder (default: the notebook's folder, as in Jupyter).
        timeout: most seconds per cell.
        output: also write the executed notebook here, even when a cell fails (to read the
            traceback in context).

    Raises:
        nbclient.exceptions.CellExecutionError: a cell raised; the message holds its traceback.
    """
    _nbformat()
    from jupyter_client.kernelspec import KernelSpecManager
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    path = Path(path)
    nb = inject_parameters(read_notebook(path), parameters or {}, name=str(path))
    # Only ipykernel's own spec, which launches sys.executable: a `python3` kernel spec in the
    # user's Jupyter folders could point at another interpreter and another bioner install.
    km = AsyncKernelManager(
        kernel_name="python3", kernel_spec_manager=KernelSpecManager(kernel_dirs=[])
    )
    client = NotebookClient(
        nb, km=km, timeout=timeout, resources={"metadata": {"path": str(cwd or path.parent)}}
    )
    try:
        client.execute()
    finally:
        if output is not None:
            write_notebook(nb, output)
    return nb


def is_stripped(nb: NotebookNode) -> bool:
    """No outputs, no execution counts, no volatile metadata: what git should hold."""
    return not strip(copy.deepcopy(nb))


def strip(nb: NotebookNode) -> bool:
    """Remove outputs, execution counts, execution timings and volatile notebook metadata in
    place; return whether anything changed."""
    changed = False
    for key in [k for k in nb.metadata if k not in KEPT_METADATA]:
        del nb.metadata[key]
        changed = True
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if cell.get("outputs") or cell.get("execution_count") is not None:
            cell.outputs, cell.execution_count = [], None
            changed = True
        # nbclient records start and end times per cell here.
        if cell.metadata.pop("execution", None) is not None:
            changed = True
    return changed


# Terminal colour codes in tracebacks and progress output; a Markdown page shows them as junk.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def to_markdown(nb: NotebookNode, files: Path) -> str:
    """An executed notebook as one Markdown page: its markdown cells, each code cell fenced,
    then what the cell printed or displayed (Markdown inline, PNG images written into ``files``
    and linked, other text fenced).

    A page, not a notebook, so that git holds notebooks only without outputs while readers
    still see what a run printed (GitHub renders the page with its images).
    """
    parts, images = [], 0
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            parts.append(cell.source)
            continue
        if cell.cell_type != "code":
            continue
        parts.append(f"```python\n{cell.source}\n```")
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                parts.append(f"```text\n{_ANSI.sub('', output.text).rstrip()}\n```")
            elif output.output_type == "error":
                trace = _ANSI.sub("", "\n".join(output.traceback))
                parts.append(f"```text\n{trace}\n```")
            elif "text/markdown" in output.get("data", {}):
                parts.append(output.data["text/markdown"])
            elif "image/png" in output.get("data", {}):
                images += 1
                files.mkdir(parents=True, exist_ok=True)
                image = files / f"output_{images}.png"
                image.write_bytes(base64.b64decode(output.data["image/png"]))
                parts.append(f"![output {images}]({files.name}/{image.name})")
            elif "text/plain" in output.get("data", {}):
                parts.append(f"```text\n{output.data['text/plain']}\n```")
    return "\n\n".join(parts) + "\n"


def render(
    path: str | Path, parameters: Mapping[str, Any], out: str | Path, cwd: str | Path | None = None
) -> Path:
    """Execute ``path`` with ``parameters`` and write it as ``out/<name>.md`` with its outputs
    (images in ``out/<name>_files/``); the notebook under ``notebooks/`` stays stripped."""
    path = Path(path)
    nb = execute_notebook(path, parameters, cwd=cwd)
    out = Path(out)
    files = out / f"{path.stem}_files"
    shutil.rmtree(files, ignore_errors=True)  # images of an earlier rendering
    out.mkdir(parents=True, exist_ok=True)
    target = out / f"{path.stem}.md"
    target.write_text(to_markdown(nb, files), encoding="utf-8")
    return target


def _assignment(text: str) -> tuple[str, Any]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip().isidentifier():
        raise argparse.ArgumentTypeError(f"{text!r}: give NAME=VALUE, e.g. run_folder='\"runs/a\"'")
    try:
        return name.strip(), ast.literal_eval(value)
    except (ValueError, SyntaxError) as err:
        raise argparse.ArgumentTypeError(
            f"{text!r}: the value must be a Python literal (quote strings: {name}='\"...\"')"
        ) from err


def main(argv: Sequence[str] | None = None) -> int:
    """``strip``, ``check`` or ``render`` notebook files; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.notebooks",
        description="Keep notebooks free of outputs in git; render executed copies for readers.",
    )
    parser.add_argument("command", choices=["strip", "check", "render"])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument(
        "--set",
        dest="parameters",
        action="append",
        type=_assignment,
        default=[],
        metavar="NAME=VALUE",
        help="render: a value for the notebook's parameters cell (a Python literal)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("docs/notebooks"), help="render: folder of the copies"
    )
    args = parser.parse_args(argv)
    if args.command == "render":
        for path in args.notebooks:
            target = render(path, dict(args.parameters), args.out)
            print(f"rendered {path} -> {target}")
        return 0
    dirty = []
    for path in args.notebooks:
        nb = read_notebook(path)
        if args.command == "check":
            if not is_stripped(nb):
                dirty.append(path)
        elif strip(nb):
            write_notebook(nb, path)
            print(f"stripped {path}")
    if dirty:
        names = " ".join(str(p) for p in dirty)
        print(
            f"notebooks with outputs: {names}\nstrip them: python -m tools.notebooks strip {names}",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

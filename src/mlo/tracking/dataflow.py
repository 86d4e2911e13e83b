"""What a notebook cell reads and binds: names defined, names used, objects mutated, magics called.

This is the def/use analysis behind sliced replay (``mlo reproduce`` rebuilds only the cells a run's results
depend on) and behind the warnings shown when a run is captured. It works on a cell's source after IPython's
transformation (magics become ``get_ipython().run_line_magic(...)`` calls), with no IPython import, and errs on
the side of including a cell: a name used anywhere in a cell (in a function body too) counts as used, and a
method call or item assignment on a name counts as changing what the name holds.
"""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass, field

# Cell magics whose body is Python that runs in the notebook's namespace.
PYTHON_CELL_MAGICS = {"time", "timeit", "capture", "prun", "mlo"}
# Line magics that set up the kernel rather than compute a value: kept in every replay that follows them.
SETUP_MAGICS = {"load_ext", "reload_ext", "matplotlib", "config", "env", "cd", "autoreload", "aimport"}
SETUP_MLO = {"experiment", "init"}
# Calls that make a cell's effect on the namespace impossible to know statically.
OPAQUE_CALLS = {"exec", "eval", "globals", "locals", "vars", "__import__"}
# Calls and attributes that change the process rather than a variable: a cell using them is set-up.
SETUP_PREFIXES = (
    "sys.path",
    "os.chdir",
    "os.environ",
    "os.putenv",
    "warnings.",
    "pd.set_option",
    "pandas.set_option",
    "np.seterr",
    "np.set_printoptions",
    "matplotlib.use",
    "plt.style.",
    "plt.rcParams",
    "mpl.rcParams",
    "set_config",
    "sklearn.set_config",
    "torch.set_",
)
OPAQUE_MAGICS = {"run", "store", "load", "macro", "recall", "rerun"}
SEED_CALLS = {"seed", "manual_seed", "set_seed"}
# Methods that read an object without changing it: calling them does not make a cell a writer of the name.
READING_METHODS = {
    "head",
    "tail",
    "describe",
    "info",
    "plot",
    "hist",
    "copy",
    "groupby",
    "mean",
    "median",
    "sum",
    "min",
    "max",
    "std",
    "var",
    "count",
    "value_counts",
    "nunique",
    "unique",
    "isna",
    "isnull",
    "notna",
    "corr",
    "predict",
    "predict_proba",
    "decision_function",
    "score",
    "get_params",
    "to_csv",
    "to_parquet",
    "to_json",
    "to_dict",
    "to_numpy",
    "to_list",
    "tolist",
    "astype",
    "query",
    "filter",
    "sample",
    "items",
    "keys",
    "values",
    "get",
    "format",
    "show",
    "savefig",
    "sort_values",
    "reset_index",
    "merge",
    "join",
    "apply",
    "map",
    "agg",
    "aggregate",
    "select_dtypes",
    "drop",
    "dropna",
    "fillna",
    "rename",
    "round",
    "abs",
}
_DOLLAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")
_BRACED = re.compile(r"\{([^{}]+)\}")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BUILTINS = frozenset(dir(builtins)) | {"get_ipython", "display", "In", "Out", "exit", "quit"}


@dataclass
class CellFlow:
    """What one cell binds and reads, as far as its source tells."""

    defs: set[str] = field(default_factory=set)
    uses: set[str] = field(default_factory=set)
    mutates: set[str] = field(default_factory=set)  # names whose object the cell may change in place
    imports: set[str] = field(default_factory=set)  # names bound by import statements (modules)
    magics: list[tuple[str, str]] = field(default_factory=list)  # (magic name, its argument text)
    literals: set[str] = field(default_factory=set)  # string constants (candidate file paths)
    seeds: bool = False  # calls something.seed(...) / manual_seed(...)
    unseeded: list[str] = field(default_factory=list)  # RNG constructions with no seed
    opaque: bool = False  # exec/eval/globals(): reads or binds names the analysis cannot see
    setup: bool = False  # sets up the kernel (extensions, %env, %cd, %mlo experiment): always replayed
    syntax_error: bool = False

    @property
    def binds(self) -> set[str]:
        return self.defs | self.mutates

    def magic_names(self) -> set[str]:
        return {m for m, _ in self.magics}

    def mlo_commands(self) -> set[str]:
        return {(args.split() or [""])[0] for m, args in self.magics if m == "mlo"}


def analyze(code: str) -> CellFlow:
    """The def/use summary of a cell's transformed Python source (see ``TransformerManager.transform_cell``)."""
    flow = CellFlow()
    try:
        tree = ast.parse(code)
    except SyntaxError:
        flow.syntax_error = True
        return flow
    _Visitor(flow).visit(tree)
    flow.uses -= _BUILTINS - flow.defs
    return flow


class _Visitor(ast.NodeVisitor):
    def __init__(self, flow: CellFlow):
        self.flow = flow
        self.depth = 0  # inside a function or class body: assignments there are local

    # -- bindings -------------------------------------------------------------------------------------------
    def _target(self, node: ast.AST) -> None:
        if isinstance(node, ast.Name):
            if self.depth == 0:
                self.flow.defs.add(node.id)
        elif isinstance(node, (ast.Tuple, ast.List)):
            for elt in node.elts:
                self._target(elt)
        elif isinstance(node, ast.Starred):
            self._target(node.value)
        elif isinstance(node, (ast.Subscript, ast.Attribute)):
            root = _root_name(node)
            if root is not None:
                self.flow.mutates.add(root)
                self._use(root)
            self.visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        self.visit(node.value)
        for t in node.targets:
            self._target(t)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.visit(node.value)
            self._target(node.target)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self.visit(node.value)
        root = _root_name(node.target)
        if root is not None:
            self._use(root)
        self._target(node.target)

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        self.visit(node.value)
        self._target(node.target)

    def visit_For(self, node: ast.For | ast.AsyncFor) -> None:
        self.visit(node.iter)
        self._target(node.target)
        for stmt in node.body + node.orelse:
            self.visit(stmt)

    visit_AsyncFor = visit_For

    def visit_With(self, node: ast.With | ast.AsyncWith) -> None:
        for item in node.items:
            self.visit(item.context_expr)
            if item.optional_vars is not None:
                self._target(item.optional_vars)
        for stmt in node.body:
            self.visit(stmt)

    visit_AsyncWith = visit_With

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.type is not None:
            self.visit(node.type)
        if node.name and self.depth == 0:
            self.flow.defs.add(node.name)
        for stmt in node.body:
            self.visit(stmt)

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        if self.depth:
            return
        for alias in node.names:
            if alias.name == "*":
                self.flow.opaque = True
                continue
            name = alias.asname or alias.name.split(".")[0]
            self.flow.defs.add(name)
            self.flow.imports.add(name)

    visit_ImportFrom = visit_Import

    def visit_Delete(self, node: ast.Delete) -> None:
        for t in node.targets:
            if isinstance(t, ast.Name):
                self._use(t.id)
                if self.depth == 0:
                    self.flow.defs.add(t.id)
            else:
                self._target(t)

    def visit_Global(self, node: ast.Global) -> None:
        self.flow.defs.update(node.names)  # a function that rebinds a global

    def _scope(self, node: ast.AST, name: str | None) -> None:
        for dec in getattr(node, "decorator_list", []):
            self.visit(dec)
        args = getattr(node, "args", None)
        if args is not None:
            for default in [*args.defaults, *[d for d in args.kw_defaults if d is not None]]:
                self.visit(default)
        for base in getattr(node, "bases", []):
            self.visit(base)
        if name is not None and self.depth == 0:
            self.flow.defs.add(name)
        self.depth += 1
        body = node.body if isinstance(node.body, list) else [node.body]
        for stmt in body:
            self.visit(stmt)
        self.depth -= 1

    def visit_FunctionDef(self, node) -> None:
        self._scope(node, node.name)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._scope(node, node.name)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._scope(node, None)

    # -- uses -----------------------------------------------------------------------------------------------
    def _use(self, name: str) -> None:
        """A read of ``name``; not one of an earlier cell when this cell bound it before (``m = 1; f(m)``)."""
        if name not in self.flow.defs:
            self.flow.uses.add(name)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Load):
            self._use(node.id)

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and 0 < len(node.value) < 1024 and "\n" not in node.value:
            self.flow.literals.add(node.value)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        dotted = _dotted(node)
        if dotted is not None and dotted.startswith(SETUP_PREFIXES):
            self.flow.setup = True
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        name = _call_name(func)
        if name == "set_config" and isinstance(func, ast.Name):
            self.flow.setup = True
        if name in OPAQUE_CALLS and isinstance(func, ast.Name):
            self.flow.opaque = True
        if isinstance(func, ast.Attribute):
            if func.attr in SEED_CALLS:
                self.flow.seeds = True
            elif _is_magic_call(func) and node.args and all(isinstance(a, ast.Constant) for a in node.args):
                self._magic(func.attr, [a.value for a in node.args])
                return
            # a method call may change the object it is called on (model.fit(X), rows.append(r))
            root = _root_name(func.value)
            inplace = any(
                kw.arg == "inplace" and isinstance(kw.value, ast.Constant) and kw.value.value is True
                for kw in node.keywords
            )
            if root is not None and self.depth == 0 and (inplace or func.attr not in READING_METHODS):
                self.flow.mutates.add(root)
        if (
            name in ("default_rng", "RandomState", "Random", "Generator")
            and not node.args
            and not node.keywords
        ):
            self.flow.unseeded.append(f"{name}()")
        for kw in node.keywords:
            if kw.arg == "random_state" and isinstance(kw.value, ast.Constant) and kw.value.value is None:
                self.flow.unseeded.append(f"{name or 'estimator'}(random_state=None)")
        self.generic_visit(node)

    def _magic(self, kind: str, args: list) -> None:
        flow = self.flow
        if kind == "system" or kind == "getoutput":
            flow.magics.append(("!", str(args[0])))
            for name in _magic_uses(str(args[0])):
                self._use(name)
            return
        magic, line = str(args[0]), str(args[1]) if len(args) > 1 else ""
        flow.magics.append((magic, line))
        if kind == "run_cell_magic" and len(args) > 2:
            body = str(args[2])
            if magic in PYTHON_CELL_MAGICS:
                inner = analyze(transform(body))
                flow.uses.update(inner.uses - flow.defs)
                for attr in ("defs", "mutates", "literals", "imports"):
                    getattr(flow, attr).update(getattr(inner, attr))
                flow.magics.extend(inner.magics)
                flow.unseeded.extend(inner.unseeded)
                flow.seeds |= inner.seeds
                flow.opaque |= inner.opaque
            elif magic == "writefile":
                flow.literals.add(line.split()[-1] if line.split() else "")
        if magic in SETUP_MAGICS or (magic == "mlo" and (line.split() or [""])[0] in SETUP_MLO):
            flow.setup = True
        if magic in OPAQUE_MAGICS:
            flow.opaque = True
        for name in _magic_uses(line):
            self._use(name)


def transform(source: str) -> str:
    """A cell's source as the Python IPython runs (magics become calls). Uses IPython's own text transformer,
    which needs no shell; plain Python comes back unchanged."""
    if not any(ch in source for ch in "%!?"):
        return source
    from IPython.core.inputtransformer2 import TransformerManager  # text only: no shell, no kernel

    try:
        return TransformerManager().transform_cell(source)
    except Exception:
        return source


def _magic_uses(line: str) -> set[str]:
    """Names a magic's argument text refers to: ``$name``, ``{expr}`` and bare words (``%mlo snapshot df``)."""
    names = set(_DOLLAR.findall(line))
    for expr in _BRACED.findall(line):
        names.update(_WORD.findall(expr))
    names.update(w for w in _WORD.findall(_DOLLAR.sub(" ", line)))
    return names


def _is_magic_call(func: ast.Attribute) -> bool:
    return (
        func.attr in ("run_line_magic", "run_cell_magic", "system", "getoutput")
        and isinstance(func.value, ast.Call)
        and isinstance(func.value.func, ast.Name)
        and func.value.func.id == "get_ipython"
    )


def _call_name(func: ast.AST) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def _root_name(node: ast.AST) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript, ast.Call)):
        node = node.func if isinstance(node, ast.Call) else node.value
    return node.id if isinstance(node, ast.Name) else None


# -- slicing ----------------------------------------------------------------------------------------------------
def backward_slice(
    flows: list[CellFlow],
    targets: set[int],
    *,
    file_deps: dict[int, set[int]] | None = None,
) -> list[int]:
    """The positions of the cells that ``targets`` depend on, targets included, in executed order.

    ``flows`` are the cells in the order they ran. A use of a name at position ``i`` depends on the latest cell
    before ``i`` that bound it and on every cell in between that changed its object in place; ``file_deps``
    adds dependencies through files (position → positions that wrote a file it read). Setup cells before the
    last target are always kept; an opaque cell (``exec``, ``globals()``) keeps everything before it.
    """
    if not targets:
        return []
    last = max(targets)
    keep: set[int] = set()
    work = sorted(targets)
    while work:
        i = work.pop()
        if i in keep:
            continue
        keep.add(i)
        flow = flows[i]
        if flow.opaque:
            work.extend(range(i))
            continue
        for name in flow.uses:
            reaching = _reaching(flows, name, i)
            if not reaching:  # bound where the analysis cannot see (exec, globals()): keep those cells
                reaching = [j for j in range(i) if flows[j].opaque]
            for j in reaching:
                if j not in keep:
                    work.append(j)
        for j in (file_deps or {}).get(i, ()):
            if j < i and j not in keep:
                work.append(j)
    keep.update(i for i in range(last) if flows[i].setup)
    return sorted(keep)


def _reaching(flows: list[CellFlow], name: str, before: int) -> list[int]:
    """The cells before position ``before`` whose effect on ``name`` reaches it: its last binding and the
    in-place changes after that binding."""
    out = []
    for j in range(before - 1, -1, -1):
        flow = flows[j]
        if name in flow.defs:
            # a module's attributes are called, not changed: the import alone is the dependency
            return [j] if name in flow.imports else [*out, j]
        if name in flow.mutates:
            out.append(j)
    return out

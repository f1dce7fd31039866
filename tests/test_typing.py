"""Every public function and method of fastmf carries type hints, and the hints resolve.

Public means no leading underscore, at module or class level, plus ``__init__``: the names of
``fastmf.__all__`` (the lazy export table) and every such name defined in the public modules. Names
imported only under ``if TYPE_CHECKING:`` (pandas, matplotlib, scipy, fastmf classes imported
lazily to avoid cycles) are resolved the way a type checker sees them: the imports of those blocks
are run into the namespace given to :func:`typing.get_type_hints`.
"""

import ast
import importlib
import inspect
import pkgutil
import typing

import pytest

import fastmf

#: modules that import an optional extra at their top (the web server: ``fastmf[web]``), with the
#: top-level packages they need; without them installed the module is left out of the walk
NEEDS_EXTRA = {"fastmf.app.web.server": ("starlette", "uvicorn")}


def _installed(package):
    import importlib.util

    return importlib.util.find_spec(package) is not None


def _public_modules():
    """Every module of the fastmf package whose dotted path has no private part (the old paths
    kept as aliases are the same modules, or re-export them, so they add nothing), except those
    whose optional extra is not installed (NEEDS_EXTRA)."""
    names = []
    for info in pkgutil.walk_packages(fastmf.__path__, "fastmf."):
        if any(part.startswith("_") for part in info.name.split(".")[1:]):
            continue
        if not all(_installed(p) for p in NEEDS_EXTRA.get(info.name, ())):
            continue
        names.append(info.name)
    return tuple(names)


MODULES = _public_modules()


def _is_public(name):
    return not name.startswith("_") or name == "__init__"


def _callables_of_class(cls):
    """(name, function) of the methods, classmethods, staticmethods and properties ``cls`` defines."""
    for name, attr in vars(cls).items():
        if not _is_public(name):
            continue
        if isinstance(attr, (classmethod, staticmethod)):
            attr = attr.__func__
        elif isinstance(attr, property):
            attr = attr.fget
        if inspect.isfunction(attr) and attr.__module__ == cls.__module__:
            yield name, attr


def public_callables():
    """{"module.qualname": (module, function)} of every public function and method."""
    found = {}

    def add_object(obj):
        module = importlib.import_module(obj.__module__)
        if inspect.isfunction(obj):
            found[f"{obj.__module__}.{obj.__qualname__}"] = (module, obj)
        elif inspect.isclass(obj):
            for name, fn in _callables_of_class(obj):
                found[f"{obj.__module__}.{obj.__qualname__}.{name}"] = (module, fn)

    for name in fastmf.__all__:
        obj = getattr(fastmf, name)
        if inspect.isfunction(obj) or inspect.isclass(obj):
            add_object(obj)
    for short in MODULES:
        module = importlib.import_module(short)
        for name, obj in vars(module).items():
            if not name.startswith("_") and getattr(obj, "__module__", None) == module.__name__:
                if inspect.isfunction(obj) or inspect.isclass(obj):
                    add_object(obj)
    return found


def missing_annotations(fn):
    """Names of the parameters of ``fn`` without an annotation (``self``/``cls`` exempt), and
    ``"return"`` when the return is not annotated."""
    sig = inspect.signature(fn)
    missing = []
    for i, p in enumerate(sig.parameters.values()):
        if i == 0 and p.name in ("self", "cls"):
            continue
        if p.annotation is inspect.Parameter.empty:
            missing.append(("*" if p.kind is p.VAR_POSITIONAL else "**" if p.kind is p.VAR_KEYWORD else "")
                           + p.name)
    if sig.return_annotation is inspect.Signature.empty:
        missing.append("return")
    return missing


def type_checking_namespace(module):
    """The names bound by the imports under ``if TYPE_CHECKING:`` at the top level of ``module``,
    and {bound name: reason} of those whose import fails (an optional dependency not installed)."""
    tree = ast.parse(inspect.getsource(module))
    namespace, unavailable = {}, {}
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                if not isinstance(stmt, (ast.Import, ast.ImportFrom)):
                    continue
                code = compile(ast.Module(body=[stmt], type_ignores=[]), module.__name__, "exec")
                try:
                    exec(code, namespace)
                except ImportError as exc:
                    for alias in stmt.names:
                        bound = alias.asname or alias.name.split(".")[0]
                        unavailable[bound] = f"{exc} (optional dependency)"
    namespace.pop("__builtins__", None)
    return namespace, unavailable


def test_the_walk_covers_the_public_api():
    found = public_callables()
    # a few of each kind: module function, method, __init__, property, classmethod, staticmethod-free
    for name in ("fastmf.openmp_enabled", "fastmf.app.cli.main", "fastmf.data.split.kfold",
                 "fastmf.models.base.Recommender.get_params", "fastmf.models.base.Recommender.set_params",
                 "fastmf.models.mf.MatrixFactorization.__init__", "fastmf.models.implicit.ImplicitALS.fit",
                 "fastmf.data.ratings.IdMap.ids", "fastmf.data.ratings.IdMap.from_values",
                 "fastmf.data.ratings.Ratings.__init__", "fastmf.data.synthetic.PlantedFactors.predict",
                 "fastmf.plot.factor_map", "fastmf.reference.sgd.sgd_epoch"):
        assert name in found, name
    assert len(found) >= 120, len(found)


def test_every_public_function_is_annotated():
    missing = [f"{name}: {param}" for name, (_, fn) in sorted(public_callables().items())
               for param in missing_annotations(fn)]
    assert not missing, "missing type annotations:\n" + "\n".join(missing)


def test_missing_annotations_are_reported():
    def f(self, a: int, b, *args, c: str = "", **kwargs) -> None:
        pass

    def g(x: int):
        pass

    assert missing_annotations(f) == ["b", "*args", "**kwargs"]
    assert missing_annotations(g) == ["return"]


def test_type_hints_resolve():
    namespaces = {}
    failures, unresolved = [], []
    for name, (module, fn) in sorted(public_callables().items()):
        if module.__name__ not in namespaces:
            namespaces[module.__name__] = type_checking_namespace(module)
        extra, unavailable = namespaces[module.__name__]
        globalns = {**extra, **vars(module)}
        try:
            typing.get_type_hints(fn, globalns=globalns)
        except NameError as exc:
            if exc.name in unavailable:
                unresolved.append(f"{name}: {exc.name}: {unavailable[exc.name]}")
            else:
                failures.append(f"{name}: {exc}")
        except Exception as exc:  # a malformed annotation (TypeError from a bad subscript...)
            failures.append(f"{name}: {type(exc).__name__}: {exc}")
    assert not failures, "type hints that do not resolve:\n" + "\n".join(failures)
    if unresolved:
        pytest.skip("hints naming uninstalled optional dependencies were not checked:\n"
                    + "\n".join(unresolved))

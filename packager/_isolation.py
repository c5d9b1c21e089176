"""A private module namespace for each loaded package, so two packages never share helper modules.

The model file of each load is imported as a fresh top-level module,
``packager_model_<n>``, made a package whose ``__path__`` is the package
directory; its sibling files are its submodules (``packager_model_<n>.utils``).
Model code still writes ``import utils``: every module of the package runs
with its own ``__builtins__`` whose ``__import__`` maps the package's top-level
names to the private ones (also for imports inside functions, at predict
time). Nothing goes on ``sys.path``, and ``sys.modules`` only ever holds the
private names, so another package (or a second load of the same one) cannot
pick these modules up.

Library code that imports by the public name on the model's behalf (unpickling
an object whose class lives in ``utils.py``, say) needs ``sys.modules["utils"]``:
while the model is imported, built and loaded, the package's modules are also
entered under their public names (and found by a meta-path finder when not yet
imported); those entries are removed when loading ends.
"""

from __future__ import annotations

import builtins
import contextvars
import functools
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import itertools
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, Optional

_COUNTER = itertools.count(1)
_NAMESPACES: dict[str, Namespace] = {}
_LOADING: contextvars.ContextVar[Optional[Namespace]] = contextvars.ContextVar(
    "packager_loading", default=None
)


class Namespace:
    """The modules of one loaded package, all under the private top-level name `prefix`."""

    def __init__(self, root: Path, model_file: Path) -> None:
        self.prefix = f"packager_model_{next(_COUNTER)}"
        self.root = root
        self.builtins = dict(vars(builtins), __import__=self._import)
        self._stem = model_file.stem if model_file.parent.resolve() == root.resolve() else None
        self._local: dict[str, bool] = {}
        self._aliases: set[str] = set()
        _install_finder()
        _NAMESPACES[self.prefix] = self

    def model_spec(self, path: Path) -> importlib.machinery.ModuleSpec | None:
        """The spec of the model file: a package over the package directory."""
        loader = _Loader(self.prefix, str(path), self.builtins)
        return importlib.util.spec_from_file_location(
            self.prefix, path, loader=loader, submodule_search_locations=[str(self.root)]
        )

    def private(self, name: str) -> str | None:
        """The private module name for `name` when it is one of the package's own modules."""
        top, dot, rest = name.partition(".")
        if not self.is_local(top):
            return None
        return (self.prefix if top == self._stem else f"{self.prefix}.{top}") + dot + rest

    def owns(self, name: str) -> bool:
        """Whether the module name `name` is one of this package's private names."""
        return name == self.prefix or name.startswith(self.prefix + ".")

    def public(self, name: str) -> str:
        """`name` as model code spells it: without the private prefix."""
        if name == self.prefix:
            return self._stem or name
        return name[len(self.prefix) + 1 :] if self.owns(name) else name

    def is_local(self, top: str) -> bool:
        """Whether the package directory supplies the top-level module `top`."""
        found = self._local.get(top)
        if found is None:
            found = self._local[top] = self._find_local(top)
        return found

    def forget(self) -> None:
        """Drop every module of the package from sys.modules (the model is being closed)."""
        _NAMESPACES.pop(self.prefix, None)
        for name in [n for n in sys.modules if self.owns(n)]:
            sys.modules.pop(name, None)
        self._drop_aliases()

    @contextmanager
    def loading(self) -> Iterator[None]:
        """While inside, library code importing the package's modules by name finds them here."""
        token = _LOADING.set(self)
        try:
            yield
        finally:
            _LOADING.reset(token)
            if _LOADING.get() is not self:
                self._drop_aliases()

    def while_loading(self, fn: Callable[..., Any], is_async: bool = False) -> Callable[..., Any]:
        """`fn` wrapped in `loading()` (awaited inside it when `is_async`)."""
        if is_async:

            async def run_async(*args: Any) -> Any:
                with self.loading():
                    return await fn(*args)

            return run_async

        @functools.wraps(fn)
        def run(*args: Any) -> Any:
            with self.loading():
                return fn(*args)

        return run

    def _find_local(self, top: str) -> bool:
        if top == self._stem:
            return True
        if not top.isidentifier() or top in sys.builtin_module_names:
            return False
        spec = importlib.machinery.PathFinder.find_spec(top, [str(self.root)])
        if spec is None:
            return False
        if spec.origin is not None:
            return True
        try:  # a bare directory counts only when nothing installed has that name (as on sys.path)
            return importlib.util.find_spec(top) is None
        except (ImportError, ValueError):
            return False

    def _import(
        self,
        name: str,
        globals: Any = None,
        locals: Any = None,
        fromlist: Sequence[str] | None = (),
        level: int = 0,
    ) -> ModuleType:
        target = self.private(name) if level == 0 and name else None
        if target is None:
            return builtins.__import__(name, globals, locals, fromlist or (), level)
        try:
            module = builtins.__import__(target, globals, locals, fromlist or (), 0)
        except ModuleNotFoundError as exc:
            if exc.name and self.owns(exc.name):
                shown = self.public(exc.name)
                raise ModuleNotFoundError(f"No module named {shown!r}", name=shown) from None
            raise
        if _LOADING.get() is self:
            self._publish(name)
        if fromlist:
            return module
        top = target if "." not in name else target[: len(target) - len(name.partition(".")[2]) - 1]
        return sys.modules[top]

    def _publish(self, name: str) -> None:
        """While loading, the public names too (C code such as unpickling looks them up there)."""
        parts = name.split(".")
        for end in range(1, len(parts) + 1):
            public = ".".join(parts[:end])
            module = sys.modules.get(self.private(public) or "")
            if module is not None and sys.modules.get(public) is None:
                sys.modules[public] = module
                self._aliases.add(public)

    def _alias(self, public: str) -> importlib.machinery.ModuleSpec | None:
        private = self.private(public)
        if private is None:
            return None
        return importlib.machinery.ModuleSpec(public, _AliasLoader(self, private))

    def _drop_aliases(self) -> None:
        for name in list(self._aliases):
            module = sys.modules.get(name)
            if module is not None and self.owns(getattr(module, "__name__", "")):
                del sys.modules[name]
            self._aliases.discard(name)


class _Loader(importlib.machinery.SourceFileLoader):
    """Source loader that runs the module with the package's own `__builtins__`."""

    def __init__(self, fullname: str, path: str, namespace_builtins: dict[str, Any]) -> None:
        super().__init__(fullname, path)
        self._builtins = namespace_builtins

    def exec_module(self, module: ModuleType) -> None:
        module.__dict__["__builtins__"] = self._builtins
        super().exec_module(module)


class _AliasLoader(importlib.abc.Loader):
    """Gives library code the package's already private module under its public name."""

    def __init__(self, namespace: Namespace, private: str) -> None:
        self._namespace = namespace
        self._private = private
        self._spec: Any = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self._private)
        self._spec = module.__spec__
        self._namespace._aliases.add(spec.name)
        return module

    def exec_module(self, module: ModuleType) -> None:
        module.__spec__ = self._spec  # the import system set the alias's spec on it


class _Finder(importlib.abc.MetaPathFinder):
    """Finds the private submodules of loaded packages, and public names while one loads."""

    packager_isolation = True

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        top, dot, _ = fullname.partition(".")
        namespace = _NAMESPACES.get(top)
        if namespace is not None:
            return _private_spec(namespace, fullname, path) if dot else None
        loading = _LOADING.get()
        return loading._alias(fullname) if loading is not None else None


def _private_spec(
    namespace: Namespace, fullname: str, path: Sequence[str] | None
) -> importlib.machinery.ModuleSpec | None:
    spec = importlib.machinery.PathFinder.find_spec(fullname, path)
    if spec is not None and type(spec.loader) is importlib.machinery.SourceFileLoader and spec.origin:
        spec.loader = _Loader(fullname, spec.origin, namespace.builtins)
    return spec


def _install_finder() -> None:
    if not any(getattr(finder, "packager_isolation", False) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Finder())


def loading_namespace() -> Namespace | None:
    """The namespace whose model is being imported, built or loaded here, if any (reload_cache)."""
    return _LOADING.get()


def namespace_of(module_name: str) -> Namespace | None:
    """The namespace a private module name belongs to."""
    return _NAMESPACES.get(module_name.partition(".")[0])

"""Finding spec files and merging `extends` and `imports` into one document.

- A spec is named by path (`specs/resnet50.yaml`) or by name (`resnet50`, looked up in `$ARCHSPEC_PATH` and then
  in the specs shipped with archspec). `archspec:lib/resnet.yaml` names a shipped file from anywhere.
- `extends: base.yaml` starts from another spec; `imports: [lib.yaml]` brings a library's params, blocks, recipe
  and constraints (never its name or description: only the spec's own file and what it extends name and
  describe the spec).
  Paths are relative to the file that names them and must stay inside the folder of the spec being loaded.
- Merging (`archspec.lang.merging`): mappings merge key by key (a child can change one param default of one
  block); lists and scalars are replaced; `constraints` accumulate; a block's `edit:`, `insert_before:` and
  `insert_after:` change named items of the body it inherits. Every merged value keeps the location of the file
  that wrote it.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from archspec.lang.codes import (BLOCK_IN_TWO_LIBRARIES, LIBRARY_DEFINES_NETWORK, NETWORK_MERGE_CONFLICT,
                                 REFERENCED_FILE_CYCLE, REFERENCED_FILE_NOT_FOUND, REFERENCED_FILE_OUTSIDE_TREE,
                                 UNKNOWN_SPEC, UNREADABLE_FILE, WRONG_TYPE)
from archspec.lang.diagnostics import Diagnostic, Loc, Sources, SpecError, did_you_mean
from archspec.lang.files import file_kind
from archspec.lang.merging import BodyEdit, has_edits, item_name, merge_files
from archspec.lang.params import LIBRARY, PARENT, TOP, TOP_LIBRARY, ParamTable
from archspec.lang.yamlsrc import LocDict, LocList, display_path, parse, read_text

PACKAGED_PREFIX = "archspec:"
MAX_CHAIN = 32
LIBRARY_FORBIDDEN = ("network", "input", "output", "extends")
LIBRARY_OWN = ("imports", "name", "description")  # a library's own: never merged into the spec importing it


def packaged_specs_dir() -> Path:
    """The specs shipped with archspec: `archspec/specs` when installed, `specs/` in the source tree."""
    package = Path(__file__).resolve().parent.parent  # archspec/
    for candidate in (package / "specs", package.parent / "specs"):
        if (candidate / "archspec.schema.json").is_file():
            return candidate
    return package.parent / "specs"


def shipped(path: Path) -> bool:
    """Whether `path` is one of the files archspec ships (not one the user wrote)."""
    try:
        return packaged_specs_dir().resolve() in path.resolve().parents
    except (OSError, ValueError):
        return False


def search_dirs() -> list[Path]:
    extra = [Path(p) for p in os.environ.get("ARCHSPEC_PATH", "").split(os.pathsep) if p]
    return extra + [packaged_specs_dir()]


ZOO_FOLDERS = ("timm",)  # folders of specs named by FOLDER/NAME (timm/resnet50: timm's model of that name)


def available_specs() -> dict[str, Path]:
    """Spec names that `archspec validate NAME` accepts, first match wins: NAME for the specs of a search
    folder, FOLDER/NAME for those of its zoo folders (`timm/resnet50`)."""
    out: dict[str, Path] = {}
    for d in search_dirs():
        if d.is_dir():
            for p in sorted(d.glob("*.yaml")):
                out.setdefault(p.stem, p)
            for zoo in ZOO_FOLDERS:
                for p in sorted((d / zoo).glob("*.yaml")):
                    out.setdefault(f"{zoo}/{p.stem}", p)
    return out


def _is_file(path: Path) -> bool:
    """`path.is_file()`, but False for names the file system cannot even look up (too long, NUL, ...)."""
    try:
        return path.is_file()
    except (OSError, ValueError):
        return False


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):
        return False


def locate(ref: str | os.PathLike) -> Path:
    """The file a user means by `ref`, or a SpecError saying what exists."""
    text = os.fspath(ref)
    if text.startswith(PACKAGED_PREFIX):
        path = packaged_specs_dir() / text[len(PACKAGED_PREFIX):]
        if _is_file(path):
            return path
        raise SpecError([Diagnostic(UNKNOWN_SPEC, f"archspec ships no file {text[len(PACKAGED_PREFIX):]}",
                                    Loc(text, 0, 0), hint="`archspec list` shows the shipped specs")])
    path = Path(text)
    if _exists(path):
        return path
    zoo_name = text.partition("/")[0] in ZOO_FOLDERS and text.count("/") == 1 and not path.suffix
    looks_like_path = not zoo_name and (os.sep in text or "/" in text or path.suffix in (".yaml", ".yml", ".json"))
    if not looks_like_path:
        specs = available_specs()
        if text in specs:
            return _regular(text, specs[text])
        hint = did_you_mean(text, specs) or "`archspec list` shows the shipped specs"
        raise SpecError([Diagnostic(UNKNOWN_SPEC, f"no spec named `{text}`", Loc(text, 0, 0), hint=hint)])
    shown = text if len(text) <= 120 else text[:117] + "..."
    broken = broken_link(path)
    if broken:
        raise SpecError([Diagnostic(UNREADABLE_FILE, f"{shown} {broken}", Loc(shown, 0, 0),
                                    hint="point the link at a real file, or remove it")])
    hint = None
    if _exists(path.parent) and path.parent.is_dir() and len(path.name) < 256:
        hint = did_you_mean(path.name, [p.name for p in path.parent.iterdir()
                                        if p.suffix in (".yaml", ".yml") and p.name != path.name])
    raise SpecError([Diagnostic(UNREADABLE_FILE, f"no such file: {shown}", Loc(shown, 0, 0), hint=hint)])


def _regular(name: str, path: Path) -> Path:
    """The file a spec's name was found as, if it is a regular file; else E123 saying what it is. A FIFO, a folder
    or a device found by name is never opened (a FIFO's writer could keep archspec waiting), nor passed over for
    a later folder's file of the same name."""
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        return path  # a broken link or a file that just went: reading it says so
    if stat.S_ISREG(mode):
        return path
    where = "through ARCHSPEC_PATH" if not _inside(path.parent.resolve(), packaged_specs_dir().resolve()) else \
        "among the shipped specs"
    kind = "a folder, not a spec file" if stat.S_ISDIR(mode) else f"not a regular file but {file_kind(mode)}"
    raise SpecError([Diagnostic(
        UNKNOWN_SPEC, f"`{name}` names {display_path(path)} (found {where}), which is {kind}", Loc(name, 0, 0),
        hint=f"a spec found by its name must be a regular .yaml file: replace {display_path(path)}, or give the "
        "path of the spec you mean")])


def broken_link(path: Path) -> str | None:
    """Why the symlink `path` leads to no file (`is a symlink loop: a -> b -> a`, `is a symlink to x, which does
    not exist`), or None when `path` is no symlink or its target exists."""
    try:
        if not path.is_symlink():
            return None
        seen: list[Path] = [path]
        current = path
        while current.is_symlink() and len(seen) <= 40:
            current = current.parent / os.readlink(current)
            if any(os.path.normpath(current) == os.path.normpath(p) for p in seen):
                chain = " -> ".join(display_path(p) for p in seen + [current])
                return f"is a symlink loop: {chain}"
            seen.append(current)
        if len(seen) > 40:
            return "is a chain of more than 40 symlinks (a loop?)"
        if not current.exists():
            return f"is a symlink to {display_path(current)}, which does not exist"
    except OSError as e:
        return f"is a symlink that cannot be followed: {e.strerror or e}"
    return None


@dataclass
class Resolved:
    doc: LocDict  # the merged document
    files: list[str] = field(default_factory=list)  # every file read, in order
    params: ParamTable = field(default_factory=ParamTable)  # declarations, values in force, histories
    blocks: dict[str, list[tuple[str, Loc | None, str, str]]] = field(default_factory=dict)  # (what, loc, file, role)
    order: list[tuple[str, str]] = field(default_factory=list)  # (file, role), in the order they were merged


class Resolver:
    """Loads, schema-checks and merges the files of one spec. Collects problems rather than stopping at one."""

    def __init__(self, sources: Sources, checker: Any, root: Path, packaged: Path | None = None):
        self.sources = sources
        self.checker = checker
        self.root = root.resolve()
        self.packaged = (packaged or packaged_specs_dir()).resolve()
        self.cache: dict[Path, LocDict | None] = {}
        self.diags: list[Diagnostic] = []
        self.files: list[str] = []

    # -- files ---------------------------------------------------------------------------------------------

    def read(self, path: Path) -> LocDict | None:
        given, path = path, path.resolve()
        if not _exists(path) and _exists(given):
            path = given  # a pipe (`archspec validate <(cat spec)`): its link names no file, the path itself reads
        if path in self.cache:
            return self.cache[path]
        self.cache[path] = None
        display = display_path(path)
        self.files.append(display)
        try:
            text = read_text(path, display, self.sources)
            doc = parse(text, display)
        except SpecError as e:
            self.diags.extend(e.diagnostics)
            return None
        problems = self.checker.check_text(doc, display, text)
        if problems:
            self.diags.extend(problems)
            return None
        self.cache[path] = doc
        return doc

    def target(self, owner: Path, doc: LocDict, key: str, index: int | None = None) -> Path | None:
        """Resolve the path written at doc[key] (or doc[key][index]) relative to `owner`, inside the root."""
        container = doc[key] if index is not None else doc
        k = index if index is not None else key
        raw = container[k]
        loc = container.val_loc(k)
        if not isinstance(raw, str):  # the schema says so first; this keeps an unchecked file from crashing here
            self.diags.append(Diagnostic(WRONG_TYPE, f"`{key}` names a file by its path (a string), found a "
                                         f"{type(raw).__name__}", loc))
            return None
        try:
            if raw.startswith(PACKAGED_PREFIX):
                path = (self.packaged / raw[len(PACKAGED_PREFIX):]).resolve()
                inside = _inside(path, self.packaged)
            else:
                path = (owner.parent / raw).resolve()
                inside = _inside(path, self.root) or (_inside(owner.resolve(), self.packaged)
                                                      and _inside(path, self.packaged))
        except (OSError, ValueError, RuntimeError) as e:
            broken = broken_link(owner.parent / raw) if isinstance(e, (OSError, RuntimeError)) else None
            why = f"{raw} {broken}" if broken else getattr(e, 'strerror', None) or e
            self.diags.append(Diagnostic(REFERENCED_FILE_NOT_FOUND, f"`{key}` names a path that cannot be used: {why}",
                                         loc))
            return None
        if not inside:
            self.diags.append(self._outside(key, raw, owner, path, loc))
            return None
        if _exists(path) and not _is_file(path):
            kind, hint = _not_a_spec_file(path)
            self.diags.append(Diagnostic(REFERENCED_FILE_NOT_FOUND, f"`{key}` names {raw}, which is {kind}", loc,
                                         hint=hint))
            return None
        if not _is_file(path):
            hint = None
            if _exists(path.parent) and path.parent.is_dir():
                hint = did_you_mean(path.name, _spec_files(path.parent))
            self.diags.append(Diagnostic(REFERENCED_FILE_NOT_FOUND, f"`{key}` names {raw}, which does not exist "
                                         f"({display_path(path)})", loc, hint=hint))
            return None
        return path

    def _outside(self, key: str, raw: str, owner: Path, path: Path, loc: Loc | None) -> Diagnostic:
        """E122 for a target outside the tree: a plain `../` path, or a symlink inside the tree leading out."""
        tree = display_path(self.root)
        link = _symlink_on_the_way(owner.parent, raw)
        if link is None:
            return Diagnostic(REFERENCED_FILE_OUTSIDE_TREE, f"`{key}: {raw}` leaves the spec's folder tree ({tree})",
                              loc, hint="keep shared files beside or below the spec, or use `archspec:lib/...` for "
                              "shipped ones")
        what = "is a symlink" if link == Path(os.path.normpath(owner.parent / raw)) else \
            f"goes through the symlink {display_path(link)} and so leads"
        return Diagnostic(REFERENCED_FILE_OUTSIDE_TREE, f"`{key}: {raw}` {what} to {display_path(path)}, outside the "
                          f"spec's folder tree ({tree}); symlinks are followed and must stay inside it", loc,
                          hint="copy the file into the spec's folder (or below it) instead of linking to it, or "
                          "use `archspec:lib/...` for shipped ones")

    # -- merging ------------------------------------------------------------------------------------------

    def resolve(self, top: Path) -> Resolved:
        """Merge the files of one spec in order: the root of the `extends` chain first, each file after the
        libraries it imports (each library after its own). A file is merged once: importing it again, directly
        or through another library, changes nothing (it never resets what a parent or an earlier file set)."""
        chain = self._extends_chain(top)
        state = _Merge()
        for depth, (path, doc) in enumerate(reversed(chain)):
            role = TOP if depth == len(chain) - 1 else PARENT
            self._merge_file(state, path, doc, role, (path.resolve(),), root=depth == 0)
        merged = state.doc
        if state.params.entries:
            merged["params"] = state.params.doc()
        if chain:
            merged.loc = chain[0][1].loc
        if not self.diags:
            self.diags.extend(state.params.missing())
        if self.diags:
            raise SpecError(self.diags)
        return Resolved(merged, self.files, state.params, state.blocks, state.order)

    def _merge_file(self, state: "_Merge", path: Path, doc: LocDict, role: str, stack: tuple[Path, ...],
                    root: bool = False) -> None:
        """Merge one file (after its imports). A plain param value declares a param in the file that starts the
        chain and in libraries; in a file that extends another it assigns one declared before."""
        state.done.add(path.resolve())
        library_role = TOP_LIBRARY if role in (TOP, TOP_LIBRARY) else LIBRARY
        if role == TOP_LIBRARY and shipped(path):
            role = LIBRARY  # a shipped library is archspec's, not the user's doing, whoever imports it
        if not _shaped(doc, self.diags):
            return
        for i in range(len(doc.get("imports", []))):
            lib_path = self.target(path, doc, "imports", i)
            if lib_path is None:
                continue
            loc = doc["imports"].val_loc(i)
            if lib_path.resolve() in stack:
                cycle = " -> ".join(display_path(p) for p in stack + (lib_path.resolve(),))
                self.diags.append(Diagnostic(REFERENCED_FILE_CYCLE, f"`imports` go round in a cycle: {cycle}", loc))
                continue
            if lib_path.resolve() in state.done:
                continue  # merged already (by a parent or another library): once is enough
            if len(stack) >= MAX_CHAIN:
                self.diags.append(Diagnostic(REFERENCED_FILE_CYCLE, f"`imports` are nested more than {MAX_CHAIN} deep",
                                             loc))
                continue
            lib = self.read(lib_path)
            if lib is None:
                continue
            bad = [k for k in LIBRARY_FORBIDDEN if k in lib]
            if bad:
                self.diags.append(Diagnostic(
                    LIBRARY_DEFINES_NETWORK,
                    f"{display_path(lib_path)} is imported as a library but defines `{bad[0]}`",
                    lib.key_loc(bad[0]), hint="use `extends:` to start from another spec; `imports:` is for "
                    "files of params, blocks and recipes"))
                continue
            self._merge_file(state, lib_path, lib, library_role, stack + (lib_path.resolve(),))
        # a library's name and description are the library's, not those of the spec that imports it
        skip = ("extends", "imports", "params", "network") + (LIBRARY_OWN if role in (LIBRARY, TOP_LIBRARY) else ())
        own = LocDict({k: v for k, v in doc.items() if k not in skip}, loc=doc.loc)
        own.key_locs, own.val_locs = doc.key_locs, doc.val_locs
        here = display_path(path)
        state.order.append((here, role))
        self._note_blocks(state, own, here, role)
        state.params.merge_file(doc.get("params"), here, role, may_declare=root or role in (LIBRARY, TOP_LIBRARY),
                                diags=self.diags)
        state.doc = merge_files(state.doc, own, self.diags)
        if "network" in doc:
            self._merge_network(state, doc, here)

    def _note_blocks(self, state: "_Merge", own: LocDict, here: str, role: str) -> None:
        """Where each block comes from; a block that two libraries define is E126."""
        for name, template in own.get("blocks", {}).items():
            loc = own["blocks"].key_loc(name)
            edits = has_edits(template)
            history = state.blocks.setdefault(name, [])
            if not edits and role in (LIBRARY, TOP_LIBRARY):
                first = next((h for h in history if h[0] == "defined" and h[3] in (LIBRARY, TOP_LIBRARY)), None)
                if first is not None and first[2] != here:
                    self.diags.append(Diagnostic(
                        BLOCK_IN_TWO_LIBRARIES, f"block `{name}` is defined by both {first[2]} and {here}", loc,
                        hint="rename one of them, or import only one library"))
            history.append(("edited" if edits else "defined" if name not in state.doc.get("blocks", {})
                            else "redefined", loc, here, role))

    def _merge_network(self, state: "_Merge", doc: LocDict, here: str) -> None:
        """A spec's `network:`: the whole list in a spec that starts one; over a parent's network, item edits
        (`network: {edit: ..., insert_before: ..., insert_after: ...}`) or an explicit `network: {replace: [...]}`.
        A plain list over a parent's network would drop it silently: E216."""
        network, key_loc = doc["network"], doc.key_loc("network")
        parent = state.doc.get("network")
        if isinstance(network, LocDict):
            if "replace" in network:
                if "description" not in doc and state.doc.get("description") is not None:
                    self.diags.append(Diagnostic(
                        NETWORK_MERGE_CONFLICT, "this file replaces the whole network of the spec it extends, but "
                        "not its description, which describes the network replaced", network.key_loc("replace"),
                        hint=f"give this spec its own `description:` (the parent's begins "
                        f"\"{_opening(state.doc['description'])}\")"))
                state.set_network(network["replace"], key_loc, network.val_loc("replace"))
            elif parent is None:
                self.diags.append(Diagnostic(
                    NETWORK_MERGE_CONFLICT,
                    "`network:` edits items, but no file merged before this one has a network to edit",
                    key_loc, hint="write the network as a list (`network: [- conv1: {...}, ...]`), or extend "
                    "the spec whose network you mean to change"))
            else:
                edited = BodyEdit("network", parent, network, self.diags, what="the network").apply()
                state.set_network(edited, key_loc, state.doc.val_loc("network"))
            return
        if parent is not None:
            names = [n for n in (item_name(it) for it in parent) if n is not None]
            first = item_name(network[0]) if isinstance(network, LocList) and network else None
            example = first if first in names else names[0] if names else "conv1"
            self.diags.append(Diagnostic(
                NETWORK_MERGE_CONFLICT, "this `network:` list would replace the whole network of the spec this file "
                f"extends ({len(parent)} items: {', '.join(names[:4])}{', ...' if len(names) > 4 else ''})", key_loc,
                hint=f"to change items, write `network: {{edit: {{{example}: {{...}}}}}}` (also `insert_before:` "
                "and `insert_after:`); to replace the whole network on purpose, write `network: {replace: [...]}`"))
            return
        state.set_network(network, key_loc, doc.val_loc("network"))

    def _extends_chain(self, top: Path) -> list[tuple[Path, LocDict]]:
        chain: list[tuple[Path, LocDict]] = []
        seen: list[Path] = []
        path: Path | None = top
        while path is not None:
            doc = self.read(path)
            if doc is None:
                break
            chain.append((path, doc))
            seen.append(path.resolve())
            if "extends" not in doc:
                break
            nxt = self.target(path, doc, "extends")
            if nxt is None:
                break
            if nxt.resolve() in seen:
                cycle = " -> ".join(display_path(p) for p in seen + [nxt.resolve()])
                self.diags.append(Diagnostic(REFERENCED_FILE_CYCLE, f"`extends` goes round in a cycle: {cycle}",
                                             doc.val_loc("extends"), hint="one of these files must not extend"))
                break
            if len(chain) >= MAX_CHAIN:
                self.diags.append(Diagnostic(REFERENCED_FILE_CYCLE, f"`extends` chain is longer than {MAX_CHAIN} files",
                                             doc.val_loc("extends")))
                break
            path = nxt
        return chain


def _opening(text: Any) -> str:
    words = " ".join(str(text).split())
    return words if len(words) <= 60 else words[:57] + "..."


class _Merge:
    """The state of one resolution: the document so far, the files merged, the params and the blocks' origins."""

    def __init__(self) -> None:
        self.doc = LocDict(loc=None)
        self.done: set[Path] = set()
        self.params = ParamTable()
        self.blocks: dict[str, list[tuple[str, Loc | None, str, str]]] = {}
        self.order: list[tuple[str, str]] = []

    def set_network(self, network: Any, key_loc: Loc | None, val_loc: Loc | None) -> None:
        self.doc["network"] = network
        self.doc.key_locs["network"], self.doc.val_locs["network"] = key_loc, val_loc


def _shaped(doc: LocDict, diags: list[Diagnostic]) -> bool:
    """Whether `imports` is a list and `blocks` a mapping, as merging needs (E100 if not). The schema says so
    before a file is merged: this is the defence in depth that keeps a file it never saw from crashing the merge."""
    ok = True
    for key, kind, name in (("imports", list, "a list of paths"), ("blocks", dict, "a mapping of block templates")):
        if key in doc and not isinstance(doc[key], kind):
            diags.append(Diagnostic(WRONG_TYPE, f"`{key}` should be {name}", doc.val_loc(key)))
            ok = False
    return ok


MAX_LISTED = 10_000  # entries of a folder looked at for suggestions (a huge folder is not read to the end)


def _spec_files(folder: Path) -> list[str]:
    """Names of the regular `.yaml` files in `folder` (what an `extends` or `imports` can name), for a near miss:
    never a FIFO, a folder or a device, which could only be refused in turn."""
    names = []
    try:
        for i, p in enumerate(folder.iterdir()):
            if i >= MAX_LISTED:
                break
            if p.suffix == ".yaml" and _is_file(p):
                names.append(p.name)
    except OSError:
        pass
    return names


def _not_a_spec_file(path: Path) -> tuple[str, str]:
    """What `path` (which exists) is instead of a spec file, and the help line: it is only ever looked at with
    stat(), never opened, so a FIFO cannot block."""
    try:
        mode = path.stat().st_mode
    except (OSError, ValueError):
        return "not a regular file", "name a .yaml file"
    if stat.S_ISDIR(mode):
        inside = sorted(_spec_files(path))
        listed = ", ".join(f"`{n}`" for n in inside[:5]) + (", ..." if len(inside) > 5 else "")
        return "a folder, not a spec file", (f"name a .yaml file in it ({listed})" if inside else
                                             "name a .yaml file (this folder holds none)")
    return f"not a regular file but {file_kind(mode)}", ("name a .yaml file: a pipe is read only as the spec itself "
                                              "(`archspec validate <(...)`)" if stat.S_ISFIFO(mode)
                                              else "name a .yaml file")


def _symlink_on_the_way(folder: Path, raw: str) -> Path | None:
    """The first symlink among the folders and file that `raw` (relative to `folder`) passes through, or None."""
    target, start = Path(os.path.normpath(folder / raw)), Path(os.path.normpath(folder))
    for p in reversed([target, *target.parents]):
        if p == start or p in start.parents:
            continue
        try:
            if p.is_symlink():
                return p
        except OSError:
            return None
    return None


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
        return True
    except ValueError:
        return False

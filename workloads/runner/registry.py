#!/usr/bin/env python3
"""The registry of models and modes (workloads/models.toml), for everything that needs it:
the benchmark runner, the claims table, the test suites and meson.

    python3 workloads/runner/registry.py test-runs [--sanitized] [--toml FILE]

prints the test runs, one a line, fields separated by tabs: the run's name, the model, the
program (empty for a server meson builds: meson takes it from triad_servers; otherwise a path
relative to the source root), the suites that run it (comma-separated), then the server
arguments. tests/meson.build reads this at
configure time; meson reconfigures when models.toml or this file changes.

Standard library only, and no imports from the rest of the repository: meson runs this file
as a script, before anything is built.
"""

import argparse
import os
import sys
import tomllib
from dataclasses import dataclass, field

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOML = os.path.join(ROOT, "workloads", "models.toml")

KINDS = ("mirror", "floor", "peer")
MODEL_KEYS = {"kind", "bin", "script", "role", "modes", "tests", "sanitizer_args", "endpoints",
              "pairs", "jit", "suites"}
SUITES = ("conformance", "hostile", "faults")     # the suites meson runs per test run


class RegistryError(ValueError):
    pass


@dataclass
class Model:
    name: str
    role: str
    modes: dict = field(default_factory=lambda: {"default": []})
    kind: str = "mirror"
    bin: str = None             # relative to the build directory
    script: str = None          # relative to the source root
    tests: list = field(default_factory=list)
    sanitizer_args: list = field(default_factory=list)
    endpoints: list = None
    pairs: dict = None          # a peer's mode -> the mirror modes it stands beside
    jit: bool = False           # a JIT runtime: primed before /cpu is measured (peers.prime)
    suites: dict = field(default_factory=dict)  # test mode -> the suites that run it
    program: str = None         # the absolute path, once resolved (resolve())

    def resolve(self, build_dir, root=ROOT):
        """Sets `program`: bin under build_dir (None when there is no build directory), or
        script under the source root."""
        if self.script:
            self.program = os.path.join(root, self.script)
        elif build_dir:
            self.program = os.path.join(os.path.abspath(build_dir), self.bin)
        return self

    @property
    def built(self):
        p = self.program
        return bool(p) and os.path.isfile(p) and os.access(p, os.X_OK)

    def mode_args(self, mode):
        """The arguments of a mode name like "gil" or "gil+workers2"; None if this model lacks
        one of its parts."""
        args = []
        for part in mode.split("+"):
            if part not in self.modes:
                return None
            args += self.modes[part]
        return args

    def paired_modes(self, mode):
        """The mirror modes a peer's mode stands beside, in order of preference (a mode that is
        not in `pairs` stands beside the mirror mode of the same name)."""
        return list((self.pairs or {}).get(mode, [mode]))

    def peer_modes_for(self, mirror_modes):
        """A peer's modes to run where a scenario asks its mirrors for mirror_modes."""
        return [m for m in self.modes
                if any(mm in mirror_modes for mm in self.paired_modes(m))]

    def serves(self, path):
        if not self.endpoints:
            return True
        p = path.split("?", 1)[0]
        return any(p == e or p.startswith(e.rstrip("/") + "/") for e in self.endpoints)


@dataclass
class TestRun:
    """One run of the test suites: a model in one mode."""
    name: str
    model: Model
    mode: str
    args: list
    suites: tuple = SUITES


def _strings(value):
    return isinstance(value, list) and all(isinstance(a, str) for a in value)


def _model(path, name, m):
    where = "%s: model %s" % (path, name)
    unknown = set(m) - MODEL_KEYS
    if unknown:
        raise RegistryError("%s: unknown keys %s" % (where, ", ".join(sorted(unknown))))
    if ("bin" in m) == ("script" in m):
        raise RegistryError("%s: give exactly one of bin (built by meson) and script" % where)
    if "role" not in m:
        raise RegistryError("%s has no role" % where)
    kind = m.get("kind", "mirror")
    if kind not in KINDS:
        raise RegistryError("%s: kind must be one of %s" % (where, ", ".join(KINDS)))
    modes = m.get("modes", {"default": []})
    if "default" not in modes:
        raise RegistryError("%s: no default mode" % where)
    for mode, args in modes.items():
        if "+" in mode:
            raise RegistryError("%s: mode %s: '+' joins modes in scenarios, not in names"
                                % (where, mode))
        if not _strings(args):
            raise RegistryError("%s mode %s: args must be a list of strings" % (where, mode))
    pairs = m.get("pairs")
    if pairs is not None:
        if kind != "peer":
            raise RegistryError("%s: pairs is for peers (kind = \"peer\")" % where)
        if not isinstance(pairs, dict) or not all(_strings(v) and v for v in pairs.values()):
            raise RegistryError("%s: pairs must map modes to non-empty lists of mirror modes"
                                % where)
        extra = sorted(set(pairs) - set(modes))
        if extra:
            raise RegistryError("%s: pairs names modes it does not have: %s"
                                % (where, ", ".join(extra)))
    model = Model(name=name, role=m["role"], modes=modes, kind=kind, bin=m.get("bin"),
                  script=m.get("script"), tests=m.get("tests", []),
                  sanitizer_args=m.get("sanitizer_args", []), endpoints=m.get("endpoints"),
                  pairs=pairs, jit=m.get("jit", False), suites=m.get("suites", {}))
    if not isinstance(model.jit, bool):
        raise RegistryError("%s: jit must be true or false" % where)
    if not _strings(model.tests) or not _strings(model.sanitizer_args):
        raise RegistryError("%s: tests and sanitizer_args must be lists of strings" % where)
    for mode in model.tests:
        if model.mode_args(mode) is None:
            raise RegistryError("%s: tests names mode %s, which it does not have" % (where, mode))
    if not isinstance(model.suites, dict):
        raise RegistryError("%s: suites must map test modes to lists of suites" % where)
    for (mode, suites) in model.suites.items():
        if mode not in model.tests:
            raise RegistryError("%s: suites names %s, which is not in tests" % (where, mode))
        if not _strings(suites) or not set(suites) <= set(SUITES):
            raise RegistryError("%s: suites.%s must list some of %s"
                                % (where, mode, ", ".join(SUITES)))
    return model


def load(path=TOML, build_dir=None, root=ROOT):
    """The models in registry order, their programs resolved against build_dir and root."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise RegistryError("%s: %s" % (path, e))
    models = [_model(path, name, m).resolve(build_dir, root)
              for name, m in data.get("models", {}).items()]
    if not models:
        raise RegistryError("%s: no [models.NAME] table" % path)
    return models


def find(models, name):
    return next((m for m in models if m.name == name), None)


def mirror_of(models, peer):
    """The mirror a peer stands beside: the model of its role that is not a peer."""
    return next((m for m in models if m.kind == "mirror" and m.role == peer.role), None)


def peer_of(models, mirror):
    """The peer (real runtime) of a mirror's role, if the registry has one."""
    return next((m for m in models if m.kind == "peer" and m.role == mirror.role), None)


def role_names(models):
    """role -> the name of the model that stands for it in the claims (peers never do)."""
    out = {}
    for m in models:
        if m.kind != "peer":
            out.setdefault(m.role, m.name)
    return out


def run_name(model, mode):
    return model.name if mode == "default" else "%s-%s" % (model.name, mode.replace("+", "-"))


def test_runs(models, sanitized=False, suite=None):
    """Every model's test modes, in registry order (only those `suite` runs, if given)."""
    runs = []
    for m in models:
        for mode in m.tests:
            args = m.mode_args(mode) + (m.sanitizer_args if sanitized else [])
            suites = tuple(m.suites.get(mode, SUITES))
            if suite is None or suite in suites:
                runs.append(TestRun(run_name(m, mode), m, mode, args, suites))
    names = [r.name for r in runs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise RegistryError("test runs with the same name: %s" % ", ".join(dup))
    return runs


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=["test-runs"])
    p.add_argument("--toml", default=TOML)
    p.add_argument("--sanitized", action="store_true",
                   help="a sanitizer build: add each model's sanitizer_args")
    opts = p.parse_args(argv)
    try:
        runs = test_runs(load(opts.toml), opts.sanitized)
    except RegistryError as e:
        print("registry: %s" % e, file=sys.stderr)
        return 1
    for r in runs:
        fields = [r.name, r.model.name, r.model.script or "", ",".join(r.suites)] + r.args
        if any("\t" in f or "\n" in f for f in fields):
            print("registry: %s: a tab or newline in an argument" % r.name, file=sys.stderr)
            return 1
        print("\t".join(fields))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

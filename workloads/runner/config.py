"""Profiles, scenario files, and the plan built from them and the models (registry.py)."""

import glob
import os
import re
import tomllib
from dataclasses import dataclass, field

# The run order; scenarios added later run after these, alphabetically.
SCENARIO_ORDER = ["hello", "cpu-bound", "io-bound", "upstream-bound", "head-of-line", "db", "idle",
                  "fanout"]
KINDS = ("wrk", "open-loop", "idle")
STEP_KEYS = {"name", "kind", "path", "method", "body", "content_type", "pipeline",
             "connections", "vary", "duration", "warmup", "open_loop_warmup", "repeats", "hold",
             "modes", "models", "with_postgres",
             "profiles", "service_ms", "rate", "clients", "stagger", "background",
             "peer_connections", "exclude"}
SCENARIO_KEYS = {"title", "description", "modes", "models", "profiles", "step", "upstream",
                 "peer_modes", "exclude"}
UPSTREAM_KEYS = {"model", "mode", "args"}


class ConfigError(ValueError):
    pass


def load_toml(path):
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise ConfigError("%s: %s" % (path, e))


# ----------------------------------------------------------------------- profiles

def load_profiles(path):
    data = load_toml(path)
    for name, p in data.items():
        for key in ("warmup", "duration", "repeats"):
            if key not in p:
                raise ConfigError("%s: profile %s lacks %s" % (path, name, key))
    return data


def by_profile(value, profile, profile_names):
    """Pick value[profile] when value is a table keyed by profile names (or "default")."""
    if isinstance(value, dict) and value and set(value) <= set(profile_names) | {"default"}:
        if profile in value:
            return value[profile]
        return value.get("default")
    return value


# ---------------------------------------------------------------------- scenarios

@dataclass
class Scenario:
    name: str
    path: str
    data: dict

    @property
    def title(self):
        return self.data.get("title", self.name)

    @property
    def description(self):
        return " ".join(self.data.get("description", "").split())


def scenario_files(scenario_dir):
    files = {os.path.splitext(os.path.basename(p))[0]: p
             for p in glob.glob(os.path.join(scenario_dir, "*.toml"))}
    order = [n for n in SCENARIO_ORDER if n in files]
    order += sorted(n for n in files if n not in SCENARIO_ORDER)
    return [(n, files[n]) for n in order]


def load_scenario(name, path):
    data = load_toml(path)
    unknown = set(data) - SCENARIO_KEYS
    if unknown:
        raise ConfigError("%s: unknown keys %s" % (path, ", ".join(sorted(unknown))))
    steps = data.get("step", [])
    if not steps:
        raise ConfigError("%s: no [[step]]" % path)
    for i, st in enumerate(steps):
        unknown = set(st) - STEP_KEYS
        if unknown:
            raise ConfigError("%s: step %d: unknown keys %s" % (path, i + 1,
                                                                ", ".join(sorted(unknown))))
        if "path" not in st:
            raise ConfigError("%s: step %d has no path" % (path, i + 1))
        if st.get("kind", "wrk") not in KINDS:
            raise ConfigError("%s: step %d: kind must be one of %s" % (path, i + 1, KINDS))
        st.setdefault("name", "step%d" % (i + 1))
    up = data.get("upstream")
    if up is not None:
        if not isinstance(up, dict) or "model" not in up or set(up) - UPSTREAM_KEYS:
            raise ConfigError("%s: upstream must be a table with model (and optionally mode, "
                              "args)" % path)
    return Scenario(name, path, data)


# --------------------------------------------------------------------------- plan

_CORES_RE = re.compile(r"^\s*(?:(\d+)\s*\*\s*)?cores\s*$")
_CPU_RE = re.compile(r"\$\{cpu_iterations:(\d+(?:\.\d+)?)\}")
_VAR_RE = re.compile(r"\{(\w+)\}")


def conn_count(v, cores):
    if isinstance(v, int):
        return v
    m = _CORES_RE.match(str(v))
    if not m:
        raise ConfigError("bad connection count %r (use an integer, 'cores' or 'N*cores')" % v)
    return int(m.group(1) or 1) * cores


def needs_cpu_calibration(text):
    return bool(_CPU_RE.search(text))


def expand_path(template, variables, cpu_iters_per_ms):
    def cpu(m):
        if cpu_iters_per_ms is None:
            raise ConfigError("no /cpu calibration available for %s" % template)
        return str(max(1, min(10_000_000, int(round(float(m.group(1)) * cpu_iters_per_ms)))))

    out = _CPU_RE.sub(cpu, template)
    return _VAR_RE.sub(lambda m: str(variables[m.group(1)]) if m.group(1) in variables
                       else m.group(0), out)


@dataclass
class Point:
    scenario: str
    step: str
    kind: str
    model: str
    mode: str
    connections: int
    variables: dict
    path: str
    warmup: float
    duration: float
    repeats: int
    hold: float = 0.0
    settle: float = 3.0
    open_loop_warmup: float = 0.5
    pipeline: int = 1
    method: str = "GET"
    body: str = None
    content_type: str = None
    service_ms: float = None
    rate: float = None
    clients: int = None
    stagger: int = None
    background: dict = None

    @property
    def x_label(self):
        if self.variables:
            return ", ".join("%s=%s" % kv for kv in self.variables.items()) + \
                " c=%d" % self.connections
        if self.kind == "open-loop":
            return "%g req/s" % self.rate
        return "c=%d" % self.connections

    def key(self):
        return (self.scenario, self.step, self.model, self.mode, self.connections,
                tuple(sorted(self.variables.items())))


@dataclass
class ServerRun:
    scenario: str
    model: str
    mode: str
    args: list
    points: list = field(default_factory=list)
    upstream: dict = None       # the scenario's upstream service (runner/upstream.py)


def build_plan(scenarios, models, profile, profiles, cores, cpu_iters_per_ms, overrides,
               model_filter=None, target=False, unavailable=None):
    """Expand scenarios x models x modes x steps x levels into ServerRuns of Points.

    cpu_iters_per_ms: the /cpu calibration, one number for every model, or a dict of model
    name -> number (the peers each have their own; "*" for the others).
    model_filter: {model_name: set(modes) or None}. unavailable: {model_name: reason} for
    models that cannot run (a peer that could not be installed). Returns (plan, skipped) where
    skipped lists (scenario, model, mode, step, reason) for things not run.
    A peer (kind "peer") runs the modes that stand beside the modes the scenario asks for
    (registry `pairs`; `peer_modes` in a scenario narrows them), and skips only the steps
    whose paths it does not serve.
    """
    unavailable = unavailable or {}
    calib_all = cpu_iters_per_ms
    names = list(profiles)
    prof = profiles[profile]
    plan, skipped = [], []

    def pv(value, default=None):
        v = by_profile(value, profile, names)
        return default if v is None else v

    for sc in scenarios:
        d = sc.data
        if "profiles" in d and profile not in d["profiles"]:
            continue
        sc_modes = pv(d.get("modes"), ["default"])
        sc_models = pv(d.get("models"), None)
        sc_peer_modes = pv(d.get("peer_modes"), None)
        sc_exclude = set(pv(d.get("exclude"), []))
        for model in models:
            if not target and sc_models and model.name not in sc_models:
                continue
            if model_filter is not None and model.name not in model_filter:
                continue
            peer = not target and model.kind == "peer"
            if isinstance(calib_all, dict):
                cpu_iters_per_ms = calib_all.get(model.name, calib_all.get("*"))
            modes = sc_modes
            if peer:
                modes = model.peer_modes_for(sc_modes)
                if sc_peer_modes is not None:
                    modes = [m for m in modes if m in sc_peer_modes]
            for mode in (["target"] if target else modes):
                wanted = model_filter.get(model.name) if model_filter else None
                if wanted and mode not in wanted:
                    continue
                args = [] if target else model.mode_args(mode)
                if args is None:
                    continue  # this model has no such mode
                if not target and "%s/%s" % (model.name, mode) in sc_exclude:
                    continue
                if not target and model.name in unavailable:
                    skipped.append((sc.name, model.name, mode, "*", unavailable[model.name]))
                    continue
                if not target and not model.built:
                    skipped.append((sc.name, model.name, mode, "*", "not built"))
                    continue
                if not target and not peer:
                    unserved = sorted({p.split("?")[0] for st in d["step"]
                                       for p in [st["path"]] + ([st["background"]["path"]]
                                                                if isinstance(st.get("background"),
                                                                              dict) else [])
                                       if not model.serves(p)})
                    if unserved:
                        # side-by-side comparisons need the whole scenario
                        skipped.append((sc.name, model.name, mode, "*",
                                        "does not serve %s" % ", ".join(unserved)))
                        continue
                # the profile's peer_repeats (quick: 1) measures the peers' shapes in less time
                repeats = prof.get("peer_repeats", prof["repeats"]) if peer else prof["repeats"]
                run = ServerRun(sc.name, model.name, mode, args, upstream=d.get("upstream"))
                for st in d["step"]:
                    if "profiles" in st and profile not in st["profiles"]:
                        continue
                    if peer:
                        bgp = st.get("background")
                        paths = [st["path"]] + ([bgp["path"]] if isinstance(bgp, dict) else [])
                        unserved = sorted({p.split("?")[0] for p in paths
                                           if not model.serves(p)})
                        if unserved:
                            skipped.append((sc.name, model.name, mode, st["name"],
                                            "does not serve %s" % ", ".join(unserved)))
                            continue
                    st_models = pv(st.get("models"), None)
                    if not target and st_models and model.name not in st_models:
                        continue
                    st_modes = pv(st.get("modes"), None)
                    if not target and st_modes and mode not in st_modes:
                        continue
                    if not target and "%s/%s" % (model.name, mode) in set(
                            pv(st.get("exclude"), [])):
                        continue
                    kind = st.get("kind", "wrk")
                    path_t = st["path"]
                    bg = pv(st.get("background"), None)
                    conns = overrides.get("connections") or pv(st.get("connections"), [16])
                    if peer and not overrides.get("connections") and \
                            pv(st.get("peer_connections")) is not None:
                        conns = pv(st.get("peer_connections"))
                    if not isinstance(conns, list):
                        conns = [conns]
                    if kind == "open-loop":
                        conns = [int(pv(st.get("clients"), 50))]
                    vary = {k: pv(v) for k, v in (st.get("vary") or {}).items()}
                    combos = [{}]
                    for var, values in vary.items():
                        values = values if isinstance(values, list) else [values]
                        combos = [dict(c, **{var: v}) for c in combos for v in values]
                    for c in conns:
                        n = conn_count(c, cores)
                        for combo in combos:
                            try:
                                path = expand_path(path_t, combo, cpu_iters_per_ms)
                                bgd = None
                                if bg:
                                    bgd = dict(bg)
                                    bgd["path"] = expand_path(bg["path"], combo, cpu_iters_per_ms)
                            except ConfigError as e:
                                skipped.append((sc.name, model.name, mode, st["name"], str(e)))
                                continue
                            pt = Point(
                                scenario=sc.name, step=st["name"], kind=kind, model=model.name,
                                mode=mode, connections=n, variables=combo, path=path,
                                warmup=float(overrides.get("warmup", pv(st.get("warmup"),
                                                                        prof["warmup"]))),
                                duration=float(overrides.get("duration", pv(st.get("duration"),
                                                                            prof["duration"]))),
                                repeats=int(overrides.get("repeats", pv(st.get("repeats"),
                                                                       repeats))),
                                hold=float(overrides.get("hold", pv(st.get("hold"),
                                                                    prof.get("hold", 1)))),
                                settle=float(prof.get("settle", 3)),
                                open_loop_warmup=float(overrides.get(
                                    "warmup", pv(st.get("open_loop_warmup"),
                                                 prof.get("open_loop_warmup", 0.5)))),
                                pipeline=int(pv(st.get("pipeline"), 1)),
                                method=pv(st.get("method"), "GET"),
                                body=pv(st.get("body")),
                                content_type=pv(st.get("content_type")),
                                service_ms=pv(st.get("service_ms")),
                                rate=pv(st.get("rate")),
                                clients=n if kind == "open-loop" else None,
                                stagger=pv(st.get("stagger")),
                                background=bgd)
                            if kind == "idle" and not target:
                                # every idle level gets its own fresh server
                                plan.append(ServerRun(sc.name, model.name, mode, args, [pt],
                                                      upstream=d.get("upstream")))
                            else:
                                run.points.append(pt)
                if run.points:
                    plan.append(run)
    return plan, skipped


def estimate_point(pt):
    """Rough seconds a point takes (for the progress line)."""
    if pt.kind == "idle":
        return 0.8 + pt.connections / 3000.0 + pt.hold
    if pt.kind == "open-loop":
        return pt.repeats * (pt.open_loop_warmup + pt.duration + 0.5)
    wrk = lambda s: max(1, round(s)) + 0.15 + pt.connections / 20000.0  # noqa: E731
    warm = 0 if pt.warmup <= 0 else (wrk(pt.warmup) if pt.warmup >= 1 else pt.warmup + 0.05)
    return warm + pt.repeats * wrk(pt.duration)


SERVER_START_ESTIMATE = 0.4


def estimate_start(run, models):
    """Rough seconds to start and stop a run's server (and its upstream), prime included."""
    s = SERVER_START_ESTIMATE
    model = next((m for m in models if m.name == run.model), None)
    if model is not None and model.kind == "peer":
        s += 1.0    # interpreters and gunicorn's arbiter start slower; gunicorn drains on stop
        if model.jit and any("/cpu" in pt.path or
                             (pt.background and "/cpu" in pt.background.get("path", ""))
                             for pt in run.points):
            s += 1.0    # the JIT warm-up (peers.prime)
    if run.upstream:
        s += 0.5
    return s

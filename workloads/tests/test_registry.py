"""Unit tests of the registry (workloads/runner/registry.py) and the launcher
(workloads/runner/launch.py), which every test suite and the benchmark stand on.

    python3 -m unittest workloads.tests.test_registry      (from the source root)

The launcher is tested against a stand-in server (a few lines of Python that print the
start-up line), so nothing here needs a build.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

from workloads.runner import config, launch, peers, pg, registry

GOOD = """
[models.alpha]
bin = "servers/alpha/triad-alpha"
role = "python"
modes.default = []
modes.gil = ["--gil"]
modes.workers2 = ["--workers", "2"]
tests = ["default", "gil", "gil+workers2"]
sanitizer_args = ["--stack-kib", "256"]

[models.peer]
kind = "peer"
script = "workloads/peers/alpha/run"
role = "python"

[models.floor]
kind = "floor"
bin = "workloads/floor"
role = "floor"
endpoints = ["/json"]
"""

# A stand-in server: the arguments a triad server gets, its start-up line, SIGTERM to stop.
# Its mode argument says how to misbehave.
FAKE_SERVER = """\
import os, signal, sys, time
args = sys.argv[1:]
assert args[:2] == ["--port", "0"] and args[2] == "--db", args
mode = args[4:]
if "exit-early" in mode:
    sys.exit(3)
if "orphan" in mode and os.fork() == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)   # a worker that outlives its master
    time.sleep(60)
    os._exit(0)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))     # before the line: then stop() may come
print("to stderr", file=sys.stderr, flush=True)
if "silent" not in mode:
    print("fake 0.1 listening on http://0.0.0.0:4321 (model=fake)", flush=True)
while True:
    time.sleep(1)
"""


class RegistryTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="triad-registry-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)

    def write(self, text):
        path = os.path.join(self.tmp, "models.toml")
        with open(path, "w") as f:
            f.write(textwrap.dedent(text))
        return path

    def test_models_resolve_against_build_dir_and_root(self):
        models = registry.load(self.write(GOOD), build_dir="/b", root="/src")
        self.assertEqual([m.name for m in models], ["alpha", "peer", "floor"])
        alpha, peer, floor = models
        self.assertEqual(alpha.program, "/b/servers/alpha/triad-alpha")
        self.assertEqual(peer.program, "/src/workloads/peers/alpha/run")
        self.assertEqual((alpha.kind, peer.kind, floor.kind), ("mirror", "peer", "floor"))
        self.assertEqual(floor.modes, {"default": []})
        self.assertTrue(floor.serves("/json?x=1"))
        self.assertFalse(floor.serves("/db"))
        self.assertTrue(alpha.serves("/anything"))

    def test_mode_args(self):
        alpha = registry.load(self.write(GOOD))[0]
        self.assertEqual(alpha.mode_args("default"), [])
        self.assertEqual(alpha.mode_args("gil+workers2"), ["--gil", "--workers", "2"])
        self.assertIsNone(alpha.mode_args("gil+nosuch"))

    def test_test_runs_names_and_sanitizer_args(self):
        models = registry.load(self.write(GOOD))
        runs = registry.test_runs(models)
        self.assertEqual([(r.name, r.args) for r in runs],
                         [("alpha", []), ("alpha-gil", ["--gil"]),
                          ("alpha-gil-workers2", ["--gil", "--workers", "2"])])
        runs = registry.test_runs(models, sanitized=True)
        self.assertEqual(runs[1].args, ["--gil", "--stack-kib", "256"])

    def test_suites_per_test_mode(self):
        path = self.write('[models.a]\nbin = "a"\nrole = "go"\nmodes.default = []\n'
                          'modes.pg = ["--db", "@pg"]\ntests = ["default", "pg"]\n'
                          'suites.pg = ["conformance", "faults"]\n')
        models = registry.load(path)
        self.assertEqual([r.name for r in registry.test_runs(models)], ["a", "a-pg"])
        self.assertEqual([r.name for r in registry.test_runs(models, suite="hostile")], ["a"])
        self.assertEqual(registry.test_runs(models)[1].suites, ("conformance", "faults"))
        for bad in ('suites.gil = ["faults"]\n', 'suites.pg = ["fuzz"]\n', 'suites = 1\n'):
            with self.subTest(bad):
                with self.assertRaises(registry.RegistryError):
                    registry.load(self.write('[models.a]\nbin = "a"\nrole = "go"\n'
                                             'modes.default = []\nmodes.pg = []\n'
                                             'tests = ["pg"]\n' + bad))

    def test_role_names_skip_peers(self):
        models = registry.load(self.write(GOOD))
        self.assertEqual(registry.role_names(models), {"python": "alpha", "floor": "floor"})

    def test_mistakes_are_refused(self):
        bad = {
            "no role": '[models.x]\nbin = "x"\n',
            "bin and script": '[models.x]\nbin = "x"\nscript = "y"\nrole = "go"\n',
            "neither": '[models.x]\nrole = "go"\n',
            "unknown key": '[models.x]\nbin = "x"\nrole = "go"\nmode = {}\n',
            "unknown kind": '[models.x]\nbin = "x"\nrole = "go"\nkind = "twin"\n',
            "no default": '[models.x]\nbin = "x"\nrole = "go"\nmodes.a = []\n',
            "plus in a name": '[models.x]\nbin = "x"\nrole = "go"\nmodes.default = []\n'
                              'modes."a+b" = []\n',
            "args not strings": '[models.x]\nbin = "x"\nrole = "go"\nmodes.default = [1]\n',
            "test of a missing mode": '[models.x]\nbin = "x"\nrole = "go"\ntests = ["gil"]\n',
            "no models": '',
            "not TOML": '[models.x\n',
            "pairs on a mirror": '[models.x]\nbin = "x"\nrole = "go"\npairs.default = ["a"]\n',
            "pairs of a missing mode": '[models.x]\nkind = "peer"\nscript = "x"\nrole = "go"\n'
                                       'pairs.gil = ["gil"]\n',
            "pairs not lists": '[models.x]\nkind = "peer"\nscript = "x"\nrole = "go"\n'
                               'pairs.default = "gil"\n',
        }
        for what, text in bad.items():
            with self.subTest(what):
                with self.assertRaises(registry.RegistryError):
                    registry.load(self.write(text))

    def test_duplicate_run_names_are_refused(self):
        path = self.write('[models.a]\nbin = "a"\nrole = "go"\nmodes.default = []\n'
                          'modes.b-c = []\ntests = ["b-c"]\n'
                          '[models.a-b]\nbin = "ab"\nrole = "go"\nmodes.default = []\n'
                          'modes.c = []\ntests = ["c"]\n')
        with self.assertRaises(registry.RegistryError):
            registry.test_runs(registry.load(path))

    def test_meson_lines(self):
        """What tests/meson.build splits: name, model, script, suites, then the arguments."""
        path = self.write(GOOD)
        out = subprocess.run([sys.executable, registry.__file__, "test-runs", "--toml", path,
                              "--sanitized"], stdout=subprocess.PIPE, text=True, check=True)
        lines = [ln.split("\t") for ln in out.stdout.splitlines()]
        self.assertEqual(lines[2], ["alpha-gil-workers2", "alpha", "", "conformance,hostile,faults",
                                    "--gil", "--workers", "2", "--stack-kib", "256"])
        bad = self.write('[models.x]\nrole = "go"\n')
        r = subprocess.run([sys.executable, registry.__file__, "test-runs", "--toml", bad],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.assertEqual(r.returncode, 1)
        self.assertIn("model x", r.stderr)

    def test_the_repository_registry_loads(self):
        models = registry.load()
        self.assertTrue(registry.test_runs(models))
        for m in models:
            self.assertEqual(m.mode_args("default"), m.modes["default"])


PEERS = GOOD + """
[models.py]
kind = "peer"
script = "workloads/peers/py/run"
role = "python"
modes.default = []
modes.workers2 = ["--workers", "2"]
modes.big = ["--threads", "1000"]
pairs.default = ["gil", "default"]
pairs.workers2 = ["gil+workers2"]
pairs.big = ["perconn"]
endpoints = ["/json", "/cpu", "/health"]
"""


class PeerPlanTest(unittest.TestCase):
    """Peers in the plan: paired modes, steps they do not serve, skips with a reason, their own
    /cpu calibration (config.build_plan), and the install script's lines (peers.install)."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="triad-peerplan-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        path = os.path.join(self.tmp, "models.toml")
        with open(path, "w") as f:
            f.write(PEERS)
        self.models = registry.load(path, build_dir=self.tmp, root=self.tmp)
        for m in self.models:       # every program "built"
            m.program = sys.executable
        self.profiles = {"quick": {"warmup": 0, "duration": 1, "repeats": 1}}

    def scenario(self, text):
        path = os.path.join(self.tmp, "sc.toml")
        with open(path, "w") as f:
            f.write(textwrap.dedent(text))
        return config.load_scenario("sc", path)

    def plan(self, sc, cpu=None, unavailable=None):
        return config.build_plan([sc], self.models, "quick", self.profiles, 2, cpu, {}, None,
                                 False, unavailable)

    def test_pairs(self):
        py = registry.find(self.models, "py")
        self.assertEqual(py.paired_modes("default"), ["gil", "default"])
        self.assertEqual(py.paired_modes("nosuch"), ["nosuch"])
        self.assertEqual(py.peer_modes_for(["default", "gil", "gil+workers2"]),
                         ["default", "workers2"])
        self.assertEqual(py.peer_modes_for(["perconn"]), ["big"])
        self.assertEqual(registry.mirror_of(self.models, py).name, "alpha")
        self.assertEqual(registry.peer_of(self.models, registry.find(self.models, "alpha")).name,
                         "peer")     # the first peer of the role

    def test_peer_modes_steps_and_calibration(self):
        sc = self.scenario("""
            modes = ["default", "gil", "gil+workers2"]
            [[step]]
            name = "cpu"
            path = "/cpu?iterations=${cpu_iterations:5}"
            connections = 1
            [[step]]
            name = "db"
            path = "/db"
            connections = 1
            """)
        plan, skipped = self.plan(sc, {"*": 10000.0, "py": 100.0})
        runs = {(r.model, r.mode): r for r in plan}
        self.assertIn(("py", "default"), runs)
        self.assertIn(("py", "workers2"), runs)
        self.assertNotIn(("py", "gil"), runs)
        self.assertEqual([p.path for p in runs[("py", "default")].points], ["/cpu?iterations=500"])
        self.assertEqual(runs[("alpha", "gil")].points[0].path, "/cpu?iterations=50000")
        self.assertIn(("sc", "py", "default", "db", "does not serve /db"), skipped)
        # peer_modes narrows the peer's modes; an uninstalled peer is skipped with the reason
        sc.data["peer_modes"] = ["default"]
        plan, _ = self.plan(sc, {"*": 10000.0, "py": 100.0})
        self.assertEqual(sorted(r.mode for r in plan if r.model == "py"), ["default"])
        plan, skipped = self.plan(sc, {"*": 10000.0}, {"py": "not installed: no npm"})
        self.assertFalse([r for r in plan if r.model == "py"])
        self.assertIn(("sc", "py", "default", "*", "not installed: no npm"), skipped)
        # a peer whose calibration failed: its /cpu step is skipped, not run with C's count
        plan, skipped = self.plan(sc, {"*": 10000.0, "py": None})
        self.assertTrue(any(s[1] == "py" and s[3] == "cpu" for s in skipped))

    def test_upstream_key(self):
        sc = self.scenario("""
            upstream = { model = "alpha", args = ["--x"] }
            [[step]]
            path = "/json"
            """)
        plan, _ = self.plan(sc)
        self.assertEqual(plan[0].upstream, {"model": "alpha", "args": ["--x"]})
        with self.assertRaises(config.ConfigError):
            self.scenario("""
                upstream = { mode = "default" }
                [[step]]
                path = "/json"
                """)

    def test_install_lines(self):
        os.makedirs(os.path.join(self.tmp, "workloads", "peers"))
        script = os.path.join(self.tmp, "workloads", "peers", "install")
        with open(script, "w") as f:
            f.write("#!/bin/sh\necho 'progress' >&2\n"
                    "echo 'node peer: Node.js v22.0.0, sqlite3 6.0.1'\n"
                    "echo 'go peer: skipped: apt-get install golang-go failed'\nexit 1\n")
        os.chmod(script, 0o755)
        log = os.path.join(self.tmp, "install.log")
        versions, skipped, _ = peers.install(self.tmp, ["node", "go", "python"], log)
        self.assertEqual(versions, {"node": "Node.js v22.0.0, sqlite3 6.0.1"})
        self.assertEqual(skipped["go"], "apt-get install golang-go failed")
        self.assertIn("no versions line", skipped["python"])
        with open(log) as f:
            self.assertIn("progress", f.read())


class PgPlaceholderTest(unittest.TestCase):
    """--db @pg (runner/pg.py): what the launcher does with it, without a cluster."""

    def setUp(self):
        saved = dict(pg._server)
        self.addCleanup(pg._server.update, saved)

    def test_conninfo_helpers(self):
        self.assertTrue(pg.is_pg("host=/tmp/s dbname=x"))
        self.assertTrue(pg.is_pg("postgresql://u@h/db"))
        self.assertFalse(pg.is_pg("/tmp/triad.db"))
        self.assertEqual(pg.with_dbname("host=/s port=5432 dbname=postgres", "t1"),
                         "host=/s port=5432 dbname=t1")
        self.assertEqual(pg.with_dbname("postgresql://u:p@h:5/postgres?x=1", "t1"),
                         "postgresql://u:p@h:5/t1?x=1")
        self.assertEqual(pg.dbname_of("host='/a b' dbname='it''s'".replace("''", "\\'")),
                         "it's")
        self.assertEqual(pg.literal("it's"), "'it''s'")
        self.assertEqual(pg.literal(7), "7")

    def test_resolve(self):
        args = ["--procs", "2", "--db", "@pg"]
        self.assertTrue(pg.uses_placeholder(args))
        self.assertEqual(pg.resolve("/tmp/x.db", ["--procs", "2"]), ("/tmp/x.db", ["--procs", "2"]))
        # a restart on the same database keeps it
        self.assertEqual(pg.resolve("host=/s dbname=t", args), ("host=/s dbname=t",
                                                                 ["--procs", "2"]))
        # an existing database shared by every server (the benchmark's --db postgresql://...)
        pg.use_server("host=/s dbname=hello_world", fresh=False)
        self.assertEqual(pg.resolve("/tmp/x.db", args), ("host=/s dbname=hello_world",
                                                         ["--procs", "2"]))

    def test_no_cluster(self):
        pg._server.update(info=None, fresh=True, from_env=False)
        env = dict(os.environ)
        self.addCleanup(os.environ.update, env)
        os.environ.pop(pg.ENV, None)
        with self.assertRaises(pg.PgError):
            pg.resolve("/tmp/x.db", ["--db", "@pg"])
        os.environ.pop("CI", None)
        self.assertEqual(pg.availability(["--db", "@pg"])[0], 77)
        os.environ["CI"] = "true"
        self.assertEqual(pg.availability(["--db", "@pg"])[0], 1)
        self.assertIsNone(pg.availability(["--gil"]))
        srv = launch.Server("/bin/true", "/tmp/x.db", ["--db", "@pg"])
        with self.assertRaises(launch.StartupError):
            srv.start()


class LaunchTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="triad-launch-test-")
        self.addCleanup(shutil.rmtree, self.tmp, True)
        self.program = os.path.join(self.tmp, "fake-server")
        with open(self.program, "w") as f:
            f.write("#!%s\n%s" % (sys.executable, FAKE_SERVER))
        os.chmod(self.program, 0o755)

    def server(self, *args, **kw):
        srv = launch.Server(self.program, os.path.join(self.tmp, "triad.db"), list(args),
                            label="t", workdir=self.tmp, **kw)
        self.addCleanup(srv.kill)
        return srv

    def test_start_and_stop(self):
        log = os.path.join(self.tmp, "log")
        srv = self.server(log_path=log).start()
        self.assertEqual((srv.host, srv.port), ("127.0.0.1", 4321))
        self.assertIn("listening on", srv.banner)
        self.assertEqual(launch.process_tree(srv.pid), [srv.pid])
        self.assertEqual(srv.stop(), 0)
        self.assertEqual(srv.orphans, [])
        self.assertIn("to stderr", srv.stderr_text())
        with open(log) as f:
            text = f.read()
        self.assertTrue(text.startswith("$ %s --port 0 --db " % self.program), text)
        self.assertIn("# exit status 0", text)

    def test_exit_before_the_start_up_line(self):
        srv = self.server("exit-early")
        with self.assertRaises(launch.StartupError):
            srv.start()
        self.assertEqual(srv.proc.wait(5), 3)

    def test_no_start_up_line_leaves_the_process_to_the_caller(self):
        srv = self.server("silent")
        with self.assertRaises(launch.StartupError):
            srv.start(timeout=0.5)
        self.assertTrue(srv.running())
        srv.kill()
        self.assertFalse(srv.running())

    def test_a_worker_that_outlives_its_master_is_killed(self):
        srv = self.server("orphan", merge_stderr=True)
        srv.start()
        tree = launch.process_tree(srv.pid)
        self.assertEqual(len(tree), 2)
        self.assertEqual(launch.children(srv.pid), tree[1:])
        procs = [int(n) for n in os.listdir("/proc") if n.isdigit()]
        self.assertEqual(launch._children_by_ppid(srv.pid, procs), tree[1:])
        self.assertEqual(srv.stop(), 0)
        self.assertEqual(srv.orphans, tree[1:])
        deadline = time.monotonic() + 5
        while launch.alive(tree[1]) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.assertFalse(launch.alive(tree[1]))
        self.assertIn("to stderr", srv.stderr_text())

    def test_usage(self):
        cpu, rss, threads = launch.usage(os.getpid())
        self.assertGreater(rss, 0)
        self.assertGreaterEqual(threads, 1)
        self.assertGreater(launch.open_fds(os.getpid()), 0)

    def test_describe_status(self):
        self.assertEqual(launch.describe_status(None), "still running")
        self.assertEqual(launch.describe_status(0), "exit status 0")
        self.assertEqual(launch.describe_status(-9), "killed by SIGKILL")


if __name__ == "__main__":
    unittest.main()

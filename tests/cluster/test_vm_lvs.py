"""The VM tier's LVS step (builder/verify/cluster/vm/lvs.py): fast tests of its pure parts,
its probe on loopback, the step plumbing with fakes, and the --no-lvs option."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest

from builder.base.command import Result
from builder.base.errors import ClusterStackError
from builder.verify.cluster import config
from builder.verify.cluster.scenarios import ScenarioError
from builder.verify.cluster.steps import Steps
from builder.verify.cluster.vm import lvs
from builder.verify.cluster.vm.harness import VmOptions, VmReport, _lvs_steps, table
from builder.verify.cluster.vm.image import vm_root_spec
from builder.verify.cluster.vm.lvs import (
    IpvsadmOutputError,
    LvsError,
    LvsPlan,
    Request,
    check_spread,
    keepalived_lvs_conf,
    outage,
    parse_ipvsadm,
    parse_requests,
    pool,
    settled,
)

DATA = Path(__file__).parent / "data"
PLAN = LvsPlan.on(config.AddressPlan())


def test_plan_addresses_are_the_harness_test_net() -> None:
    base = config.AddressPlan()
    taken = {base.node(0), base.node(1), base.client, base.bridge, base.db_vip, base.vrrp_vip}
    mine = {PLAN.vip, *(rs.address for rs in PLAN.real_servers)}
    assert all(a.startswith("192.0.2.") for a in mine)
    assert not mine & taken
    assert [rs.name for rs in PLAN.real_servers] == ["web1", "web2"]
    assert PLAN.name_of("192.0.2.22") == "web2" and PLAN.name_of("192.0.2.9") is None
    with pytest.raises(LvsError):
        PLAN.by_name("web3")


def test_keepalived_lvs_conf() -> None:
    text = keepalived_lvs_conf("node1", 150, PLAN)
    assert text.count("{") == text.count("}")
    assert "\trouter_id node1\n" in text
    # VRRP: both BACKUP, the priority elects; its own VRID
    assert "vrrp_instance VI_LVS {\n\tstate BACKUP\n\tinterface eth0\n" in text
    assert "\tvirtual_router_id 52\n\tpriority 150\n\tadvert_int 1\n" in text
    assert "\t\t192.0.2.102/24 dev eth0\n" in text
    # the virtual server: DR, round robin, no persistence (one client must be spread)
    assert ("virtual_server 192.0.2.102 80 {\n\tdelay_loop 2\n\tlb_algo rr\n\tlb_kind DR\n"
            "\tprotocol TCP\n") in text
    assert "persistence" not in text
    for address in ("192.0.2.21", "192.0.2.22"):
        assert f"\treal_server {address} 80 {{\n\t\tweight 1\n\t\tHTTP_GET {{\n" in text
    assert text.count("\t\t\t\tpath /health\n\t\t\t\tstatus_code 200\n") == 2
    assert text.count("\t\t\tconnect_timeout 1\n\t\t\tretry 1\n"
                      "\t\t\tdelay_before_retry 1\n") == 2
    # keepalived 2.x keywords only
    assert "nb_get_retry" not in text
    assert "priority 100" in keepalived_lvs_conf("node2", 100, PLAN)


def test_stop_keepalived_checks_the_pid_is_keepalived(tmp_path: Path) -> None:
    script = lvs.stop_keepalived_script()
    assert f"cat {lvs.KEEPALIVED_PID}" in script and "/proc/$p/comm" in script
    # a missing pid file is no error
    done = subprocess.run(["sh", "-c", script.replace(lvs.KEEPALIVED_PID,
                                                       str(tmp_path / "none.pid"))],
                          check=False)
    assert done.returncode == 0
    # a stale pid file naming another process: that process is left alone
    other = subprocess.Popen(["sleep", "30"])
    try:
        stale = tmp_path / "stale.pid"
        stale.write_text(f"{other.pid}\n")
        subprocess.run(["sh", "-c", script.replace(lvs.KEEPALIVED_PID, str(stale))],
                       check=True)
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_keepalived_argv_names_its_pid_file() -> None:
    argv = lvs.keepalived_argv()
    assert argv[:2] == ["keepalived", "--dont-fork"]
    assert f"--pid={lvs.KEEPALIVED_PID}" in argv
    assert argv[-2:] == ["-f", lvs.KEEPALIVED_CONF]


def test_parse_ipvsadm_both() -> None:
    services = parse_ipvsadm((DATA / "ipvsadm-Ln-both.txt").read_text())
    assert len(services) == 1
    vs = services[0]
    assert (vs.protocol, vs.address, vs.port, vs.scheduler) == ("TCP", "192.0.2.102", 80, "rr")
    assert [(d.address, d.port, d.forward, d.weight, d.inactive) for d in vs.destinations] == [
        ("192.0.2.21", 80, "Route", 1, 101), ("192.0.2.22", 80, "Route", 1, 99)]
    assert pool((DATA / "ipvsadm-Ln-both.txt").read_text(), PLAN) == ["web1", "web2"]


def test_parse_ipvsadm_after_removal_and_stopped() -> None:
    assert pool((DATA / "ipvsadm-Ln-one.txt").read_text(), PLAN) == ["web1"]
    # ip_vs loaded but no virtual service: keepalived is not running there
    assert parse_ipvsadm((DATA / "ipvsadm-Ln-empty.txt").read_text()) == []
    assert pool((DATA / "ipvsadm-Ln-empty.txt").read_text(), PLAN) is None


def test_parse_ipvsadm_other_services_and_flags() -> None:
    text = (DATA / "ipvsadm-Ln-two-services.txt").read_text()
    services = parse_ipvsadm(text)
    assert [(s.address, s.scheduler) for s in services] == [("198.51.100.7", "wlc"),
                                                            ("192.0.2.102", "rr")]
    assert services[0].destinations[0].forward == "Masq"
    assert pool(text, PLAN) == ["web2"]
    unknown = text.replace("192.0.2.22:80", "192.0.2.99:80")
    assert pool(unknown, PLAN) == ["192.0.2.99:80"]


@pytest.mark.parametrize("text", [
    "",
    "ipvsadm: command not found\n",
    "Can't initialize ipvs: Protocol not available\nAre you sure that IP Virtual Server "
    "is built in the kernel or as module?\n",
    (DATA / "ipvsadm-Ln-both.txt").read_text() + "garbage line\n",
])
def test_parse_ipvsadm_refuses_what_it_does_not_know(text: str) -> None:
    with pytest.raises(IpvsadmOutputError):
        parse_ipvsadm(text)


def test_lvs_errors_are_clusterstack_and_scenario_errors() -> None:
    assert issubclass(IpvsadmOutputError, ClusterStackError)
    assert issubclass(LvsError, ScenarioError)  # a failed step, as every scenario's


def _req(t: float, server: str | None, dt: float = 0.01) -> Request:
    return Request(t, dt, server, None if server else "ConnectionRefusedError: refused")


def _line(r: Request) -> str:
    return json.dumps({"t": r.started, "dt": r.seconds, "server": r.server,
                       "error": r.error})


def test_parse_requests_leaves_out_a_cut_last_line() -> None:
    rs = [_req(1.0, "web1"), _req(1.1, None)]
    text = "\n".join(_line(r) for r in rs) + '\n{"t": 1.2, "dt"'
    assert parse_requests(text) == rs
    with pytest.raises(LvsError):
        parse_requests('{"t": 1\n' + _line(rs[0]))


def test_check_spread() -> None:
    even = [_req(i, "web1" if i % 2 else "web2") for i in range(200)]
    assert check_spread(even, ["web1", "web2"]) == {"web1": 100, "web2": 100}
    skewed = [_req(i, "web1" if i % 5 else "web2") for i in range(200)]  # web2: 40 = 20%
    with pytest.raises(LvsError, match="web2 answered 40 of 200 requests, less than 25%"):
        check_spread(skewed, ["web1", "web2"])
    with pytest.raises(LvsError, match="1 of 200 requests failed"):
        check_spread([*even[:-1], _req(199, None)], ["web1", "web2"])
    with pytest.raises(LvsError, match="unknown servers"):
        check_spread([*even[:-1], _req(199, "web9")], ["web1", "web2"])
    with pytest.raises(LvsError):
        check_spread([], ["web1", "web2"])


def test_outage_counts_failed_requests_and_time_to_the_next_answer() -> None:
    # a request every 0.1 s from t=9; the event at t=10; failures 10.0-10.6
    rs = [_req(round(9 + i / 10, 1), None if 10.0 <= 9 + i / 10 < 10.65 else "web1")
          for i in range(30)]
    seen = outage(rs, 10.0)
    assert seen.failed == 7
    assert seen.seconds == pytest.approx(0.71)  # the 10.7 request, ended 0.01 s later
    # a request running at the event and failing counts too
    assert outage([_req(9.9, None, dt=1.0), _req(11.0, "web2")], 10.0).failed == 1
    assert outage([_req(9.0, "web1"), _req(10.1, "web2")], 10.0).failed == 0
    assert outage([_req(10.1, "web2")], 10.0).seconds == 0.0
    with pytest.raises(LvsError, match="after the last failed one"):
        outage([_req(10.1, "web2"), _req(10.2, None)], 10.0)
    with pytest.raises(LvsError):
        outage([_req(9.0, "web1")], 10.0)


def test_settled() -> None:
    rs = [_req(i, "web1") for i in range(25)]
    assert settled(rs, 0)
    assert not settled(rs, 10)  # 15 since then, 20 wanted
    assert not settled([*rs, _req(26, None)], 0)
    assert settled(rs, 20, count=5)


def test_real_server_sysctls_are_written_in_its_namespace() -> None:
    script = lvs.rs_sysctl_script()
    assert "echo 1 > /proc/sys/net/ipv4/conf/all/arp_ignore" in script
    assert "echo 2 > /proc/sys/net/ipv4/conf/eth0/arp_announce" in script
    assert script.count("&&") == 3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_probe_serves_its_name_and_the_health_path(tmp_path: Path) -> None:
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-I", str(lvs.PROBE_SCRIPT), "serve", "web1",
                               str(port)], stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while True:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if time.monotonic() > deadline:
                pytest.fail("the probe's server did not listen")
            time.sleep(0.05)
        out = subprocess.run([sys.executable, "-I", str(lvs.PROBE_SCRIPT), "get", "127.0.0.1",
                              str(port), "--count", "3"], capture_output=True, text=True,
                             check=True, timeout=30).stdout
        requests = parse_requests(out)
        assert [r.server for r in requests] == ["web1"] * 3
        assert all(r.started > 0 and r.seconds >= 0 for r in requests)
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=5) as answer:
            assert answer.status == 200 and answer.read() == b"ok\n"
    finally:
        server.terminate()
        server.wait(timeout=10)
    # nothing listens now: a failed request, not an exception
    out = subprocess.run([sys.executable, "-I", str(lvs.PROBE_SCRIPT), "get", "127.0.0.1",
                          str(port), "--timeout", "1"], capture_output=True, text=True,
                         check=True, timeout=30).stdout
    (failed,) = parse_requests(out)
    assert failed.server is None and "Refused" in (failed.error or "")


# --- the steps, with fake guests and a fake lab ------------------------------------------


class FakeGuest:
    """A director: answers `ip addr` and `ipvsadm -Ln` from its state."""

    def __init__(self, name: str, vip: bool, pool_file: str) -> None:
        self.name = name
        self.vip = vip
        self.pool_file = pool_file
        self.commands: list[list[str]] = []

    def running(self) -> bool:
        return True

    def run(self, argv: list[str], check: bool = True, timeout: float = 60) -> Result:
        self.commands.append(argv)
        if argv[:2] == ["ipvsadm", "-Ln"]:
            return Result(argv, 0, (DATA / self.pool_file).read_text(), "")
        if argv[:2] == ["ip", "-o"]:
            extra = " inet 192.0.2.102/24 scope global secondary eth0" if self.vip else ""
            return Result(argv, 0, f"2: eth0    inet 192.0.2.1/24 scope global eth0{extra}\n",
                          "")
        return Result(argv, 0, "", "")

    def sh(self, script: str, check: bool = True, timeout: float = 60) -> Result:
        return self.run(["sh", "-c", script], check=check, timeout=timeout)


class FakeWatch:
    """The client: answered requests every 0.1 s, failed ones while `down` says so."""

    def __init__(self, down: Callable[[float], bool]) -> None:
        self.started = time.monotonic() - 1.0
        self.down = down

    def requests(self) -> list[Request]:
        now = time.monotonic()
        n = int((now - self.started) / 0.1)
        return [_req(self.started + i / 10, None if self.down(self.started + i / 10)
                     else ("web1" if i % 2 else "web2")) for i in range(n)]

    def stop(self) -> list[Request]:
        return self.requests()


def test_director_failover_with_fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    master = FakeGuest("node1", True, "ipvsadm-Ln-both.txt")
    backup = FakeGuest("node2", False, "ipvsadm-Ln-both.txt")
    killed: dict[str, float] = {}

    def sh(script: str, check: bool = True, timeout: float = 60) -> Result:
        if "kill -TERM" in script:
            killed["at"] = time.monotonic()
            master.vip, backup.vip = False, True
        return Result(["sh"], 0, "", "")

    master.sh = sh  # type: ignore[method-assign]
    # requests fail for 0.3 s after the kill
    watch = FakeWatch(lambda t: "at" in killed and killed["at"] <= t < killed["at"] + 0.3)
    lab = SimpleNamespace(lvs=PLAN, watch=lambda: watch)
    moved = lvs.director_failover([master, backup], lab, lvs.Directors("node1", "node2"),
                                  timeout=30)
    assert (moved.source, moved.target) == ("node1", "node2")
    assert 2 <= moved.failed <= 4
    assert 0.25 <= moved.seconds <= 1.0
    assert moved.vip_moved_s < 5


def test_director_failover_fails_without_the_pool_on_the_backup() -> None:
    master = FakeGuest("node1", True, "ipvsadm-Ln-both.txt")
    backup = FakeGuest("node2", False, "ipvsadm-Ln-empty.txt")

    def sh(script: str, check: bool = True, timeout: float = 60) -> Result:
        master.vip, backup.vip = False, True
        return Result(["sh"], 0, "", "")

    master.sh = sh  # type: ignore[method-assign]
    lab = SimpleNamespace(lvs=PLAN, watch=lambda: FakeWatch(lambda t: False))
    with pytest.raises(LvsError, match="node2 holds the VIP but its IPVS pool is None"):
        lvs.director_failover([master, backup], lab, lvs.Directors("node1", "node2"),
                              timeout=30)


def test_removal_fails_when_the_pool_keeps_the_server() -> None:
    director = FakeGuest("node1", True, "ipvsadm-Ln-both.txt")
    stopped: list[str] = []
    lab = SimpleNamespace(lvs=PLAN, watch=lambda: FakeWatch(lambda t: False),
                          stop_server=stopped.append)
    with pytest.raises(LvsError, match=r"web2 stopped: node1's IPVS pool is \['web1', 'web2'\]"):
        lvs.real_server_removed([director], lab, lvs.Directors("node1", "node2"), "web2",
                                timeout=5, limit=0.5)
    assert stopped == ["web2"]


def test_removal_measures_until_the_pool_lacks_the_server() -> None:
    director = FakeGuest("node1", True, "ipvsadm-Ln-both.txt")
    stopped: dict[str, float] = {}

    def stop_server(name: str) -> None:
        stopped["at"] = time.monotonic()

    def run(argv: list[str], check: bool = True, timeout: float = 60) -> Result:
        # keepalived drops web2 0.5 s after it stopped
        gone = "at" in stopped and time.monotonic() > stopped["at"] + 0.5
        director.pool_file = "ipvsadm-Ln-one.txt" if gone else "ipvsadm-Ln-both.txt"
        return FakeGuest.run(director, argv, check, timeout)

    director.run = run  # type: ignore[method-assign]

    class OnlyWeb1(FakeWatch):
        def requests(self) -> list[Request]:
            # from the stop, rr's turns of web2 are refused until keepalived removed it;
            # then web1 answers them all
            out = []
            for r in super().requests():
                at = stopped.get("at")
                if at is not None and r.started >= at and r.server == "web2":
                    r = _req(r.started, None if r.started < at + 0.5 else "web1")
                out.append(r)
            return out

    lab = SimpleNamespace(lvs=PLAN, watch=lambda: OnlyWeb1(lambda t: False),
                          stop_server=stop_server)
    change = lvs.real_server_removed([director], lab, lvs.Directors("node1", "node2"), "web2",
                                     timeout=30, limit=5)
    assert 0.5 <= change.seconds < 2
    assert change.failed_before >= 1
    assert set(change.answered_after) == {"web1"}
    assert change.requests_after >= lvs.SETTLED_REQUESTS


# --- the harness's plumbing --------------------------------------------------------------


def test_options_report_and_table() -> None:
    assert VmOptions().lvs is True
    assert VmOptions(lvs=False).lvs is False
    report = VmReport(ok=True, lvs_spread={"web1": 100, "web2": 100}, lvs_removal_s=4.2,
                      lvs_removal_failed=3, lvs_readd_s=2.1, lvs_failover_s=1.8,
                      lvs_failover_failed=9, lvs_vip_moved_s=1.2,
                      lvs_failover={"from": "node1", "to": "node2"})
    text = table(report)
    assert "LVS spread, 200 requests" in text and "web1 100, web2 100" in text
    assert "4.2 s  (3 failed requests before, none after)" in text
    assert "LVS real server back in pool" in text and "2.1 s" in text
    assert "1.8 s, 9 failed requests, VIP moved in 1.2 s  (node1 -> node2)" in text
    assert report.to_dict()["lvs_failover_failed"] == 9
    assert "LVS director fail-over" in table(VmReport())  # "-" until measured


def test_image_has_keepalived_and_ipvsadm() -> None:
    spec = vm_root_spec("trixie", "m", ["deb http://127.0.0.1:1/ trixie main"], [])
    assert {"keepalived", "ipvsadm"} <= set(spec.packages)


def _fake_cluster(tmp_path: Path) -> SimpleNamespace:
    return SimpleNamespace(guests=[], plan=config.AddressPlan(), runner=None, network=None,
                           run_dir=tmp_path, lvs_lab=None)


def test_a_failed_lvs_step_lets_the_later_steps_run(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_args: object) -> None:
        raise LvsError("no VIP on node1")

    monkeypatch.setattr(lvs, "start_lvs", broken)
    report = VmReport()
    step = Steps(report)
    cluster = _fake_cluster(tmp_path)
    _lvs_steps(step, cluster, report, 1.0)  # type: ignore[arg-type]
    assert report.steps["lvs directors"] == "failed: no VIP on node1"
    assert report.steps["lvs spread"] == "skipped"
    assert report.steps["lvs director fail-over"] == "skipped"
    assert cluster.lvs_lab is not None and cluster.lvs_lab.leftovers() == []
    # the next step runs, the run fails all the same
    assert step("drbd fail-over", lambda: 1.0) == 1.0
    assert step.failures == 1 and report.error == "lvs directors: no VIP on node1"


def test_lvs_steps_are_skipped_after_an_earlier_failure(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lvs, "start_lvs", lambda *_a: pytest.fail("must not run"))
    report = VmReport()
    step = Steps(report)
    step("gfs2", lambda: (_ for _ in ()).throw(ScenarioError("not mounted")))
    _lvs_steps(step, _fake_cluster(tmp_path), report, 1.0)  # type: ignore[arg-type]
    assert report.steps["lvs directors"] == "skipped"
    assert step.failed  # not resumed: the failure was not the LVS block's
    assert step("drbd fail-over", lambda: 1.0) is None


def test_lvs_figures_reach_the_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lvs, "start_lvs", lambda *_a: lvs.Directors("node1", "node2"))
    monkeypatch.setattr(lvs, "measure_spread", lambda *_a: {"web1": 100, "web2": 100})
    monkeypatch.setattr(lvs, "real_server_removed",
                        lambda *_a: lvs.PoolChange(4.24, 2, 30, {"web1": 30}))
    monkeypatch.setattr(lvs, "real_server_readded",
                        lambda *_a: lvs.PoolChange(2.06, 0, 40, {"web1": 20, "web2": 20}))
    monkeypatch.setattr(lvs, "director_failover", lambda *_a: lvs.DirectorFailover(
        1.83, 7, 60, 1.21, "node1", "node2"))
    monkeypatch.setattr(lvs, "stop_directors", lambda guests: None)
    report = VmReport()
    step = Steps(report)
    _lvs_steps(step, _fake_cluster(tmp_path), report, 1.0)  # type: ignore[arg-type]
    assert not step.failed
    assert report.lvs_spread == {"web1": 100, "web2": 100}
    assert (report.lvs_removal_s, report.lvs_removal_failed) == (4.2, 2)
    assert report.lvs_readd_s == 2.1
    assert (report.lvs_failover_s, report.lvs_failover_failed, report.lvs_vip_moved_s) == (
        1.8, 7, 1.2)
    assert report.lvs_failover == {"from": "node1", "to": "node2"}
    assert [k for k in report.steps if k.startswith("lvs")] == [
        "lvs directors", "lvs spread", "lvs real server removed", "lvs real server re-added",
        "lvs director fail-over"]


def test_no_lvs_option_of_python_m(monkeypatch: pytest.MonkeyPatch) -> None:
    from builder.verify.cluster.vm import __main__ as vm_main

    seen: list[VmOptions] = []

    def fake(options: VmOptions) -> VmReport:
        seen.append(options)
        return VmReport(ok=True)

    monkeypatch.setattr(vm_main, "run_vm_cluster", fake)
    assert vm_main.main(["--no-lvs"]) == 0
    assert vm_main.main([]) == 0
    assert [o.lvs for o in seen] == [False, True]


def test_no_lvs_option_of_clusterstack_verify(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from builder import cli as top
    from builder.verify.cluster import cli

    args = top._parser().parse_args(["verify", "--cluster", "--vm", "--no-lvs"])
    assert args.no_lvs is True and args.vm is True
    assert top._parser().parse_args(["verify", "--cluster", "--vm"]).no_lvs is False
    repo = tmp_path / "public"
    (repo / "dists" / "trixie").mkdir(parents=True)
    (repo / "dists" / "trixie" / "InRelease").write_text("")
    stack = SimpleNamespace(
        workspace=SimpleNamespace(published_repo=lambda name: repo),
        profile=SimpleNamespace(name="trixie", reachable=True, suite="trixie"))
    calls: list[dict] = []
    monkeypatch.setattr(cli, "run_vm", lambda stack, repo, progress, **kw: calls.append(kw)
                        or 0)
    assert cli.run(args, stack, None, None) == 0  # type: ignore[arg-type]
    assert calls == [{"gfs2": True, "lvs": False}]

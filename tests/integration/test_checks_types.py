"""Every check type, passing and failing, against the real engine.

One small lab is started once for the module (busybox containers named as labup names them);
all checks run in one parallel ``run_checks`` call, and each test asserts one result.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labfactory import lab_labels

from labspec.model import BuildSpec, Check, Container, GpuRequest, Image, Lab
from provisioner.checks import CheckResult, CheckRun, run_checks
from provisioner.engine import probe as probe_module
from provisioner.engine.connect import connect
from provisioner.engine.labels import MANAGED

pytestmark = pytest.mark.docker

SERVE = (
    "trap 'exit 0' TERM INT; mkdir -p /w; echo 'hello labup' > /w/index.html; "
    "chmod 644 /w/index.html; httpd -f -p 80 -h /w & wait"
)
IDLE = "trap 'exit 0' TERM INT; sleep 3600 & wait"
FAKE_SMI = (
    "printf '#!/bin/sh\\necho \"GPU 0: Simulated (UUID: GPU-0)\"\\n' > /bin/nvidia-smi; "
    "chmod +x /bin/nvidia-smi; " + IDLE
)

GOOD_DOCKERFILE = """\
# escape=\\
ARG BASE_TAG=1.0
FROM {base}:${{BASE_TAG}} AS build
COPY requirements.txt \\
     ./
RUN pip install -r requirements.txt
COPY . .

FROM {base}:1.0
RUN apt-get update && apt-get install -y curl \\
    # a comment inside a continuation
    && rm -rf /var/lib/apt/lists/*
ENV APP_HOME=/app DB_PASSWORD_FILE=/run/secrets/db
COPY --from=build /w /w
USER 65534
HEALTHCHECK CMD ["true"]
EXPOSE 8080
LABEL org.opencontainers.image.title="checks test"
"""

BAD_DOCKERFILE = """\
FROM {base}
COPY . /app
RUN pip install -r /app/requirements.txt
RUN apt-get update && \\
    apt-get install -y curl
ENV API_TOKEN=s3cr3t-value
USER root
"""


class RemoteLike:
    """The local engine seen as if it were remote: "from the host" must then use a probe on
    the engine host's network instead of sockets from this process."""

    is_local = False

    def __init__(self, engine: Any) -> None:
        self._engine = engine

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    @property
    def host_label(self) -> str:
        return "remote-like"


def _lab(key: str, folder: Path, base: str, image_ref: str, checks: list[Check]) -> Lab:
    return Lab(
        api_version="labup/v1",
        id=None,
        name=key,
        title="checks test lab",
        description="",
        path=folder / "lab.yaml",
        folder=folder,
        images=(
            Image("app", image_ref, build=BuildSpec(context=folder / "good")),
            # stands for a learner's image built from bad/Dockerfile: root, no healthcheck
            Image("bad", f"{base}:1.0", build=BuildSpec(context=folder / "bad")),
        ),
        containers=(
            Container("web", image=base, gpus=GpuRequest(optional=False)),
            Container("client", image=base),
            Container("isolated", image=base),
            Container("worker", image=base, user="65534"),
            Container("done", image=base),
            Container("flaky", image=base),
            Container("gpubox", image=base),
            Container("maybe", image=base, gpus=GpuRequest(optional=True)),
        ),
        checks=tuple(checks),
    )


def c(cid: str, kind: str, spec: dict[str, Any], **kw: Any) -> Check:
    return Check(id=cid, type=kind, spec=spec, hint=f"hint for {cid}", **kw)


CHECKS = [
    # container
    c("web-running", "container", {"container": "web"}),
    c("done-running", "container", {"container": "done", "state": "running"}),
    c("done-exit-3", "container", {"container": "done", "exit_code": 3}),
    c("done-exit-0", "container", {"container": "done", "exit_code": 0}),
    c("web-healthy", "container", {"container": "web", "health": "healthy"}, wait=15),
    c("client-healthy", "container", {"container": "client", "health": "healthy"}),
    c("worker-not-root", "container", {"container": "worker", "non_root": True, "user": "65534"}),
    c("web-not-root", "container", {"container": "web", "non_root": True}),
    c("flaky-restarted", "container", {"container": "flaky", "min_restarts": 1}, wait=10),
    c("web-no-restarts", "container", {"container": "web", "max_restarts": 0}),
    c("ghost-absent", "container", {"container": "ghost", "state": "absent"}),
    # http
    c("http-host", "http", {"to": "web", "port": 80, "path": "/index.html", "status": 200,
                            "body_regex": "hello labup", "headers": {"Content-Type": "text/html"}}),
    c("http-host-404", "http", {"to": "web", "port": 80, "path": "/missing", "status": 200}),
    c("http-host-body", "http", {"to": "web", "path": "/index.html", "body_regex": "^goodbye"}),
    c("http-from-client", "http", {"from": "client", "to": "web", "port": 80,
                                   "path": "/index.html", "body": "hello labup"}),
    c("http-from-client-isolated", "http", {"from": "client", "to": "isolated", "port": 80}),
    # tcp
    c("tcp-host-open", "tcp", {"to": "web", "port": 80}),
    c("tcp-host-unpublished", "tcp", {"to": "client", "port": 80, "open": False}),
    c("tcp-host-closed-fails", "tcp", {"to": "web", "port": 80, "open": False}),
    c("tcp-from-client-81", "tcp", {"from": "client", "to": "web", "port": 81}),
    c("tcp-from-client-81-closed", "tcp", {"from": "client", "to": "web", "port": 81,
                                           "open": False}),
    # reachable
    c("reach-web", "reachable", {"from": "client", "to": "web", "port": 80}),
    c("reach-web-alias", "reachable", {"from": "client", "alias": "www", "port": 80}),
    c("reach-web-ping", "reachable", {"from": "client", "to": "web"}),
    c("isolated-unreachable", "reachable", {"from": "client", "to": "isolated", "port": 80,
                                            "reachable": False}),
    c("web-unreachable-fails", "reachable", {"from": "client", "to": "web", "port": 80,
                                             "reachable": False}),
    c("isolated-reach-fails", "reachable", {"from": "client", "to": "isolated", "port": 80}),
    # exec
    c("exec-cat", "exec", {"container": "web", "command": ["cat", "/w/index.html"],
                           "stdout_regex": "^hello"}),
    c("exec-env", "exec", {"container": "web", "command": ["sh", "-c", "echo $GREETING"],
                           "env": {"GREETING": "hi"}, "stdout": "hi"}),
    c("exec-exit", "exec", {"container": "web", "command": ["sh", "-c", "exit 2"]}),
    c("exec-stderr", "exec", {"container": "web", "command": ["ls", "/nope"], "exit_code": 1,
                              "stderr_regex": "zzz"}),
    # file
    c("file-index", "file", {"container": "web", "path": "/w/index.html", "type": "file",
                             "mode": "0644", "owner": "root", "content_regex": "labup"}),
    c("file-missing", "file", {"container": "web", "path": "/w/missing.txt"}),
    c("file-absent", "file", {"container": "web", "path": "/w/missing.txt", "exists": False}),
    c("file-dir", "file", {"container": "web", "path": "/w", "type": "directory",
                           "mode": "0755"}),
    c("file-link-not-file", "file", {"container": "web", "path": "/bin/sh", "type": "file"}),
    c("file-mode-wrong", "file", {"container": "web", "path": "/w/index.html", "mode": "0600"}),
    c("file-volume", "file", {"volume": "data", "path": "notes.txt", "content_regex": "^notes",
                              "owner": "65534"}),
    c("file-volume-missing", "file", {"volume": "data", "path": "other.txt"}),
    # image
    c("image-good", "image", {"image": "app", "max_size": "10MB", "max_layers": 10,
                              "non_root": True, "healthcheck": True, "exposes": [8080],
                              "labels": {"org.opencontainers.image.title": "checks"},
                              "base_pinned": True}),
    c("image-too-big", "image", {"image": "app", "max_size": "1k"}),
    c("image-root", "image", {"image": "bad", "non_root": True}),
    c("image-unpinned", "image", {"image": "bad", "base_pinned": True}),
    c("image-no-healthcheck", "image", {"image": "bad", "healthcheck": True}),
    # dockerfile: every rule on the good and the bad Dockerfile
    *[
        c(f"df-{rule}-{which}", "dockerfile", {"path": f"{which}/Dockerfile", "rule": rule})
        for rule in ("pinned-base", "user", "no-secrets-in-env", "apt-lists-cleaned",
                     "deps-before-source", "dockerignore")
        for which in ("good", "bad")
    ],
    # gpu
    c("gpu-visible", "gpu", {"container": "gpubox"}),
    c("gpu-required-missing", "gpu", {"container": "web"}),
    c("gpu-optional-missing", "gpu", {"container": "maybe"}),
    # needs
    c("after-fail", "exec", {"container": "web", "command": ["true"]}, needs=("exec-exit",)),
    c("after-pass", "exec", {"container": "web", "command": ["true"]}, needs=("exec-cat",)),
    c("after-skip", "exec", {"container": "web", "command": ["true"]},
      needs=("gpu-optional-missing",)),
]

EXPECTED: dict[str, tuple[str, str]] = {
    "web-running": ("pass", "running"),
    "done-running": ("fail", "is exited (exit code 3), expected running"),
    "done-exit-3": ("pass", "exit code 3"),
    "done-exit-0": ("fail", "exited with code 3, expected 0"),
    "web-healthy": ("pass", "health healthy"),
    "client-healthy": ("fail", "it has no healthcheck"),
    "worker-not-root": ("pass", "runs as 65534"),
    "web-not-root": ("fail", "runs as root (no USER)"),
    "flaky-restarted": ("pass", "restarts"),
    "web-no-restarts": ("pass", "0 restarts"),
    "ghost-absent": ("pass", "does not exist, as expected"),
    "http-host": ("pass", "-> 200, body matches /hello labup/, Content-Type ok"),
    "http-host-404": ("fail", "-> 404 Not Found, expected 200"),
    "http-host-body": ("fail", "body does not match /^goodbye/"),
    "http-from-client": ("pass", "from client -> 200, body equal"),
    "http-from-client-isolated": ("fail", "bad address"),
    "tcp-host-open": ("pass", "open, as expected"),
    "tcp-host-unpublished": ("pass", "is not published: closed from the host, as expected"),
    "tcp-host-closed-fails": ("fail", "open, expected closed"),
    "tcp-from-client-81": ("fail", "Connection refused"),
    "tcp-from-client-81-closed": ("pass", "closed, as expected"),
    "reach-web": ("pass", "reaches"),
    "reach-web-alias": ("pass", "reaches www:80"),
    "reach-web-ping": ("pass", "answers ping"),
    "isolated-unreachable": ("pass", "cannot reach"),
    "web-unreachable-fails": ("fail", "but it must not"),
    "isolated-reach-fails": ("fail", "cannot reach"),
    "exec-cat": ("pass", "stdout matches"),
    "exec-env": ("pass", "stdout equal"),
    "exec-exit": ("fail", "exited 2, expected 0"),
    "exec-stderr": ("fail", "stderr does not match /zzz/"),
    "file-index": ("pass", "mode 0644, owner root, content matches /labup/"),
    "file-missing": ("fail", "/w/missing.txt in"),
    "file-absent": ("pass", "does not exist, as expected"),
    "file-dir": ("pass", "directory, mode 0755"),
    "file-link-not-file": ("fail", "is a symbolic link, expected a regular file"),
    "file-mode-wrong": ("fail", "has mode 0644, expected 0600"),
    "file-volume": ("pass", "owner 65534"),
    "file-volume-missing": ("fail", "other.txt in volume"),
    "image-good": ("pass", "base pinned"),
    "image-too-big": ("fail", "over the limit of 1.0 KiB"),
    "image-root": ("fail", "runs as root (no USER)"),
    "image-unpinned": ("fail", "base image not pinned to a tag"),
    "image-no-healthcheck": ("fail", "has no HEALTHCHECK"),
    "df-pinned-base-good": ("pass", "every base image is pinned"),
    "df-pinned-base-bad": ("fail", "line 1: FROM"),
    "df-user-good": ("pass", "USER 65534"),
    "df-user-bad": ("fail", "line 7: USER root runs as root"),
    "df-no-secrets-in-env-good": ("pass", "no secret-looking"),
    "df-no-secrets-in-env-bad": ("fail", "line 6: ENV API_TOKEN"),
    "df-apt-lists-cleaned-good": ("pass", "apt lists cleaned"),
    "df-apt-lists-cleaned-bad": ("fail", "(line 4)"),
    "df-deps-before-source-good": ("pass", "dependency files (requirements.txt)"),
    "df-deps-before-source-bad": ("fail", "line 2: COPY . /app comes before the dependency"),
    "df-dockerignore-good": ("pass", ".dockerignore with 2 pattern(s)"),
    "df-dockerignore-bad": ("fail", "no .dockerignore"),
    "gpu-visible": ("pass", "GPU 0: Simulated"),
    "gpu-required-missing": ("fail", "no GPU visible"),
    "gpu-optional-missing": ("skipped", "its GPU request is optional"),
    "after-fail": ("blocked", "needs exec-exit, which did not pass"),
    "after-pass": ("pass", "exit 0"),
    "after-skip": ("skipped", "needs gpu-optional-missing, skipped"),
}


@pytest.fixture(scope="module")
def checked(
    docker_client: Any, test_image: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[CheckRun, Lab, Any]]:
    token = uuid.uuid4().hex[:8]
    key = f"ck{token}"
    folder = tmp_path_factory.mktemp("lab")
    base = f"labup-ck-{token}/base"
    docker_client.images.get(test_image).tag(base, "1.0")
    for which, text in (("good", GOOD_DOCKERFILE), ("bad", BAD_DOCKERFILE)):
        (folder / which).mkdir()
        (folder / which / "Dockerfile").write_text(text.format(base=base))
    (folder / "good" / ".dockerignore").write_text(".git\n# comment\n__pycache__\n")
    image_ref = f"labup-ck-{token}/app:1"
    image_dockerfile = (
        f"FROM {base}:1.0\nUSER 65534\nHEALTHCHECK CMD [\"true\"]\nEXPOSE 8080\n"
        'LABEL org.opencontainers.image.title="checks test"\n'
    )
    (folder / "imgctx").mkdir()
    (folder / "imgctx" / "Dockerfile").write_text(image_dockerfile)
    created: list[Any] = []
    networks: list[Any] = []
    volume = None
    labels = {MANAGED: "true", "labup.test": key}
    try:
        docker_client.images.build(path=str(folder / "imgctx"), tag=image_ref, rm=True)
        net = docker_client.networks.create(f"{key}-net", labels=labels)
        other = docker_client.networks.create(f"{key}-other", labels=labels)
        networks += [net, other]
        volume = docker_client.volumes.create(f"{key}-data", labels=labels)

        def run(name: str, command: str, network: Any, **kw: Any) -> Any:
            cont = docker_client.containers.create(
                test_image, ["sh", "-c", command], name=f"{key}-{name}",
                labels={**labels, **lab_labels(key, name)}, network=network.name, **kw,
            )
            created.append(cont)
            return cont

        web = run(
            "web", SERVE, net, ports={"80/tcp": ("127.0.0.1", None)},
            healthcheck={"test": ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1/"],
                         "interval": 200_000_000, "retries": 3},
        )
        net.disconnect(web)
        net.connect(web, aliases=["www"])
        run("client", IDLE, net)
        run("isolated", SERVE, other)
        run("worker", "echo notes > /data/notes.txt; " + IDLE, net, user="65534",
            volumes={volume.name: {"bind": "/data", "mode": "rw"}})
        run("done", "exit 3", net)
        run("flaky", "exit 1", net, restart_policy={"Name": "on-failure", "MaximumRetryCount": 50})
        run("gpubox", FAKE_SMI, net)
        run("maybe", IDLE, net)
        # the data volume is root-owned: let the worker (65534) write into it
        docker_client.containers.run(
            test_image, ["chmod", "777", "/data"], remove=True,
            volumes={volume.name: {"bind": "/data", "mode": "rw"}},
        )
        for cont in created:
            cont.start()
        lab = _lab(key, folder, base, image_ref, CHECKS)
        engine = connect(None)
        run_result = run_checks(engine, lab, parallel=16)
        yield run_result, lab, engine
        engine.close()
    finally:
        for cont in created:
            cont.remove(force=True)
        for n in networks:
            n.remove()
        if volume is not None:
            volume.remove(force=True)
        for ref in (image_ref, f"{base}:1.0"):
            docker_client.images.remove(ref, force=True)


def _result(run: CheckRun, cid: str) -> CheckResult:
    return next(r for r in run.results if r.id == cid)


@pytest.mark.parametrize("cid", list(EXPECTED))
def test_check_result(checked: tuple[CheckRun, Lab, Any], cid: str) -> None:
    run, _, _ = checked
    result = _result(run, cid)
    status, fragment = EXPECTED[cid]
    assert (result.status, fragment in result.message) == (status, True), result.message
    if status == "pass":
        assert result.earned == result.points
    else:
        assert result.earned == 0


def test_every_check_has_an_expectation() -> None:
    assert {ch.id for ch in CHECKS} == set(EXPECTED)


def test_every_type_has_a_passing_and_a_failing_check() -> None:
    by_type: dict[str, set[str]] = {}
    for ch in CHECKS:
        by_type.setdefault(ch.type, set()).add(EXPECTED[ch.id][0])
    for kind, statuses in by_type.items():
        assert {"pass", "fail"} <= statuses, kind


def test_secret_values_are_never_printed(checked: tuple[CheckRun, Lab, Any]) -> None:
    run, _, _ = checked
    assert all("s3cr3t" not in r.message for r in run.results)


def test_from_the_host_on_a_remote_engine_uses_a_host_network_probe(
    checked: tuple[CheckRun, Lab, Any],
) -> None:
    _, lab, engine = checked
    remote = RemoteLike(engine)
    run = run_checks(remote, lab, only=("http-host", "http-host-404", "tcp-host-open"))
    statuses = {r.id: (r.status, r.message) for r in run.results}
    assert statuses["http-host"][0] == "pass", statuses
    assert statuses["http-host-404"][0] == "fail" and "404" in statuses["http-host-404"][1]
    assert statuses["tcp-host-open"][0] == "pass", statuses
    assert run.host == "remote-like"


def test_parallel_run_takes_about_the_slowest_check(checked: tuple[CheckRun, Lab, Any]) -> None:
    run, _, _ = checked
    slowest = max(r.duration for r in run.results)
    total = sum(r.duration for r in run.results)
    assert run.duration < total
    assert run.duration >= slowest



# checks "from" a container: in-process (root, local engine) or in a probe sidecar
FROM_CONTAINER = [ch.id for ch in CHECKS if ch.type in ("http", "tcp", "reachable")
                  and "from" in ch.spec]


def test_probes_from_containers_agree_in_process_and_in_sidecars(
    checked: tuple[CheckRun, Lab, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, lab, engine = checked
    before = probe_module._SIDECARS.execs
    in_process = run_checks(engine, lab, only=FROM_CONTAINER, parallel=16)
    used_sidecars = probe_module._SIDECARS.execs != before
    # as root on the engine's host no probe container is needed; elsewhere one is
    assert used_sidecars == (os.geteuid() != 0), "in-process probes not used as root"
    monkeypatch.setenv("LABUP_PROBES", "sidecar")
    sidecar = run_checks(engine, lab, only=FROM_CONTAINER, parallel=16)
    assert probe_module._SIDECARS.execs > before
    assert len(in_process.results) == len(FROM_CONTAINER)
    for a, b in zip(in_process.results, sidecar.results, strict=True):
        assert a.status == b.status == EXPECTED[a.id][0], (a.id, a.message, b.message)


class CountingExecs:
    """The engine, counting the execs that checks run through it."""

    def __init__(self, engine: Any) -> None:
        self._engine, self.execs = engine, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def exec(self, *args: Any, **kwargs: Any) -> Any:
        self.execs += 1
        return self._engine.exec(*args, **kwargs)


def test_file_type_and_mode_need_no_exec_in_the_container(
    checked: tuple[CheckRun, Lab, Any],
) -> None:
    _, lab, engine = checked
    counting = CountingExecs(engine)
    ids = ("file-dir", "file-link-not-file", "file-mode-wrong", "file-absent", "file-missing")
    run = run_checks(counting, lab, only=ids)
    assert {r.id: r.status for r in run.results} == {i: EXPECTED[i][0] for i in ids}
    assert counting.execs == 0
    content = run_checks(counting, lab, only=("exec-cat", "file-index"))
    assert all(r.status == "pass" for r in content.results)
    assert counting.execs == 3  # exec-cat; file-index: stat (for the owner) and cat

"""The model builder: a schema-valid, rendered document to the frozen :class:`~labspec.model.Lab`.

Durations become seconds and sizes bytes; paths in the lab folder become absolute (symlinks
resolved, so an escape shows); image keys resolve to references. The semantic rules run after
(:mod:`labspec.semantic`).
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, cast

from labspec.document import Document, JsonPath
from labspec.errors import Problem
from labspec.model import (
    BuildSpec,
    Check,
    Container,
    Dependency,
    GpuRequest,
    Healthcheck,
    Image,
    Lab,
    Mount,
    Network,
    NetworkAttachment,
    Param,
    ParamValue,
    Port,
    RandomSpec,
    Resources,
    Solution,
    SolutionStep,
    Volume,
    lab_key,
)
from labspec.units import parse_duration, parse_size

# The fields every check has; the one other key of a check names its type.
COMMON_CHECK_FIELDS = frozenset(
    {"id", "description", "hint", "points", "stage", "wait", "timeout", "needs"}
)


def _lab_id(value: Any) -> int | None:
    """The catalog number (``5`` or ``5.0``, which JSON Schema also calls an integer)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value)
    return None


def build_params(raw: Mapping[str, Any]) -> tuple[Param, ...]:
    params = []
    for name, spec in raw.items():
        choices = tuple(str(c) for c in spec.get("choices") or ())
        params.append(
            Param(
                name=name,
                type=spec["type"],
                default=spec.get("default"),
                description=spec.get("description", ""),
                choices=choices,
                secret=spec.get("secret") is True,
                random=_random(spec.get("random")),
            )
        )
    return tuple(params)


def _random(value: Any) -> RandomSpec | None:
    if not isinstance(value, Mapping):
        return None
    if "choices" in value:
        return RandomSpec(choices=tuple(value.get("choices") or ()))
    return RandomSpec(minimum=value.get("min"), maximum=value.get("max"))


def _points(value: Any) -> tuple[float, tuple[float, ...]]:
    """``points: 3`` or ``points: {value: 3, hint_cost: 0.5 | [0, 1]}``: points, cost per level."""
    if isinstance(value, Mapping):
        cost = value.get("hint_cost", ())
        costs = (float(cost),) if isinstance(cost, int | float) else tuple(float(c) for c in cost)
        return float(value.get("value", 1.0)), costs
    return float(value), ()


def _hints(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(h) for h in value)
    return (str(value),) if value else ()


def text(value: Any) -> str:
    """Env values, labels and build args as Docker wants them: strings (booleans lowercase)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def default_image_ref(lab_key: str, image_key: str) -> str:
    """The tag of a built image that names no ``ref``: ``labup/<lab>-<key>:latest``."""
    return f"labup/{lab_key}-{image_key}".lower() + ":latest"


def parse_port(value: Any) -> Port:
    """``80``, ``"8080:80"``, ``"127.0.0.1:8080:80/udp"``, ``"[::1]:8080:80"`` or a mapping."""
    if isinstance(value, Mapping):
        return Port(
            container=int(value["container"]),
            host=int(value["host"]) if value.get("host") is not None else None,
            host_ip=str(value.get("host_ip", "127.0.0.1")),
            protocol=cast(Literal["tcp", "udp"], value.get("protocol", "tcp")),
        )
    if isinstance(value, int):
        return Port(container=value)
    spec = str(value)
    protocol: Literal["tcp", "udp"] = "tcp"
    if "/" in spec:
        spec, proto = spec.rsplit("/", 1)
        protocol = "udp" if proto == "udp" else "tcp"
    host_ip = "127.0.0.1"
    if spec.startswith("["):
        end = spec.index("]")
        host_ip, spec = spec[1:end], spec[end + 2 :]
    parts = spec.split(":")
    if len(parts) == 3:
        host_ip = parts.pop(0)
    if len(parts) == 2:
        return Port(container=int(parts[1]), host=int(parts[0]), host_ip=host_ip, protocol=protocol)
    return Port(container=int(parts[0]), host_ip=host_ip, protocol=protocol)


class _Builder:
    """Schema-valid data to model objects; the few problems the schema cannot see (a command
    string with an unclosed quote, a check with no type key) are collected on the way."""

    def __init__(self, doc: Document, folder: Path) -> None:
        self.doc = doc
        self.folder = folder
        self.problems: list[Problem] = []

    def inside(self, relative: str) -> Path:
        """A lab-folder path made absolute (symlinks resolved, so escapes show)."""
        return (self.folder / os.path.expanduser(relative)).resolve()

    def lab(self, spec_path: Path, params: tuple[Param, ...], values: dict[str, ParamValue]) -> Lab:
        data: dict[str, Any] = self.doc.data
        lab_id = _lab_id(data.get("id"))
        key = lab_key(lab_id, str(data["name"]))
        images = tuple(self.image(k, v or {}, key) for k, v in (data.get("images") or {}).items())
        refs = {image.name: image.ref for image in images}
        containers = tuple(
            self.container(k, v, refs) for k, v in (data.get("containers") or {}).items()
        )
        checks = tuple(self.check(i, c) for i, c in enumerate(data.get("checks") or []))
        instructions = data.get("instructions")
        return Lab(
            api_version=str(data["apiVersion"]),
            id=lab_id,
            name=str(data["name"]),
            title=str(data["title"]),
            description=str(data.get("description", "")),
            path=spec_path,
            folder=self.folder,
            params=params,
            values=values,
            images=images,
            networks=tuple(
                self.network(k, v or {}) for k, v in (data.get("networks") or {}).items()
            ),
            volumes=tuple(
                Volume(k, {lk: text(lv) for lk, lv in ((v or {}).get("labels") or {}).items()})
                for k, v in (data.get("volumes") or {}).items()
            ),
            containers=containers,
            checks=tuple(c for c in checks if c is not None),
            instructions=self.inside(instructions) if instructions else None,
            solution=self.solution(data.get("solution")),
            requires=tuple(data.get("requires") or ()),
            learner_containers=tuple(str(k) for k in data.get("learner_containers") or ()),
        )

    def image(self, key: str, spec: Mapping[str, Any], lab_key: str) -> Image:
        build = None
        if "build" in spec:
            b = spec["build"]
            build = BuildSpec(
                context=self.inside(b["context"]),
                dockerfile=b.get("dockerfile", "Dockerfile"),
                args={k: text(v) for k, v in (b.get("args") or {}).items()},
                target=b.get("target"),
            )
        ref = spec.get("ref") or default_image_ref(lab_key, key)
        return Image(name=key, ref=ref, build=build, pull=spec.get("pull", "missing"))

    def network(self, key: str, spec: Mapping[str, Any]) -> Network:
        return Network(
            name=key,
            driver=spec.get("driver", "bridge"),
            internal=bool(spec.get("internal", False)),
            subnet=spec.get("subnet"),
            gateway=spec.get("gateway"),
            labels={k: text(v) for k, v in (spec.get("labels") or {}).items()},
        )

    def argv(self, value: Any, path: JsonPath) -> tuple[str, ...] | None:
        if value is None:
            return None
        if isinstance(value, list):
            return tuple(str(v) for v in value)
        try:
            return tuple(shlex.split(str(value)))
        except ValueError as e:
            self.problems.append(
                self.doc.problem(
                    path, f"cannot split the command: {e}", hint="close the quote, or give a list"
                )
            )
            return None

    def container(self, key: str, spec: Mapping[str, Any], refs: Mapping[str, str]) -> Container:
        path: JsonPath = ("containers", key)
        image = str(spec["image"])
        resources = spec.get("resources") or {}
        return Container(
            name=key,
            image=refs.get(image, image),
            image_key=image if image in refs else None,
            command=self.argv(spec.get("command"), (*path, "command")),
            entrypoint=self.argv(spec.get("entrypoint"), (*path, "entrypoint")),
            env={k: text(v["value"] if isinstance(v, dict) else v)
                 for k, v in (spec.get("env") or {}).items()},
            secret_env=tuple(k for k, v in (spec.get("env") or {}).items()
                             if isinstance(v, dict) and v.get("secret") is True),
            working_dir=spec.get("working_dir"),
            hostname=spec.get("hostname"),
            ports=tuple(parse_port(p) for p in spec.get("ports") or ()),
            networks=self.attachments(spec.get("networks")),
            network_mode=spec.get("network_mode"),
            mounts=tuple(self.mount(m) for m in spec.get("mounts") or ()),
            resources=Resources(
                cpus=float(resources["cpus"]) if "cpus" in resources else None,
                memory=parse_size(resources["memory"]) if "memory" in resources else None,
                pids=int(resources["pids"]) if "pids" in resources else None,
            ),
            gpus=self.gpus(spec.get("gpus")),
            healthcheck=self.healthcheck(spec.get("healthcheck")),
            depends_on=self.dependencies(spec.get("depends_on")),
            user=text(spec["user"]) if spec.get("user") is not None else None,
            read_only=bool(spec.get("read_only", False)),
            privileged=bool(spec.get("privileged", False)),
            init=bool(spec.get("init", False)),
            cap_add=tuple(spec.get("cap_add") or ()),
            cap_drop=tuple(spec.get("cap_drop") or ()),
            restart=str(spec.get("restart", "no")),
            labels={k: text(v) for k, v in (spec.get("labels") or {}).items()},
            stop_timeout=parse_duration(spec["stop_timeout"]) if "stop_timeout" in spec else None,
        )

    @staticmethod
    def attachments(value: Any) -> tuple[NetworkAttachment, ...]:
        if not value:
            return ()
        if isinstance(value, list):
            return tuple(NetworkAttachment(network=str(n)) for n in value)
        out = []
        for name, spec in value.items():
            spec = spec or {}
            out.append(
                NetworkAttachment(
                    network=name,
                    aliases=tuple(spec.get("aliases") or ()),
                    ipv4_address=spec.get("ipv4_address"),
                )
            )
        return tuple(out)

    def mount(self, spec: Mapping[str, Any]) -> Mount:
        kind = spec["type"]
        source = spec.get("source")
        if kind == "bind" and source is not None:
            expanded = os.path.expanduser(source)
            source = (
                os.path.normpath(expanded) if os.path.isabs(expanded) else str(self.inside(source))
            )
        return Mount(
            type=kind,
            target=spec["target"],
            source=source,
            read_only=bool(spec.get("read_only", False)),
            size=parse_size(spec["size"]) if "size" in spec else None,
        )

    @staticmethod
    def gpus(value: Any) -> GpuRequest | None:
        if value is None:
            return None
        if isinstance(value, str):
            return GpuRequest(count="all")
        if isinstance(value, int | float):
            return GpuRequest(count=int(value))
        count = value.get("count", 1)
        return GpuRequest(
            count="all" if count == "all" else int(count),
            capabilities=tuple(value.get("capabilities") or ("gpu",)),
            optional=bool(value.get("optional", False)),
        )

    @staticmethod
    def healthcheck(value: Any) -> Healthcheck | None:
        if value is None:
            return None
        test = value["test"]
        if isinstance(test, str):
            argv: tuple[str, ...] = ("CMD-SHELL", test)
        elif test and test[0] in ("CMD", "CMD-SHELL", "NONE"):
            argv = tuple(str(t) for t in test)
        else:
            argv = ("CMD", *(str(t) for t in test))
        return Healthcheck(
            test=argv,
            interval=parse_duration(value.get("interval", 5.0)),
            timeout=parse_duration(value.get("timeout", 5.0)),
            retries=int(value.get("retries", 3)),
            start_period=parse_duration(value.get("start_period", 0.0)),
        )

    @staticmethod
    def dependencies(value: Any) -> tuple[Dependency, ...]:
        if not value:
            return ()
        if isinstance(value, list):
            return tuple(Dependency(container=str(n)) for n in value)
        return tuple(
            Dependency(container=name, condition=(spec or {}).get("condition", "started"))
            for name, spec in value.items()
        )

    def check(self, index: int, spec: Mapping[str, Any]) -> Check | None:
        path: JsonPath = ("checks", index)
        types = [k for k in spec if k not in COMMON_CHECK_FIELDS]
        if len(types) != 1:
            what = "no type key" if not types else f"{len(types)} type keys ({', '.join(types)})"
            self.problems.append(
                self.doc.problem(
                    path,
                    f"check {spec.get('id', index)!r} has {what}; a check has exactly one",
                    hint="a type key such as container, http, tcp, reachable, exec, file, volume, "
                    "image, dockerfile or gpu, whose mapping says what must hold",
                )
            )
            return None
        kind = types[0]
        body = spec[kind]
        if body is None:
            body = {}
        if not isinstance(body, Mapping):
            self.problems.append(
                self.doc.problem((*path, kind), f"the {kind} check takes a mapping of its fields")
            )
            return None
        points, hint_cost = _points(spec.get("points", 1.0))
        hints = _hints(spec.get("hint"))
        return Check(
            id=str(spec["id"]),
            type=kind,
            spec=dict(body),
            description=str(spec.get("description", "")),
            hint=hints[0] if hints else "",
            points=points,
            stage=spec.get("stage", "task"),
            wait=parse_duration(spec.get("wait", 0.0)),
            timeout=parse_duration(spec.get("timeout", 10.0)),
            needs=tuple(str(n) for n in spec.get("needs") or ()),
            hints=hints,
            hint_cost=hint_cost,
        )

    def solution(self, value: Any) -> Solution | None:
        if value is None:
            return None
        if isinstance(value, str):
            return Solution(script=self.inside(value))
        if isinstance(value, list):
            return Solution(keyed=tuple(self.solution_step(step) for step in value))
        script = value.get("script")
        return Solution(
            script=self.inside(script) if script else None,
            steps=tuple(tuple(str(a) for a in step) for step in value.get("steps") or ()),
        )

    def solution_step(self, step: Mapping[str, Any]) -> SolutionStep:
        check = step["check"]
        checks = (str(check),) if isinstance(check, str) else tuple(str(c) for c in check)
        run = step["run"]
        if isinstance(run, list):
            return SolutionStep(checks=checks, argv=tuple(str(a) for a in run))
        return SolutionStep(checks=checks, script=self.inside(str(run)))

"""The planner against a fake engine: create / replace (with the changed fields) / keep / remove."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fake_engine import FakeEngine

from labspec.catalog import origin_of
from labspec.model import (
    Container,
    Dependency,
    Lab,
    Mount,
    Network,
    NetworkAttachment,
    Volume,
)
from provisioner.engine import labels as L
from provisioner.engine.protocol import Observed
from provisioner.lifecycle.config_hash import CONFIG_JSON, changed_fields, config_hash
from provisioner.lifecycle.planner import desired_state, make_plan

IMAGE = "busybox:1.36"


def lab(**changes: object) -> Lab:
    base = Lab(
        api_version="labup/v1", id=7, name="demo", title="Demo", description="",
        path=Path("/labs/07-demo/lab.yaml"), folder=Path("/labs/07-demo"),
        networks=(Network("net"),),
        volumes=(Volume("data"),),
        containers=(
            Container("web", IMAGE, env={"A": "1"}, networks=(NetworkAttachment("net"),),
                      mounts=(Mount("volume", "/d", "data"),)),
            Container("db", IMAGE),
            Container("init", IMAGE, command=("true",)),
            Container("app", IMAGE, depends_on=(Dependency("init", "completed"),)),
        ),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def engine_with(the_lab: Lab, instance: str = "default", state: str = "running",
                status: str = "Up 1 minute") -> FakeEngine:
    """A fake engine holding exactly what `up` would have created for the lab."""
    fake = FakeEngine()
    fake.images[IMAGE] = {"Id": "sha256:1"}
    for (kind, key), want in desired_state(the_lab, instance).items():
        labels = {**L.selector(the_lab.key, instance), L.KIND: kind, L.RESOURCE: key,
                  L.CONFIG_HASH: want.hash, CONFIG_JSON: want.config_json,
                  L.ORIGIN: origin_of(the_lab)}
        fake.add(Observed(kind, want.name, f"id-{want.name}", labels,
                          state=state if kind == "container" else "",
                          status=status if kind == "container" else ""))
    return fake


def actions(plan: object) -> dict[tuple[str, str], str]:
    return {(s.kind, s.key): s.action for s in plan.steps}  # type: ignore[attr-defined]


def test_empty_engine_plans_to_create_everything_in_readable_names() -> None:
    fake = FakeEngine()
    fake.images[IMAGE] = {"Id": "sha256:1"}
    plan = make_plan(fake, lab())
    assert actions(plan) == {
        ("image", IMAGE): "keep", ("network", "net"): "create", ("volume", "data"): "create",
        ("container", "web"): "create", ("container", "db"): "create",
        ("container", "init"): "create", ("container", "app"): "create",
    }
    assert {s.name for s in plan.of("container")} == {"lab7-web", "lab7-db", "lab7-init",
                                                      "lab7-app"}
    assert plan.counts() == {"create": 6, "replace": 0, "keep": 1, "remove": 0}


def test_unchanged_lab_is_a_noop_with_one_list_call_per_kind_and_no_inspect() -> None:
    fake = engine_with(lab())
    plan = make_plan(fake, lab())
    assert plan.is_noop
    assert fake.calls == {"list container": 1, "list network": 1, "list volume": 1,
                          "inspect image": 1}


def test_changed_fields_are_named() -> None:
    fake = engine_with(lab())
    changed = lab(containers=(
        replace(lab().containers[0], env={"A": "2", "B": "x"}, user="nobody"),
        *lab().containers[1:],
    ))
    plan = make_plan(fake, changed)
    (step,) = plan.changes
    assert (step.kind, step.key, step.action) == ("container", "web", "replace")
    assert step.changed == ("env.A", "env.B", "user")
    assert step.text() == "replace  container lab7-web (env.A, env.B, user changed)"


def test_resources_no_longer_in_the_spec_are_removed_but_volumes_kept() -> None:
    fake = engine_with(lab())
    smaller = lab(containers=lab().containers[1:], networks=(), volumes=())
    plan = make_plan(fake, smaller)
    assert actions(plan)[("container", "web")] == "remove"
    assert actions(plan)[("network", "net")] == "remove"
    vol = next(s for s in plan.steps if s.kind == "volume")
    assert vol.action == "keep" and "down --volumes" in vol.reason


def test_replaced_network_replaces_its_containers() -> None:
    fake = engine_with(lab())
    changed = lab(networks=(Network("net", internal=True),))
    plan = make_plan(fake, changed)
    net = next(s for s in plan.steps if s.kind == "network")
    assert (net.action, net.changed) == ("replace", ("internal",))
    web = next(s for s in plan.steps if s.key == "web")
    assert web.action == "replace" and web.reason == "network lab7-net is replaced"
    assert actions(plan)[("container", "db")] == "keep"


def test_stopped_and_never_started_containers_are_replaced_completed_jobs_kept() -> None:
    fake = engine_with(lab(), state="exited", status="Exited (0) 3 seconds ago")
    plan = make_plan(fake, lab())
    assert actions(plan)[("container", "init")] == "keep"  # a job something waits to complete
    web = next(s for s in plan.steps if s.key == "web")
    assert web.action == "replace" and web.reason == "was Exited (0) 3 seconds ago"
    fake = engine_with(lab(), state="created", status="Created")
    assert {s.reason for s in make_plan(fake, lab()).of("container")} == {"was never started"}


def test_instances_are_planned_separately() -> None:
    fake = engine_with(lab(), instance="alice")
    assert make_plan(fake, lab(), instance="alice").is_noop
    bob = make_plan(fake, lab(), instance="bob")
    assert {s.name for s in bob.of("container")} == {"lab7-bob-web", "lab7-bob-db",
                                                     "lab7-bob-init", "lab7-bob-app"}
    assert all(s.action == "create" for s in bob.of("container"))


def test_missing_image_is_pulled_and_json_is_stable() -> None:
    fake = engine_with(lab())
    fake.images.clear()
    plan = make_plan(fake, lab())
    doc = plan.as_dict()
    assert doc["noop"] is False and doc["lab"] == "lab7" and doc["instance"] == "default"
    assert doc["steps"][0] == {"kind": "image", "key": IMAGE, "name": IMAGE, "action": "create",
                               "reason": "pull", "changed": []}


def test_config_hash_is_stable_and_changed_fields_handle_unknown_old_config() -> None:
    assert config_hash({"a": 1, "b": [1, 2]}) == config_hash({"b": [1, 2], "a": 1})
    assert changed_fields(None, {"a": 1}) == ["config"]
    assert changed_fields("not json", {"a": 1}) == ["config"]
    assert changed_fields('{"a":1,"labels":{"x":"1"}}', {"a": 1, "labels": {"x": "2"}}) == [
        "labels.x"]

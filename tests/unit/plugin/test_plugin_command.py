"""The plugin's commands without a cluster: arguments, the writes it would make, refusals, --watch."""

from __future__ import annotations

import asyncio
import io

import pytest
from plugin_cases import NOW, canary, monitor, project, view

from mlkube.plugin import actions, command, tree


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["get", "project", "penguins"], {"command": "get", "name": "penguins", "watch": False, "namespace": None}),
        (["-n", "ml", "get", "mlp", "penguins", "-w"], {"name": "penguins", "watch": True, "namespace": "ml"}),
        (["get", "mlprojects", "penguins", "-n", "ml", "--kubeconfig", "k"], {"namespace": "ml", "kubeconfig": "k"}),
        (["promote", "mdep", "prod"], {"action": "promote", "name": "prod"}),
        (["abort", "modeldeployment", "prod", "--context", "kind-mlkube"], {"action": "abort", "context": "kind-mlkube"}),
        (["approve", "mv", "penguins-v3", "--reason", "ok by J. Doe"], {"decision": "Approved", "reason": "ok by J. Doe"}),
        (["reject", "modelversions", "penguins-v3", "--reason", "leak"], {"decision": "Rejected"}),
        (["logs", "tj", "nightly", "--tail", "20"], {"name": "nightly", "tail": 20}),
        (["report", "dmon", "penguins-drift"], {"name": "penguins-drift", "open": False}),
    ],
)
def test_arguments_as_kubectl_users_write_them(argv, expected):
    args = vars(command.parser().parse_args(argv))
    assert {key: args[key] for key in expected} == expected


def test_a_kind_the_command_does_not_act_on_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exited:
        command.parser().parse_args(["promote", "mv", "penguins-v3"])
    assert exited.value.code == 2
    assert "invalid choice: 'mv'" in capsys.readouterr().err


@pytest.mark.parametrize("verb", ["approve", "reject"])
@pytest.mark.parametrize("reason", [[], ["--reason", "  "]])
def test_a_decision_without_a_reason_is_refused_before_anything_is_read(verb, reason, capsys):
    assert command.main([verb, "mv", "penguins-v3", "--kubeconfig", "/nonexistent", *reason]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --reason is required: say why you ")
    assert f"{verb} the version" in err and "Event" in err


def test_approval_is_a_merge_patch_of_spec_approval_with_the_reason():
    assert actions.approval_patch("Approved", " risk accepted ") == {
        "spec": {"approval": {"state": "Approved", "reason": "risk accepted"}}
    }
    assert actions.approval_patch("Rejected", "leaked labels")["spec"]["approval"]["state"] == "Rejected"


def test_promote_and_abort_write_the_operators_action_annotation():
    assert actions.action_patch("promote") == {"metadata": {"annotations": {"mlkube.io/action": "promote"}}}
    assert actions.action_patch("abort") == {"metadata": {"annotations": {"mlkube.io/action": "abort"}}}
    actions.check_action("promote", canary())
    actions.check_action("abort", canary())


def test_promote_or_abort_without_a_rollout_is_refused_with_what_is_served():
    healthy = canary(phase="Healthy", candidateVersion=None, stableVersion=3)
    with pytest.raises(actions.Refused, match=r"penguins-prod has no rollout to promote \(phase Healthy, serving v3\)"):
        actions.check_action("promote", healthy)
    with pytest.raises(actions.Refused, match="no rollout to abort and no previous version"):
        actions.check_action("abort", healthy)
    actions.check_action("abort", canary(phase="Healthy", candidateVersion=None, previousVersion=2))  # scale-down window


def test_the_report_is_a_local_path_for_file_uris_and_the_uri_otherwise():
    assert actions.report_location(monitor()) == "/var/mlkube/reports/ml/penguins-drift/20261205T115900Z.html"
    s3 = monitor()
    s3["status"]["reportUri"] = "s3://models/reports/ml/penguins-drift/x.html"
    assert actions.report_location(s3) == "s3://models/reports/ml/penguins-drift/x.html"
    pending = monitor()
    pending["status"] = {"phase": "InsufficientData"}
    with pytest.raises(actions.Refused, match=r"penguins-drift has no report yet \(phase InsufficientData\)"):
        actions.report_location(pending)


class Stop(Exception):
    """Ends a watch loop in a test (a user presses Ctrl-C)."""


def _watch(views: list[tree.View], *, tty: bool) -> str:
    out, reads = io.StringIO(), iter(views)

    async def read() -> tree.View:
        try:
            return next(reads)
        except StopIteration:
            raise Stop from None

    async def sleep(_: float) -> None:
        pass

    with pytest.raises(Stop):
        asyncio.run(command.watch(read, out, tty=tty, colour=False, interval=2, clock=lambda: NOW, sleep=sleep))
    return out.getvalue()


def test_watch_on_a_pipe_writes_a_block_per_change():
    promoted = view()
    promoted.deployments[0]["status"].update(
        phase="Healthy", candidateVersion=None, traffic=[{"version": 3, "role": "stable", "percent": 100}]
    )
    written = _watch([view(), view(), promoted, promoted], tty=False)
    blocks = written.split("\n\n")
    assert len(blocks) == 2 and "\x1b" not in written
    assert "split v2=90,v3=10" in blocks[0] and "split v3=100" in blocks[1]
    assert blocks[0] + "\n" == tree.render(view(), now=NOW)


def test_watch_on_a_terminal_redraws_in_place_every_read():
    written = _watch([tree.View(project=project())] * 3, tty=True)
    assert written.count(command.CLEAR) == 3
    assert written.split(command.CLEAR)[1:] == [tree.render(tree.View(project=project()), now=NOW)] * 3

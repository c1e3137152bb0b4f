"""The `triptych` command. Each sub-command group lives in its own module."""

from __future__ import annotations

import typer

from . import (
    api_commands,
    bench_command,
    chaos_command,
    cluster_commands,
    dashboard_command,
    dataset_commands,
    demo_command,
    deploy_command,
    dlq_commands,
    function_commands,
    image_commands,
    ingress_commands,
    kube_commands,
    lifecycle_commands,
    logs_command,
    model_commands,
    stack_commands,
    users_commands,
    watch_command,
)

app = typer.Typer(
    name="triptych",
    help="Triptych: three image classifiers compete live on a stream.",
    no_args_is_help=True,
    add_completion=False,
)
stack_commands.register(app)
function_commands.register(app)
dlq_commands.register(app)
logs_command.register(app)
deploy_command.register(app)
image_commands.register(app)
ingress_commands.register(app)
model_commands.register(app)
dataset_commands.register(app)
watch_command.register(app)
demo_command.register(app)
dashboard_command.register(app)
api_commands.register(app)
lifecycle_commands.register(app)
bench_command.register(app)
chaos_command.register(app)
cluster_commands.register(app)
kube_commands.register(app)
users_commands.register(app)


@app.callback()
def _before_any_command(ctx: typer.Context) -> None:
    cluster_commands.follow_if_up(ctx.invoked_subcommand)


def main() -> None:
    app()

"""``baseimage validate``: build a candidate image and prove it (GPU, health, training, ONNX, banner)."""

from __future__ import annotations

import argparse

from rich.console import Console

from baseimage.cli.options import EXIT_FAILED, EXIT_OK, Subparsers, add_command, add_config, add_out
from baseimage.printing import print_problem
from baseimage.settings import load_settings
from tasks.errors import ConfigError


def add_parser(sub: Subparsers) -> None:
    p_val = add_command(
        sub,
        "validate",
        cmd_validate,
        needs_api=True,
        help="build a candidate image and prove it (GPU, health, training, ONNX, banner)",
        description=(
            "Run the validate flow here, on Prefect's ephemeral API unless PREFECT_API_URL is "
            "set: build the candidate, detect the GPU with nvidia-smi, start the service, check "
            "/health, run a sample training job, verify its ONNX model, check GPU utilisation "
            "and the start-up logs, then tear everything down. Exit 0 when every check passed, "
            "1 when one failed."
        ),
    )
    p_val.add_argument("--context", default=".", help="build context (default: the repo root)")
    p_val.add_argument(
        "--dockerfile",
        default="dockerfiles/training/Dockerfile",
        help="Dockerfile, relative to the context",
    )
    p_val.add_argument(
        "--build-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="build argument (repeatable)",
    )
    add_config(p_val)
    gpu = p_val.add_mutually_exclusive_group()
    gpu.add_argument(
        "--require-gpu",
        dest="require_gpu",
        action="store_true",
        default=None,
        help="fail when no GPU is usable (the policy's require_gpu by default)",
    )
    gpu.add_argument(
        "--allow-no-gpu",
        dest="require_gpu",
        action="store_false",
        help="skip GPU checks on a host without an NVIDIA runtime",
    )
    add_out(p_val, help="where the JSON result goes")
    p_val.add_argument("--keep-image", action="store_true", help="keep the candidate image")


def cmd_validate(args: argparse.Namespace, out: Console, err: Console) -> int:
    buildargs = {}
    for item in args.build_arg:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--build-arg {item!r}: expected KEY=VALUE")
        buildargs[key] = value
    load_settings(args.config)  # fail fast, before Prefect starts, on a bad config
    from flows.validate import validate

    state = validate(
        context=args.context,
        dockerfile=args.dockerfile,
        buildargs=buildargs,
        config_path=str(args.config) if args.config else None,
        require_gpu=args.require_gpu,
        out_dir=args.out,
        keep_image=args.keep_image,
        return_state=True,
    )
    summary = state.result(raise_on_failure=False)
    if isinstance(summary, dict) and "checks" in summary:
        for check in summary["checks"]:
            out.print(f"{check['status']:>8}  {check['name']}: {check['message']}", highlight=False)
        out.print(f"{summary['counts']}; report: {summary.get('report')}", highlight=False)
    if state.is_completed():
        return EXIT_OK
    print_problem(err, "validation failed", str(state.message))
    return EXIT_FAILED

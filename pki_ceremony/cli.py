# PYTHON_ARGCOMPLETE_OK
"""`pki-ceremony`: validate, plan, apply, status, graph, rehearse, init, completion.

Exit codes: 0 success (or nothing to do); 1 a step failed; 2 the ceremony file or the command
line is wrong (nothing was touched); 3 the plan was refused (drift, or not confirmed);
4 the workspace is locked by another apply; 5 a PIN was refused.
"""
from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from pki_ceremony.errors import CeremonyError, UsageError

EXIT_INTERRUPTED = 130


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="pki-ceremony", description="Run PKI key ceremonies from a ceremony file.")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def cmd(name, help_):
        s = sub.add_parser(name, help=help_, description=help_)
        s.add_argument("file", help="the ceremony file (YAML)")
        s.add_argument("--workspace", help="workspace directory (default: <file stem>-workspace beside the file)")
        s.add_argument("--debug", action="store_true", help="show tracebacks")
        return s

    cmd("validate", "check a ceremony file; touches nothing")
    pl = cmd("plan", "show what apply would do and why; touches nothing")
    pl.add_argument("--replace", action="append", default=[], metavar="STEP", help="plan to make STEP anew")
    pl.add_argument("--out", metavar="PLANFILE", help="also save the plan, for review and 'apply PLANFILE'")
    pl.add_argument("--json", action="store_true", help="print the plan as JSON (schemas/plan.schema.json)")
    pl.add_argument("--refresh", action="store_true",
                    help="also ask the HSMs and Private CA whether what the state records still exists (needs PINs)")
    ap = cmd("apply", "run the ceremony (FILE is a ceremony file, or a plan saved with 'plan --out')")
    ap.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    ap.add_argument("--replace", action="append", default=[], metavar="STEP",
                    help="make STEP (and what depends on it) anew")
    ap.add_argument("--quiet", "-q", action="store_true", help="print only the summary")
    ap.add_argument("--verbose", "-v", action="store_true", help="also print each step's AWS calls")
    ap.add_argument("--no-color", action="store_true", help="plain output even on a terminal")
    ap.add_argument("--parallel", type=int, default=1, metavar="N",
                    help="run up to N independent steps at once (their AWS waits overlap; HSM calls stay serialised)")
    st = cmd("status", "show the CA hierarchy and how far the ceremony got")
    st.add_argument("--json", action="store_true", help="print the status as JSON (schemas/status.schema.json)")
    gr = cmd("graph", "write the step DAG as Mermaid and Graphviz DOT (and SVG when Graphviz is installed)")
    gr.add_argument("--out", metavar="DIR", default=".", help="directory to write to (default: the current one)")
    gr.add_argument("--print", dest="print_format", choices=["mermaid", "dot", "hierarchy"],
                    help="print one form on stdout instead of writing files")
    rh = sub.add_parser("rehearse", help="run the ceremony on SoftHSM and a local AWS stand-in",
                        description="Run the ceremony with every HSM replaced by a SoftHSM2 token and AWS by a "
                                    "local stand-in that applies AWS's rules. Nothing real is touched.")
    rh.add_argument("file", help="the ceremony file (YAML)")
    rh.add_argument("--workspace", help="workspace directory (default: a new temporary one)")
    rh.add_argument("--yes", "-y", action="store_true", help="accepted for symmetry; a rehearsal never asks")
    rh.add_argument("--quiet", "-q", action="store_true", help="print only the summary")
    rh.add_argument("--verbose", "-v", action="store_true", help="also print each step's AWS calls")
    rh.add_argument("--no-color", action="store_true", help="plain output even on a terminal")
    rh.add_argument("--parallel", type=int, default=1, metavar="N", help="run up to N independent steps at once")
    rh.add_argument("--debug", action="store_true", help="show tracebacks")
    it = sub.add_parser("init", help="write a starting ceremony file (asks a few questions, or takes flags)",
                        description="Write a starting ceremony file from a template. PINs are never asked for: "
                                    "the file names the environment variables that will hold them.")
    it.add_argument("file", nargs="?", help="where to write it (default: <name>.yaml)")
    it.add_argument("--template", choices=["local", "hybrid"], default=None,
                    help="local: everything on SoftHSM; hybrid: root in CloudHSM, subordinates in AWS Private CA")
    it.add_argument("--name", default=None, help="ceremony name (lower case, digits, dashes)")
    it.add_argument("--organization", default=None)
    it.add_argument("--country", default=None, help="two letters, e.g. US")
    it.add_argument("--issuing-cas", dest="issuing_cas", type=int, default=None, help="second-level CAs (1-20)")
    it.add_argument("--region", default=None, help="AWS region (hybrid)")
    it.add_argument("--profile", default=None, help="AWS profile (hybrid)")
    it.add_argument("--defaults", "--yes", "-y", dest="defaults", action="store_true",
                    help="ask nothing: flags and defaults only")
    it.add_argument("--force", action="store_true", help="overwrite an existing file")
    it.add_argument("--debug", action="store_true", help="show tracebacks")
    co = sub.add_parser("completion", help="print shell completion code (bash, zsh or fish)",
                        description="Print the completion script: eval \"$(pki-ceremony completion bash)\", or "
                                    "pki-ceremony completion fish | source.")
    co.add_argument("shell", choices=["bash", "zsh", "fish"])
    return p


def _confirm(assume_yes: bool):
    def confirm(plan) -> bool:
        if assume_yes:
            return True
        if not sys.stdin.isatty():
            print("Not on a terminal and --yes not given: refusing to act without confirmation.", file=sys.stderr)
            return False
        answer = input("Apply this plan? Only 'yes' is accepted: ")
        return answer.strip() == "yes"
    return confirm


def run(argv: list[str]) -> int:
    parser = _parser()
    try:
        import argcomplete

        argcomplete.autocomplete(parser)
    except ImportError:
        pass
    args = parser.parse_args(argv)
    from pki_ceremony import app, render

    if args.command == "rehearse":
        return _rehearse(args)
    if args.command == "init":
        return _init(args)
    if args.command == "completion":
        import argcomplete

        print(argcomplete.shellcode(["pki-ceremony"], shell=args.shell))
        return 0
    saved = None
    if args.command == "apply":
        from pki_ceremony.documents import read_plan

        saved = read_plan(Path(args.file))
    if saved is not None:
        if args.replace or args.workspace:
            raise UsageError("a saved plan already fixes --replace and the workspace")
        args.file, args.workspace, args.replace = saved.ceremony_file, saved.workspace, list(saved.replace)
    c = app.open_ceremony(args.file, args.workspace)
    if args.command == "validate":
        if c.loaded.base is not None:
            own = sum(1 for n in c.graph.order() if not n.external)
            print(f"{args.file}: valid root ceremony '{c.name}' on '{c.model.metadata.name}' "
                  f"({c.loaded.base.path.name}): {own} steps of its own")
        else:
            print(f"{args.file}: valid ceremony '{c.name}': {len(c.model.cas())} CAs, {len(c.graph)} steps")
        return 0
    if args.command == "plan":
        from pki_ceremony import documents

        p = app.plan(c, tuple(args.replace))
        found = app.refresh(c, p) if args.refresh else None
        doc = documents.plan_document(c, p, args.file, tuple(args.replace), found)
        if args.json:
            print(doc.model_dump_json(indent=2))
        else:
            print(render.plan_text(p, args.file, c.workspace.root, found))
        if args.out:
            documents.write_plan(doc, Path(args.out))
            if not args.json:
                print(f"\nSaved the plan to {args.out}. Apply exactly this plan with: pki-ceremony apply {args.out}")
        return 0
    if args.command == "graph":
        from pki_ceremony import graph_export

        p = app.plan(c)
        if args.print_format:
            render_one = {"mermaid": graph_export.to_mermaid, "dot": graph_export.to_dot,
                          "hierarchy": graph_export.hierarchy_mermaid}[args.print_format]
            print(render_one(c, p))
            return 0
        for path in graph_export.write_graph(c, p, Path(args.out), f"{Path(args.file).stem}-steps"):
            print(f"wrote {path}")
        return 0
    if args.command == "status":
        p = app.plan(c)
        if args.json:
            from pki_ceremony import documents

            print(documents.status_document(c, p).model_dump_json(indent=2))
        else:
            print(render.status_text(c, p))
        return 0
    if saved is not None:
        from pki_ceremony.documents import check_still_current

        # A reviewed plan is applied as it is, without asking again, or refused if anything changed.
        return _apply(c, args, confirm=lambda plan: True, expect=lambda plan: check_still_current(saved, c, plan))
    return _apply(c, args, confirm=_confirm(args.yes))


def _apply(c, args, *, confirm, expect=None) -> int:
    from pki_ceremony import app, render

    color = not args.no_color and "NO_COLOR" not in os.environ
    progress = render.progress_for(args.quiet, args.verbose, color)
    observer = render.Fanout(progress, render.Transcript(c.workspace.root / "ceremony-log.jsonl"))
    shown = []

    def on_plan(p):
        shown.append(p)
        if not args.quiet:
            print(render.plan_text(p, args.file, c.workspace.root) + "\n")

    with progress:
        plan, report = app.apply(c, confirm=confirm, observer=observer,
                                 replace=tuple(getattr(args, "replace", ())), on_plan=on_plan, expect=expect,
                                 max_workers=max(1, args.parallel))
    if report is None:
        if args.quiet:
            print("Nothing to do.")
        return 0
    steps = "step" if len(report.ran) == 1 else "steps"
    print(f"\nApply complete: {len(report.ran)} {steps} run, {len(report.adopted)} adopted from an interrupted run"
          + (f", {len(report.artifacts_restored)} artifacts restored" if report.artifacts_restored else "")
          + f", in {report.seconds:.1f}s.")
    print(f"Artifacts: {c.workspace.artifacts_dir}")
    _print_api_calls(report)
    return 0


def _print_api_calls(report) -> None:
    if not report.api_calls:
        return
    from pki_ceremony.steps.aws_clients import is_mutating

    total = sum(sum(calls.values()) for calls in report.api_calls.values())
    mutating = sum(n for calls in report.api_calls.values() for op, n in calls.items() if is_mutating(op))
    print(f"AWS API calls: {total} ({mutating} mutating)")
    for step, calls in report.api_calls.items():
        print(f"  {step}: " + ", ".join(f"{op} x{n}" for op, n in sorted(calls.items())))


def _init(args) -> int:
    from pki_ceremony import init_wizard

    if args.file and Path(args.file).exists() and not args.force:  # before asking anything
        raise UsageError(f"{args.file} already exists; not overwriting it",
                         hint="choose another file name, or pass --force to replace it")
    interactive = not args.defaults and sys.stdin.isatty()
    if not interactive and not args.defaults:
        print("Not on a terminal: using the flags given and the defaults for the rest.", file=sys.stderr)
    answers = init_wizard.answers_from(vars(args), interactive)
    path = args.file or init_wizard.default_filename(answers)
    init_wizard.write(path, init_wizard.render(answers, filename=path), force=args.force)
    print(f"Wrote {path}. Next: pki-ceremony validate {path}, then plan.")
    return 0


def _rehearse(args) -> int:
    from pki_ceremony import app, rehearse

    from pki_ceremony.schemas.loader import load_ceremony

    base = load_ceremony(args.file).base
    if base is not None and not args.workspace:  # checked before a temporary workspace is made
        raise UsageError("a root ceremony is rehearsed in the workspace of its base ceremony's rehearsal",
                         hint=f"pki-ceremony rehearse {base.path.name} --workspace DIR, then "
                              f"pki-ceremony rehearse {args.file} --workspace DIR")
    c = rehearse.rehearsal_ceremony(args.file, args.workspace)
    print(f"Rehearsal of {args.file}: every HSM is a SoftHSM2 token, AWS is a local stand-in.")
    print(f"Rehearsal workspace: {c.workspace.root}")
    first = app.plan(c)
    app.check_pin_sources(c, app.hsms_needed(first), app.so_pins_needed(c, first))  # before anything is made
    rehearse.mark(c)
    with rehearse.stand_in(c) as url:
        if url:
            print(f"AWS stand-in: {url}")
        code = _apply(c, args, confirm=lambda plan: True)
    print(f"Rehearsal workspace (artifacts to inspect): {c.workspace.root}")
    return code


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    debug = "--debug" in argv or os.environ.get("PKI_CEREMONY_DEBUG") == "1"
    try:
        code = run(argv)
    except CeremonyError as exc:
        if debug:
            traceback.print_exc()
        print(f"error: {exc}", file=sys.stderr)
        if exc.hint:
            print(f"hint: {exc.hint}", file=sys.stderr)
        code = exc.exit_code
    except BrokenPipeError:  # e.g. `pki-ceremony plan FILE | head`: the reader left; not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = 0
    except Exception as exc:  # noqa: BLE001 - a bug; say so in one line, traceback with --debug
        if debug:
            traceback.print_exc()
        print(f"error: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        print("hint: run with --debug for the traceback, and report it", file=sys.stderr)
        code = 1
    except KeyboardInterrupt:
        print("interrupted: run apply again to resume", file=sys.stderr)
        code = EXIT_INTERRUPTED
    sys.exit(code)


if __name__ == "__main__":
    main()

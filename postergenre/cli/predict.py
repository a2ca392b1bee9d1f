"""Stage 7: `predict` (posters, folders or a CSV of them) and `serve` (the web page)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from ..config import UserError
from .common import Terminated, add_adaptation_options, add_text_option, add_wait_option, positive_int


def cmd_predict(args, paths):
    """Results on stdout (lines for posters named one by one, a CSV for a folder or a CSV of posters, JSON with
    --json), or into --output; each failed poster once on stderr, and exit code 1 when any failed. Ctrl-C or
    SIGTERM writes the posters finished so far; --resume goes on from them."""
    if args.output is not None:
        check_writable(args.output)
    if args.resume and args.output is None:
        raise UserError("--resume needs --output: the file the interrupted run wrote")
    if args.output is None:
        return predict_to(args, paths)
    from ..data.lock import Lock
    with Lock(args.output, f"--output {args.output}", args.wait):  # two runs to one file: the second refused
        return predict_to(args, paths)


def predict_to(args, paths) -> int:
    from ..inference.predict import (Interrupted, errors, expand_inputs, is_folder, predict, render_lines, resumable,
                                     write_output)
    earlier, skip = resumable(args.output) if args.resume else ([], set())
    many = any(is_folder(p) or str(p).endswith(".csv") for p in args.posters)
    to_file = args.output is not None or many or args.json  # a table or records, not lines
    posters = expand_inputs(args.posters)
    if args.output is not None:
        refuse_output_among_inputs(args.output, args.posters, [row["poster"] for row in posters])
    order = [str(row["poster"]) for row in posters] if to_file else None
    options = dict(adapt_prior=args.adapt_prior, prior=args.prior, estimator=args.estimator, runtime=args.runtime,
                   text=not args.no_text, find_poster=not args.no_find_poster)
    try:
        predictions = predict(posters, args.model, args.top, paths, skip=skip, **options)
    except Interrupted as stop:
        rows, total = stop.done.rows, stop.total
        text = write_output(rows, args.output, args.json, args.words, earlier, order, interrupted=True) \
            if to_file else render_lines(rows, words=args.words)
        sys.stdout.write(text)
        done = len(rows) + len(earlier)
        where = f"written to {args.output}; run the same command with --resume to predict the other " \
            f"{total - len(rows)}" if args.output else "printed above; give --output FILE to be able to resume"
        print(f"postergenre predict: interrupted: {done} of {total + len(earlier)} posters done, {where}",
              file=sys.stderr)
        return 143 if isinstance(stop.__cause__, Terminated) else 130
    rows, adaptation = predictions.rows, predictions.adaptation
    if adaptation:
        print(f"postergenre predict: {adaptation.note}", file=sys.stderr)
        print(adaptation.mix_table().to_string(index=False), file=sys.stderr)
    if args.output is not None:
        write_output(rows, args.output, args.json, args.words, earlier, order)
        print(f"postergenre predict: {len(rows) + len(earlier)} posters -> {args.output}", file=sys.stderr)
    elif to_file:
        sys.stdout.write(write_output(rows, None, args.json, args.words, earlier, order))
    else:
        sys.stdout.write(render_lines(rows, words=args.words))
    failed = errors(rows)
    shown = failed if args.verbose else failed[:ERRORS_SHOWN]
    for error in shown:
        print(f"postergenre predict: error: {error}", file=sys.stderr)
    if failed:
        more = f" ({len(failed) - len(shown)} more not shown: --verbose lists them all" + (
            ", as does the error column of the output)" if args.output or to_file else ")") \
            if len(shown) < len(failed) else ""
        print(f"postergenre predict: {len(failed)} of {len(rows)} posters could not be predicted{more}",
              file=sys.stderr)
        return 1
    return 0


ERRORS_SHOWN = 20  # failed posters named on stderr one a line; the rest counted (20,000 empty files: 21 lines)


def refuse_output_among_inputs(output: Path, inputs: list, posters: list) -> None:
    """An --output that is one of the inputs (a CSV of posters, a poster: the same file, by inode where it exists,
    else by path) would be destroyed by the results: refused before any work."""
    target = Path(output)
    same = (lambda a: os.path.samefile(a, target)) if target.exists() else \
        (lambda a: os.path.abspath(a) == os.path.abspath(target))
    for candidate in [*inputs, *posters]:
        try:
            if str(candidate).strip() and same(candidate):
                raise UserError(f"--output {output}: is an input ({candidate}); the results would replace it: give "
                                "another file")
        except OSError:  # a missing poster: it is reported as one when predicted
            continue


def check_writable(output: Path) -> None:
    """Refuse an output that cannot be written before any poster is read (minutes of work otherwise lost)."""
    output = Path(output)
    if output.is_dir():
        raise UserError(f"--output {output}: is a folder; give a file name")
    folder = output.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UserError(f"--output {output}: {folder} is not a folder")
    if output.exists() and not output.is_file():
        raise UserError(f"--output {output}: not a regular file (a device?); give a file name")
    if not os.access(folder, os.W_OK) or (output.exists() and not os.access(output, os.W_OK)):
        raise UserError(f"--output {output}: no permission to write there")
    longest = os.pathconf(folder, "PC_NAME_MAX")
    for name in [*output.parts[len(folder.parts):], f"{output.name}.resume.json"]:  # and an interruption's record
        if len(os.fsencode(name)) > longest:
            raise UserError(f"--output {output}: the name {name[:40]}... is {len(os.fsencode(name))} bytes; this "
                            f"disk allows {longest}")


def cmd_serve(args, paths):
    from ..app.serve import serve
    print(f"postergenre serve: http://{args.host}:{args.port} (Ctrl-C stops it)", flush=True)
    serve(paths, args.model, args.host, args.port, heatmaps=not args.no_gradcam, text=not args.no_text)


def add(stages) -> None:
    p = stages.add_parser("predict", help="stage 7: genres of posters (files, folders or a CSV of paths)",
                          description="Top genres with probabilities for each poster, and the genres above the "
                                      "tuned thresholds (by probability), on stdout: a line per poster named, a CSV "
                                      "for a folder or a CSV of posters, JSON with --json; --output writes a file "
                                      "instead. Exit status: 0 every poster predicted, 1 some could not be (each "
                                      "named on stderr), 2 a usage error.")
    p.add_argument("posters", nargs="+", help="poster files, folders of posters, or a CSV with poster_path")
    p.add_argument("--model", default="default", help="model folder or name under models/ (default: the shipped "
                                                      "default model)")
    p.add_argument("--top", type=positive_int, default=3, help="how many top genres to list (1 or more)")
    p.add_argument("--json", action="store_true",
                   help="JSON for programs: per poster, labels and above_threshold as [{label, score}], every "
                        "genre's probabilities, the words read (README: the JSON output)")
    p.add_argument("--words", action="store_true", help="also show the words read on each poster (lines and CSV)")
    p.add_argument("--verbose", action="store_true",
                   help=f"name every poster that could not be predicted on stderr (otherwise the first "
                        f"{ERRORS_SHOWN} and a count)")
    add_wait_option(p, "--output")
    p.add_argument("--resume", action="store_true",
                   help="go on from the --output an interrupted run wrote: its posters (same path and file) are kept, "
                        "the others predicted, and the file written as one uninterrupted run would")
    p.add_argument("--runtime", choices=("litert", "keras"), default="litert",
                   help="litert (default): the model folder's model.tflite, without TensorFlow; keras: the Keras "
                        "network")
    add_adaptation_options(p)
    add_text_option(p)
    p.add_argument("--output", type=Path, default=None,
                   help="write the predictions into this file (a CSV, or JSON with --json) instead of stdout")
    p.set_defaults(func=cmd_predict)

    p = stages.add_parser("serve", help="a web page: drop a poster, see its genres (Gradio, offline)",
                          description="One poster (top genres, every genre against its threshold, Grad-CAM) or many "
                                      "(a table, downloadable as CSV). Binds to 127.0.0.1 unless --host says "
                                      "otherwise; never opens a public share link.")
    p.add_argument("--model", default=None, help="the model shown first (default: the shipped default)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every interface)")
    p.add_argument("--port", type=int, default=7860, help="port to listen on")
    p.add_argument("--no-gradcam", action="store_true",
                   help="start without loading the Grad-CAM network (TensorFlow: a slower start, more memory); the "
                        "first heatmap then loads it")
    add_text_option(p)
    p.set_defaults(func=cmd_serve)
